// The public page of "double random, one public" inspections (双随机、一公开): every published
// draw with its commitment, the premises and inspectors drawn, each result once recorded, and
// how anyone can check the draw. No login; Chinese by default, English on request.

const KEY = "nonsite.lang";
let lang = localStorage.getItem(KEY) === "en" ? "en" : "zh";

const TEXT = {
  zh: {
    title: "双随机、一公开 · 抽查结果公示",
    switch: "EN",
    loading: "加载中…",
    failed: "无法读取公示数据：",
    none: "暂无已公示的抽查。",
    drawn_at: "抽取时间",
    published_at: "公示时间",
    algorithm: "抽取算法",
    commitment: "种子承诺（SHA-256）",
    commitment_leaf: "承诺在存证日志中的位置",
    published_leaf: "公示在存证日志中的位置",
    seed: "随机种子（公示后公开）",
    inputs: "抽取输入摘要",
    drawn_from: "抽取范围",
    drawn_from_value: "{c} 家检查对象，{p} 名执法检查人员",
    premises: "检查对象",
    street: "街道",
    grade: "风险等级",
    inspectors: "检查人员",
    result: "检查结果",
    unassigned: "未能配齐检查人员的对象",
    pending: "待检查",
    pass: "合格",
    rectify: "责令整改",
    violation: "发现违法行为，已立案",
    document: "完整公示文件（JSON）",
    verify_title: "如何自行核验",
    verify: [
      "1. 将随机种子（十六进制）解码后计算 SHA-256，结果应与种子承诺一致。",
      "2. 种子承诺在抽取之前已写入存证日志（承诺位置早于公示位置），日志的签名检查点带有可信时间戳。",
      "3. 下载完整公示文件，在安装了 nonsite 的电脑上重新计算抽取结果：",
    ],
    verify_after: "输出 verified 即抽取结果可复现；否则逐条列出不一致之处。算法 nonsite.draw/1 的完整说明见 cases/draws.py 的文档，任何人均可独立实现。",
  },
  en: {
    title: "Double random, one public · inspection results",
    switch: "中文",
    loading: "Loading…",
    failed: "Cannot read the published draws: ",
    none: "No draw has been published yet.",
    drawn_at: "Drawn",
    published_at: "Published",
    algorithm: "Algorithm",
    commitment: "Seed commitment (SHA-256)",
    commitment_leaf: "Commitment's leaf in the evidence log",
    published_leaf: "Publication's leaf in the evidence log",
    seed: "Seed (revealed by publication)",
    inputs: "Digest of the inputs",
    drawn_from: "Drawn from",
    drawn_from_value: "{c} premises, {p} inspectors",
    premises: "Premises",
    street: "Street",
    grade: "Risk grade",
    inspectors: "Inspectors",
    result: "Result",
    unassigned: "Premises without enough eligible inspectors",
    pending: "not yet inspected",
    pass: "pass",
    rectify: "rectification ordered",
    violation: "violation found, case opened",
    document: "Whole published document (JSON)",
    verify_title: "Check it yourself",
    verify: [
      "1. The SHA-256 of the seed (hex-decoded) must equal the seed commitment.",
      "2. The commitment was written to the evidence log before the draw (its leaf comes before the publication's); the log's signed checkpoints carry trusted time stamps.",
      "3. Download the whole document and recompute the draw on a computer with nonsite installed:",
    ],
    verify_after: "It prints verified when the draw is reproduced, and names every difference otherwise. The algorithm nonsite.draw/1 is specified in the docstring of cases/draws.py, so anyone can reimplement it.",
  },
};

const t = (key) => TEXT[lang][key];

/** An element; text is never parsed as HTML. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "testid") el.setAttribute("data-testid", value);
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString(lang === "en" ? "en-GB" : "zh-CN", { hour12: false }) : "—";
}

function resultCell(result) {
  return h("td", { class: result || "pending", testid: "result" }, t(result || "pending"));
}

function draw(d) {
  const command = `python -c "import json; from cases.draws import verify; print(verify(json.load(open('draw-${d.id}.json'))['document']) or 'verified')"`;
  return h(
    "section",
    { class: "draw", testid: `draw-${d.id}` },
    h("h2", {}, d.purpose),
    h(
      "dl",
      {},
      h("dt", {}, t("drawn_at")), h("dd", {}, when(d.drawn_at)),
      h("dt", {}, t("published_at")), h("dd", {}, when(d.published_at)),
      h("dt", {}, t("drawn_from")), h("dd", {}, t("drawn_from_value").replace("{c}", d.candidates).replace("{p}", d.pool)),
      h("dt", {}, t("algorithm")), h("dd", {}, h("code", {}, d.algorithm)),
      h("dt", {}, t("commitment")), h("dd", {}, h("code", { testid: "commitment" }, d.commitment)),
      h("dt", {}, t("commitment_leaf")), h("dd", {}, d.commitment_leaf),
      h("dt", {}, t("published_leaf")), h("dd", {}, d.published_leaf),
      h("dt", {}, t("seed")), h("dd", {}, h("code", {}, d.seed)),
      h("dt", {}, t("inputs")), h("dd", {}, h("code", {}, d.inputs_sha256)),
    ),
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, ["premises", "street", "grade", "inspectors", "result"].map((k) => h("th", {}, t(k))))),
      h(
        "tbody",
        {},
        d.targets.map((target) =>
          h(
            "tr",
            { testid: `target-${target.premises_id}` },
            h("td", {}, target.name ? `${target.name}（${target.premises_id}）` : target.premises_id),
            h("td", {}, target.street),
            h("td", {}, target.grade),
            h("td", {}, target.inspectors.map((i) => i.name).join("、")),
            resultCell(target.result),
          ),
        ),
      ),
    ),
    d.unassigned.length
      ? [h("h3", {}, t("unassigned")), h("ul", {}, d.unassigned.map((u) => h("li", {}, `${u.premises_id}: ${u.reason}`)))]
      : null,
    h("p", {}, h("a", { href: `/api/public/draws/${d.id}`, download: `draw-${d.id}.json` }, t("document"))),
    h(
      "details",
      {},
      h("summary", {}, t("verify_title")),
      t("verify").map((line) => h("p", {}, line)),
      h("pre", {}, command),
      h("p", { class: "muted" }, t("verify_after")),
    ),
  );
}

let draws = null;
let error = null;

function render() {
  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
  document.title = t("title");
  document.getElementById("title").textContent = t("title");
  document.getElementById("lang").textContent = t("switch");
  const main = document.getElementById("main");
  main.replaceChildren();
  if (error) main.append(h("section", { class: "note" }, t("failed"), error));
  else if (draws === null) main.append(h("p", { class: "muted" }, t("loading")));
  else if (!draws.length) main.append(h("section", { class: "note", testid: "no-draws" }, t("none")));
  else main.append(...draws.map(draw));
}

document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "en" ? "zh" : "en";
  localStorage.setItem(KEY, lang);
  render();
});

render();
try {
  const response = await fetch("/api/public/draws", { credentials: "omit" });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  draws = (await response.json()).items;
} catch (err) {
  error = err.message;
}
render();

// The party portal (Administrative Penalty Law Art. 41, 44, 45): with the case number and the
// access code an officer gave them, the party sees the case's evidence and their deadlines and
// states a defense.

import { lang, onLangChange, setLang, t, tv } from "./i18n.js";
import { api, fill, fmtTime, frameOf, h, onUnauthorized, toast } from "./util.js";

const header = h("header", { class: "topbar" });
const main = h("main", { class: "party-main", id: "main" });
let partyCase = null;

function renderHeader() {
  fill(
    header,
    h("span", { class: "brand" }, t("party_title"), h("small", {}, t("app_title"))),
    h("span", { style: "flex:1" }),
    h(
      "div",
      { class: "userbox" },
      h("button", { type: "button", testid: "lang-switch", title: t("lang_switch_title"), onclick: () => setLang(lang === "en" ? "zh" : "en") }, t("lang_switch")),
      partyCase ? h("button", { type: "button", testid: "party-logout", onclick: () => logout() }, t("party_logout")) : null,
    ),
  );
}

function render() {
  renderHeader();
  document.title = `${t("party_title")} · ${t("app_title")}`;
  if (partyCase) showCase(partyCase);
  else showLogin();
}

function showLogin() {
  const preset = new URLSearchParams(location.search).get("case") || "";
  const number = h("input", { required: true, value: preset, testid: "party-case", autocomplete: "off", spellcheck: "false", placeholder: "CG-2026-000001" });
  const code = h("input", { required: true, testid: "party-code", autocomplete: "one-time-code", spellcheck: "false", autocapitalize: "characters", placeholder: "ABCD-EFGH-JKMN" });
  const submit = h("button", { type: "submit", class: "primary", testid: "party-submit" }, t("party_login"));
  fill(
    main,
    h(
      "div",
      { class: "login-wrap" },
      h(
        "div",
        { class: "panel login-card", testid: "party-login" },
        h("h1", {}, t("party_title")),
        h("p", { class: "muted" }, t("party_subtitle")),
        h(
          "form",
          {
            onsubmit: async (e) => {
              e.preventDefault();
              submit.disabled = true;
              try {
                await api("/api/party/login", { method: "POST", body: { case_number: number.value.trim(), code: code.value.trim() }, quiet: true });
                partyCase = await api("/api/party/case");
                render();
              } catch (err) {
                toast(err.message, "error");
              } finally {
                submit.disabled = false;
              }
            },
          },
          h("label", { class: "field" }, t("party_case_number"), number),
          h("label", { class: "field" }, t("party_code"), code, h("span", { class: "small" }, t("party_code_hint"))),
          submit,
        ),
      ),
    ),
  );
  (preset ? code : number).focus();
}

function showCase(c) {
  const media = c.evidence_packages.flatMap((pkg) => {
    // the annotated keyframes say what was seen where; the clean ones repeat them
    const annotated = pkg.files.filter((f) => f.kind === "annotated");
    const images = pkg.files.filter(
      (f) => f.media_type.startsWith("image/") && (annotated.length === 0 || f.kind !== "keyframe"),
    );
    const clips = pkg.files.filter((f) => f.media_type.startsWith("video/"));
    const recordings = pkg.files.filter((f) => f.media_type.startsWith("audio/"));
    return [
      ...images.map((f) =>
        h(
          "figure",
          {},
          h("a", { href: f.url, target: "_blank", rel: "noopener" }, h("img", { src: f.url, alt: f.name, testid: "party-image", loading: "lazy" })),
          h("figcaption", {}, `${tv("file_kind", f.kind)}${frameOf(f.name) !== null ? ` #${frameOf(f.name)}` : ""} · ${fmtTime(pkg.observed_from, true)}`),
        ),
      ),
      ...clips.map((f) =>
        h(
          "figure",
          {},
          h("video", { src: f.url, controls: true, muted: true, preload: "metadata", playsinline: true, testid: "party-clip" }),
          h("figcaption", {}, `${tv("file_kind", f.kind)} · ${fmtTime(pkg.observed_from, true)} – ${fmtTime(pkg.observed_to, true)}`),
        ),
      ),
      ...recordings.map((f) => h("figure", {}, h("audio", { src: f.url, controls: true, preload: "none" }), h("figcaption", {}, f.name))),
    ];
  });
  const statementsEl = h("div", { testid: "party-statements" });
  const renderStatements = () =>
    fill(
      statementsEl,
      c.statements.length === 0
        ? h("p", { class: "muted small" }, t("case_no_statements"))
        : c.statements.map((s) =>
            h(
              "div",
              { class: "statement", testid: "party-statement" },
              h("p", {}, s.text),
              h("div", { class: "muted small" }, `${t("statement_at")}: ${fmtTime(s.submitted_at)}`, s.contact ? ` · ${t("statement_contact")}: ${s.contact}` : ""),
            ),
          ),
    );
  renderStatements();
  const text = h("textarea", { required: true, maxlength: 20000, testid: "statement-text", rows: 6 });
  const contact = h("input", { maxlength: 200, testid: "statement-contact", autocomplete: "tel" });
  const submit = h("button", { type: "submit", class: "primary", testid: "statement-submit" }, t("submit"));
  fill(
    main,
    h(
      "div",
      { class: "page-head party-hero" },
      h("h1", { class: "case-no", testid: "party-case-number" }, c.number),
      h("span", { class: `badge kind-${c.kind}` }, tv("kind", c.kind)),
      h("span", { class: `badge state-${c.state}`, testid: "party-case-state" }, tv("state", c.state)),
    ),
    h(
      "section",
      { class: "panel" },
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, t("party_kind")),
        h("dd", {}, tv("kind", c.kind)),
        h("dt", {}, t("party_place")),
        h("dd", {}, c.place || "—"),
        h("dt", {}, t("party_seen")),
        h("dd", {}, `${fmtTime(c.first_seen_at)} – ${fmtTime(c.last_seen_at)}`),
        h("dt", {}, t("party_state")),
        h("dd", {}, tv("state", c.state)),
      ),
      h("p", { class: "notice", style: "margin:.9rem 0 0" }, t("party_rights")),
    ),
    h(
      "section",
      { class: "panel", testid: "party-deadlines" },
      h("h2", {}, t("party_deadlines")),
      c.deadlines.length === 0
        ? h("p", { class: "muted small" }, t("party_no_deadlines"))
        : h(
            "table",
            {},
            h("tbody", {}, c.deadlines.map((d) => h("tr", { class: `dl-row-${d.status}` }, h("td", {}, tv("deadline", d.name)), h("td", {}, fmtTime(d.due_at)), h("td", {}, h("span", { class: `badge dl-${d.status}` }, tv("deadline_status", d.status)))))),
          ),
    ),
    h("section", { class: "panel", testid: "party-evidence" }, h("h2", {}, t("party_evidence")), h("div", { class: "evidence-grid" }, media)),
    h("section", { class: "panel" }, h("h2", {}, t("party_statements")), statementsEl),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, t("party_statement_form")),
      h(
        "form",
        {
          testid: "statement-form",
          style: "display:grid;gap:.8rem",
          onsubmit: async (e) => {
            e.preventDefault();
            submit.disabled = true;
            try {
              const statement = await api("/api/party/statements", { method: "POST", body: { text: text.value.trim(), contact: contact.value.trim() } });
              c.statements.push(statement);
              renderStatements();
              text.value = "";
              toast(t("party_statement_sent"), "ok");
            } finally {
              submit.disabled = false;
            }
          },
        },
        h("label", { class: "field" }, t("party_statement_text"), text),
        h("label", { class: "field" }, t("party_statement_contact"), contact),
        h("div", {}, submit),
      ),
    ),
  );
}

async function logout() {
  try {
    await api("/api/party/logout", { method: "POST", quiet: true });
  } catch {
    // gone either way
  }
  partyCase = null;
  render();
}

onUnauthorized((_error, path) => {
  if (path.startsWith("/api/party/login") || !partyCase) return false;
  partyCase = null;
  toast(t("session_expired"), "error");
  render();
  return true;
});
onLangChange(() => render());

async function boot() {
  document.body.append(header, main);
  try {
    partyCase = await api("/api/party/case", { quiet: true });
  } catch {
    partyCase = null;
  }
  render();
}

boot();

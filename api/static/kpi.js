// KPIs over a period: detections, confirmations, rejections, filing and closing rates, overdue
// counts per group, and each officer's steps and review times.

import { cameraName, navigate } from "./app.js";
import { t, tv } from "./i18n.js";
import { api, fill, fmtNumber, fmtRate, h, hashWith, localInputValue, toast } from "./util.js";

const GROUP_COLUMNS = [
  ["detections", "num"],
  ["cases_opened", "num"],
  ["confirmed", "num"],
  ["rejected", "num"],
  ["filed", "num"],
  ["concluded", "num"],
  ["closed", "num"],
  ["overdue", "num"],
  ["confirmed_rate", "rate"],
  ["filing_rate", "rate"],
  ["closing_rate", "rate"],
  ["median_hours_to_close", "hours"],
];
const OFFICER_COLUMNS = [
  ["confirmed", "num"],
  ["rejected", "num"],
  ["other_steps", "num"],
  ["median_hours_to_review", "hours"],
];

/** The local calendar day `offset` days from today, as a date input shows it. (toISOString gives
 * the UTC day: in Beijing that is still yesterday until 08:00, and a period ending at its local
 * midnight would leave out everything since.) */
function localDay(offset) {
  const d = new Date();
  d.setDate(d.getDate() + offset);
  return localInputValue(d).slice(0, 10);
}

function cell(value, format) {
  if (format === "rate") return fmtRate(value);
  if (format === "hours") return fmtNumber(value, 1);
  return value === null || value === undefined ? "—" : String(value);
}

export function kpiPage(root, params) {
  const by = ["all", "camera", "kind"].includes(params.by) ? params.by : "all";
  const to = params.to || localDay(1);
  const from = params.from || localDay(-29);
  const body = h("div", {}, h("p", { class: "muted" }, t("loading")));
  const go = (changes) => navigate(hashWith("/kpi", { by, from, to, ...changes }));
  fill(
    root,
    h("div", { class: "page-head" }, h("h1", {}, t("kpi_title"))),
    h(
      "div",
      { class: "panel" },
      h(
        "div",
        { class: "toolbar", style: "margin-bottom:1rem" },
        h(
          "label",
          { class: "field" },
          t("kpi_by"),
          h(
            "select",
            { testid: "kpi-by", onchange: (e) => go({ by: e.target.value }) },
            ["all", "camera", "kind"].map((v) => h("option", { value: v, selected: v === by }, t(`kpi_by_${v}`))),
          ),
        ),
        h("label", { class: "field" }, t("kpi_from"), h("input", { type: "date", value: from, testid: "kpi-from", onchange: (e) => go({ from: e.target.value }) })),
        h("label", { class: "field" }, t("kpi_to"), h("input", { type: "date", value: to, testid: "kpi-to", onchange: (e) => go({ to: e.target.value }) })),
      ),
      body,
    ),
  );
  if (!(from < to)) {
    // the API answers an empty or reversed period with an error; say why here instead
    toast(t("kpi_bad_period"), "error");
    fill(body, h("p", { class: "muted" }, t("kpi_bad_period")));
    return {};
  }
  // local midnights, sent with their offset (as UTC)
  const start = new Date(`${from}T00:00:00`).toISOString();
  const end = new Date(`${to}T00:00:00`).toISOString();
  const query = new URLSearchParams({ by, start, end });
  api(`/api/kpi?${query}`).then((report) => {
    const groupName = (g) => (by === "camera" ? cameraName(g) : by === "kind" ? tv("kind", g) : t("all"));
    fill(
      body,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { testid: "kpi-table" },
          h("thead", {}, h("tr", {}, h("th", {}, t("kpi_group")), GROUP_COLUMNS.map(([k]) => h("th", { class: "num" }, t(`kpi_${k}`))))),
          h(
            "tbody",
            {},
            report.rows.map((row) =>
              h("tr", { testid: "kpi-row" }, h("td", {}, groupName(row.group)), GROUP_COLUMNS.map(([k, f]) => h("td", { class: "num", "data-key": k }, cell(row[k], f)))),
            ),
          ),
        ),
      ),
      h("h2", { style: "margin-top:1.4rem" }, t("kpi_officers")),
      report.officers.length === 0
        ? h("p", { class: "muted" }, t("none"))
        : h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { testid: "kpi-officers" },
              h("thead", {}, h("tr", {}, h("th", {}, t("kpi_officer")), h("th", {}, t("kpi_role")), OFFICER_COLUMNS.map(([k]) => h("th", { class: "num" }, t(`kpi_${k}`))))),
              h(
                "tbody",
                {},
                report.officers.map((row) =>
                  h("tr", {}, h("td", {}, row.officer), h("td", {}, tv("role", row.role)), OFFICER_COLUMNS.map(([k, f]) => h("td", { class: "num" }, cell(row[k], f)))),
                ),
              ),
            ),
          ),
    );
  });
  return {};
}

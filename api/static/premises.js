// The premises registry (场所): the list with filters and paging, a premises' page (its record,
// purifier, the camera zones that watch it, permits and recent cases), and for heads and
// admins the import of the county's CSV or Excel export, checked first if they like.

import { can, cameraName, navigate } from "./app.js";
import { t, tv } from "./i18n.js";
import { api, fill, fmtTime, h, hashWith, refusal, send, showError, toast } from "./util.js";

const PAGE = 25;
export const PREMISES_READERS = ["officer", "head", "legal_reviewer", "admin"];
export const REGISTRARS = ["head", "admin"];
const GRADES = ["A", "B", "C", "D"];
const KINDS = ["restaurant", "shop", "site", "other"];
const streetsSeen = new Set(); // streets shown so far, offered in the street filter
const XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

export function premisesHref(code) {
  return `#/premises/${encodeURIComponent(code)}`;
}

function gradeBadge(grade) {
  return grade ? h("span", { class: `badge grade grade-${grade}`, testid: "grade" }, t("premises_grade_value", { grade })) : h("span", { class: "muted" }, "—");
}

function repeatBadge(p) {
  return p.repeat_offender
    ? h("span", { class: "badge repeat", testid: "repeat-offender", title: t("premises_repeat_title", { n: p.cases_last_year }) }, t("premises_repeat"))
    : null;
}

export function premisesListPage(root, params) {
  const filters = { street: params.street || "", grade: params.grade || "", kind: params.kind || "", q: params.q || "" };
  const offset = Math.max(0, Number(params.offset) || 0);
  const go = (changes) => navigate(hashWith("/premises", { ...filters, ...changes, offset: changes.offset || "" }));
  const tbody = h("tbody", {}, h("tr", {}, h("td", { colspan: 8, class: "muted" }, t("loading"))));
  const totalEl = h("span", { class: "badge", testid: "premises-total" });
  const pager = h("div", { class: "pager" });
  const streets = h("datalist", { id: "premises-streets" });

  const select = (key, label, options) =>
    h(
      "label",
      { class: "field" },
      label,
      h(
        "select",
        { testid: `premises-filter-${key}`, onchange: (e) => go({ [key]: e.target.value }) },
        h("option", { value: "" }, t("all")),
        options.map(([value, text]) => h("option", { value, selected: filters[key] === value }, text)),
      ),
    );
  const street = h("input", { type: "search", value: filters.street, list: "premises-streets", testid: "premises-filter-street", placeholder: t("premises_street_hint"), enterkeyhint: "search" });
  const q = h("input", { type: "search", value: filters.q, testid: "premises-search", placeholder: t("premises_search_hint"), enterkeyhint: "search" });
  const search = h(
    "form",
    {
      class: "toolbar",
      style: "margin-bottom:.8rem",
      onsubmit: (e) => {
        e.preventDefault();
        go({ street: street.value.trim(), q: q.value.trim() });
      },
    },
    h("label", { class: "field grow" }, t("premises_search"), q),
    h("label", { class: "field" }, t("premises_street"), street),
    select("grade", t("premises_grade"), GRADES.map((g) => [g, t("premises_grade_value", { grade: g })])),
    select("kind", t("premises_kind"), KINDS.map((k) => [k, tv("premises_kind", k)])),
    h("button", { type: "submit", class: "primary", testid: "premises-search-submit" }, t("premises_search_submit")),
    filters.street || filters.q || filters.grade || filters.kind
      ? h("button", { type: "button", testid: "premises-clear", onclick: () => navigate("#/premises") }, t("premises_clear"))
      : null,
    streets,
  );

  const refresh = () => {
    const query = new URLSearchParams({ offset: String(offset), limit: String(PAGE) });
    for (const [k, v] of Object.entries(filters)) if (v) query.set(k, v);
    return api(`/api/premises?${query}`).then(
      (page) => {
        totalEl.textContent = t("premises_total", { n: page.total });
        totalEl.dataset.total = String(page.total);
        page.items.forEach((p) => p.street && streetsSeen.add(p.street));
        fill(streets, [...streetsSeen].sort().map((s) => h("option", { value: s })));
        fill(
          tbody,
          page.items.length === 0
            ? h("tr", {}, h("td", { colspan: 8, class: "muted", testid: "premises-empty" }, t("premises_empty")))
            : page.items.map((p) =>
                h(
                  "tr",
                  { class: "clickable", testid: "premises-row", "data-code": p.code, onclick: (e) => e.target.tagName !== "A" && navigate(premisesHref(p.code)) },
                  h("td", {}, h("a", { class: "mono", href: premisesHref(p.code) }, p.code)),
                  h("td", {}, h("div", {}, p.name, " ", repeatBadge(p)), p.address ? h("div", { class: "muted small" }, p.address) : null),
                  h("td", {}, tv("premises_kind", p.kind)),
                  h("td", {}, p.street || "—", p.grid ? h("div", { class: "muted small" }, p.grid) : null),
                  h("td", {}, gradeBadge(p.risk_grade)),
                  h("td", {}, tv("size", p.size_class)),
                  h("td", { class: "num", testid: "premises-cases" }, String(p.cases)),
                  h("td", { class: "num" }, h("span", { class: p.open_cases ? "badge state-pending_review" : "muted" }, String(p.open_cases))),
                ),
              ),
        );
        const last = Math.min(page.total, offset + page.items.length);
        fill(
          pager,
          h("span", { class: "muted small" }, page.total ? t("cases_page", { from: offset + 1, to: last }) : ""),
          h("button", { type: "button", testid: "page-prev", disabled: offset === 0, onclick: () => go({ offset: Math.max(0, offset - PAGE) }) }, "‹ ", t("cases_prev")),
          h("button", { type: "button", testid: "page-next", disabled: last >= page.total, onclick: () => go({ offset: offset + PAGE }) }, t("cases_next"), " ›"),
        );
      },
      (e) => fill(tbody, h("tr", {}, h("td", { colspan: 8, class: "muted" }, e.message))),
    );
  };

  fill(
    root,
    h("div", { class: "page-head" }, h("h1", {}, t("premises_title")), totalEl),
    can(REGISTRARS) ? importPanel(refresh) : null,
    h(
      "div",
      { class: "panel" },
      search,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { testid: "premises-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["premises_code", "premises_name", "premises_kind", "premises_street", "premises_grade", "premises_size"].map((k) => h("th", {}, t(k))),
              h("th", { class: "num" }, t("premises_cases")),
              h("th", { class: "num" }, t("premises_open_cases")),
            ),
          ),
          tbody,
        ),
      ),
      pager,
    ),
  );
  refresh();
  return {};
}

/** The import form: a CSV or Excel file, checked only or imported; the report, or the problems by row and column. */
function importPanel(onImported) {
  const file = h("input", { type: "file", accept: `.csv,.xlsx,text/csv,${XLSX}`, testid: "import-file", required: true });
  const report = h("div", { testid: "import-report" });
  const check = h("button", { type: "button", testid: "import-check", onclick: () => run(true) }, t("import_check"));
  const submit = h("button", { type: "button", class: "primary", testid: "import-submit", onclick: () => run(false) }, t("import_submit"));

  async function run(dryRun) {
    const chosen = file.files[0];
    if (!chosen) {
      toast(t("import_no_file"), "error");
      file.focus();
      return;
    }
    check.disabled = submit.disabled = true;
    fill(report, h("p", { class: "muted" }, dryRun ? t("import_checking") : t("import_running")));
    try {
      const type = chosen.type || (chosen.name.toLowerCase().endsWith(".xlsx") ? XLSX : "text/csv");
      const path = `/api/premises/import${dryRun ? "?dry_run=true" : ""}`;
      const { response, data } = await send(path, { body: chosen, headers: { "Content-Type": type } });
      if (response.ok) {
        showReport(data, chosen.name);
        toast(dryRun ? t("import_checked_ok", { n: data.rows }) : t("import_done", { created: data.created.length, updated: data.updated.length }), "ok");
        if (!dryRun) onImported();
      } else if (response.status === 400 && data && Array.isArray(data.problems)) {
        showProblems(data, chosen.name);
        toast(`${t("http_422")}${t("import_problems", { n: data.problems.length })}`, "error");
      } else {
        throw refusal(response, data, path);
      }
    } catch (e) {
      fill(report, h("p", { class: "muted", testid: "import-error" }, e.message));
      showError(e);
    } finally {
      check.disabled = submit.disabled = false;
    }
  }

  function codes(list, linked) {
    return list.map((code, i) => [i ? ", " : "", linked ? h("a", { href: premisesHref(code) }, code) : code]);
  }

  function showReport(r, name) {
    const count = (key, list) =>
      h("div", { class: "stat", testid: `import-${key}`, "data-count": String(list.length) }, h("b", {}, String(list.length)), h("span", {}, t(`import_${key}`)));
    fill(
      report,
      h(
        "div",
        { class: `import-result ${r.dry_run ? "dry" : "done"}`, testid: "import-ok", "data-dry-run": String(r.dry_run) },
        h("h3", {}, r.dry_run ? t("import_report_checked", { name, n: r.rows }) : t("import_report_done", { name, n: r.rows })),
        h("div", { class: "stats" }, count("created", r.created), count("updated", r.updated), count("unchanged", r.unchanged)),
        r.dry_run ? h("p", { class: "small" }, t("import_dry_run_note")) : null,
        r.created.length || r.updated.length
          ? h(
              "details",
              {},
              h("summary", {}, t("import_codes")),
              r.created.length ? h("p", { class: "small" }, `${t("import_created")}: `, codes(r.created, !r.dry_run)) : null,
              r.updated.length ? h("p", { class: "small" }, `${t("import_updated")}: `, codes(r.updated, !r.dry_run)) : null,
            )
          : null,
      ),
    );
  }

  function showProblems(r, name) {
    fill(
      report,
      h(
        "div",
        { class: "import-result bad", testid: "import-failed" },
        h("h3", {}, t("import_report_problems", { name, n: r.problems.length })),
        h("p", { class: "small" }, t("import_nothing_written")),
        h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "small", testid: "import-problems" },
            h("thead", {}, h("tr", {}, h("th", { class: "num" }, t("import_row")), h("th", {}, t("import_column")), h("th", {}, t("import_message")))),
            h(
              "tbody",
              {},
              r.problems.map((p) =>
                h(
                  "tr",
                  { testid: "import-problem", "data-row": String(p.row), "data-column": p.column },
                  h("td", { class: "num" }, String(p.row)),
                  h("td", { class: "mono" }, p.column),
                  h("td", {}, p.message),
                ),
              ),
            ),
          ),
        ),
      ),
    );
  }

  return h(
    "details",
    { class: "panel import-panel", testid: "import-panel" },
    h("summary", { testid: "import-open" }, t("import_title")),
    h("p", { class: "small muted" }, t("import_hint")),
    h("div", { class: "toolbar" }, h("label", { class: "field grow" }, t("import_file"), file), check, submit),
    report,
  );
}

export function premisesPage(root, _params, _ctx, code) {
  fill(root, h("p", { class: "muted" }, t("loading")));
  api(`/api/premises/${encodeURIComponent(code)}`).then(
    (p) => render(p),
    (e) =>
      fill(
        root,
        h("div", { class: "page-head" }, h("a", { href: "#/premises", class: "button ghost" }, "‹ ", t("premises_back"))),
        h("div", { class: "panel" }, h("h1", {}, code), h("p", { class: "muted" }, e.message)),
      ),
  );

  function render(p) {
    const purifier = p.purifier || {};
    const facts = [
      ["premises_code", h("span", { class: "mono", testid: "premises-code" }, p.code)],
      ["premises_kind", tv("premises_kind", p.kind)],
      ["premises_category", p.category || "—"],
      ["premises_address", p.address || "—"],
      ["premises_street", p.street || "—"],
      ["premises_grid", p.grid || "—"],
      ["premises_size", tv("size", p.size_class)],
      ["premises_grade", gradeBadge(p.risk_grade)],
      ["premises_credit_code", p.credit_code ? h("span", { class: "mono" }, p.credit_code) : "—"],
      ["premises_contact", p.contact || "—"],
      ["premises_place", p.lat !== null && p.lon !== null ? `${p.lat.toFixed(5)}, ${p.lon.toFixed(5)}` : "—"],
    ];
    const purifierFacts = [
      ["purifier_model", purifier.model || "—"],
      ["purifier_installed_on", purifier.installed_on || "—"],
      ["purifier_cleaned_on", purifier.cleaned_on || "—"],
    ];
    fill(
      root,
      h(
        "div",
        { class: "page-head" },
        h("a", { href: "#/premises", class: "button ghost", testid: "premises-back" }, "‹ ", t("premises_back")),
        h("h1", { testid: "premises-name" }, p.name),
        gradeBadge(p.risk_grade),
        repeatBadge(p),
        h("span", { class: "muted" }, `${p.street || ""} ${p.address || ""}`),
      ),
      h(
        "div",
        { class: "grid2" },
        h(
          "div",
          { class: "stack" },
          h(
            "section",
            { class: "panel", testid: "premises-record" },
            h("h2", {}, t("premises_record")),
            h("dl", { class: "facts keyed" }, facts.map(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)])),
            h("h3", { style: "margin-top:1rem" }, t("purifier_title")),
            h("dl", { class: "facts keyed", testid: "premises-purifier" }, purifierFacts.map(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)])),
          ),
          casesPanel(p),
        ),
        h("div", { class: "stack" }, countsPanel(p), zonesPanel(p), permitsPanel(p)),
      ),
    );
  }

  function countsPanel(p) {
    const stat = (key, n, testid) => h("div", { class: "stat", testid }, h("b", {}, String(n)), h("span", {}, t(key)));
    return h(
      "section",
      { class: "panel" },
      h("h2", {}, t("premises_history")),
      h("div", { class: "stats" }, stat("premises_cases", p.cases, "premises-case-count"), stat("premises_open_cases", p.open_cases, "premises-open-count"), stat("premises_cases_last_year", p.cases_last_year, "premises-year-count")),
      p.repeat_offender ? h("p", { class: "small", style: "margin:.6rem 0 0" }, t("premises_repeat_title", { n: p.cases_last_year })) : null,
    );
  }

  function zonesPanel(p) {
    return h(
      "section",
      { class: "panel", testid: "premises-zones" },
      h("h2", {}, t("premises_zones")),
      p.zones.length === 0
        ? h("p", { class: "muted small" }, t("premises_no_zones"))
        : h(
            "ul",
            { class: "plain-list" },
            p.zones.map((z) =>
              h(
                "li",
                { testid: "premises-zone", "data-camera": z.camera_id, "data-zone": z.zone },
                h("a", { href: `#/cameras/${encodeURIComponent(z.camera_id)}`, testid: "premises-zone-link" }, cameraName(z.camera_id)),
                h("span", { class: "muted" }, ` · ${z.zone} · `),
                h("span", { class: "small" }, tv("rule", z.rule)),
              ),
            ),
          ),
    );
  }

  function permitsPanel(p) {
    return h(
      "section",
      { class: "panel", testid: "premises-permits" },
      h("h2", {}, t("premises_permits")),
      p.permits.length === 0
        ? h("p", { class: "muted small" }, t("premises_no_permits"))
        : h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { class: "small" },
              h("thead", {}, h("tr", {}, ["permit_kind", "permit_number", "permit_from", "permit_to"].map((k) => h("th", {}, t(k))))),
              h(
                "tbody",
                {},
                p.permits.map((m) =>
                  h(
                    "tr",
                    { testid: "permit", class: m.valid_to && new Date(m.valid_to) < new Date() ? "expired" : null },
                    h("td", {}, tv("permit_kind", m.kind)),
                    h("td", { class: "mono" }, m.number),
                    h("td", { class: "nowrap" }, fmtTime(m.valid_from)),
                    h("td", { class: "nowrap" }, m.valid_to ? fmtTime(m.valid_to) : t("permit_open_ended")),
                  ),
                ),
              ),
            ),
          ),
    );
  }

  function casesPanel(p) {
    const readsCases = can(["officer", "head", "legal_reviewer"]);
    return h(
      "section",
      { class: "panel", testid: "premises-cases" },
      h("h2", {}, t("premises_recent_cases")),
      p.recent_cases.length === 0
        ? h("p", { class: "muted small" }, t("premises_no_cases"))
        : h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              {},
              h("thead", {}, h("tr", {}, ["col_number", "col_kind", "col_state", "col_camera", "col_opened"].map((k) => h("th", {}, t(k))))),
              h(
                "tbody",
                {},
                p.recent_cases.map((c) =>
                  h(
                    "tr",
                    { testid: "premises-case", "data-number": c.number },
                    h("td", {}, readsCases ? h("a", { class: "mono", href: `#/cases/${c.number}` }, c.number) : h("span", { class: "mono" }, c.number)),
                    h("td", {}, h("span", { class: `badge kind-${c.kind}` }, tv("kind", c.kind))),
                    h("td", {}, h("span", { class: `badge state-${c.state}` }, tv("state", c.state))),
                    h("td", {}, c.camera_id ? cameraName(c.camera_id) : "—"),
                    h("td", { class: "nowrap" }, fmtTime(c.opened_at)),
                  ),
                ),
              ),
            ),
          ),
    );
  }

  return {};
}


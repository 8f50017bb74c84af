// Drone surveys (航拍巡查): start a survey on a flight that survey staff copied to the server's drop
// folder, follow it (a progress bar while it runs, its error if it failed, its counts when done),
// and open a finished one: its findings in lon/lat on an SVG plot drawn here (stalls as points,
// new structures as their roof outlines; no tiles, nothing from the network), listed with the cases
// they were filed as, with the findings' GeoJSON and the report to download.

import { CASE_READERS, can } from "./app.js";
import { t, tv } from "./i18n.js";
import { KIND_COLORS } from "./map.js";
import { lonLatPlot } from "./plot.js";
import { ApiError, api, fill, fmtNumber, fmtTime, h, refusal, send, showError, toast } from "./util.js";

export const SURVEY_READERS = ["officer", "head", "legal_reviewer", "engineer", "admin"];
const SURVEY_STARTERS = ["officer", "head", "engineer", "admin"];
const FIELDS = ["folder", "baseline", "permits", "streets"];
const REFRESH_MS = 3000; // while a survey is queued or running
const ACTIVE = ["queued", "running"];
const PERMITTED_COLOR = "#2b8a3e";
// the counts a done survey's row shows, of the report's (pipelines/survey.py finish_survey)
const ROW_COUNTS = ["occupation_findings", "construction_findings", "cases_filed", "skipped_permitted"];
const DETAIL_COUNTS = [
  "images_processed",
  "images_unusable",
  "occupation_findings",
  "construction_findings",
  "cases_filed",
  "skipped_permitted",
  "rejected_candidates",
  "filing_errors",
];

// what was typed in the form, kept while the officer opens a survey (the page is drawn anew)
const draft = Object.fromEntries(FIELDS.map((f) => [f, ""]));

function surveyHref(id) {
  return `#/surveys/${encodeURIComponent(id)}`;
}

const surveyUrl = (id, what) => `/api/surveys/${encodeURIComponent(id)}/${what}`;

export function surveysPage(root, _params, _ctx, selectedId = null) {
  const starter = can(SURVEY_STARTERS);
  const countEl = h("span", { class: "badge", testid: "surveys-count", hidden: true });
  const formBox = h("div");
  const listBox = h("section", { class: "panel" }, h("h2", {}, t("surveys_list")), h("p", { class: "muted" }, t("loading")));
  const detailBox = h("div");
  let surveys = null;
  let timer = null;
  let gone = false; // the page was left: a late answer draws nothing
  let findings = null; // {id, collection} of the open survey, fetched once it is done
  let scrolled = false;
  let drawn = null; // what the open survey's panel shows (id, state, progress): unchanged, it is not drawn again

  fill(
    root,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, t("surveys_title")),
      countEl,
      h("span", { class: "spacer" }),
      h("button", { type: "button", testid: "surveys-refresh", onclick: () => load() }, "↻ ", t("refresh")),
    ),
    formBox,
    listBox,
    detailBox,
  );

  // ---- the form ----

  function renderForm() {
    if (!starter) {
      fill(formBox, h("p", { class: "small muted", testid: "surveys-read-only" }, t("surveys_read_only")));
      return;
    }
    const inputs = {};
    const errors = {};
    const field = (name, required, placeholder) => {
      inputs[name] = h("input", {
        name,
        value: draft[name],
        required,
        placeholder,
        autocomplete: "off",
        autocapitalize: "none",
        spellcheck: "false",
        testid: `survey-${name}`,
        "aria-describedby": `survey-${name}-error`,
        oninput: (e) => {
          draft[name] = e.target.value;
          clearError(name);
        },
      });
      errors[name] = h("span", { class: "field-error", id: `survey-${name}-error`, testid: `survey-${name}-error`, role: "alert", hidden: true });
      // the error beside the label, not in it: it describes the input and is no part of its name
      return h("div", { class: "survey-field" }, h("label", { class: "field" }, t(`survey_${name}`), inputs[name]), errors[name]);
    };
    const clearError = (name) => {
      inputs[name].removeAttribute("aria-invalid");
      errors[name].hidden = true;
      errors[name].textContent = "";
    };
    const submit = h("button", { type: "submit", class: "primary", testid: "survey-submit" }, t("survey_start"));
    const form = h(
      "form",
      {
        class: "survey-form",
        testid: "survey-form",
        novalidate: true,
        onsubmit: async (e) => {
          e.preventDefault();
          FIELDS.forEach(clearError);
          const body = Object.fromEntries(FIELDS.map((f) => [f, inputs[f].value.trim()]).filter(([, v]) => v));
          if (!body.folder) {
            showFieldError("folder", t("survey_folder_required"));
            return;
          }
          form.setAttribute("aria-busy", "true");
          submit.disabled = true;
          try {
            await start(body);
          } finally {
            form.removeAttribute("aria-busy");
            submit.disabled = false;
          }
        },
      },
      h("h2", {}, t("survey_new")),
      h(
        "div",
        { class: "form-row" },
        field("folder", true, "town/2026-05-01"),
        field("baseline", false, "town/2026-03-01"),
        field("permits", false, "town/permits.geojson"),
        field("streets", false, "town/streets.geojson"),
        submit,
      ),
      h("p", { class: "small muted", testid: "survey-hint" }, t("survey_hint")),
    );

    function showFieldError(name, message) {
      inputs[name].setAttribute("aria-invalid", "true");
      errors[name].textContent = message;
      errors[name].hidden = false;
      inputs[name].focus();
    }

    /** Ask the API to queue the survey; a 422 is shown by the field it names. */
    async function start(body) {
      let answer;
      try {
        answer = await send("/api/surveys", { body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
      } catch (e) {
        showError(e);
        return;
      }
      const { response, data } = answer;
      if (response.status === 422 && data && Array.isArray(data.detail)) {
        const unplaced = [];
        for (const d of data.detail) {
          const name = Array.isArray(d.loc) ? d.loc[1] : null;
          if (FIELDS.includes(name)) showFieldError(name, d.msg);
          else unplaced.push(d.msg);
        }
        if (unplaced.length) toast(`${t("http_422")}${unplaced.join("; ")}`, "error");
        return;
      }
      if (!response.ok) {
        showError(refusal(response, data, "/api/surveys"));
        return;
      }
      toast(t("survey_started", { id: data.id }), "ok");
      for (const f of FIELDS) draft[f] = "";
      renderForm();
      await load(true);
    }

    fill(formBox, h("section", { class: "panel", style: "margin-bottom:1rem" }, form));
  }

  // ---- the list ----

  async function load(quiet = false) {
    clearTimeout(timer);
    let list;
    try {
      list = await api("/api/surveys", { quiet: true });
    } catch (e) {
      if (gone) return;
      // a service started without drone surveys says so in these words (a 409)
      if (e instanceof ApiError && e.status === 409) {
        fill(formBox);
        fill(detailBox);
        fill(
          listBox,
          h("h2", {}, t("surveys_unavailable_title")),
          h("p", { testid: "surveys-unavailable" }, e.message),
          h("p", { class: "small muted" }, t("surveys_unavailable_hint")),
        );
        listBox.classList.add("no-registry");
        return;
      }
      fill(listBox, h("h2", {}, t("surveys_list")), h("p", { class: "muted", testid: "surveys-error" }, e.message));
      if (!quiet) showError(e);
      return;
    }
    if (gone) return;
    surveys = list;
    countEl.textContent = t("surveys_count", { n: surveys.length });
    countEl.hidden = false;
    renderList();
    await renderDetail();
    if (!gone && surveys.some((s) => ACTIVE.includes(s.state))) schedule();
  }

  function schedule() {
    timer = setTimeout(() => (document.hidden ? schedule() : load(true)), REFRESH_MS);
  }

  function renderList() {
    fill(
      listBox,
      h("h2", {}, t("surveys_list")),
      surveys.length === 0
        ? h("p", { class: "muted", testid: "surveys-empty" }, t(starter ? "surveys_empty_start" : "surveys_empty"))
        : h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { testid: "surveys-table" },
              h("thead", {}, h("tr", {}, ["survey_id", "survey_folder", "survey_requested", "survey_state", "survey_progress"].map((k) => h("th", {}, t(`${k}_col`))))),
              h("tbody", {}, surveys.map((s) => surveyRow(s))),
            ),
          ),
    );
  }

  function surveyRow(s) {
    const open = s.id === selectedId;
    return h(
      "tr",
      { testid: "survey-row", "data-id": s.id, "data-state": s.state, class: open ? "survey-row-open" : null, "aria-current": open ? "true" : null },
      h("td", { class: "nowrap" }, h("a", { class: "mono", href: surveyHref(s.id), testid: "survey-open" }, s.id)),
      h(
        "td",
        { class: "small" },
        h("div", { class: "mono", testid: "survey-row-folder" }, s.folder),
        s.baseline ? h("div", { class: "muted mono" }, t("survey_against", { baseline: s.baseline })) : null,
      ),
      h("td", { class: "nowrap small" }, s.requested_by, h("div", { class: "muted" }, fmtTime(s.requested_at))),
      h("td", {}, stateBadge(s)),
      h("td", { class: "survey-progress-cell" }, progressCell(s)),
    );
  }

  const stateBadge = (s) => h("span", { class: `badge survey-${s.state}`, testid: "survey-state", "data-state": s.state }, tv("survey_state", s.state));

  function progressCell(s) {
    if (s.state === "failed") return h("div", { class: "survey-error", testid: "survey-error" }, s.error || "—");
    if (s.state === "done") {
      return h(
        "div",
        { class: "small", testid: "survey-counts" },
        ROW_COUNTS.map((key) => h("span", { class: "survey-count", "data-key": key, "data-count": String(s.counts[key] ?? 0) }, `${t(`survey_count_${key}`)} ${s.counts[key] ?? 0}`)),
      );
    }
    // queued, or running with no plan yet: the bar has no value and says it is waiting
    const known = s.images > 0;
    return h(
      "div",
      { class: "survey-progress", testid: "survey-progress", "data-done": String(s.done), "data-images": String(s.images) },
      h("progress", { max: known ? s.images : null, value: known ? s.done : null, "aria-label": t("survey_progress_col") }),
      h("span", { class: "small muted" }, known ? t("survey_progress_of", { done: s.done, images: s.images }) : t("survey_progress_waiting")),
    );
  }

  // ---- the open survey ----

  async function renderDetail() {
    if (!selectedId) {
      fill(detailBox);
      return;
    }
    const s = surveys.find((x) => x.id === selectedId);
    if (!s) {
      fill(detailBox, h("section", { class: "panel", testid: "survey-detail", "data-id": selectedId }, h("p", { class: "muted", testid: "survey-missing" }, t("survey_missing", { id: selectedId }))));
      return;
    }
    if (s.state === "done" && (!findings || findings.id !== s.id)) {
      try {
        findings = { id: s.id, collection: await api(surveyUrl(s.id, "findings.geojson"), { quiet: true }) };
      } catch (e) {
        if (gone) return;
        fill(detailBox, detailPanel(s, h("p", { class: "muted", testid: "survey-findings-error" }, e.message)));
        return;
      }
      if (gone) return;
    }
    const ready = s.state === "done" && findings && findings.id === s.id;
    const key = `${s.id} ${s.state} ${s.done}/${s.images} ${ready}`;
    if (key === drawn) return;
    drawn = key;
    fill(detailBox, detailPanel(s, ready ? findingsView(s, findings.collection) : waiting(s)));
    if (!scrolled) {
      scrolled = true;
      detailBox.scrollIntoView({ block: "start" });
    }
  }

  function waiting(s) {
    if (s.state === "failed") return h("p", { class: "survey-error", testid: "survey-detail-error" }, t("survey_failed_detail", { error: s.error || "—" }));
    return h("div", { class: "row" }, progressCell(s), h("span", { class: "small muted" }, t("survey_not_done")));
  }

  function detailPanel(s, body) {
    const layer = (key) => (s[key] ? h("code", {}, s[key]) : h("span", { class: "muted" }, t("none")));
    return h(
      "section",
      { class: "panel survey-detail", testid: "survey-detail", "data-id": s.id, "data-state": s.state },
      h(
        "div",
        { class: "page-head", style: "margin-bottom:.6rem" },
        h("h2", { style: "margin:0" }, t("survey_detail_title", { id: s.id })),
        stateBadge(s),
        h("span", { class: "spacer" }),
        s.state === "done"
          ? [
              h("a", { class: "button", href: surveyUrl(s.id, "findings.geojson"), download: `${s.id}-findings.geojson`, testid: "survey-download-geojson" }, "⤓ ", t("survey_download_geojson")),
              h("a", { class: "button", href: surveyUrl(s.id, "report"), download: `${s.id}-report.md`, testid: "survey-download-report" }, "⤓ ", t("survey_download_report")),
            ]
          : null,
      ),
      h(
        "dl",
        { class: "facts keyed small", style: "margin-bottom:.8rem" },
        FIELDS.map((key) => [h("dt", {}, t(`survey_${key}_name`)), h("dd", {}, layer(key))]),
        h("dt", {}, t("survey_requested_col")),
        h("dd", {}, `${s.requested_by} · ${fmtTime(s.requested_at, true)}`),
      ),
      body,
    );
  }

  function findingsView(s, collection) {
    const all = (collection.features || []).map(toFinding).filter(Boolean);
    // the pipeline files no permitted structure; a GeoJSON that carries them marks them kind "permitted"
    const found = all.filter((f) => f.kind !== "permitted");
    const permitted = all.filter((f) => f.kind === "permitted");
    const stat = (key) =>
      h("div", { class: `stat${key === "filing_errors" && s.counts[key] ? " stat-bad" : ""}`, testid: `survey-stat-${key}`, "data-count": String(s.counts[key] ?? 0) }, h("b", {}, String(s.counts[key] ?? 0)), h("span", {}, t(`survey_count_${key}`)));
    return h(
      "div",
      { class: "stack" },
      h("div", { class: "stats", testid: "survey-stats" }, DETAIL_COUNTS.filter((k) => k in s.counts).map(stat)),
      all.length === 0 ? h("p", { class: "muted", testid: "survey-no-findings" }, t("survey_no_findings")) : [plot(all), legend(found, permitted)],
      found.length === 0 ? null : findingsTable(found),
      permittedSection(s, permitted),
    );
  }

  function permittedSection(s, permitted) {
    const skipped = s.counts.skipped_permitted ?? 0;
    if (permitted.length === 0 && skipped === 0) return null;
    return h(
      "div",
      { testid: "survey-permitted" },
      h("h3", {}, t("survey_permitted_title", { n: Math.max(skipped, permitted.length) })),
      permitted.length === 0
        ? h("p", { class: "small muted", testid: "survey-permitted-in-report" }, t("survey_permitted_in_report"), " ", h("a", { href: surveyUrl(s.id, "report"), download: `${s.id}-report.md` }, t("survey_download_report")))
        : h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { class: "small" },
              h("thead", {}, h("tr", {}, ["survey_f_permit", "survey_f_holder", "survey_f_valid_until", "survey_f_area", "survey_f_where"].map((k) => h("th", {}, t(k))))),
              h(
                "tbody",
                {},
                permitted.map((f) =>
                  h(
                    "tr",
                    { testid: "survey-permitted-row" },
                    h("td", { class: "mono" }, f.props.permit_no || "—"),
                    h("td", {}, f.props.holder || "—"),
                    h("td", { class: "nowrap" }, f.props.valid_until || "—"),
                    h("td", { class: "num" }, sizeText(f.props)),
                    h("td", { class: "mono nowrap" }, lonLat(f)),
                  ),
                ),
              ),
            ),
          ),
    );
  }

  function findingsTable(found) {
    const cases = can(CASE_READERS);
    return h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "small", testid: "survey-findings" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["survey_f_id", "survey_f_kind", "survey_f_class"].map((k) => h("th", {}, t(k))),
            h("th", { class: "num" }, t("survey_f_size")),
            h("th", { class: "num" }, t("survey_f_score")),
            ["survey_f_where", "survey_f_permit_check", "survey_f_case"].map((k) => h("th", {}, t(k))),
          ),
        ),
        h(
          "tbody",
          {},
          found.map((f) =>
            h(
              "tr",
              {
                testid: "survey-finding",
                "data-id": f.id,
                "data-kind": f.kind,
                "data-case": f.props.case_number || "",
                onmouseenter: () => highlight(f.id, true),
                onmouseleave: () => highlight(f.id, false),
              },
              h("td", { class: "mono nowrap" }, f.id),
              h("td", {}, h("span", { class: `badge kind-${f.kind}` }, tv("kind", f.kind))),
              h("td", {}, tv("survey_class", f.props.class)),
              h("td", { class: "num nowrap", testid: "survey-finding-size" }, sizeText(f.props)),
              h("td", { class: "num" }, typeof f.props.score === "number" ? f.props.score.toFixed(2) : "—"),
              h("td", { class: "mono nowrap" }, lonLat(f), f.props.street ? h("div", { class: "muted" }, f.props.street) : null),
              h("td", {}, permitCheck(f.props.permit_check)),
              h(
                "td",
                { class: "nowrap" },
                f.props.case_number
                  ? cases
                    ? h("a", { class: "mono", href: `#/cases/${encodeURIComponent(f.props.case_number)}`, testid: "survey-case-link" }, f.props.case_number)
                    : h("span", { class: "mono", testid: "survey-case-number" }, f.props.case_number)
                  : h("span", { class: "survey-error", title: f.props.filing_error || "" }, f.props.filing_error ? t("survey_not_filed") : "—"),
              ),
            ),
          ),
        ),
      ),
    );
  }

  // ---- the plot ----

  function plot(all) {
    const svg = drawPlot(all, {
      caseHref: can(CASE_READERS) ? (f) => `#/cases/${encodeURIComponent(f.props.case_number)}` : null,
      onHover: highlight,
    });
    return h("div", { class: "survey-plot-wrap" }, svg);
  }

  function highlight(id, on) {
    for (const el of detailBox.querySelectorAll(`[data-id="${CSS.escape(id)}"]`)) {
      if (el.dataset.testid === "survey-shape" || el.dataset.testid === "survey-finding") el.classList.toggle("hot", on);
    }
  }

  function legend(found, permitted) {
    const n = (kind) => found.filter((f) => f.kind === kind).length;
    return h(
      "div",
      { class: "legend", testid: "survey-legend" },
      h("span", {}, h("span", { class: "dot", style: `background:${KIND_COLORS.occupation}` }), `${tv("kind", "occupation")} (${n("occupation")})`),
      h("span", {}, h("span", { class: "dot", style: `background:${KIND_COLORS.construction};border-radius:2px` }), `${tv("kind", "construction")} (${n("construction")})`),
      permitted.length ? h("span", {}, h("span", { class: "dot", style: `background:#fff;border:2px dashed ${PERMITTED_COLOR};border-radius:2px` }), `${t("survey_permitted")} (${permitted.length})`) : null,
    );
  }

  renderForm();
  load();
  return {
    destroy() {
      gone = true;
      clearTimeout(timer);
    },
  };
}

/** A GeoJSON feature as {id, kind, lon, lat, ring (lon/lat pairs, or null), props}, or null if it has no place. */
function toFinding(feature) {
  const props = feature.properties || {};
  const g = feature.geometry || {};
  let ring = null;
  let lon = props.lon;
  let lat = props.lat;
  if (g.type === "Point") [lon, lat] = g.coordinates;
  else if (g.type === "Polygon" && g.coordinates[0] && g.coordinates[0].length >= 3) ring = g.coordinates[0];
  if (typeof lon !== "number" || typeof lat !== "number") {
    if (!ring) return null;
    lon = ring.reduce((a, p) => a + p[0], 0) / ring.length;
    lat = ring.reduce((a, p) => a + p[1], 0) / ring.length;
  }
  return { id: String(props.id ?? ""), kind: props.kind || "", lon, lat, ring, props };
}

function sizeText(p) {
  if (p.length_m !== undefined && p.width_m !== undefined) return `${fmtNumber(p.length_m)} × ${fmtNumber(p.width_m)} m`;
  if (p.area_m2 !== undefined && p.area_m2 !== null) return `${fmtNumber(p.area_m2)} m²`;
  return p.size_m ? `${p.size_m} m` : "—";
}

const lonLat = (f) => `${f.lon.toFixed(6)}, ${f.lat.toFixed(6)}`;

/** The pipeline's permit check (pipelines/survey.py) in the reader's language; an unknown one as it came. */
function permitCheck(text) {
  if (!text) return "—";
  if (text === "in no permitted parcel") return t("survey_check_no_parcel");
  if (text === "not checked: no permits given") return t("survey_check_no_permits");
  if (text === "street occupation needs no parcel permit check") return t("survey_check_occupation");
  const expired = /^in the parcel of permit (.+), which expired on (.+)$/.exec(text);
  if (expired) return h("span", { class: "survey-expired" }, t("survey_check_expired", { permit: expired[1], date: expired[2] }));
  return text;
}

// ---- an offline lon/lat plot ----

const W = 1000;
const H = 560;
const MARGIN = 52;
const MIN_SPAN = 0.0004; // degrees: about 40 m, so that a survey of one stall is not blown up to the whole plot

/** Findings drawn in lon/lat as the map page draws cases: equirectangular with x shrunk by
 * cos(latitude) so that metres are square, a degree grid, a scale bar and north. */
function drawPlot(all, { caseHref, onHover }) {
  const { svg, x, y } = lonLatPlot(
    all.flatMap((f) => (f.ring ? f.ring : [[f.lon, f.lat]])),
    {
      width: W,
      height: H,
      margin: MARGIN,
      minSpan: MIN_SPAN,
      pad: 1.12,
      lonLabelInset: 8,
      scaleBarGap: 16,
      attrs: { class: "map-svg survey-plot", testid: "survey-plot", role: "img", "aria-label": t("survey_plot_label") },
    },
  );

  // structures under stalls, so that a stall on a roof stays visible
  const order = { permitted: 0, construction: 1, occupation: 2 };
  for (const f of [...all].sort((a, b) => (order[a.kind] ?? 3) - (order[b.kind] ?? 3))) {
    const color = f.kind === "permitted" ? PERMITTED_COLOR : KIND_COLORS[f.kind] || "#495057";
    const label = [f.id, f.kind === "permitted" ? t("survey_permitted") : tv("kind", f.kind), tv("survey_class", f.props.class), sizeText(f.props), f.props.case_number || f.props.permit_no]
      .filter((v) => v && v !== "—")
      .join(" · ");
    const shape = f.ring
      ? h("svg:polygon", { class: `survey-structure${f.kind === "permitted" ? " permitted" : ""}`, points: f.ring.map(([lon, lat]) => `${x(lon).toFixed(1)},${y(lat).toFixed(1)}`).join(" "), fill: color, stroke: color }, h("svg:title", {}, label))
      : h("svg:circle", { class: "point", cx: x(f.lon), cy: y(f.lat), r: 8, fill: color }, h("svg:title", {}, label));
    const text = f.id ? h("svg:text", { class: "survey-shape-label", x: x(f.lon) + (f.ring ? 0 : 11), y: y(f.lat) + (f.ring ? 4 : -9), "text-anchor": f.ring ? "middle" : "start" }, f.id) : null;
    const attrs = {
      testid: "survey-shape",
      "data-id": f.id,
      "data-kind": f.kind,
      "data-geometry": f.ring ? "polygon" : "point",
      onmouseenter: () => onHover(f.id, true),
      onmouseleave: () => onHover(f.id, false),
    };
    svg.append(
      caseHref && f.props.case_number ? h("svg:a", { ...attrs, href: caseHref(f) }, shape, text) : h("svg:g", attrs, shape, text),
    );
  }
  return svg;
}

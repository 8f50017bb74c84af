// Double random, one public inspections (双随机、一公开): heads keep the inspector pool, draw
// premises and inspectors, and publish the draw; officers see the inspections they are drawn
// for and record each one's checklist (7 domains, every item pass, fail or n/a) with photos;
// everyone can open the public page, where anyone checks the published draws.

import { can, navigate } from "./app.js";
import { lang, t, tv } from "./i18n.js";
import { premisesHref } from "./premises.js";
import { filePicker, PHOTO_ACCEPT } from "./uploads.js";
import { api, fill, fmtTime, h, localInputValue, shortId, showError, toast, withLocalOffset } from "./util.js";

export const INSPECTION_READERS = ["officer", "head", "legal_reviewer", "admin"];
const DRAWERS = ["head"];
const DRAW_READERS = ["head", "legal_reviewer", "admin"];
const POOL_KEEPERS = ["head", "admin"];
const RECORDERS = ["officer", "head"];
const ANSWERS = ["pass", "fail", "na"];
const GRADES = ["A", "B", "C", "D", "ungraded"];
const KINDS = ["restaurant", "shop", "site", "other"];
const PUBLIC_PAGE = "/public/inspections";

let checklistCache = null;
function checklistDefinition() {
  if (!checklistCache) checklistCache = api("/api/inspections/checklist").catch((e) => ((checklistCache = null), Promise.reject(e)));
  return checklistCache;
}

const named = (x) => (lang === "en" ? x.en : x.zh);

/** The result a checklist comes to, as the API judges it: a failed emission item is a violation. */
function judge(domains, answers) {
  let failed = false;
  for (const d of domains) {
    for (const item of d.items) {
      if (answers[d.key]?.[item.key] === "fail") {
        if (d.emission) return "violation";
        failed = true;
      }
    }
  }
  return failed ? "rectify" : "pass";
}

function resultBadge(result) {
  return result ? h("span", { class: `badge result-${result}`, testid: "inspection-result", "data-result": result }, tv("inspection_result", result)) : null;
}

function stateBadge(state) {
  return h("span", { class: `badge insp-${state}`, testid: "inspection-state", "data-state": state }, tv("inspection_state", state));
}

function inspectionsTable(items, { withPurpose = true } = {}) {
  if (items.length === 0) return h("p", { class: "muted small", testid: "inspections-empty" }, t("inspections_none"));
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { testid: "inspections-table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["inspection_premises", "premises_street", "premises_grade", withPurpose ? "inspection_purpose" : null, "inspection_inspectors", "inspection_state", "inspection_result_col"]
            .filter(Boolean)
            .map((k) => h("th", {}, t(k))),
        ),
      ),
      h(
        "tbody",
        {},
        items.map((i) =>
          h(
            "tr",
            { class: "clickable", testid: "inspection-row", "data-id": String(i.id), "data-premises": i.premises, onclick: (e) => e.target.tagName !== "A" && navigate(`#/inspections/${i.id}`) },
            h("td", {}, h("a", { href: `#/inspections/${i.id}`, testid: "inspection-link" }, i.premises_name || i.premises), h("div", { class: "muted small mono" }, i.premises)),
            h("td", {}, i.street || "—", i.address ? h("div", { class: "muted small" }, i.address) : null),
            h("td", {}, i.grade === "ungraded" ? t("grade_ungraded") : t("premises_grade_value", { grade: i.grade })),
            withPurpose ? h("td", {}, i.purpose) : null,
            h("td", {}, i.inspectors.map((x) => x.name).join("、")),
            h("td", {}, stateBadge(i.state)),
            h("td", {}, resultBadge(i.result) || "—", i.case_number ? h("div", { class: "small" }, h("a", { href: `#/cases/${i.case_number}`, class: "mono" }, i.case_number)) : null),
          ),
        ),
      ),
    ),
  );
}

export function inspectionsPage(root) {
  const mine = h("section", { class: "panel", testid: "my-inspections" }, h("p", { class: "muted" }, t("loading")));
  const draws = h("section", { class: "panel", testid: "draws" }, h("p", { class: "muted" }, t("loading")));
  const pool = h("section", { class: "panel", testid: "pool" }, h("p", { class: "muted" }, t("loading")));

  fill(
    root,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, t("inspections_title")),
      h("span", { class: "spacer" }),
      h("a", { class: "button", href: PUBLIC_PAGE, target: "_blank", rel: "noopener", testid: "public-link" }, t("inspections_public"), " ↗"),
    ),
    h(
      "div",
      { class: "stack" },
      can(DRAWERS) ? drawForm(() => loadDraws()) : null,
      can(["officer"]) ? mine : null,
      can(DRAW_READERS) ? draws : null,
      can(POOL_KEEPERS) ? pool : null,
    ),
  );

  function loadMine() {
    api("/api/inspections").then(
      (list) => {
        const planned = list.items.filter((i) => i.state === "planned");
        const done = list.items.filter((i) => i.state !== "planned");
        fill(
          mine,
          h("h2", {}, t("inspections_mine"), " ", h("span", { class: "badge", testid: "my-planned" }, t("inspections_planned_n", { n: planned.length }))),
          inspectionsTable([...planned, ...done]),
        );
      },
      (e) => fill(mine, h("h2", {}, t("inspections_mine")), h("p", { class: "muted" }, e.message)),
    );
  }

  function loadDraws() {
    api("/api/inspections/draws").then(
      (list) => fill(draws, h("h2", {}, t("draws_title")), list.items.length === 0 ? h("p", { class: "muted small" }, t("draws_none")) : list.items.map(drawCard)),
      (e) => fill(draws, h("h2", {}, t("draws_title")), h("p", { class: "muted" }, e.message)),
    );
  }

  function drawCard(d) {
    const publish = can(DRAWERS) && !d.published_at ? publishButton(d) : null;
    return h(
      "article",
      { class: "draw", testid: "draw", "data-id": String(d.id), "data-published": String(Boolean(d.published_at)) },
      h(
        "div",
        { class: "package-head" },
        h("h3", { style: "margin:0" }, d.purpose),
        d.published_at
          ? h("span", { class: "badge result-pass", testid: "draw-published" }, t("draw_published_at", { at: fmtTime(d.published_at) }))
          : h("span", { class: "badge state-pending_review" }, t("draw_unpublished")),
        h("span", { style: "flex:1" }),
        publish,
      ),
      h(
        "dl",
        { class: "facts small" },
        h("dt", {}, t("draw_drawn")),
        h("dd", {}, `${fmtTime(d.drawn_at)} · ${d.drawn_by}`),
        h("dt", {}, t("draw_from")),
        h("dd", {}, t("draw_from_value", { c: d.candidates, p: d.pool })),
        h("dt", {}, t("draw_allocation")),
        h("dd", {}, Object.entries(d.allocation).map(([k, v]) => `${k}: ${v}`).join(" · ") || "—"),
        h("dt", {}, t("draw_commitment")),
        h("dd", { class: "mono", title: d.commitment }, `${shortId(d.commitment)}… (${t("draw_leaf", { n: d.commitment_leaf ?? "—" })})`),
      ),
      inspectionsTable(d.inspections, { withPurpose: false }),
      d.unassigned.length
        ? h("details", {}, h("summary", {}, t("draw_unassigned", { n: d.unassigned.length })), h("ul", { class: "small" }, d.unassigned.map((u) => h("li", {}, h("span", { class: "mono" }, u.premises), ` — ${u.reason}`))))
        : null,
    );
  }

  function publishButton(d) {
    let armed = false;
    let timer = null;
    const button = h(
      "button",
      {
        type: "button",
        testid: "draw-publish",
        onclick: async () => {
          if (!armed) {
            armed = true; // publishing reveals the seed for good: a second press confirms
            button.textContent = t("draw_publish_confirm");
            button.classList.add("danger");
            timer = setTimeout(() => {
              armed = false;
              button.textContent = t("draw_publish");
              button.classList.remove("danger");
            }, 6000);
            return;
          }
          clearTimeout(timer);
          button.disabled = true;
          try {
            await api(`/api/inspections/draws/${d.id}/publish`, { method: "POST", quiet: true });
            toast(t("draw_published", { purpose: d.purpose }), "ok");
            loadDraws();
          } catch (e) {
            showError(e);
            button.disabled = false;
          }
        },
      },
      t("draw_publish"),
    );
    return button;
  }

  function loadPool() {
    api("/api/inspectors").then(
      (list) => fill(pool, h("h2", {}, t("pool_title"), " ", h("span", { class: "badge" }, String(list.count))), poolTable(list.items), poolForm(() => loadPool())),
      (e) => fill(pool, h("h2", {}, t("pool_title")), h("p", { class: "muted" }, e.message)),
    );
  }

  function poolTable(items) {
    if (items.length === 0) return h("p", { class: "muted small" }, t("pool_empty"));
    return h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "small", testid: "pool-table" },
        h("thead", {}, h("tr", {}, ["pool_id", "pool_name", "pool_street", "pool_username", "pool_active"].map((k) => h("th", {}, t(k))), h("th", {}))),
        h(
          "tbody",
          {},
          items.map((i) =>
            h(
              "tr",
              { testid: "pool-row", "data-id": i.id, class: i.active ? null : "inactive" },
              h("td", { class: "mono" }, i.id),
              h("td", {}, i.name),
              h("td", {}, i.street),
              h("td", { class: "mono" }, i.username || "—"),
              h("td", {}, i.active ? t("yes") : t("no")),
              h(
                "td",
                {},
                h(
                  "button",
                  {
                    type: "button",
                    onclick: () =>
                      api(`/api/inspectors/${encodeURIComponent(i.id)}`, { method: "PUT", body: { name: i.name, street: i.street, username: i.username, active: !i.active } }).then(
                        () => loadPool(),
                        () => null,
                      ),
                  },
                  i.active ? t("pool_deactivate") : t("pool_activate"),
                ),
              ),
            ),
          ),
        ),
      ),
    );
  }

  function poolForm(onSaved) {
    const id = h("input", { required: true, maxlength: 64, pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-]*", testid: "pool-new-id", autocapitalize: "none", placeholder: "E-001" });
    const name = h("input", { required: true, maxlength: 128, testid: "pool-new-name" });
    const street = h("input", { required: true, maxlength: 100, testid: "pool-new-street" });
    const username = h("input", { maxlength: 64, testid: "pool-new-username", autocapitalize: "none", spellcheck: "false", placeholder: "officer-li" });
    return h(
      "form",
      {
        class: "toolbar",
        style: "margin-top:.8rem",
        onsubmit: async (e) => {
          e.preventDefault();
          const body = { name: name.value.trim(), street: street.value.trim(), username: username.value.trim() || null, active: true };
          try {
            await api(`/api/inspectors/${encodeURIComponent(id.value.trim())}`, { method: "PUT", body, quiet: true });
            toast(t("pool_saved", { name: body.name }), "ok");
            onSaved();
          } catch (err) {
            showError(err);
          }
        },
      },
      h("label", { class: "field" }, t("pool_id"), id),
      h("label", { class: "field" }, t("pool_name"), name),
      h("label", { class: "field" }, t("pool_street"), street),
      h("label", { class: "field" }, t("pool_username"), username),
      h("button", { type: "submit", testid: "pool-new-submit" }, t("pool_add")),
    );
  }

  if (can(["officer"])) loadMine();
  if (can(DRAW_READERS)) loadDraws();
  if (can(POOL_KEEPERS)) loadPool();
  return {};
}

/** A head's draw: the campaign, how many premises (split over strata), from where, how many inspectors each. */
function drawForm(onDrawn) {
  const purpose = h("input", { required: true, maxlength: 200, testid: "draw-purpose", placeholder: t("draw_purpose_hint") });
  const targets = h("input", { type: "number", min: 1, max: 10000, value: 5, required: true, testid: "draw-targets", inputmode: "numeric" });
  const perTarget = h("input", { type: "number", min: 2, max: 10, value: 2, required: true, testid: "draw-inspectors", inputmode: "numeric" });
  const byGrade = h("input", { type: "checkbox", checked: true, testid: "draw-by-grade" });
  const byStreet = h("input", { type: "checkbox", testid: "draw-by-street" });
  const street = h("input", { maxlength: 100, testid: "draw-street", placeholder: t("all") });
  const grade = h("select", { testid: "draw-grade" }, h("option", { value: "" }, t("all")), GRADES.map((g) => h("option", { value: g }, g === "ungraded" ? t("grade_ungraded") : t("premises_grade_value", { grade: g }))));
  const kind = h("select", { testid: "draw-kind" }, h("option", { value: "" }, t("all")), KINDS.map((k) => h("option", { value: k }, tv("premises_kind", k))));
  const submit = h("button", { type: "submit", class: "primary", testid: "draw-submit" }, t("draw_submit"));
  return h(
    "details",
    { class: "panel import-panel", testid: "draw-form", open: true },
    h("summary", {}, t("draw_title")),
    h(
      "form",
      {
        class: "draw-form",
        onsubmit: async (e) => {
          e.preventDefault();
          const body = {
            purpose: purpose.value.trim(),
            targets: Number(targets.value),
            stratify_by: [byGrade.checked ? "grade" : null, byStreet.checked ? "street" : null].filter(Boolean),
            inspectors_per_target: Number(perTarget.value),
          };
          if (street.value.trim()) body.street = street.value.trim();
          if (grade.value) body.grade = grade.value;
          if (kind.value) body.kind = kind.value;
          submit.disabled = true;
          try {
            const d = await api("/api/inspections/draws", { method: "POST", body, quiet: true });
            toast(t("draw_done", { n: d.inspections.length, purpose: d.purpose }), "ok");
            purpose.value = "";
            onDrawn();
          } catch (err) {
            showError(err);
          } finally {
            submit.disabled = false;
          }
        },
      },
      h(
        "div",
        { class: "toolbar" },
        h("label", { class: "field grow" }, t("draw_purpose"), purpose),
        h("label", { class: "field" }, t("draw_targets"), targets),
        h("label", { class: "field" }, t("draw_inspectors"), perTarget),
      ),
      h(
        "div",
        { class: "toolbar", style: "margin-top:.6rem" },
        h("fieldset", { class: "checks-inline" }, h("legend", {}, t("draw_stratify")), h("label", { class: "check" }, byGrade, t("draw_by_grade")), h("label", { class: "check" }, byStreet, t("draw_by_street"))),
        h("label", { class: "field" }, t("draw_only_street"), street),
        h("label", { class: "field" }, t("draw_only_grade"), grade),
        h("label", { class: "field" }, t("draw_only_kind"), kind),
        submit,
      ),
      h("p", { class: "small muted" }, t("draw_hint")),
    ),
  );
}

export function inspectionPage(root, _params, _ctx, id) {
  fill(root, h("p", { class: "muted" }, t("loading")));
  const back = h("a", { href: "#/inspections", class: "button ghost", testid: "inspection-back" }, "‹ ", t("inspections_back"));

  function load() {
    Promise.all([api(`/api/inspections/${encodeURIComponent(id)}`), checklistDefinition()]).then(
      ([inspection, domains]) => render(inspection, domains),
      (e) => fill(root, h("div", { class: "page-head" }, back), h("div", { class: "panel" }, h("p", { class: "muted" }, e.message))),
    );
  }

  function render(i, domains) {
    fill(
      root,
      h(
        "div",
        { class: "page-head" },
        back,
        h("h1", { testid: "inspection-title" }, i.premises_name || i.premises),
        stateBadge(i.state),
        resultBadge(i.result),
        h("span", { class: "muted" }, i.purpose),
      ),
      h(
        "div",
        { class: "grid2" },
        h("div", { class: "stack" }, i.state === "planned" && can(RECORDERS) ? checklistForm(i, domains) : answeredChecklist(i, domains)),
        h(
          "div",
          { class: "stack" },
          h(
            "section",
            { class: "panel" },
            h("h2", {}, t("inspection_target")),
            h(
              "dl",
              { class: "facts" },
              h("dt", {}, t("premises_code")),
              h("dd", {}, h("a", { class: "mono", href: premisesHref(i.premises) }, i.premises)),
              h("dt", {}, t("premises_address")),
              h("dd", {}, i.address || "—"),
              h("dt", {}, t("premises_street")),
              h("dd", {}, i.street || "—"),
              h("dt", {}, t("premises_grade")),
              h("dd", {}, i.grade === "ungraded" ? t("grade_ungraded") : t("premises_grade_value", { grade: i.grade })),
              h("dt", {}, t("inspection_inspectors")),
              h("dd", {}, i.inspectors.map((x) => `${x.name}（${x.id}）`).join("、")),
              i.inspected_at ? [h("dt", {}, t("inspection_at")), h("dd", {}, fmtTime(i.inspected_at))] : null,
              i.recorded_by ? [h("dt", {}, t("inspection_by")), h("dd", {}, i.recorded_by)] : null,
              i.case_number ? [h("dt", {}, t("inspection_case")), h("dd", {}, h("a", { class: "mono", href: `#/cases/${i.case_number}`, testid: "inspection-case" }, i.case_number))] : null,
              i.package_id
                ? [h("dt", {}, t("inspection_photos")), h("dd", {}, h("a", { href: `/api/evidence/${i.package_id}/bundle`, class: "mono" }, `↓ ${shortId(i.package_id)}`))]
                : null,
            ),
            i.note ? h("p", { class: "statement" }, i.note) : null,
          ),
        ),
      ),
    );
  }

  function answeredChecklist(i, domains) {
    if (!i.checklist) return h("section", { class: "panel" }, h("h2", {}, t("inspection_checklist")), h("p", { class: "muted small" }, t("inspection_not_recorded")));
    return h(
      "section",
      { class: "panel", testid: "checklist-answered" },
      h("h2", {}, t("inspection_checklist")),
      domains.map((d) =>
        h(
          "div",
          { class: "domain" },
          h("h3", {}, `${d.number}. ${named(d)}`),
          h(
            "ul",
            { class: "plain-list" },
            d.items.map((item) => {
              const a = i.checklist[d.key]?.[item.key] || "na";
              return h("li", { class: `answer-${a}` }, h("span", { class: `badge answer answer-${a}` }, tv("answer", a)), " ", named(item));
            }),
          ),
        ),
      ),
    );
  }

  function checklistForm(i, domains) {
    const answers = {};
    const preview = h("span", { testid: "checklist-preview" });
    const openCase = h("input", { type: "checkbox", testid: "checklist-open-case" });
    const openCaseNote = h("span", { class: "small muted" });
    const note = h("textarea", { maxlength: 4000, rows: 3, testid: "checklist-note" });
    const at = h("input", { type: "datetime-local", value: localInputValue(), required: true, testid: "checklist-at" });
    const photos = filePicker({ accept: PHOTO_ACCEPT, testid: "checklist-photos", label: t("inspection_add_photos") });
    const status = h("span", { class: "muted small", testid: "checklist-status" });
    const submit = h("button", { type: "submit", class: "primary", testid: "checklist-submit" }, t("inspection_submit"));
    const radios = [];

    let forced = false; // checked because a violation always opens a case, not by the officer
    const update = () => {
      const result = judge(domains, answers);
      fill(preview, resultBadge(result));
      openCase.disabled = result !== "rectify";
      if (result === "violation") {
        forced = forced || !openCase.checked;
        openCase.checked = true;
      } else if (result === "pass" || forced) {
        openCase.checked = false;
        forced = false;
      }
      openCaseNote.textContent = t(`inspection_case_${result}`);
    };
    const setAll = (value) => {
      for (const r of radios) r.checked = r.value === value;
      for (const d of domains) answers[d.key] = Object.fromEntries(d.items.map((item) => [item.key, value]));
      update();
    };

    const fieldsets = domains.map((d) => {
      answers[d.key] = {};
      return h(
        "fieldset",
        { class: `domain${d.emission ? " emission" : ""}`, testid: "checklist-domain", "data-domain": d.key },
        h("legend", {}, `${d.number}. ${named(d)}`, d.emission ? h("span", { class: "badge result-violation small" }, t("inspection_emission")) : null),
        d.items.map((item) =>
          h(
            "div",
            { class: "item", testid: "checklist-item", "data-item": `${d.key}.${item.key}` },
            h("span", { class: "item-name" }, named(item)),
            h(
              "span",
              { class: "segmented", role: "radiogroup", "aria-label": named(item) },
              ANSWERS.map((a) => {
                const radio = h("input", {
                  type: "radio",
                  name: `${d.key}.${item.key}`,
                  value: a,
                  testid: `answer-${a}`,
                  onchange: () => {
                    answers[d.key][item.key] = a;
                    update();
                  },
                });
                radios.push(radio);
                return h("label", { class: `seg seg-${a}` }, radio, h("span", {}, tv("answer", a)));
              }),
            ),
          ),
        ),
      );
    });

    const form = h(
      "form",
      {
        class: "checklist",
        testid: "checklist-form",
        onsubmit: async (e) => {
          e.preventDefault();
          const missing = domains.flatMap((d) => d.items.filter((item) => !answers[d.key][item.key]).map((item) => `${d.key}.${item.key}`));
          if (missing.length) {
            toast(t("inspection_unanswered", { n: missing.length }), "error");
            form.querySelector(`[data-item="${missing[0]}"]`)?.scrollIntoView({ block: "center" });
            return;
          }
          const inspectedAt = withLocalOffset(at.value);
          if (!inspectedAt) {
            toast(t("field_bad_time"), "error");
            return;
          }
          submit.disabled = true;
          try {
            status.textContent = photos.entries.length ? t("field_uploading") : "";
            const ids = await photos.upload();
            status.textContent = t("inspection_recording");
            const body = { checklist: answers, note: note.value.trim(), photos: ids, inspected_at: inspectedAt, open_case: openCase.checked && !openCase.disabled };
            const done = await api(`/api/inspections/${i.id}/result`, { method: "POST", body, quiet: true });
            toast(t("inspection_recorded", { result: tv("inspection_result", done.result) }), "ok");
            render(done, domains);
          } catch (err) {
            status.textContent = t("field_failed_retry");
            showError(err);
            submit.disabled = false;
          }
        },
      },
      h(
        "div",
        { class: "row" },
        h("button", { type: "button", testid: "checklist-all-pass", onclick: () => setAll("pass") }, "✓ ", t("inspection_all_pass")),
        h("span", { class: "spacer" }),
        h("span", { class: "small muted" }, t("inspection_preview")),
        preview,
      ),
      fieldsets,
      h("label", { class: "field" }, t("field_note"), note),
      h("label", { class: "field" }, t("inspection_at"), at),
      h("div", { class: "field" }, h("span", { class: "small muted" }, t("inspection_photos")), photos.el),
      h("label", { class: "check" }, openCase, t("inspection_open_case")),
      openCaseNote,
      h("div", { class: "row" }, submit, status),
    );
    update();
    return h("section", { class: "panel", testid: "checklist" }, h("h2", {}, t("inspection_checklist")), form);
  }

  load();
  return {};
}

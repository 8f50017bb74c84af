// Cases: the list with filters and paging, and a case's page: its history, deadlines, evidence
// (each package verified as a stranger would), the party's statements, and the next steps the
// officer's role may take.

import { app, can, cameraName, loadCameras, navigate, OFFICERS, reasonLabel } from "./app.js";
import { lang, t, tv } from "./i18n.js";
import { filePicker, FIELD_ACCEPT } from "./uploads.js";
import { ApiError, api, fill, fmtTime, h, hashWith, localInputValue, shortId, showError, toast, withLocalOffset } from "./util.js";
import { EvidenceViewer } from "./viewer.js";

const PAGE = 25;
const TERMINAL = ["rejected", "closed"];

export const CASE_HELP = [
  [
    "case_evidence",
    [
      [["←", "→"], "key_keyframes"],
      [["x"], "key_box"],
      [["a"], "key_annotated"],
      [["b"], "key_redraw"],
      [["Esc"], "key_cancel"],
    ],
  ],
];

export function casesPage(root, params) {
  const filters = { state: params.state || "", kind: params.kind || "", camera: params.camera || "" };
  const offset = Math.max(0, Number(params.offset) || 0);
  const tbody = h("tbody", {}, h("tr", {}, h("td", { colspan: 7, class: "muted" }, t("loading"))));
  const totalEl = h("span", { class: "badge", testid: "cases-total" });
  const pager = h("div", { class: "pager" });

  const select = (key, label, options) =>
    h(
      "label",
      { class: "field" },
      label,
      h(
        "select",
        { testid: `filter-${key}`, onchange: (e) => navigate(hashWith("/cases", { ...filters, [key]: e.target.value })) },
        h("option", { value: "" }, t("all")),
        options.map(([value, text]) => h("option", { value, selected: filters[key] === value }, text)),
      ),
    );

  const cameraSelect = h("span");
  fill(
    root,
    h("div", { class: "page-head" }, h("h1", {}, t("cases_title")), totalEl),
    h(
      "div",
      { class: "panel" },
      h(
        "div",
        { class: "toolbar", style: "margin-bottom:.8rem" },
        select("state", t("cases_filter_state"), (app.meta?.states || []).map((s) => [s, tv("state", s)])),
        select("kind", t("cases_filter_kind"), (app.meta?.kinds || []).map((k) => [k, tv("kind", k)])),
        cameraSelect,
      ),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { testid: "cases-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["col_number", "col_kind", "col_state", "col_camera", "col_zone", "col_opened", "col_last_seen"].map((k) => h("th", {}, t(k))),
              h("th", { class: "num" }, t("col_evidence")),
            ),
          ),
          tbody,
        ),
      ),
      pager,
    ),
  );

  const renderCameraSelect = () =>
    cameraSelect.replaceWith(select("camera", t("cases_filter_camera"), app.cameras.map((c) => [c.id, c.name])));
  if (app.cameras.length) renderCameraSelect();
  else loadCameras().then(renderCameraSelect, () => null);

  const query = new URLSearchParams({ offset: String(offset), limit: String(PAGE) });
  for (const [k, v] of Object.entries(filters)) if (v) query.set(k, v);
  api(`/api/cases?${query}`).then((page) => {
    totalEl.textContent = t("cases_total", { n: page.total });
    fill(
      tbody,
      page.items.length === 0
        ? h("tr", {}, h("td", { colspan: 8, class: "muted" }, t("cases_empty")))
        : page.items.map((c) =>
            h(
              "tr",
              { class: "clickable", testid: "case-row", "data-number": c.number, onclick: (e) => e.target.tagName !== "A" && navigate(`#/cases/${c.number}`) },
              h("td", {}, h("a", { class: "mono", href: `#/cases/${c.number}` }, c.number)),
              h("td", {}, h("span", { class: `badge kind-${c.kind}` }, tv("kind", c.kind))),
              h("td", {}, h("span", { class: `badge state-${c.state}`, testid: "case-state" }, tv("state", c.state))),
              h("td", {}, cameraName(c.camera_id)),
              h("td", {}, c.zone || "—"),
              h("td", { class: "nowrap" }, fmtTime(c.opened_at)),
              h("td", { class: "nowrap" }, fmtTime(c.last_seen_at)),
              h("td", { class: "num" }, c.evidence),
            ),
          ),
    );
    const last = Math.min(page.total, offset + page.items.length);
    fill(
      pager,
      h("span", { class: "muted small" }, page.total ? t("cases_page", { from: offset + 1, to: last }) : ""),
      h("button", { type: "button", testid: "page-prev", disabled: offset === 0, onclick: () => navigate(hashWith("/cases", { ...filters, offset: Math.max(0, offset - PAGE) || "" })) }, "‹ ", t("cases_prev")),
      h("button", { type: "button", testid: "page-next", disabled: last >= page.total, onclick: () => navigate(hashWith("/cases", { ...filters, offset: offset + PAGE })) }, t("cases_next"), " ›"),
    );
  });
  return {};
}

export function casePage(root, _params, ctx, number) {
  const verdicts = new Map(); // package id -> verification (a re-render after a step does not verify again)
  const viewed = new Set(); // packages whose view has been recorded in custody
  let viewer = null;
  let drawing = false;
  let field = null; // the field evidence form, kept across re-renders (files chosen, uploads under way)
  fill(root, h("p", { class: "muted" }, t("loading")));

  async function load() {
    try {
      render(await api(`/api/cases/${encodeURIComponent(number)}`));
    } catch (e) {
      fill(root, h("div", { class: "panel" }, h("h1", {}, t("case_title", { number })), h("p", { class: "muted" }, e.message)));
    }
  }

  function render(c) {
    const editable = can(OFFICERS) && !TERMINAL.includes(c.state);
    viewer = null;
    const stage = h("div");
    if (c.evidence_packages.length) {
      viewer = new EvidenceViewer({
        packages: c.evidence_packages,
        detections: c.detections.map((d) => ({ ...d })),
        onDrawn: editable
          ? (detection, box) => {
              drawing = false;
              api(`/api/detections/${detection.id}/correction`, { method: "PUT", body: { box } }).then(
                (updated) => {
                  viewer.update(updated);
                  toast(t("review_corrected", { id: updated.id }), "ok");
                },
                () => null,
              );
            }
          : null,
      });
      stage.append(viewer.el);
    }
    for (const pkg of c.evidence_packages) {
      if (!viewed.has(pkg.package_id)) {
        viewed.add(pkg.package_id);
        api(`/api/evidence/${pkg.package_id}`, { quiet: true }).catch(() => null); // recorded as a view in custody
      }
    }
    fill(
      root,
      h(
        "div",
        { class: "page-head case-head" },
        h("a", { href: "#/cases", class: "button ghost", testid: "case-back" }, "‹ ", t("case_back")),
        h("h1", { class: "case-no", testid: "case-number" }, c.number),
        h("span", { class: `badge kind-${c.kind}` }, tv("kind", c.kind)),
        h("span", { class: `badge state-${c.state}`, testid: "case-state", "data-state": c.state }, tv("state", c.state)),
        h("span", { class: "muted" }, `${cameraName(c.camera_id)} · ${c.zone || "—"}`),
      ),
      h(
        "div",
        { class: "grid2" },
        h(
          "div",
          { class: "stack" },
          h("section", { class: "panel" }, h("h2", {}, t("case_evidence")), stage, factsOf(c)),
          h("section", { class: "panel", testid: "packages" }, h("h2", {}, `${t("package_files")} (${c.evidence_packages.length})`), c.evidence_packages.map(packageCard)),
          c.detections.length ? h("section", { class: "panel" }, h("h2", {}, t("case_detections")), detectionsTable(c.detections)) : null,
        ),
        h(
          "div",
          { class: "stack" },
          actionsPanel(c),
          editable ? fieldEvidencePanel(c) : null,
          deadlinesPanel(c),
          statementsPanel(c),
          timelinePanel(c),
        ),
      ),
    );
  }

  function factsOf(c) {
    const rows = [
      ["case_opened", fmtTime(c.opened_at)],
      ["case_first_seen", fmtTime(c.first_seen_at)],
      ["case_last_seen", fmtTime(c.last_seen_at)],
      ["case_party", c.party || "—"],
      ["review_priority", String(c.priority)],
      c.closed_at ? ["case_closed", fmtTime(c.closed_at)] : null,
      c.outcome ? ["case_outcome", c.outcome] : null,
      ["case_version", String(c.version)],
    ].filter(Boolean);
    return h(
      "dl",
      { class: "facts small", style: "margin-top:.8rem" },
      rows.map(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)]),
      c.previous_case ? [h("dt", {}, t("case_previous")), h("dd", {}, h("a", { href: `#/cases/${c.previous_case}` }, c.previous_case))] : null,
    );
  }

  function packageCard(pkg, _index, all) {
    const verdictEl = h("span", { class: "verdict pending", testid: "verification", "data-ok": "" }, t("verify_running"));
    const checksEl = h("details", { hidden: true }, h("summary", {}, ""), h("ul", { class: "checks" }));
    const custody = h("ul", { class: "checks" });
    const custodyEl = h(
      "details",
      {
        ontoggle: (e) => {
          if (!e.target.open || custody.childElementCount) return;
          api(`/api/evidence/${pkg.package_id}/custody`).then((rows) =>
            fill(
              custody,
              rows.map((r) =>
                h("li", {}, h("span", {}, "•"), h("span", {}, `${tv("custody", r.action)} · ${r.actor}`), h("span", { class: "detail" }, `${fmtTime(r.at, true)} ${r.reason}`)),
              ),
            ),
          );
        },
      },
      h("summary", {}, t("package_custody")),
      custody,
    );
    const show = (v) => {
      verdictEl.className = `verdict ${v.ok ? "ok" : "bad"}`;
      verdictEl.dataset.ok = String(v.ok);
      verdictEl.textContent = `${v.ok ? "✓" : "✗"} ${v.ok ? t("verify_ok") : t("verify_failed")}`;
      const passed = v.checks.filter((c) => c.ok).length;
      checksEl.hidden = false;
      checksEl.open = !v.ok || all.length === 1; // one package: every check shown; many: the failed ones
      checksEl.querySelector("summary").textContent = t("verify_checks", { ok: passed, n: v.checks.length });
      fill(
        checksEl.querySelector("ul"),
        v.checks.map((c) =>
          h(
            "li",
            { testid: "check", "data-ok": String(c.ok) },
            h("span", { class: c.ok ? "yes" : "no" }, c.ok ? "✓" : "✗"),
            h("span", {}, tv("check", c.name)),
            h("span", { class: "detail" }, c.detail),
          ),
        ),
      );
    };
    if (verdicts.has(pkg.package_id)) show(verdicts.get(pkg.package_id));
    else
      api(`/api/evidence/${pkg.package_id}/verification`).then(
        (v) => {
          verdicts.set(pkg.package_id, v);
          show(v);
        },
        (e) => {
          verdictEl.className = "verdict bad";
          verdictEl.dataset.ok = "false";
          verdictEl.textContent = `✗ ${t("verify_failed")}: ${e.message}`;
        },
      );

    return h(
      "article",
      { class: "package", testid: "package", "data-package": pkg.package_id },
      h(
        "div",
        { class: "package-head" },
        h("b", { class: "mono", title: pkg.package_id }, shortId(pkg.package_id)),
        pkg.role ? h("span", { class: "badge" }, pkg.role) : null,
        verdictEl,
        h("span", { style: "flex:1" }),
        h("a", { class: "button", href: `/api/evidence/${pkg.package_id}/bundle`, download: `evidence-${pkg.package_id.slice(0, 16)}.zip`, testid: "bundle-link" }, "↓ ", t("package_bundle")),
      ),
      h(
        "dl",
        { class: "facts small" },
        h("dt", {}, t("package_observed")),
        h("dd", {}, `${fmtTime(pkg.observed_from, true)} – ${fmtTime(pkg.observed_to, true)}`),
        h("dt", {}, t("package_device")),
        h("dd", {}, `${pkg.device.name || pkg.device.id || "—"}`),
        h("dt", {}, t("package_rule")),
        h("dd", {}, pkg.rule.rule ? `${tv("rule", pkg.rule.rule)} · ${pkg.rule.zone || ""} · ${(pkg.rule.classes || []).join(", ")}` : "—"),
        pkg.score !== null && pkg.score !== undefined ? [h("dt", {}, t("score")), h("dd", {}, Number(pkg.score).toFixed(2))] : null,
      ),
      h(
        "div",
        { class: "package-media" },
        pkg.files.map((f) => mediaOf(f)),
      ),
      checksEl,
      custodyEl,
    );
  }

  /** A file as what it is: an image, a video, a recording, or a link to anything else (field evidence). */
  function mediaOf(f) {
    const title = `${tv("file_kind", f.kind)} ${f.name}`;
    if (f.media_type.startsWith("image/")) {
      return h("a", { href: f.url, target: "_blank", rel: "noopener", title }, h("img", { src: f.url, alt: f.name, loading: "lazy" }));
    }
    if (f.media_type.startsWith("video/")) {
      return h("video", { src: f.url, controls: true, muted: true, preload: "metadata", testid: "package-clip", title });
    }
    if (f.media_type.startsWith("audio/")) return h("audio", { src: f.url, controls: true, preload: "none", title });
    return h("a", { class: "button", href: `${f.url}?download=true`, title }, `↓ ${f.name}`);
  }

  function detectionsTable(detections) {
    return h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "small" },
        h("thead", {}, h("tr", {}, ["#", t("det_label"), t("det_frame"), t("det_box"), t("score"), t("corrected")].map((k) => h("th", {}, k)))),
        h(
          "tbody",
          {},
          detections.map((d) =>
            h(
              "tr",
              { testid: "detection-row", "data-id": d.id },
              h("td", {}, d.id),
              h("td", {}, d.corrected_label ? `${d.label} → ${d.corrected_label}` : d.label),
              h("td", {}, `${d.frame} · ${shortId(d.package_id).slice(0, 8)}`),
              h("td", { class: "mono" }, (d.corrected_box || d.box).map((v) => Math.round(v)).join(", ")),
              h("td", {}, Number(d.score).toFixed(2)),
              h("td", {}, d.corrected_by ? `${d.corrected_by} ${fmtTime(d.corrected_at)}` : "—"),
            ),
          ),
        ),
      ),
    );
  }

  function actionsPanel(c) {
    const form = h("div");
    const buttons = c.allowed_actions.map((a) =>
      h(
        "button",
        { type: "button", class: a.action === "reject" || a.action === "dismiss" ? "danger" : "primary", testid: "action", "data-action": a.action, title: a.description, onclick: () => openStep(a) },
        tv("action", a.action),
      ),
    );
    const openStep = (a) => {
      const reason = a.needs_reason ? h("textarea", { required: true, testid: "step-reason", maxlength: 4000 }) : null;
      const code = a.needs_reason_code
        ? h(
            "select",
            { required: true, testid: "step-reason-code" },
            h("option", { value: "" }, "—"),
            (app.meta?.reason_codes || []).map((r) => h("option", { value: r.code }, lang === "en" ? r.en : r.zh)),
          )
        : null;
      const days = a.action === "warn" ? h("input", { type: "number", min: 1, max: 365, testid: "step-days", placeholder: "3" }) : null;
      const submit = h("button", { type: "submit", class: "primary", testid: "step-submit" }, t("submit"));
      fill(
        form,
        h(
          "form",
          {
            class: "inline-form",
            testid: "step-form",
            onsubmit: async (e) => {
              e.preventDefault();
              const body = { action: a.action, version: c.version };
              if (reason) body.reason = reason.value.trim();
              if (code) body.reason_code = code.value;
              if (days && days.value) body.rectify_days = Number(days.value);
              submit.disabled = true;
              try {
                const detail = await api(`/api/cases/${encodeURIComponent(c.number)}/steps`, { method: "POST", body });
                toast(t("case_action_done", { number: c.number, action: tv("action", a.action) }), "ok");
                render(detail);
                ctx.refreshReviewCount();
              } catch (err) {
                submit.disabled = false;
                if (err instanceof ApiError && err.status === 409) load();
              }
            },
          },
          h("b", {}, tv("action", a.action)),
          h("span", { class: "muted small" }, a.description),
          reason ? h("label", { class: "field" }, t("case_action_reason"), reason) : null,
          code ? h("label", { class: "field" }, t("case_action_reason_code"), code) : null,
          days ? h("label", { class: "field" }, t("case_action_days"), days) : null,
          h("div", { class: "row" }, submit, h("button", { type: "button", onclick: () => form.replaceChildren() }, t("cancel"))),
        ),
      );
      (reason || code || submit).focus();
    };
    const codeBox = h("div");
    const accessButton = can(OFFICERS) && !TERMINAL.includes(c.state)
      ? h(
          "button",
          {
            type: "button",
            testid: "issue-access-code",
            onclick: async () => {
              const issued = await api(`/api/cases/${encodeURIComponent(c.number)}/access-code`, { method: "POST" });
              const portal = `${location.origin}/party?case=${encodeURIComponent(c.number)}`;
              fill(
                codeBox,
                h(
                  "div",
                  { class: "code-box" },
                  h("span", { class: "small" }, t("case_access_code_issued")),
                  h("span", { class: "code", testid: "access-code" }, issued.code),
                  h("span", { class: "small muted" }, t("case_access_code_expires", { at: fmtTime(issued.expires_at) })),
                  h("span", { class: "small" }, t("case_access_code_portal"), h("a", { href: portal, target: "_blank", rel: "noopener" }, portal)),
                ),
              );
            },
          },
                    t("case_access_code"),
        )
      : null;
    return h(
      "section",
      { class: "panel", testid: "actions" },
      h("h2", {}, t("case_actions")),
      buttons.length ? h("div", { class: "actions" }, buttons) : h("p", { class: "muted small" }, t("case_no_actions")),
      form,
      accessButton ? h("div", { style: "margin-top:.8rem" }, accessButton) : null,
      codeBox,
    );
  }

  /** Photos, video and audio an officer took on the spot: uploaded resumably, then sealed as a package of the case. */
  function fieldEvidencePanel(c) {
    if (field) return field;
    const captured = h("input", { type: "datetime-local", value: localInputValue(), required: true, testid: "field-captured", step: 60 });
    let capturedEdited = false;
    captured.addEventListener("input", () => (capturedEdited = true));
    const picker = filePicker({
      accept: FIELD_ACCEPT,
      testid: "field-files",
      onChange: (entries) => {
        if (!capturedEdited) captured.value = localInputValue(); // "now" is when the files were chosen
        submit.disabled = entries.length === 0;
      },
    });
    const note = h("textarea", { testid: "field-note", maxlength: 4000, rows: 3, placeholder: t("field_note_hint") });
    const lat = h("input", { type: "number", step: "any", min: -90, max: 90, testid: "field-lat", inputmode: "decimal" });
    const lon = h("input", { type: "number", step: "any", min: -180, max: 180, testid: "field-lon", inputmode: "decimal" });
    const locate =
      "geolocation" in navigator
        ? h(
            "button",
            {
              type: "button",
              testid: "field-locate",
              onclick: () =>
                navigator.geolocation.getCurrentPosition(
                  (pos) => {
                    lat.value = pos.coords.latitude.toFixed(6);
                    lon.value = pos.coords.longitude.toFixed(6);
                  },
                  (err) => toast(`${t("field_locate_failed")}: ${err.message}`, "error"),
                  { enableHighAccuracy: true, timeout: 15000 },
                ),
            },
            "◎ ",
            t("field_locate"),
          )
        : null;
    const status = h("span", { class: "muted small", testid: "field-status" });
    const submit = h("button", { type: "submit", class: "primary", testid: "field-submit", disabled: true }, t("field_submit"));
    const form = h(
      "form",
      {
        class: "field-form",
        testid: "field-form",
        onsubmit: async (e) => {
          e.preventDefault();
          if (picker.entries.length === 0) {
            toast(t("field_no_files"), "error");
            return;
          }
          const at = withLocalOffset(captured.value);
          if (!at) {
            toast(t("field_bad_time"), "error");
            captured.focus();
            return;
          }
          if ((lat.value === "") !== (lon.value === "")) {
            toast(t("field_lat_lon_both"), "error");
            (lat.value === "" ? lat : lon).focus();
            return;
          }
          const body = { uploads: [], captured_at: at, note: note.value.trim() };
          if (lat.value !== "") {
            body.lat = Number(lat.value);
            body.lon = Number(lon.value);
          }
          submit.disabled = true;
          form.setAttribute("aria-busy", "true");
          try {
            status.textContent = t("field_uploading");
            body.uploads = await picker.upload();
            status.textContent = t("field_sealing");
            const pkg = await api(`/api/cases/${encodeURIComponent(c.number)}/field-evidence`, { method: "POST", body, quiet: true });
            toast(t("field_sealed", { n: pkg.files.length, id: shortId(pkg.package_id) }), "ok");
            field = null; // a fresh form for the next files
            await load();
          } catch (err) {
            status.textContent = t("field_failed_retry");
            showError(err);
            submit.disabled = false;
          } finally {
            form.removeAttribute("aria-busy");
          }
        },
      },
      picker.el,
      h("div", { class: "form-row" }, h("label", { class: "field" }, t("field_captured_at"), captured), h("label", { class: "field" }, t("field_lat"), lat), h("label", { class: "field" }, t("field_lon"), lon), locate),
      h("label", { class: "field" }, t("field_note"), note),
      h("div", { class: "row" }, submit, status),
    );
    field = h("section", { class: "panel", testid: "field-evidence" }, h("h2", {}, t("field_title")), h("p", { class: "muted small" }, t("field_hint")), form);
    return field;
  }

  function deadlinesPanel(c) {
    return h(
      "section",
      { class: "panel", testid: "deadlines" },
      h("h2", {}, t("case_deadlines")),
      c.deadlines.length === 0
        ? h("p", { class: "muted small" }, t("case_no_deadlines"))
        : h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              {},
              h("thead", {}, h("tr", {}, [t("deadline_name"), t("deadline_owner"), t("deadline_due"), t("deadline_status")].map((k) => h("th", {}, k)))),
              h(
                "tbody",
                {},
                c.deadlines.map((d) =>
                  h(
                    "tr",
                    { class: `dl-row-${d.status}`, testid: "deadline", "data-status": d.status, "data-name": d.name },
                    h("td", {}, h("div", {}, tv("deadline", d.name)), h("div", { class: "muted small" }, d.basis)),
                    h("td", { class: "nowrap" }, tv("owner", d.owner)),
                    h("td", { class: "nowrap" }, fmtTime(d.due_at), d.provisional ? h("div", { class: "muted small" }, t("deadline_provisional")) : null),
                    h("td", {}, h("span", { class: `badge dl-${d.status}` }, tv("deadline_status", d.status))),
                  ),
                ),
              ),
            ),
          ),
    );
  }

  function statementsPanel(c) {
    return h(
      "section",
      { class: "panel", testid: "statements" },
      h("h2", {}, t("case_statements")),
      c.statements.length === 0
        ? h("p", { class: "muted small" }, t("case_no_statements"))
        : c.statements.map((s) =>
            h(
              "div",
              { class: "statement", testid: "statement" },
              h("p", {}, s.text),
              h("div", { class: "muted small" }, `${t("statement_at")}: ${fmtTime(s.submitted_at)}`, s.contact ? ` · ${t("statement_contact")}: ${s.contact}` : ""),
            ),
          ),
    );
  }

  function timelinePanel(c) {
    return h(
      "section",
      { class: "panel", testid: "timeline" },
      h("h2", {}, t("case_timeline")),
      h(
        "ol",
        { class: "timeline" },
        c.transitions.map((tr) =>
          h(
            "li",
            { testid: "transition", "data-action": tr.action },
            h(
              "div",
              { class: "what" },
              tv("action", tr.action),
              tr.from_state !== tr.to_state ? h("span", { class: "muted small" }, `  ${tv("state", tr.from_state)} → ${tv("state", tr.to_state)}`) : null,
            ),
            h("div", { class: "meta" }, `${fmtTime(tr.at, true)} · ${t("transition_by", { name: tr.actor_name || tr.actor, role: tv("role", tr.role) })}`),
            tr.reason_code || tr.reason
              ? h(
                  "div",
                  { class: "why" },
                  tr.reason_code ? h("b", { testid: "transition-reason-code", "data-code": tr.reason_code }, reasonLabel(tr.reason_code, lang)) : null,
                  tr.reason_code && tr.reason ? " — " : null,
                  tr.reason || null,
                )
              : null,
          ),
        ),
      ),
    );
  }

  load();
  return {
    onKey(e) {
      if (!viewer) return false;
      switch (e.key) {
        case "ArrowRight":
          viewer.next();
          return true;
        case "ArrowLeft":
          viewer.prev();
          return true;
        case "x":
          viewer.selectNext();
          return true;
        case "a":
          viewer.toggleAnnotated();
          return true;
        case "b":
          drawing = viewer.startDraw();
          return drawing;
        case "Escape":
          if (drawing) viewer.cancelDraw();
          drawing = false;
          return true;
        default:
          return false;
      }
    },
  };
}

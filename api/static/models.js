// The model registry (模型): this deployment's detector versions with their figures on the fixed
// evaluation sets, which one the cameras run and which one runs beside it in shadow. Engineers
// and admins promote a version past the gate (one the gate refuses only with a reason in words)
// and start or stop shadow runs; heads read. Below: what the shadow run saw differently, per
// camera and in its latest disagreements, and the registry's history.

import { cameraName, can } from "./app.js";
import { t, tv } from "./i18n.js";
import { ApiError, api, fill, fmtTime, h, showError, toast } from "./util.js";

export const MODEL_READERS = ["engineer", "admin", "head"];
const MODEL_EDITORS = ["engineer", "admin"];
const TOLERANCE = 0.01; // mAP50 a candidate may lose on each set: the API's default, sent as said
const REFRESH_MS = 30_000;
const EXAMPLES_SHOWN = 12;
const CLASSES_SHOWN = 6;

/** A version as the registry's folders and command line name it: v0003. */
export function versionLabel(n) {
  return n === null || n === undefined ? "—" : `v${String(n).padStart(4, "0")}`;
}

const figure = (value) => (value === null || value === undefined ? "—" : Number(value).toFixed(3));

/** The evaluation sets to show columns for: the fixed ones, then any a version still has figures of. */
function setNames(registry) {
  const names = registry.eval_sets.map((s) => s.name);
  for (const v of registry.versions) for (const name of Object.keys(v.metrics)) if (!names.includes(name)) names.push(name);
  return names;
}

export function modelsPage(root) {
  const editor = can(MODEL_EDITORS);
  const summary = h("div", { class: "legend" });
  const body = h("div", { class: "stack" }, h("p", { class: "muted" }, t("loading")));
  const promoteBox = h("div"); // kept across reloads: a reason being typed survives them
  let registry = null;
  let shadow = null;
  let promoting = null; // {version, refusal}: the open promotion, refused with the API's message or not yet
  let timer = null;

  fill(
    root,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, t("models_title")),
      summary,
      h("span", { class: "spacer" }),
      h("button", { type: "button", testid: "models-refresh", onclick: () => load() }, "↻ ", t("refresh")),
    ),
    body,
  );

  async function load(quiet = false) {
    try {
      [registry, shadow] = await Promise.all([api("/api/models/registry", { quiet: true }), api("/api/models/shadow", { quiet: true })]);
    } catch (e) {
      registry = shadow = null;
      // a run that pins a model file has no registry: the API says so in these words (a 409)
      if (e instanceof ApiError && e.status === 409 && e.message.includes("pins a model file")) {
        fill(summary);
        fill(
          body,
          h(
            "div",
            { class: "panel no-registry", testid: "models-no-registry" },
            h("h2", {}, t("models_no_registry_title")),
            h("p", { testid: "models-no-registry-message" }, e.message),
            h("p", { class: "small muted" }, t("models_no_registry_hint")),
          ),
        );
        return;
      }
      fill(body, h("div", { class: "panel" }, h("p", { class: "muted", testid: "models-error" }, e.message)));
      if (!quiet) showError(e);
      return;
    }
    const gone = promoting && !registry.versions.some((v) => v.version === promoting.version && !v.deployed);
    if (gone) promoting = null;
    render();
    if (gone) renderPromote();
  }

  function render() {
    fill(
      summary,
      h(
        "span",
        { class: `badge ${registry.deployed === null ? "" : "model-deployed"}`, testid: "models-deployed", "data-version": registry.deployed ?? "" },
        registry.deployed === null ? t("models_nothing_deployed") : t("models_runs", { version: versionLabel(registry.deployed) }),
      ),
      registry.shadow === null
        ? null
        : h("span", { class: "badge model-shadow", testid: "models-shadow", "data-version": registry.shadow }, t("models_shadow_badge", { version: versionLabel(registry.shadow) })),
    );
    const typing = promoteBox.contains(document.activeElement) ? document.activeElement : null;
    fill(body, versionsPanel(), shadowPanel(), historyPanel());
    if (typing) typing.focus({ preventScroll: true }); // moving the promotion form took its focus
  }

  // ---- versions ----

  function versionsPanel() {
    const sets = setNames(registry);
    const deployed = registry.versions.find((v) => v.deployed) || null;
    const spec = Object.fromEntries(registry.eval_sets.map((s) => [s.name, s]));
    return h(
      "section",
      { class: "panel" },
      h("h2", {}, t("models_versions")),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { testid: "models-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["models_version", "models_note", "models_registered", "models_classes"].map((k) => h("th", {}, t(k))),
              sets.map((name) =>
                h(
                  "th",
                  { class: "num", testid: "eval-set", "data-set": name, title: spec[name] ? `${spec[name].path} (${spec[name].split})` : t("models_set_dropped") },
                  name,
                  h("div", { class: "small" }, "mAP50 · mAP50-95"),
                ),
              ),
              h("th", {}, t("models_state")),
              editor ? h("th", {}, t("models_actions")) : null,
            ),
          ),
          h(
            "tbody",
            {},
            registry.versions.length === 0
              ? h("tr", {}, h("td", { colspan: 6 + sets.length, class: "muted", testid: "models-empty" }, t("models_empty")))
              : [...registry.versions].reverse().map((v) => versionRow(v, sets, deployed)),
          ),
        ),
      ),
      sets.length === 0 ? h("p", { class: "small muted" }, t("models_no_sets")) : h("p", { class: "small muted" }, t("models_metrics_hint")),
      editor ? promoteBox : h("p", { class: "small muted", testid: "models-read-only" }, t("models_read_only")),
    );
  }

  function versionRow(v, sets, deployed) {
    return h(
      "tr",
      {
        testid: "model-row",
        "data-version": v.version,
        "data-deployed": String(v.deployed),
        "data-shadow": String(v.shadow),
        class: v.deployed ? "model-row-deployed" : v.shadow ? "model-row-shadow" : null,
      },
      h("td", { class: "nowrap" }, h("b", { class: "mono", testid: "model-version" }, versionLabel(v.version)), h("div", { class: "muted small mono", title: v.sha256 }, v.sha256.slice(0, 12))),
      h("td", { testid: "model-note" }, v.note || h("span", { class: "muted" }, "—")),
      h("td", { class: "nowrap" }, fmtTime(v.registered_at)),
      h("td", { class: "small", title: v.classes.join(", ") }, classesText(v.classes)),
      sets.map((name) => metricCell(v, name, deployed)),
      h(
        "td",
        {},
        v.deployed ? h("span", { class: "badge model-deployed", testid: "model-deployed" }, t("models_deployed")) : null,
        v.shadow ? h("span", { class: "badge model-shadow", testid: "model-shadow" }, t("models_in_shadow")) : null,
      ),
      editor ? h("td", {}, h("div", { class: "actions model-actions" }, versionActions(v))) : null,
    );
  }

  function classesText(classes) {
    if (classes.length === 0) return h("span", { class: "muted" }, "—");
    const shown = classes.slice(0, CLASSES_SHOWN).join(", ");
    return classes.length > CLASSES_SHOWN ? `${shown} ${t("models_more", { n: classes.length - CLASSES_SHOWN })}` : shown;
  }

  /** mAP50 over mAP50-95 on one set; worse or better than the deployed version beyond the tolerance is marked. */
  function metricCell(v, name, deployed) {
    const m = v.metrics[name];
    const base = deployed && deployed !== v ? deployed.metrics[name] : null;
    let mark = null;
    if (m && base && m.mAP50 < base.mAP50 - TOLERANCE) mark = "worse";
    else if (m && base && m.mAP50 > base.mAP50 + TOLERANCE) mark = "better";
    const title = !m
      ? t("models_not_measured")
      : [`precision ${figure(m.precision)} · recall ${figure(m.recall)}`, mark ? t(`models_metric_${mark}`, { deployed: figure(base.mAP50) }) : null].filter(Boolean).join("\n");
    return h(
      "td",
      { class: mark ? `num metric-${mark}` : "num", testid: "model-metric", "data-set": name, "data-measured": String(Boolean(m)), title },
      h("b", { testid: "model-map50" }, figure(m && m.mAP50)),
      h("div", { class: "muted small", testid: "model-map50-95" }, figure(m && m["mAP50-95"])),
    );
  }

  function versionActions(v) {
    const actions = [];
    if (!v.deployed) {
      actions.push(h("button", { type: "button", class: "primary", testid: "model-promote", title: t("models_promote_hint"), onclick: () => openPromote(v.version) }, t("models_promote")));
    }
    if (v.shadow) {
      actions.push(h("button", { type: "button", testid: "model-shadow-stop", onclick: (e) => stopShadow(e.currentTarget) }, t("models_shadow_stop")));
    } else if (!v.deployed) {
      const busy = registry.shadow !== null;
      actions.push(
        h(
          "button",
          {
            type: "button",
            testid: "model-shadow-start",
            disabled: busy,
            title: busy ? t("models_shadow_busy", { version: versionLabel(registry.shadow) }) : t("models_shadow_start_hint"),
            onclick: (e) => startShadow(v.version, e.currentTarget),
          },
          t("models_shadow_start"),
        ),
      );
    }
    return actions;
  }

  // ---- promotion ----

  function openPromote(version) {
    promoting = { version, refusal: null };
    renderPromote();
    promoteBox.scrollIntoView({ block: "nearest" });
  }

  function closePromote() {
    promoting = null;
    renderPromote();
  }

  function renderPromote() {
    if (!promoting || !registry) {
      promoteBox.replaceChildren();
      return;
    }
    const label = versionLabel(promoting.version);
    const cancel = h("button", { type: "button", testid: "promote-cancel", onclick: () => closePromote() }, t("cancel"), h("kbd", {}, "Esc"));
    if (promoting.refusal === null) {
      const submit = h("button", { type: "submit", class: "primary", testid: "promote-submit" }, t("models_promote_submit"));
      const sets = setNames(registry).join(t("models_sep"));
      const form = h(
        "form",
        {
          class: "inline-form promote-form",
          testid: "promote-panel",
          "data-version": promoting.version,
          onsubmit: (e) => {
            e.preventDefault();
            promote(form, submit, null);
          },
        },
        h("h3", {}, t("models_promote_title", { version: label })),
        h(
          "p",
          { class: "small" },
          registry.deployed === null
            ? t("models_promote_first", { version: label })
            : t("models_promote_explain", { version: label, deployed: versionLabel(registry.deployed), tolerance: TOLERANCE.toFixed(3), sets: sets || "—" }),
        ),
        h("div", { class: "row" }, submit, cancel),
      );
      fill(promoteBox, form);
      submit.focus({ preventScroll: true });
      return;
    }
    const reason = h("textarea", { testid: "promote-reason", maxlength: 2000, rows: 3, "aria-required": "true", placeholder: t("models_force_reason_hint"), oninput: () => reason.removeAttribute("aria-invalid") });
    const submit = h("button", { type: "submit", class: "danger", testid: "promote-force" }, t("models_force_submit"));
    const form = h(
      "form",
      {
        class: "inline-form promote-form refused",
        testid: "promote-panel",
        "data-version": promoting.version,
        "data-refused": "true",
        onsubmit: (e) => {
          e.preventDefault();
          const text = reason.value.trim();
          if (!text) {
            reason.setAttribute("aria-invalid", "true");
            toast(t("models_force_reason_required"), "error");
            reason.focus();
            return;
          }
          promote(form, submit, text);
        },
      },
      h("h3", {}, t("models_refused_title", { version: label })),
      h("p", { class: "refusal", testid: "promote-refusal" }, promoting.refusal),
      h("label", { class: "field" }, t("models_force_reason"), reason),
      h("p", { class: "small muted" }, t("models_force_note")),
      h("div", { class: "row" }, submit, cancel),
    );
    fill(promoteBox, form);
    reason.focus({ preventScroll: true });
  }

  /** Ask the API to deploy (forced with `reason`, or through the gate); a refusal stays on screen. */
  async function promote(form, submit, reason) {
    const version = promoting.version;
    const body = reason === null ? { tolerance: TOLERANCE } : { tolerance: TOLERANCE, force: true, reason };
    form.setAttribute("aria-busy", "true");
    submit.disabled = true;
    const label = submit.textContent;
    submit.textContent = t("models_promote_running");
    try {
      const gate = await api(`/api/models/registry/${version}/promote`, { method: "POST", body, quiet: true });
      toast(t(gate.forced ? "models_promoted_forced" : "models_promoted", { version: versionLabel(version) }), "ok");
      promoting = null;
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 409 && reason === null)) {
        showError(e);
        form.removeAttribute("aria-busy");
        submit.disabled = false;
        submit.textContent = label;
        return;
      }
      if (promoting && promoting.version === version) promoting.refusal = e.message;
    }
    renderPromote();
    await load(true); // the figures measured for the gate, the history's new event
  }

  // ---- shadow runs ----

  async function startShadow(version, button) {
    button.disabled = true;
    try {
      await api("/api/models/shadow", { method: "PUT", body: { version } });
      toast(t("models_shadow_started", { version: versionLabel(version) }), "ok");
    } catch {
      button.disabled = false; // api() said why
      return;
    }
    await load(true);
  }

  async function stopShadow(button) {
    button.disabled = true;
    try {
      await api("/api/models/shadow", { method: "DELETE" });
      toast(t("models_shadow_stopped"), "ok");
    } catch {
      button.disabled = false;
      return;
    }
    await load(true);
  }

  function shadowPanel() {
    const running = shadow.version;
    const cameras = Object.entries(shadow.cameras || {}).map(([id, report]) => ({ id, ...report }));
    const shown = running ?? lastShadowVersion();
    const sha = registry.versions.find((v) => v.version === shown)?.sha256;
    const total = shadow.total || {};
    const stat = (key, label) =>
      h("div", { class: "stat", testid: `shadow-${key.replaceAll("_", "-")}`, "data-count": String(total[key] ?? 0) }, h("b", {}, String(total[key] ?? 0)), h("span", {}, t(label)));
    let state;
    if (running !== null) state = t("models_shadow_running", { version: versionLabel(running), deployed: versionLabel(registry.deployed) });
    else if (cameras.length) state = t("models_shadow_last", { version: versionLabel(shown) });
    else state = t("models_shadow_none");
    return h(
      "section",
      { class: "panel", testid: "shadow-panel", "data-version": running ?? "" },
      h("h2", {}, t("models_shadow_title")),
      h("p", { testid: "shadow-state" }, state),
      running === null && cameras.length === 0
        ? null
        : [
            h(
              "div",
              { class: "stats", testid: "shadow-totals" },
              stat("frames", "models_shadow_frames"),
              stat("matched", "models_shadow_matched"),
              stat("only_current", "models_shadow_only_current"),
              stat("only_candidate", "models_shadow_only_candidate"),
            ),
            cameras.length === 0 ? h("p", { class: "muted small", testid: "shadow-no-reports" }, t("models_shadow_no_reports")) : shadowCameras(cameras, sha),
            cameras.length === 0 ? null : shadowExamples(cameras),
          ],
    );
  }

  function lastShadowVersion() {
    const last = [...registry.history].reverse().find((e) => e.event === "shadow_start" || e.event === "shadow_stop");
    return last ? last.version : null;
  }

  const byClass = (counts) =>
    Object.keys(counts || {}).length ? h("div", { class: "muted small" }, Object.entries(counts).map(([name, n]) => `${name} ${n}`).join(" · ")) : null;
  const violations = (counts) => (Object.keys(counts || {}).length ? Object.entries(counts).map(([kind, n]) => `${tv("kind", kind)} ${n}`).join(" · ") : "—");

  function shadowCameras(cameras, sha) {
    return h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { testid: "shadow-cameras", style: "margin-top:.8rem" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", {}, t("models_shadow_camera")),
            h("th", {}, t("models_shadow_since")),
            ["frames", "boxes", "matched", "only_current", "only_candidate"].map((k) => h("th", { class: "num" }, t(`models_col_${k}`))),
            h("th", {}, t("models_col_events")),
          ),
        ),
        h(
          "tbody",
          {},
          cameras.map((c) =>
            h(
              "tr",
              { testid: "shadow-camera", "data-camera": c.id },
              h(
                "td",
                { class: "nowrap" },
                cameraName(c.id),
                sha && c.candidate_sha256 && c.candidate_sha256 !== sha
                  ? [" ", h("span", { class: "badge state-pending_review", testid: "shadow-other-version", title: c.candidate_sha256 }, t("models_shadow_other_version"))]
                  : null,
              ),
              h("td", { class: "nowrap" }, fmtTime(c.since)),
              h("td", { class: "num" }, String(c.frames ?? 0)),
              h("td", { class: "num" }, `${c.current_boxes ?? 0} / ${c.candidate_boxes ?? 0}`),
              h("td", { class: "num" }, String(c.matched ?? 0)),
              h("td", { class: "num", testid: "shadow-camera-only-current" }, String(c.only_current ?? 0), byClass(c.only_current_by_class)),
              h("td", { class: "num", testid: "shadow-camera-only-candidate" }, String(c.only_candidate ?? 0), byClass(c.only_candidate_by_class)),
              h("td", { class: "small" }, `${violations(c.events?.current)} / ${violations(c.events?.candidate)}`),
            ),
          ),
        ),
      ),
    );
  }

  function shadowExamples(cameras) {
    const examples = cameras
      .flatMap((c) => (c.examples || []).map((x) => ({ ...x, camera: c.id })))
      .sort((a, b) => String(b.at).localeCompare(String(a.at)))
      .slice(0, EXAMPLES_SHOWN);
    return h(
      "div",
      {},
      h("h3", { style: "margin-top:1rem" }, t("models_examples_title")),
      examples.length === 0
        ? h("p", { class: "muted small", testid: "shadow-examples-none" }, t("models_examples_none"))
        : h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { class: "small", testid: "shadow-examples" },
              h(
                "thead",
                {},
                h(
                  "tr",
                  {},
                  ["models_example_at", "models_shadow_camera", "models_example_frame", "models_example_only", "models_example_class"].map((k) => h("th", {}, t(k))),
                  h("th", { class: "num" }, t("models_example_score")),
                  h("th", {}, t("models_example_box")),
                ),
              ),
              h(
                "tbody",
                {},
                examples.map((x) =>
                  h(
                    "tr",
                    { testid: "shadow-example", "data-only": x.only, "data-camera": x.camera },
                    h("td", { class: "nowrap" }, fmtTime(x.at, true)),
                    h("td", {}, cameraName(x.camera)),
                    h("td", { class: "num" }, String(x.frame ?? "—")),
                    h("td", {}, h("span", { class: `badge only-${x.only}` }, tv("shadow_only", x.only))),
                    h("td", {}, x.class),
                    h("td", { class: "num" }, figure(x.score)),
                    h("td", { class: "mono" }, (x.box || []).join(", ")),
                  ),
                ),
              ),
            ),
          ),
    );
  }

  // ---- history ----

  function historyPanel() {
    const events = [...registry.history].reverse();
    return h(
      "section",
      { class: "panel" },
      h("h2", {}, t("models_history_title")),
      events.length === 0
        ? h("p", { class: "muted", testid: "models-history-empty" }, t("models_history_empty"))
        : h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { testid: "models-history" },
              h("thead", {}, h("tr", {}, ["models_history_at", "models_history_event", "models_history_version", "models_history_actor", "models_history_detail"].map((k) => h("th", {}, t(k))))),
              h("tbody", {}, events.map((e) => historyRow(e))),
            ),
          ),
    );
  }

  function historyRow(e) {
    const forced = e.event === "promote" && e.forced === true;
    return h(
      "tr",
      { testid: "history-event", "data-event": e.event, "data-version": e.version ?? "", "data-forced": forced ? "true" : null, class: forced || e.event === "refuse" ? "history-alert" : null },
      h("td", { class: "nowrap" }, fmtTime(e.at, true)),
      h(
        "td",
        { class: "nowrap" },
        h("span", { class: `badge event-${e.event}` }, tv("model_event", e.event)),
        forced ? [" ", h("span", { class: "badge model-forced", testid: "history-forced" }, t("models_history_forced"))] : null,
      ),
      h("td", { class: "mono" }, e.version === undefined ? "—" : versionLabel(e.version)),
      h("td", {}, e.actor ? (e.actor === "system" ? tv("role", "system") : e.actor) : "—"),
      h("td", { class: "small" }, historyDetail(e)),
    );
  }

  function historyDetail(e) {
    switch (e.event) {
      case "register":
        return [e.note || null, h("span", { class: "muted mono" }, ` ${String(e.sha256 || "").slice(0, 12)}`)];
      case "evaluate":
        return `${e.set}: mAP50 ${figure(e.figures?.mAP50)} · mAP50-95 ${figure(e.figures?.["mAP50-95"])}`;
      case "promote": {
        const forced = e.forced === true;
        return [
          e.previous === null || e.previous === undefined ? t("models_history_first") : t("models_history_replaced", { previous: versionLabel(e.previous) }),
          e.reason ? h("div", { class: forced ? "history-why" : "muted", testid: "history-reason" }, forced ? t("models_history_reason", { reason: e.reason }) : e.reason) : null,
        ];
      }
      case "refuse":
        return failures(e.gate).join("; ") || "—";
      case "eval_sets":
        return (e.sets || []).map((s) => s.name).join(t("models_sep")) || "—";
      default:
        return "";
    }
  }

  /** The sets a refused candidate did worse on, by how much: "street: 0.000 < 0.995 (−0.995)". */
  function failures(gate) {
    if (!gate) return [];
    return (gate.sets || [])
      .filter((s) => s.deployed_mAP50 !== null && s.candidate_mAP50 < s.deployed_mAP50 - gate.tolerance)
      .map((s) => `${s.set}: mAP50 ${figure(s.candidate_mAP50)} < ${figure(s.deployed_mAP50)} (−${figure(s.deployed_mAP50 - s.candidate_mAP50)})`);
  }

  load();
  timer = setInterval(() => {
    if (!document.hidden && registry && shadow && shadow.version !== null) load(true); // new shadow reports; errors show in the page
  }, REFRESH_MS);
  return {
    onKey(e) {
      if (e.key === "Escape" && promoting) {
        closePromote();
        return true;
      }
      return false;
    },
    destroy() {
      clearInterval(timer);
    },
  };
}

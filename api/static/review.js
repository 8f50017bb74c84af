// The review queue: cases awaiting an officer's first look, highest priority then oldest first,
// the current one large, confirmed or rejected from the keyboard. A decided case leaves the
// queue and the next one takes its place.

import { app, cameraName, loadCameras, navigate, reasonLabel } from "./app.js";
import { lang, t, tv } from "./i18n.js";
import { ApiError, api, fill, fmtAge, fmtTime, h, hashWith, toast } from "./util.js";
import { EvidenceViewer } from "./viewer.js";

const PAGE = 50;
const POLL_MS = 20000;
const MAX_PACKAGES = 12; // a long-running case shows its latest findings
/** Reason codes the API takes only with a reason in words, as /api/meta says. */
const needsWords = (code) => (app.meta?.reason_codes || []).some((r) => r.code === code && r.needs_text);
let lastNumber = null; // the item shown when the officer left the page, shown again on return

export const REVIEW_HELP = [
  [
    "help_review",
    [
      [["j", "↓"], "key_next"],
      [["k", "↑"], "key_prev"],
      [["c", "Enter"], "key_confirm"],
      [["r"], "key_reject"],
      [["l"], "key_relabel"],
      [["b"], "key_redraw"],
      [["←", "→"], "key_keyframes"],
      [["x"], "key_box"],
      [["a"], "key_annotated"],
      [["Space"], "key_play"],
      [["o"], "key_open"],
      [["g"], "key_reload"],
    ],
  ],
  [
    "help_reject",
    [
      [["1", "…", "9", "0"], "key_reason"],
      [["Enter"], "key_submit"],
      [["Esc"], "key_cancel"],
    ],
  ],
];

export function reviewPage(root, params, ctx) {
  const state = {
    items: [],
    total: 0,
    index: 0,
    mode: "view", // view | reject | relabel | draw
    reason: null,
    busy: false,
    viewer: null,
    token: 0, // bumps when the current item changes, so late answers for an old one are dropped
  };
  const filters = { kind: params.kind || "", camera: params.camera || "" };
  const packages = new Map(); // package id -> EvidencePublic (each fetched once: recorded as a view)

  const listEl = h("ol", { class: "queue-list", testid: "queue-list" });
  const countEl = h("span", { class: "badge", testid: "queue-total" });
  const currentEl = h("section", { class: "panel current", testid: "review-current", "aria-live": "polite" });
  const filterSelect = (key, label, options) =>
    h(
      "select",
      { "aria-label": label, onchange: (e) => setFilter(key, e.target.value) },
      h("option", { value: "" }, `${label}: ${t("all")}`),
      options.map(([value, text]) => h("option", { value, selected: filters[key] === value }, text)),
    );
  const queuePanel = h(
    "aside",
    { class: "panel queue" },
    h(
      "div",
      { class: "queue-head" },
      h("h2", {}, t("review_title")),
      countEl,
      h("button", { type: "button", class: "ghost", onclick: () => load(), title: t("key_reload"), "aria-label": t("refresh") }, "⟳"),
    ),
    h(
      "div",
      { class: "queue-filters" },
      filterSelect("kind", t("review_filter_kind"), (app.meta?.kinds || []).map((k) => [k, tv("kind", k)])),
      filterSelect("camera", t("review_filter_camera"), app.cameras.map((c) => [c.id, c.name])),
    ),
    listEl,
  );
  fill(root, h("div", { class: "review" }, queuePanel, currentEl));

  function setFilter(key, value) {
    filters[key] = value;
    lastNumber = null;
    history.replaceState(null, "", hashWith("/review", filters));
    load();
  }

  async function load() {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (filters.kind) query.set("kind", filters.kind);
    if (filters.camera) query.set("camera", filters.camera);
    fill(currentEl, h("p", { class: "muted", style: "padding:1rem" }, t("loading")));
    const [page] = await Promise.all([api(`/api/review?${query}`), app.cameras.length ? null : loadCameras().catch(() => null)]);
    state.items = page.items;
    state.total = page.total;
    const at = state.items.findIndex((item) => item.number === lastNumber);
    state.index = at >= 0 ? at : 0;
    ctx.setReviewCount(state.total);
    render();
  }

  function current() {
    return state.items[state.index] || null;
  }

  function render() {
    state.mode = "view";
    state.reason = null;
    state.token += 1;
    countEl.textContent = t("review_total", { n: state.total });
    renderList();
    renderCurrent();
  }

  function renderList() {
    fill(
      listEl,
      state.items.map((item, i) =>
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: "queue-item",
              testid: "queue-item",
              "data-number": item.number,
              "aria-current": String(i === state.index),
              onclick: (e) => {
                e.currentTarget.blur();
                go(i);
              },
            },
            h("span", { class: "num" }, item.number),
            h("span", { class: `badge kind-${item.kind}` }, tv("kind", item.kind)),
            h("span", { class: "where" }, `${cameraName(item.camera_id)} · ${item.zone || "—"} · ${t("ago", { age: fmtAge(item.age_s) })}`),
          ),
        ),
      ),
    );
    listEl.querySelector('[aria-current="true"]')?.scrollIntoView({ block: "nearest" });
  }

  function go(index) {
    if (state.items.length === 0) return;
    state.index = Math.min(Math.max(index, 0), state.items.length - 1);
    lastNumber = current().number;
    render();
  }

  async function packagesOf(item) {
    let ids = [...new Set(item.detections.map((d) => d.package_id))];
    if (ids.length === 0) {
      const detail = await api(`/api/cases/${encodeURIComponent(item.number)}`);
      for (const pkg of detail.evidence_packages) packages.set(pkg.package_id, pkg);
      ids = detail.evidence_packages.map((p) => p.package_id);
    }
    ids = ids.slice(-MAX_PACKAGES);
    await Promise.all(
      ids.filter((id) => !packages.has(id)).map(async (id) => packages.set(id, await api(`/api/evidence/${id}`))),
    );
    return ids.map((id) => packages.get(id));
  }

  function renderCurrent() {
    state.viewer = null;
    const item = current();
    if (!item) {
      currentEl.removeAttribute("data-number");
      fill(
        currentEl,
        h(
          "div",
          { class: "empty-state", testid: "review-empty" },
          h("div", { class: "big" }, "✓"),
          h("h2", {}, t("review_empty")),
          h("p", { class: "muted" }, t("review_empty_hint")),
        ),
      );
      return;
    }
    lastNumber = item.number;
    currentEl.dataset.number = item.number;
    const token = state.token;
    const stage = h("div", { class: "stage" }, h("p", { class: "muted" }, t("loading")));
    const video = h("video", { controls: true, muted: true, playsinline: true, preload: "metadata", testid: "clip" });
    const noClip = h("p", { class: "muted small", hidden: true }, t("review_no_clip"));
    const clipBox = h("div", {}, video, noClip);
    const detectionsEl = h("ul", { class: "detection-list", testid: "detections" });
    const ruleEl = h("dl", { class: "facts small" });
    const panelEl = h("div", { testid: "review-panel" });
    fill(
      currentEl,
      h(
        "div",
        { class: "current-head" },
        h("a", { class: "case-no", href: `#/cases/${item.number}`, testid: "current-number" }, item.number),
        h("span", { class: `badge kind-${item.kind}` }, tv("kind", item.kind)),
        h("span", {}, `${t("review_camera")}: ${cameraName(item.camera_id)}`),
        h("span", { class: "muted" }, `${t("review_seen")}: ${fmtTime(item.first_seen_at)}`),
        h("span", { class: "muted" }, `${t("review_age")}: ${fmtAge(item.age_s)}`),
        h("span", { class: "muted" }, `${t("review_evidence")}: ${item.evidence}`),
        h("span", { class: "muted" }, `${t("review_priority")}: ${item.priority}`),
      ),
      h(
        "div",
        { class: "current-body" },
        stage,
        h(
          "div",
          { class: "side" },
          h(
            "div",
            { class: "actions big" },
            h("button", { type: "button", class: "ok", testid: "review-confirm", onclick: () => confirm() }, t("review_confirm"), h("kbd", {}, "C")),
            h("button", { type: "button", class: "danger", testid: "review-reject", onclick: () => openReject() }, t("review_reject"), h("kbd", {}, "R")),
          ),
          panelEl,
          h("div", {}, h("h3", {}, t("review_detections")), detectionsEl),
          h(
            "div",
            { class: "actions" },
            h("button", { type: "button", testid: "review-relabel", onclick: () => openRelabel() }, t("review_relabel"), h("kbd", {}, "L")),
            h("button", { type: "button", testid: "review-redraw", onclick: () => startDraw() }, t("review_redraw"), h("kbd", {}, "B")),
            h("button", { type: "button", testid: "review-open", onclick: () => openCase() }, t("review_open"), h("kbd", {}, "O")),
          ),
          h("div", {}, h("h3", {}, t("review_clip")), clipBox),
        ),
        h("div", { class: "extra" }, h("div", {}, h("h3", {}, t("review_zone_rule")), ruleEl)),
      ),
    );

    const renderDetections = () => {
      const viewer = state.viewer;
      const shown = viewer ? viewer.shown() : [];
      const selected = viewer ? viewer.selected() : null;
      fill(
        detectionsEl,
        shown.length === 0
          ? h("li", { class: "muted small" }, t("review_no_detection"))
          : shown.map((d) =>
              h(
                "li",
                {},
                h(
                  "button",
                  {
                    type: "button",
                    "aria-pressed": String(selected && selected.id === d.id),
                    testid: "detection",
                    "data-id": d.id,
                    onclick: (e) => {
                      e.currentTarget.blur();
                      viewer.select(d.id);
                      renderDetections();
                    },
                  },
                  h(
                    "span",
                    {},
                    d.corrected_label ? h("span", {}, h("s", { class: "muted" }, d.label), " → ", h("b", {}, d.corrected_label)) : h("b", {}, d.label),
                    d.corrected_box ? h("span", { class: "badge state-confirmed", style: "margin-left:.4rem" }, t("corrected")) : null,
                  ),
                  h("span", { class: "muted small" }, `${t("score")} ${Number(d.score).toFixed(2)}`),
                ),
              ),
            ),
      );
    };

    packagesOf(item)
      .then((pkgs) => {
        if (token !== state.token) return;
        const rule = pkgs[0]?.rule || {};
        fill(
          ruleEl,
          h("dt", {}, t("review_zone")),
          h("dd", { testid: "current-zone" }, item.zone || rule.zone || "—"),
          h("dt", {}, t("review_rule")),
          h("dd", { testid: "current-rule" }, rule.rule ? `${tv("rule", rule.rule)} (${rule.rule})` : "—"),
          h("dt", {}, t("review_classes")),
          h("dd", {}, (rule.classes || []).join(", ") || "—"),
        );
        let clipUrl = null;
        const viewer = new EvidenceViewer({
          packages: pkgs,
          detections: item.detections,
          onSlide: (slide) => {
            const url = slide.clip ? slide.clip.url : null;
            if (url !== clipUrl) {
              clipUrl = url;
              video.hidden = !url;
              noClip.hidden = Boolean(url);
              if (url) video.src = url;
              else video.removeAttribute("src");
            }
            renderDetections();
          },
          onDrawn: (detection, box) => correct(detection, { box }),
        });
        state.viewer = viewer;
        fill(stage, viewer.el);
        viewer.svg.addEventListener("pointerup", () => renderDetections());
        renderDetections();
      })
      .catch((e) => {
        if (token !== state.token) return;
        fill(stage, h("p", { class: "muted" }, e instanceof ApiError ? e.message : String(e)));
      });
  }

  function panel() {
    return currentEl.querySelector('[data-testid="review-panel"]');
  }

  async function step(body) {
    const item = current();
    if (!item || state.busy) return;
    state.busy = true;
    try {
      await api(`/api/cases/${encodeURIComponent(item.number)}/steps`, { method: "POST", body: { ...body, version: item.version } });
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) load();
      return;
    } finally {
      state.busy = false;
    }
    if (body.action === "confirm") toast(t("review_confirmed", { number: item.number }), "ok");
    else toast(t("review_rejected", { number: item.number, reason: reasonLabel(body.reason_code, lang) }), "ok");
    const at = state.items.indexOf(item);
    if (at >= 0) state.items.splice(at, 1);
    state.total = Math.max(0, state.total - 1);
    ctx.setReviewCount(state.total);
    if (state.items.length === 0 && state.total > 0) {
      lastNumber = null;
      load();
      return;
    }
    state.index = Math.min(at, state.items.length - 1);
    lastNumber = current()?.number ?? null;
    render();
  }

  function confirm() {
    if (state.mode !== "view") return;
    step({ action: "confirm" });
  }

  function openReject() {
    if (!current() || state.mode === "reject") return;
    cancelModes();
    state.mode = "reject";
    state.reason = null;
    const reasons = app.meta ? app.meta.reason_codes : [];
    const note = h("input", { type: "text", placeholder: t("review_reason_note"), "aria-label": t("review_reason_note"), testid: "reject-note", maxlength: 4000 });
    note.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        submitReject();
      } else if (e.key === "Escape") {
        e.preventDefault();
        closePanel();
      }
      e.stopPropagation();
    });
    fill(
      panel(),
      h(
        "div",
        { class: "picker", testid: "reject-picker", role: "dialog", "aria-label": t("review_pick_reason") },
        h("h3", {}, t("review_pick_reason")),
        h(
          "ol",
          { class: "reasons", role: "radiogroup" },
          reasons.map((r, i) =>
            h(
              "li",
              {},
              h(
                "button",
                {
                  type: "button",
                  role: "radio",
                  "aria-checked": "false",
                  testid: "reason-option",
                  "data-code": r.code,
                  onclick: (e) => {
                    e.currentTarget.blur();
                    pickReason(i);
                  },
                },
                h("kbd", {}, i < 9 ? String(i + 1) : i === 9 ? "0" : "·"),
                lang === "en" ? r.en : r.zh,
              ),
            ),
          ),
        ),
        note,
        h(
          "div",
          { class: "actions", style: "margin-top:.6rem" },
          h("button", { type: "button", class: "danger", testid: "reject-submit", onclick: () => submitReject() }, t("review_reject_submit"), h("kbd", {}, "Enter")),
          h("button", { type: "button", onclick: () => closePanel() }, t("cancel"), h("kbd", {}, "Esc")),
        ),
      ),
    );
  }

  function pickReason(i) {
    const reasons = app.meta ? app.meta.reason_codes : [];
    if (i < 0 || i >= reasons.length) return;
    state.reason = reasons[i].code;
    for (const button of panel().querySelectorAll('[data-testid="reason-option"]')) {
      button.setAttribute("aria-checked", String(button.dataset.code === state.reason));
    }
    const note = panel().querySelector('[data-testid="reject-note"]');
    if (note) note.placeholder = needsWords(state.reason) ? t("review_reason_required") : t("review_reason_note");
  }

  function submitReject() {
    if (state.mode !== "reject") return;
    if (!state.reason) {
      toast(t("review_choose_reason_first"), "error");
      return;
    }
    const note = panel().querySelector('[data-testid="reject-note"]');
    const reason = note ? note.value.trim() : "";
    if (needsWords(state.reason) && !reason) {
      toast(t("review_reason_needs_words"), "error");
      note?.focus();
      return;
    }
    step({ action: "reject", reason_code: state.reason, reason });
  }

  function closePanel() {
    cancelModes();
    const el = panel();
    if (el) el.replaceChildren();
  }

  function cancelModes() {
    if (state.mode === "draw" && state.viewer) state.viewer.cancelDraw();
    state.mode = "view";
    state.reason = null;
    if (document.activeElement instanceof HTMLElement && currentEl.contains(document.activeElement)) document.activeElement.blur();
  }

  function openRelabel() {
    const viewer = state.viewer;
    const target = viewer && viewer.selected();
    if (!target) {
      toast(t("review_no_detection"), "error");
      return;
    }
    cancelModes();
    state.mode = "relabel";
    const labels = new Set([target.label, ...(packages.get(target.package_id)?.rule?.classes || [])]);
    const input = h("input", {
      type: "text",
      list: "label-options",
      value: target.corrected_label || target.label,
      placeholder: t("review_label_placeholder"),
      "aria-label": t("review_relabel"),
      testid: "relabel-input",
      autocomplete: "off",
      spellcheck: "false",
    });
    input.addEventListener("keydown", (e) => {
      e.stopPropagation();
      if (e.key === "Enter") {
        e.preventDefault();
        const label = input.value.trim();
        if (label) correct(target, { label }).then((ok) => ok && closePanel());
      } else if (e.key === "Escape") {
        e.preventDefault();
        closePanel();
      }
    });
    fill(
      panel(),
      h(
        "div",
        { class: "inline-form", testid: "relabel-form" },
        h("label", { class: "field" }, `${t("review_relabel")} #${target.id} (${target.label})`, input),
        h("datalist", { id: "label-options" }, [...labels].map((l) => h("option", { value: l }))),
        h("div", { class: "muted small" }, t("review_relabel_hint")),
      ),
    );
    input.focus();
    input.select();
  }

  function startDraw() {
    const viewer = state.viewer;
    if (!viewer || !viewer.selected()) {
      toast(t("review_no_detection"), "error");
      return;
    }
    closePanel();
    if (viewer.startDraw()) state.mode = "draw";
  }

  async function correct(detection, body) {
    try {
      const updated = await api(`/api/detections/${detection.id}/correction`, { method: "PUT", body });
      const item = state.items.find((i) => i.detections.some((d) => d.id === updated.id));
      if (item) item.detections = item.detections.map((d) => (d.id === updated.id ? updated : d));
      state.viewer?.update(updated);
      state.mode = "view";
      toast(t("review_corrected", { id: updated.id }), "ok");
      renderCurrentDetections();
      return true;
    } catch {
      state.mode = "view";
      return false;
    }
  }

  function renderCurrentDetections() {
    // the viewer's onSlide hook re-renders the list; show the same keyframe again
    if (state.viewer) state.viewer.show(state.viewer.index);
  }

  function openCase() {
    const item = current();
    if (item) navigate(`#/cases/${item.number}`);
  }

  function togglePlay() {
    const video = currentEl.querySelector("video");
    if (!video || !video.src) return;
    if (video.paused) video.play().catch(() => {});
    else video.pause();
  }

  function onKey(e) {
    const key = e.key;
    if (state.mode === "reject") {
      if (/^[0-9]$/.test(key)) {
        pickReason(key === "0" ? 9 : Number(key) - 1);
        return true;
      }
      if (key === "Enter") {
        submitReject();
        return true;
      }
      if (key === "Escape") {
        closePanel();
        return true;
      }
      if (key === "ArrowDown" || key === "ArrowUp") {
        const codes = (app.meta?.reason_codes || []).map((r) => r.code);
        const at = codes.indexOf(state.reason);
        pickReason(at < 0 ? 0 : (at + (key === "ArrowDown" ? 1 : codes.length - 1)) % codes.length);
        return true;
      }
      return false;
    }
    if (state.mode === "draw") {
      if (key === "Escape") {
        closePanel();
        return true;
      }
      return false;
    }
    const viewer = state.viewer;
    switch (key) {
      case "j":
      case "ArrowDown":
        go(state.index + 1);
        return true;
      case "k":
      case "ArrowUp":
        go(state.index - 1);
        return true;
      case "c":
      case "Enter":
        confirm();
        return true;
      case "r":
        openReject();
        return true;
      case "l":
        openRelabel();
        return true;
      case "b":
        startDraw();
        return true;
      case "ArrowRight":
        viewer?.next();
        return true;
      case "ArrowLeft":
        viewer?.prev();
        return true;
      case "x":
        viewer?.selectNext();
        if (viewer) viewer.show(viewer.index);
        return true;
      case "a":
        viewer?.toggleAnnotated();
        return true;
      case " ":
        togglePlay();
        return true;
      case "o":
        openCase();
        return true;
      case "g":
        lastNumber = current()?.number ?? null;
        load();
        return true;
      case "Escape":
        closePanel();
        return true;
      default:
        return false;
    }
  }

  // new findings: the count stays current, and an empty queue fills itself
  const poll = setInterval(() => {
    if (state.mode !== "view" || state.busy || document.hidden) return;
    const query = new URLSearchParams({ limit: "1" });
    if (filters.kind) query.set("kind", filters.kind);
    if (filters.camera) query.set("camera", filters.camera);
    api(`/api/review?${query}`, { quiet: true }).then((page) => {
      if (state.items.length === 0 && page.total > 0) {
        load();
        return;
      }
      state.total = page.total;
      countEl.textContent = t("review_total", { n: state.total });
      ctx.setReviewCount(state.total);
    }, () => null);
  }, POLL_MS);

  load();
  return { onKey, help: REVIEW_HELP, destroy: () => clearInterval(poll) };
}

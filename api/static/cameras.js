// Cameras: each one's live snapshot with its zones drawn over it and its health; a camera's page
// with the zone editor for engineers and admins (click to place points, drag to move, undo, save).

import { app, CAMERA_EDITORS, can } from "./app.js";
import { t, tv } from "./i18n.js";
import { api, fill, fmtNumber, fmtTime, h, toast } from "./util.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const REFRESH_MS = 5000;
const DEFAULT_FRAME = [640, 360];
const MAX_POINTS = 64;

export const EDITOR_HELP = [
  [
    "help_editor",
    [
      [["u", "Ctrl+Z"], "key_undo"],
      [["Enter"], "key_save"],
      [["Esc"], "key_cancel"],
    ],
  ],
];

/** The frame size the zones imply when there is no snapshot: their bounds with the same margin on both sides. */
export function impliedFrame(zones) {
  const points = zones.flatMap((z) => z.polygon || []);
  if (points.length === 0) return DEFAULT_FRAME;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return [Math.max(16, Math.ceil(Math.max(...xs) + Math.min(...xs))), Math.max(16, Math.ceil(Math.max(...ys) + Math.min(...ys)))];
}

function snapshotUrl(camera) {
  return `/api/cameras/${encodeURIComponent(camera.id)}/snapshot?t=${Date.now()}`;
}

function healthBadge(camera) {
  const state = camera.health ? camera.health.state : "none";
  return h("span", { class: `badge health-${state}`, testid: "health-state", "data-state": state }, camera.health ? tv("health", state) : t("camera_no_health"));
}

/**
 * A camera's frame: the snapshot (or a blank frame of the zones' implied size) with the zones
 * drawn in an SVG in the frame's pixels. `size()` is [w, h] once known; `onSize` fires when it is.
 */
function zoneFrame(camera, { active = null, onSize = () => {} } = {}) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", "overlay");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("data-testid", "zones-overlay");
  const labels = h("div");
  const frame = h("div", { class: "frame smooth", testid: "camera-frame" });
  let size = null;
  const setSize = (w, hgt) => {
    size = [w, hgt];
    svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
    frame.dataset.width = String(w);
    frame.dataset.height = String(hgt);
    draw();
    onSize(size);
  };
  const draw = (skip = null) => {
    svg.replaceChildren();
    labels.replaceChildren();
    if (!size) return;
    for (const zone of camera.zones) {
      if (!zone.polygon || zone.name === skip) continue;
      const poly = document.createElementNS(SVG_NS, "polygon");
      poly.setAttribute("points", zone.polygon.map((p) => p.join(",")).join(" "));
      poly.setAttribute("class", `zone-shape${zone.name === active ? " active" : ""}`);
      poly.setAttribute("data-zone", zone.name);
      svg.append(poly);
      const [x, y] = zone.polygon[0];
      labels.append(h("span", { class: "zone-label", style: `left:${(x / size[0]) * 100}%;top:${(y / size[1]) * 100}%` }, zone.name));
    }
  };
  if (camera.has_snapshot) {
    const img = h("img", { src: snapshotUrl(camera), alt: camera.name, testid: "snapshot", draggable: "false" });
    img.addEventListener("load", () => {
      if (!size || size[0] !== img.naturalWidth || size[1] !== img.naturalHeight) setSize(img.naturalWidth, img.naturalHeight);
    });
    frame.append(img, svg, labels);
    frame.refresh = () => {
      img.src = snapshotUrl(camera);
    };
  } else {
    const [w, hgt] = impliedFrame(camera.zones);
    const blank = h("div", { class: "blank-frame", testid: "blank-frame", style: `aspect-ratio:${w} / ${hgt}` });
    frame.append(blank, svg, labels);
    frame.refresh = () => {};
    queueMicrotask(() => setSize(w, hgt));
  }
  frame.size = () => size;
  frame.draw = draw;
  frame.svg = svg;
  return frame;
}

export function camerasPage(root) {
  const grid = h("div", { class: "camera-grid", testid: "camera-grid" }, h("p", { class: "muted" }, t("loading")));
  fill(root, h("div", { class: "page-head" }, h("h1", {}, t("cameras_title"))), grid);
  let frames = [];
  api("/api/cameras?limit=500").then((page) => {
    app.cameras = page.items;
    frames = [];
    fill(
      grid,
      page.items.map((camera) => {
        const frame = zoneFrame(camera);
        frames.push(frame);
        const hl = camera.health;
        return h(
          "a",
          { class: "panel camera-card", href: `#/cameras/${encodeURIComponent(camera.id)}`, testid: "camera-card", "data-camera": camera.id },
          h("div", { style: "display:flex;align-items:center;gap:.5rem" }, h("b", { style: "flex:1" }, camera.name), healthBadge(camera)),
          frame,
          camera.has_snapshot ? null : h("span", { class: "muted small" }, t("camera_no_snapshot")),
          h(
            "span",
            { class: "muted small" },
            `${camera.id} · ${camera.zones.map((z) => z.name).join(", ") || "—"}`,
            hl ? ` · ${t("health_decode_fps")} ${fmtNumber(hl.decode_fps)} · ${t("health_lag_s")} ${fmtNumber(hl.lag_s, 2)}` : "",
          ),
        );
      }),
    );
  });
  const timer = setInterval(() => frames.forEach((f) => f.refresh()), REFRESH_MS);
  return { destroy: () => clearInterval(timer) };
}

export function cameraPage(root, _params, _ctx, cameraId) {
  const editorAllowed = can(CAMERA_EDITORS);
  let camera = null;
  let frame = null;
  let timer = null;
  let zoneName = null;
  const editor = { on: false, points: [], history: [] };
  fill(root, h("p", { class: "muted" }, t("loading")));

  async function load() {
    camera = await api(`/api/cameras/${encodeURIComponent(cameraId)}`);
    if (!zoneName || !camera.zones.some((z) => z.name === zoneName)) zoneName = camera.zones[0]?.name || null;
    render();
  }

  function zone() {
    return camera.zones.find((z) => z.name === zoneName) || null;
  }

  function render() {
    const hl = camera.health;
    frame = zoneFrame(camera, { active: zoneName, onSize: () => drawEditor() });
    if (editor.on) frame.classList.add("editing");
    frame.addEventListener("pointerdown", addPoint);
    const editorEl = h("div", { testid: "zone-editor-controls" });
    fill(
      root,
      h(
        "div",
        { class: "page-head" },
        h("a", { href: "#/cameras", class: "button ghost" }, "‹ ", t("cameras_title")),
        h("h1", {}, camera.name),
        h("span", { class: "muted mono" }, camera.id),
        healthBadge(camera),
      ),
      h(
        "div",
        { class: "grid2" },
        h(
          "section",
          { class: `panel${editor.on ? " editor" : ""}`, testid: "zone-editor" },
          frame,
          camera.has_snapshot ? null : h("p", { class: "muted small", testid: "blank-note" }, t("camera_blank_canvas", { w: impliedFrame(camera.zones)[0], h: impliedFrame(camera.zones)[1] })),
          h("h2", { style: "margin-top:1rem" }, t("camera_zones")),
          h(
            "div",
            { class: "zone-tabs" },
            camera.zones.map((z) =>
              h(
                "button",
                {
                  type: "button",
                  testid: "zone-tab",
                  "data-zone": z.name,
                  "aria-pressed": String(z.name === zoneName),
                  onclick: () => {
                    if (editor.on) return;
                    zoneName = z.name;
                    render();
                  },
                },
                `${z.name} · ${tv("rule", z.rule)}`,
              ),
            ),
          ),
          zone()?.edited_by ? h("p", { class: "muted small" }, t("camera_edited_by", { by: zone().edited_by, at: fmtTime(zone().edited_at) })) : null,
          editorEl,
        ),
        healthPanel(camera, hl),
      ),
    );
    renderEditorControls(editorEl);
    if (timer) clearInterval(timer);
    timer = setInterval(() => frame && frame.refresh(), REFRESH_MS);
  }

  function renderEditorControls(el) {
    if (!editorAllowed || !zone()) return;
    if (!editor.on) {
      fill(el, h("div", { class: "actions", style: "margin-top:.8rem" }, h("button", { type: "button", class: "primary", testid: "zone-edit", onclick: () => startEdit() }, "✎ ", t("camera_edit_zone"))));
      return;
    }
    fill(
      el,
      h(
        "div",
        { class: "inline-form", style: "margin-top:.8rem" },
        h("span", { class: "small" }, t("camera_editor_hint")),
        h("span", { class: "small mono", testid: "zone-point-count" }, `${editor.points.length} / ${MAX_POINTS}`),
        h(
          "div",
          { class: "row" },
          h("button", { type: "button", class: "primary", testid: "zone-save", onclick: () => save() }, t("save"), h("kbd", {}, "Enter")),
          h("button", { type: "button", testid: "zone-undo", disabled: editor.history.length === 0, onclick: () => undo() }, "↶ ", t("camera_undo"), h("kbd", {}, "U")),
          h("button", { type: "button", testid: "zone-clear", onclick: () => change([]) }, t("camera_clear")),
          h("button", { type: "button", testid: "zone-cancel", onclick: () => stopEdit() }, t("cancel"), h("kbd", {}, "Esc")),
        ),
      ),
    );
  }

  function startEdit() {
    editor.on = true;
    editor.points = (zone().polygon || []).map((p) => [...p]);
    editor.history = [];
    render();
  }

  function stopEdit() {
    editor.on = false;
    editor.points = [];
    editor.history = [];
    render();
  }

  function change(points) {
    editor.history.push(editor.points.map((p) => [...p]));
    editor.points = points;
    drawEditor();
    renderEditorControls(root.querySelector('[data-testid="zone-editor-controls"]'));
  }

  function undo() {
    if (!editor.on || editor.history.length === 0) return;
    editor.points = editor.history.pop();
    drawEditor();
    renderEditorControls(root.querySelector('[data-testid="zone-editor-controls"]'));
  }

  function toFrame(event) {
    const size = frame.size();
    const rect = frame.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / rect.width) * size[0];
    const y = ((event.clientY - rect.top) / rect.height) * size[1];
    const round = (v, max) => Math.round(Math.min(Math.max(v, 0), max) * 10) / 10;
    return [round(x, size[0]), round(y, size[1])];
  }

  function addPoint(event) {
    if (!editor.on || !frame.size() || event.button !== 0) return;
    if (event.target.closest(".handle")) return;
    event.preventDefault();
    if (editor.points.length >= MAX_POINTS) return;
    change([...editor.points, toFrame(event)]);
  }

  function drawEditor() {
    if (!frame || !frame.size()) return;
    frame.querySelectorAll(".handle, .editing-shape").forEach((el) => el.remove());
    if (!editor.on) return;
    frame.draw(zoneName); // the others as they are, this one as it is being drawn
    const [w, hgt] = frame.size();
    const shape = document.createElementNS(SVG_NS, editor.points.length >= 3 ? "polygon" : "polyline");
    shape.setAttribute("class", "zone-shape active editing-shape");
    shape.setAttribute("data-testid", "editing-shape");
    shape.setAttribute("points", editor.points.map((p) => p.join(",")).join(" "));
    frame.svg.append(shape);
    editor.points.forEach((p, i) => {
      const handle = h(
        "div",
        { class: `handle${i === 0 ? " first" : ""}`, testid: "zone-handle", style: `left:${(p[0] / w) * 100}%;top:${(p[1] / hgt) * 100}%` },
        h("span", { class: "n" }, String(i + 1)),
      );
      handle.addEventListener("pointerdown", (e) => {
        e.preventDefault();
        e.stopPropagation();
        handle.setPointerCapture(e.pointerId);
        const before = editor.points.map((q) => [...q]);
        let moved = false;
        const move = (ev) => {
          moved = true;
          editor.points[i] = toFrame(ev);
          handle.style.left = `${(editor.points[i][0] / w) * 100}%`;
          handle.style.top = `${(editor.points[i][1] / hgt) * 100}%`;
          shape.setAttribute("points", editor.points.map((q) => q.join(",")).join(" "));
        };
        const up = () => {
          handle.removeEventListener("pointermove", move);
          handle.removeEventListener("pointerup", up);
          if (moved) {
            const after = editor.points;
            editor.points = before;
            change(after);
          }
        };
        handle.addEventListener("pointermove", move);
        handle.addEventListener("pointerup", up);
      });
      frame.append(handle);
    });
  }

  async function save() {
    if (!editor.on) return;
    if (editor.points.length < 3) {
      toast(t("camera_need_points"), "error");
      return;
    }
    await api(`/api/cameras/${encodeURIComponent(camera.id)}/zones/${encodeURIComponent(zoneName)}`, {
      method: "PUT",
      body: { polygon: editor.points },
    });
    toast(t("camera_zone_saved", { zone: zoneName }), "ok");
    editor.on = false;
    editor.points = [];
    editor.history = [];
    await load();
  }

  load().catch((e) => fill(root, h("div", { class: "panel" }, h("h1", {}, cameraId), h("p", { class: "muted" }, e.message))));
  return {
    destroy: () => timer && clearInterval(timer),
    onKey(e) {
      if (!editor.on) return false;
      if (e.key === "u") undo();
      else if (e.key === "Enter") save();
      else if (e.key === "Escape") stopEdit();
      else return false;
      return true;
    },
    onModKey(e) {
      if (editor.on && (e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z") {
        undo();
        return true;
      }
      return false;
    },
  };
}

function healthPanel(camera, hl) {
  const rows = hl
    ? [
        ["health_decode_fps", fmtNumber(hl.decode_fps)],
        ["health_detect_fps", fmtNumber(hl.detect_fps)],
        ["health_lag_s", fmtNumber(hl.lag_s, 2)],
        ["health_reconnects", hl.reconnects],
        ["health_gated", `${(hl.gated_fraction * 100).toFixed(0)}%`],
        ["health_frames", hl.frames],
        ["health_corrupt", hl.corrupt],
        ["health_dropped", hl.dropped],
        ["health_violations", hl.violations],
        ["health_tamper", hl.tamper.length ? hl.tamper.join(", ") : "—"],
        ["health_worker", hl.worker],
        ["health_updated", fmtTime(hl.updated_at, true)],
      ]
    : [];
  return h(
    "section",
    { class: "panel", testid: "camera-health" },
    h("h2", {}, t("camera_health"), " ", healthBadge(camera)),
    hl ? h("dl", { class: "facts small" }, rows.map(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, String(v))])) : h("p", { class: "muted" }, t("camera_no_health")),
    camera.lat !== null && camera.lon !== null
      ? h("p", { class: "small" }, `${t("camera_location")}: ${camera.lat.toFixed(5)}, ${camera.lon.toFixed(5)}`)
      : null,
    hl && hl.events.length
      ? [
          h("h3", { style: "margin-top:1rem" }, t("camera_events")),
          h(
            "ul",
            { class: "checks" },
            hl.events
              .slice(-10)
              .reverse()
              .map((ev) => h("li", {}, h("span", {}, ev.active ? "•" : "◦"), h("span", {}, ev.kind), h("span", { class: "detail" }, `${fmtTime(ev.at, true)} ${ev.detail || ""}`))),
          ),
        ]
      : null,
  );
}

// A map of findings that needs no tiles and no network: longitude and latitude scaled to fit an
// SVG (equirectangular, x shrunk by cos(latitude) so that distances are true), a degree grid, a
// scale bar, cameras as squares and cases as dots coloured by kind. A dot opens its case.

import { app, cameraName, loadCameras, navigate } from "./app.js";
import { t, tv } from "./i18n.js";
import { lonLatPlot } from "./plot.js";
import { api, fill, h, hashWith } from "./util.js";

const W = 1000;
const H = 600;
const MARGIN = 56;
const MIN_SPAN = 0.004; // degrees: about 400 m, so that one place is not blown up to the whole map
export const KIND_COLORS = { fume: "#d9480f", occupation: "#1971c2", construction: "#7048e8" };

export function mapPage(root, params) {
  const includeClosed = params.closed === "1";
  const holder = h("div", {}, h("p", { class: "muted" }, t("loading")));
  const countEl = h("span", { class: "badge", testid: "map-count" });
  fill(
    root,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, t("map_title")),
      countEl,
      h("span", { class: "spacer" }),
      h(
        "label",
        { class: "small", style: "display:inline-flex;align-items:center;gap:.4rem;min-height:40px" },
        h("input", { type: "checkbox", checked: includeClosed, testid: "map-closed", onchange: (e) => navigate(hashWith("/map", { closed: e.target.checked ? "1" : "" })), style: "min-height:0;width:20px;height:20px" }),
        t("map_include_closed"),
      ),
    ),
    h("div", { class: "panel" }, holder),
  );
  Promise.all([
    api(`/api/map/findings?open_only=${includeClosed ? "false" : "true"}`),
    app.cameras.length ? app.cameras : loadCameras(),
  ]).then(([collection, cameras]) => {
    const findings = collection.features.map((f) => ({ lon: f.geometry.coordinates[0], lat: f.geometry.coordinates[1], ...f.properties }));
    const placed = cameras.filter((c) => c.lat !== null && c.lon !== null);
    countEl.textContent = t("map_count", { n: findings.length });
    const all = [...findings, ...placed];
    if (all.length === 0) {
      fill(holder, h("p", { class: "muted", testid: "map-empty" }, t("map_no_points")));
      return;
    }
    fill(holder, drawMap(findings, placed), legend(findings), findingsTable(findings));
  });
  return {};
}

function drawMap(findings, cameras) {
  const { svg, x, y } = lonLatPlot(
    [...findings, ...cameras].map((p) => [p.lon, p.lat]),
    {
      width: W,
      height: H,
      margin: MARGIN,
      minSpan: MIN_SPAN,
      pad: 1.15,
      lonLabelInset: 10,
      scaleBarGap: 14,
      attrs: { class: "map-svg", testid: "map", role: "img", "aria-label": t("map_title") },
    },
  );

  for (const camera of cameras) {
    const cx = x(camera.lon);
    const cy = y(camera.lat);
    svg.append(
      h(
        "svg:g",
        { testid: "map-camera", "data-camera": camera.id },
        h("svg:rect", { class: "camera", x: cx - 14, y: cy - 14, width: 28, height: 28, rx: 4 }),
        h("svg:text", { class: "camera-label", x: cx + 18, y: cy + 5 }, camera.name),
      ),
    );
  }

  // findings at one place (one camera's cases) fan out on a ring around it
  const at = new Map();
  for (const f of findings) {
    const key = `${f.lon.toFixed(6)},${f.lat.toFixed(6)}`;
    if (!at.has(key)) at.set(key, []);
    at.get(key).push(f);
  }
  for (const group of at.values()) {
    group.forEach((f, i) => {
      const angle = (i / group.length) * 2 * Math.PI - Math.PI / 2;
      const r = group.length > 1 ? 14 + 2 * group.length : 0;
      const px = x(f.lon) + r * Math.cos(angle);
      const py = y(f.lat) + r * Math.sin(angle);
      svg.append(
        h(
          "svg:a",
          { href: `#/cases/${f.number}`, testid: "map-point", "data-number": f.number, "data-kind": f.kind },
          h(
            "svg:circle",
            { class: "point", cx: px, cy: py, r: 9, fill: KIND_COLORS[f.kind] || "#495057" },
            h("svg:title", {}, `${f.number} · ${tv("kind", f.kind)} · ${tv("state", f.state)} · ${cameraName(f.camera_id)}`),
          ),
        ),
      );
    });
  }
  return svg;
}

function legend(findings) {
  const counts = {};
  for (const f of findings) counts[f.kind] = (counts[f.kind] || 0) + 1;
  return h(
    "div",
    { class: "legend", style: "margin-top:.8rem" },
    Object.entries(KIND_COLORS).map(([kind, color]) =>
      h("span", {}, h("span", { class: "dot", style: `background:${color}` }), `${tv("kind", kind)} (${counts[kind] || 0})`),
    ),
    h("span", {}, h("span", { class: "dot", style: "background:#fff;border:1.5px solid #475569;border-radius:2px" }), t("map_cameras")),
  );
}

function findingsTable(findings) {
  if (findings.length === 0) return null;
  return h(
    "div",
    { class: "table-wrap", style: "margin-top:.8rem" },
    h(
      "table",
      { class: "small" },
      h("thead", {}, h("tr", {}, ["col_number", "col_kind", "col_state", "col_camera"].map((k) => h("th", {}, t(k))), h("th", {}, "lon, lat"))),
      h(
        "tbody",
        {},
        findings.map((f) =>
          h(
            "tr",
            {},
            h("td", {}, h("a", { class: "mono", href: `#/cases/${f.number}` }, f.number)),
            h("td", {}, h("span", { class: `badge kind-${f.kind}` }, tv("kind", f.kind))),
            h("td", {}, h("span", { class: `badge state-${f.state}` }, tv("state", f.state))),
            h("td", {}, cameraName(f.camera_id)),
            h("td", { class: "mono" }, `${f.lon.toFixed(5)}, ${f.lat.toFixed(5)}`),
          ),
        ),
      ),
    ),
  );
}

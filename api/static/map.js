// A map of findings that needs no tiles and no network: longitude and latitude scaled to fit an
// SVG (equirectangular, x shrunk by cos(latitude) so that distances are true), a degree grid, a
// scale bar, cameras as squares and cases as dots coloured by kind. A dot opens its case.

import { app, cameraName, loadCameras, navigate } from "./app.js";
import { t, tv } from "./i18n.js";
import { api, fill, h, hashWith } from "./util.js";

const W = 1000;
const H = 600;
const MARGIN = 56;
const MIN_SPAN = 0.004; // degrees: about 400 m, so that one place is not blown up to the whole map
const METERS_PER_DEGREE = 111_320;
export const KIND_COLORS = { fume: "#d9480f", occupation: "#1971c2", construction: "#7048e8" };

function niceStep(span, lines) {
  const raw = span / lines;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
}

/** The largest 1, 2 or 5 times a power of ten that is at most `value`. */
function niceFloor(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  return [5, 2, 1].map((m) => m * power).find((s) => s <= value) || power;
}

function decimals(step) {
  return Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
}

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
  const all = [...findings, ...cameras];
  let [west, east] = [Math.min(...all.map((p) => p.lon)), Math.max(...all.map((p) => p.lon))];
  let [south, north] = [Math.min(...all.map((p) => p.lat)), Math.max(...all.map((p) => p.lat))];
  const lat0 = (south + north) / 2;
  const kx = Math.cos((lat0 * Math.PI) / 180);
  // widen the smaller side so the box has the map's aspect, and never zoom past MIN_SPAN
  let spanX = Math.max((east - west) * kx, MIN_SPAN);
  let spanY = Math.max(north - south, MIN_SPAN);
  const aspect = (W - 2 * MARGIN) / (H - 2 * MARGIN);
  if (spanX / spanY > aspect) spanY = spanX / aspect;
  else spanX = spanY * aspect;
  spanX *= 1.15;
  spanY *= 1.15;
  const lon0 = (west + east) / 2;
  west = lon0 - spanX / kx / 2;
  east = lon0 + spanX / kx / 2;
  south = lat0 - spanY / 2;
  north = lat0 + spanY / 2;
  const scale = (W - 2 * MARGIN) / spanX; // px per degree of latitude
  const x = (lon) => MARGIN + (lon - west) * kx * scale;
  const y = (lat) => H - MARGIN - (lat - south) * scale;

  const svg = h("svg:svg", { viewBox: `0 0 ${W} ${H}`, class: "map-svg", testid: "map", role: "img", "aria-label": t("map_title") });
  const grid = h("svg:g", {});
  const step = niceStep(Math.max(north - south, east - west), 6);
  const digits = decimals(step);
  for (let lon = Math.ceil(west / step) * step; lon <= east; lon += step) {
    grid.append(h("svg:line", { class: "grid", x1: x(lon), x2: x(lon), y1: MARGIN / 2, y2: H - MARGIN / 2 }));
    grid.append(h("svg:text", { class: "grid-label", x: x(lon), y: H - 10, "text-anchor": "middle" }, `${lon.toFixed(digits)}°E`));
  }
  for (let lat = Math.ceil(south / step) * step; lat <= north; lat += step) {
    grid.append(h("svg:line", { class: "grid", x1: MARGIN / 2, x2: W - MARGIN / 2, y1: y(lat), y2: y(lat) }));
    grid.append(h("svg:text", { class: "grid-label", x: 6, y: y(lat) - 4 }, `${lat.toFixed(digits)}°N`));
  }
  svg.append(grid);

  // scale bar: a round length of about a fifth of the width
  const pxPerMeter = scale / METERS_PER_DEGREE;
  const meters = niceFloor(W / 5 / pxPerMeter);
  const barPx = meters * pxPerMeter;
  const bx = W - MARGIN - barPx;
  const by = H - MARGIN + 14;
  svg.append(
    h(
      "svg:g",
      { testid: "scale-bar" },
      h("svg:line", { class: "scale", x1: bx, x2: bx + barPx, y1: by, y2: by }),
      h("svg:line", { class: "scale", x1: bx, x2: bx, y1: by - 6, y2: by + 1 }),
      h("svg:line", { class: "scale", x1: bx + barPx, x2: bx + barPx, y1: by - 6, y2: by + 1 }),
      h("svg:text", { class: "scale-label", x: bx + barPx / 2, y: by - 8, "text-anchor": "middle" }, meters >= 1000 ? `${meters / 1000} km` : `${meters} m`),
    ),
    h("svg:text", { class: "scale-label", x: W - 26, y: 34, "text-anchor": "middle", "font-weight": "700" }, "N"),
    h("svg:path", { d: `M ${W - 26} 40 l -7 16 l 7 -5 l 7 5 z`, fill: "#1b2430" }),
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

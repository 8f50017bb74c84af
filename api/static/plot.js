// An offline lon/lat plot, shared by the map page and the survey page: no tiles and no network,
// equirectangular with x shrunk by cos(latitude) so that distances are true, a degree grid with
// labels, a scale bar and a north arrow. The caller draws its own points on the returned SVG.

import { h } from "./util.js";

export const METERS_PER_DEGREE = 111_320;

/** The smallest 1, 2, 5 or 10 times a power of ten that gives at most `lines` steps over `span`. */
export function niceStep(span, lines) {
  const raw = span / lines;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
}

/** The largest 1, 2 or 5 times a power of ten that is at most `value`. */
export function niceFloor(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  return [5, 2, 1].map((m) => m * power).find((s) => s <= value) || power;
}

/** How many decimals a grid label needs for a grid of `step` degrees. */
export function decimals(step) {
  return Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
}

/**
 * An SVG of `width` × `height` framing `coords` ([lon, lat] pairs) with a degree grid, a scale bar
 * and north drawn; returns {svg, x, y}, x(lon) and y(lat) giving the SVG position of a place.
 *
 * minSpan: the smallest span in degrees shown, so that one place is not blown up to the whole plot;
 * pad: how much wider than the points the frame is (1.15 = 15 %);
 * lonLabelInset: how far above the bottom edge the longitude labels stand;
 * scaleBarGap: how far below the framed area the scale bar runs;
 * attrs: the SVG's own attributes (class, testid, aria-label, ...), besides its viewBox.
 */
export function lonLatPlot(coords, { width: W, height: H, margin: MARGIN, minSpan, pad, lonLabelInset, scaleBarGap, attrs }) {
  let [west, east] = [Math.min(...coords.map((c) => c[0])), Math.max(...coords.map((c) => c[0]))];
  let [south, north] = [Math.min(...coords.map((c) => c[1])), Math.max(...coords.map((c) => c[1]))];
  const lat0 = (south + north) / 2;
  const kx = Math.cos((lat0 * Math.PI) / 180);
  // widen the smaller side so the box has the plot's aspect, and never zoom past minSpan
  let spanX = Math.max((east - west) * kx, minSpan);
  let spanY = Math.max(north - south, minSpan);
  const aspect = (W - 2 * MARGIN) / (H - 2 * MARGIN);
  if (spanX / spanY > aspect) spanY = spanX / aspect;
  else spanX = spanY * aspect;
  spanX *= pad;
  spanY *= pad;
  const lon0 = (west + east) / 2;
  west = lon0 - spanX / kx / 2;
  east = lon0 + spanX / kx / 2;
  south = lat0 - spanY / 2;
  north = lat0 + spanY / 2;
  const scale = (W - 2 * MARGIN) / spanX; // px per degree of latitude
  const x = (lon) => MARGIN + (lon - west) * kx * scale;
  const y = (lat) => H - MARGIN - (lat - south) * scale;

  const svg = h("svg:svg", { viewBox: `0 0 ${W} ${H}`, ...attrs });
  const grid = h("svg:g", {});
  const step = niceStep(Math.max(north - south, east - west), 6);
  const digits = decimals(step);
  for (let lon = Math.ceil(west / step) * step; lon <= east; lon += step) {
    grid.append(h("svg:line", { class: "grid", x1: x(lon), x2: x(lon), y1: MARGIN / 2, y2: H - MARGIN / 2 }));
    grid.append(h("svg:text", { class: "grid-label", x: x(lon), y: H - lonLabelInset, "text-anchor": "middle" }, `${lon.toFixed(digits)}°E`));
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
  const by = H - MARGIN + scaleBarGap;
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
  return { svg, x, y };
}

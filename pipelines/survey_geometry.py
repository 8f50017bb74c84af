"""Plane geometry for drone surveys: polygons from GeoJSON, point-in-polygon, clustering by distance.

Survey geometry is small and local (a few hundred metres), so it is done on the ENU
plane of `vision.geo` around one origin per survey, in metres. Nothing here needs
shapely (a development-only dependency); the tests check these functions against it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from vision.geo import latlon_to_enu_array


class GeometryError(ValueError):
    """A polygon file or record that cannot be read as polygons; the message names where."""


def points_in_ring(points: npt.ArrayLike, ring: npt.ArrayLike) -> np.ndarray:
    """Whether each (x, y) row of `points` lies inside the simple polygon `ring` (M, 2): bool (N,).

    Even-odd ray casting; the ring may be given closed (first point repeated) or open.
    A point exactly on an edge may count as either inside or outside.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    poly = np.asarray(ring, dtype=np.float64)
    if poly.ndim != 2 or poly.shape[1] != 2:
        raise ValueError(f"ring must have shape (M, 2), but got shape {poly.shape}")
    if len(poly) >= 2 and np.array_equal(poly[0], poly[-1]):
        poly = poly[:-1]
    if len(poly) < 3:
        raise ValueError(f"a ring needs at least 3 distinct corners, but got {len(poly)}")
    x, y = pts[:, 0:1], pts[:, 1:2]  # (N, 1) against edges (1, M)
    x1, y1 = poly[:, 0][None, :], poly[:, 1][None, :]
    x2, y2 = np.roll(poly[:, 0], -1)[None, :], np.roll(poly[:, 1], -1)[None, :]
    straddles = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing_x = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    crosses = straddles & (x < crossing_x)
    return np.asarray(np.count_nonzero(crosses, axis=1) % 2 == 1)


def ring_area(ring: npt.ArrayLike) -> float:
    """Area of a simple polygon (M, 2) by the shoelace formula, in the square of its units."""
    poly = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def convex_overlap(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Area shared by two convex polygons (M, 2), e.g. two images' ground footprints."""
    pa = np.asarray(a, dtype=np.float32).reshape(-1, 1, 2)
    pb = np.asarray(b, dtype=np.float32).reshape(-1, 1, 2)
    area, _ = cv2.intersectConvexConvex(pa, pb)
    return float(area)


@dataclass(frozen=True, slots=True)
class GeoPolygon:
    """One polygon of a GeoJSON file: rings as (lon, lat) in GeoJSON order, the first the outline,
    the others holes, and the feature's properties."""

    rings: tuple[tuple[tuple[float, float], ...], ...]
    properties: Mapping[str, Any] = field(default_factory=dict)
    feature: int = 0  # index of the feature in its file

    def to_json(self) -> dict[str, Any]:
        return {"rings": [[list(p) for p in ring] for ring in self.rings], "properties": dict(self.properties),
                "feature": self.feature}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GeoPolygon:
        rings = tuple(tuple((float(p[0]), float(p[1])) for p in ring) for ring in data["rings"])
        return cls(rings, dict(data.get("properties") or {}), int(data.get("feature", 0)))


def _ring(raw: Any, where: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(raw, list) or len(raw) < 3:
        raise GeometryError(f"{where}: a ring is a list of at least 3 [lon, lat] positions")
    out = []
    for k, position in enumerate(raw):
        if not isinstance(position, list | tuple) or len(position) < 2:
            raise GeometryError(f"{where}: position {k} is {position!r}, not [lon, lat]")
        try:
            lon, lat = float(position[0]), float(position[1])
        except (TypeError, ValueError) as e:
            raise GeometryError(f"{where}: position {k} is {position!r}, not numbers") from e
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            raise GeometryError(
                f"{where}: position {k} ({lon}, {lat}) is not a longitude, latitude pair (GeoJSON puts lon first)"
            )
        out.append((lon, lat))
    if len(set(out)) < 3:
        raise GeometryError(f"{where}: a ring needs at least 3 distinct positions")
    return tuple(out)


def polygons_from_geojson(document: Any, *, source: str) -> list[GeoPolygon]:
    """The polygons of a GeoJSON FeatureCollection, Feature, Polygon or MultiPolygon.

    A MultiPolygon feature gives one `GeoPolygon` per part, each with the feature's
    properties. Other geometries (points, lines) are refused, naming the feature.
    """
    if not isinstance(document, Mapping):
        raise GeometryError(f"{source}: not a GeoJSON object")
    kind = document.get("type")
    if kind == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list):
            raise GeometryError(f"{source}: a FeatureCollection needs a 'features' list")
    elif kind == "Feature":
        features = [document]
    elif kind in ("Polygon", "MultiPolygon"):
        features = [{"type": "Feature", "properties": {}, "geometry": document}]
    else:
        raise GeometryError(f"{source}: expected a FeatureCollection, Feature or Polygon, but got type {kind!r}")
    out: list[GeoPolygon] = []
    for index, feature in enumerate(features):
        where = f"{source} feature {index}"
        geometry = feature.get("geometry") if isinstance(feature, Mapping) else None
        if not isinstance(geometry, Mapping):
            raise GeometryError(f"{where}: has no geometry")
        properties = feature.get("properties") or {}
        coordinates = geometry.get("coordinates")
        if geometry.get("type") == "Polygon":
            parts = [coordinates]
        elif geometry.get("type") == "MultiPolygon":
            parts = coordinates if isinstance(coordinates, list) else [None]
        else:
            raise GeometryError(f"{where}: geometry is a {geometry.get('type')!r}; only (Multi)Polygons are areas")
        for part in parts:
            if not isinstance(part, list) or not part:
                raise GeometryError(f"{where}: a polygon is a list of rings")
            out.append(GeoPolygon(tuple(_ring(r, where) for r in part), dict(properties), index))
    return out


class PlanarPolygons:
    """Polygons projected once onto the survey's ENU plane, for fast point-in-polygon queries."""

    def __init__(self, polygons: Sequence[GeoPolygon], origin: tuple[float, float]) -> None:
        self.polygons = list(polygons)
        self._rings: list[list[np.ndarray]] = []
        boxes = []
        for polygon in self.polygons:
            rings = [latlon_to_enu_array(*origin, [(lat, lon) for lon, lat in ring]) for ring in polygon.rings]
            self._rings.append(rings)
            outline = rings[0]
            boxes.append((*outline.min(axis=0), *outline.max(axis=0)))
        self._boxes = np.array(boxes, np.float64).reshape(-1, 4)

    def __len__(self) -> int:
        return len(self.polygons)

    def containing(self, en: npt.ArrayLike) -> list[int | None]:
        """For each (east, north) row, the index of the first polygon holding it, or None."""
        pts = np.asarray(en, dtype=np.float64).reshape(-1, 2)
        found: list[int | None] = [None] * len(pts)
        if not len(self.polygons) or not len(pts):
            return found
        open_rows = np.ones(len(pts), bool)
        for k, rings in enumerate(self._rings):
            x0, y0, x1, y1 = self._boxes[k]
            near = open_rows & (pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1)
            rows = np.flatnonzero(near)
            if not rows.size:
                continue
            inside = points_in_ring(pts[rows], rings[0])
            for hole in rings[1:]:
                inside &= ~points_in_ring(pts[rows], hole)
            for row in rows[inside]:
                found[int(row)] = k
                open_rows[row] = False
        return found


def cluster_by_distance(
    en: npt.ArrayLike, groups: Sequence[int], scores: Sequence[float], radius: npt.ArrayLike
) -> list[list[int]]:
    """Group observations of the same objects seen from several images, greedily by score.

    The best unassigned observation starts a cluster; from every other group (image) the
    nearest unassigned observation within reach joins it, reach being the larger of the
    two observations' `radius`. A cluster holds at most one observation per group: two
    detections in one image are two objects, however close. Returns lists of indices,
    best first.
    """
    pts = np.asarray(en, dtype=np.float64).reshape(-1, 2)
    n = len(pts)
    if len(groups) != n or len(scores) != n:
        raise ValueError(f"en, groups and scores must align, but got {n}, {len(groups)} and {len(scores)} rows")
    reach = np.broadcast_to(np.asarray(radius, dtype=np.float64), (n,))
    if n and not (np.isfinite(reach).all() and (reach > 0).all()):
        raise ValueError("radius must be positive and finite")
    if n and not np.isfinite(pts).all():
        raise ValueError("en must be finite")
    cell = float(reach.max()) if n else 1.0
    grid: dict[tuple[int, int], list[int]] = defaultdict(list)
    keys = np.floor(pts / cell).astype(np.int64)
    for i, (cx, cy) in enumerate(keys):
        grid[(int(cx), int(cy))].append(i)
    order = sorted(range(n), key=lambda i: (-float(scores[i]), i))
    taken = np.zeros(n, bool)
    clusters: list[list[int]] = []
    for seed in order:
        if taken[seed]:
            continue
        taken[seed] = True
        members = [seed]
        best: dict[int, tuple[float, int]] = {}
        cx, cy = int(keys[seed][0]), int(keys[seed][1])
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for j in grid.get((cx + dx, cy + dy), ()):
                    if taken[j] or groups[j] == groups[seed]:
                        continue
                    d = math.dist(pts[seed], pts[j])
                    if d <= max(reach[seed], reach[j]) and (groups[j] not in best or d < best[groups[j]][0]):
                        best[groups[j]] = (d, j)
        for _, j in sorted(best.values()):
            taken[j] = True
            members.append(j)
        clusters.append(members)
    return clusters

"""A synthetic two-flight drone survey with exact ground truth (issue 8).

A small town around a configurable origin: a street grid (carriageways with lane
markings, sidewalks with trees), blocks cut into lots that hold flat-roofed buildings
(varied roof colours, parapets, air conditioners and water tanks) or open parcels (bare
soil, grass, gravel), and parked cars. A drone flies a lawnmower pattern over it twice,
nadir, with ~70% forward and ~60% side overlap and a little jitter in position, height
and yaw. Between the flights:

- the light changes: sun direction and height (so shadows move and change length),
  brightness and white balance, haze;
- new structures appear: rooftop sheds and extra storeys on existing roofs, new
  buildings on open parcels (10-80 m², a roof colour unlike what was there, and a
  shadow as the cue to their height); some stand in parcels that hold a permit;
- street stalls and market umbrellas (2-4 m) appear on sidewalks and at road edges;
- the parked cars are different.

The world is flat (heights show only as shadows) and lies on the plane of the take-off
point, so `vision.geo.GroundProjector` is exact for it: every image is rendered by
projecting the world's polygons with the shot's own projector, and the truth is given
in lat/lon, so `latlon_to_pixel` on the written file's metadata lands on the pixels the
truth describes.

`write_two_flight_survey(out_dir, seed=...)` writes:

    baseline/DJI_0001.JPG ...   flight 1, EXIF GPS + DJI XMP (vision.geo's writer)
    survey/DJI_0001.JPG ...     flight 2
    permits.geojson             FeatureCollection of permitted parcels (lon/lat), with
                                permit_no, holder, valid_until
    streets.geojson             carriageway ("road") and sidewalk polygons
    baseline_ortho.tif          with `orthomosaic=True`: flight 1 as an orthomosaic, an RGBA
                                GeoTIFF on the UTM grid (as ODM writes it), transparent where
                                flight 1 saw nothing, with two overviews
    truth.json                  format "nonsite.synthetic.survey/1": origin, camera,
                                both flights (images, shots, light), structures (centre,
                                polygon [[lon, lat], ...], area_m2, height_m, permitted,
                                permit_no, roof_bgr), stalls (centre, size, place), cars

Everything follows from the seed: the same seed writes byte-identical files.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from datasets.errors import DatasetError, ImageWriteError
from vision.geo import (
    DRONE_CAMERAS,
    CameraIntrinsics,
    DroneShot,
    GroundProjector,
    encode_drone_jpeg,
    enu_to_latlon_array,
    latlon_to_enu,
    read_drone_shot,
)
from vision.ortho import write_geotiff

logger = logging.getLogger(__name__)

FORMAT = "nonsite.synthetic.survey/1"
DEFAULT_ORIGIN = (30.2741, 120.1551)  # a county town's centre in Zhejiang
FORWARD_OVERLAP = 0.7
SIDE_OVERLAP = 0.6
TAKEOFF_ALTITUDE_M = 12.0  # above sea level, for AbsoluteAltitude
CHINA_TZ = timezone(timedelta(hours=8))

Color = tuple[int, int, int]

_FILL, _SHADOW, _LINE = 0, 1, 2

_GROUND: dict[str, tuple[Color, float]] = {  # BGR, texture amplitude
    "field": ((70, 118, 96), 0.22),
    "soil": ((92, 124, 152), 0.22),
    "grass": ((72, 142, 94), 0.2),
    "gravel": ((148, 154, 158), 0.14),
    "yard": ((128, 132, 134), 0.1),
    "road": ((84, 86, 90), 0.08),
    "sidewalk": ((166, 170, 176), 0.06),
    "marking": ((232, 234, 236), 0.02),
    "tree": ((44, 98, 52), 0.28),
}
_ROOFS: tuple[Color, ...] = (
    (150, 150, 146),  # concrete
    (188, 190, 186),  # light concrete
    (168, 122, 64),  # blue-grey tin
    (66, 84, 146),  # red-brown tile
    (74, 78, 84),  # dark felt
    (104, 138, 112),  # green coating
    (218, 220, 216),  # white coating
)
_NEW_ROOFS: tuple[Color, ...] = (
    (196, 122, 38),  # blue steel sheet, the classic illegal rooftop shed
    (236, 236, 230),  # white steel sheet
    (40, 118, 214),  # orange
    (60, 60, 190),  # red
    (40, 150, 90),  # green
)
_UMBRELLAS: tuple[Color, ...] = ((40, 40, 200), (190, 90, 30), (40, 200, 230), (60, 160, 60), (235, 235, 235))
_GOODS: tuple[Color, ...] = (
    (30, 160, 230),
    (40, 40, 180),
    (200, 120, 40),
    (60, 180, 60),
    (200, 200, 60),
    (170, 60, 170),
)
_CARS: tuple[Color, ...] = ((235, 235, 235), (30, 30, 32), (170, 172, 175), (40, 40, 160), (150, 90, 40))


# --- public truth ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StructureTruth:
    """A structure that is new in flight 2: where, how big, and whether a permit covers it."""

    id: str
    kind: str  # "rooftop_shed", "extra_storey" or "new_building"
    lat: float
    lon: float
    polygon_lonlat: tuple[tuple[float, float], ...]  # GeoJSON order, closed ring
    area_m2: float
    height_m: float
    permitted: bool
    permit_no: str | None
    parcel_id: str
    roof_bgr: Color


@dataclass(frozen=True, slots=True)
class StallTruth:
    """A street stall or market umbrella that is new in flight 2."""

    id: str
    kind: str  # "stall" or "umbrella"
    lat: float
    lon: float
    size_m: tuple[float, float]  # length and width; an umbrella's diameter twice
    place: str  # "sidewalk" or "road_edge"
    polygon_lonlat: tuple[tuple[float, float], ...]
    color_bgr: Color


@dataclass(frozen=True, slots=True)
class FlightTruth:
    """One flight: its images in order, the shot each was rendered from, and its light."""

    name: str  # "baseline" or "survey"
    images: tuple[Path, ...]
    shots: tuple[DroneShot, ...]
    sun_azimuth_deg: float
    sun_elevation_deg: float
    gain_bgr: tuple[float, float, float]
    haze: float
    shadow_darkness: float
    cars_latlon: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class SurveyTruth:
    """What `write_two_flight_survey` wrote and what is really there."""

    out_dir: Path
    origin: tuple[float, float]  # lat, lon of the world's ENU origin
    baseline: FlightTruth
    survey: FlightTruth
    structures: tuple[StructureTruth, ...]
    stalls: tuple[StallTruth, ...]
    permits_path: Path
    streets_path: Path
    truth_path: Path
    orthomosaic_path: Path | None = None


# --- the world ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Shape:
    """One drawing operation: a polygon (or polyline) in world ENU metres and what it paints."""

    en: np.ndarray  # (N, 2)
    feature: int  # palette index; unused for shadows
    kind: int = _FILL
    elevated: bool = False  # a fill above the ground hides the shadows drawn before it
    width_m: float = 0.0  # polylines


@dataclass(slots=True)
class _Lot:
    id: str
    en: np.ndarray  # (4, 2) the parcel
    building: bool
    roof: np.ndarray | None  # (4, 2) inside the parcel
    surface: Color  # what a new structure stands on
    height_m: float
    centre_uv: tuple[float, float]
    size_uv: tuple[float, float]
    roof_size_uv: tuple[float, float]


@dataclass(slots=True)
class _Strip:
    """A sidewalk along one side of a block, in grid coordinates: where stalls go."""

    centre_uv: tuple[float, float]
    along: tuple[float, float]  # unit vector along the kerb
    outward: tuple[float, float]  # unit vector from the block towards the road
    length: float
    width: float


@dataclass(slots=True)
class _World:
    origin: tuple[float, float]
    angle: float  # radians: grid axes rotated from east/north
    half_extent: tuple[float, float]  # metres east and north that images can see
    palette: list[tuple[Color, float]] = field(default_factory=list)
    ground: list[_Shape] = field(default_factory=list)  # drawn in both flights, beneath everything
    buildings: list[tuple[np.ndarray, float]] = field(default_factory=list)  # roof and height, for shadows
    roofs: list[_Shape] = field(default_factory=list)
    trees: list[tuple[np.ndarray, float, int]] = field(default_factory=list)  # centre, radius, feature
    lots: list[_Lot] = field(default_factory=list)
    strips: list[_Strip] = field(default_factory=list)
    roads: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # carriageway polygon, axis
    streets_geo: list[dict[str, Any]] = field(default_factory=list)

    def feature(self, color: Color, amp: float) -> int:
        self.palette.append((color, amp))
        return len(self.palette) - 1

    def to_en(self, uv: np.ndarray) -> np.ndarray:
        c, s = math.cos(self.angle), math.sin(self.angle)
        uv = np.asarray(uv, np.float64).reshape(-1, 2)
        return np.stack([uv[:, 0] * c - uv[:, 1] * s, uv[:, 0] * s + uv[:, 1] * c], axis=1)

    def to_latlon(self, en: np.ndarray) -> np.ndarray:
        return enu_to_latlon_array(*self.origin, en)

    def ring_lonlat(self, en: np.ndarray) -> list[list[float]]:
        latlon = self.to_latlon(en)
        ring = [[round(float(lon), 9), round(float(lat), 9)] for lat, lon in latlon]
        return [*ring, ring[0]]


def _rect_uv(cu: float, cv: float, w: float, h: float, along: tuple[float, float] = (1.0, 0.0)) -> np.ndarray:
    """Corners of a w × h rectangle centred at (cu, cv), w measured along `along`."""
    ax, ay = along
    px, py = -ay, ax
    hw, hh = w / 2.0, h / 2.0
    return np.array(
        [
            [cu - ax * hw - px * hh, cv - ay * hw - py * hh],
            [cu + ax * hw - px * hh, cv + ay * hw - py * hh],
            [cu + ax * hw + px * hh, cv + ay * hw + py * hh],
            [cu - ax * hw + px * hh, cv - ay * hw + py * hh],
        ]
    )


def _disc_uv(cu: float, cv: float, r: float, n: int = 24) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return np.stack([cu + r * np.cos(t), cv + r * np.sin(t)], axis=1)


def _color(values: Any) -> Color:
    b, g, r = (int(v) for v in values)
    return b, g, r


def _jitter_color(rng: np.random.Generator, color: Color, spread: int) -> Color:
    c = np.clip(np.array(color) + rng.integers(-spread, spread + 1, 3), 0, 255)
    return int(c[0]), int(c[1]), int(c[2])


def _build_world(
    rng: np.random.Generator, origin: tuple[float, float], half_extent: tuple[float, float], area: tuple[float, float]
) -> _World:
    world = _World(origin=origin, angle=math.radians(float(rng.uniform(-25.0, 25.0))), half_extent=half_extent)
    world.feature(*_GROUND["field"])  # feature 0: the fields around the town, where nothing else is drawn
    reach = math.hypot(*half_extent) + 20.0  # the grid is laid out in its own (rotated) frame
    road_f = world.feature(*_GROUND["road"])
    walk_f = world.feature(*_GROUND["sidewalk"])
    mark_f = world.feature(*_GROUND["marking"])
    yard_f = world.feature(*_GROUND["yard"])

    def street_positions() -> list[tuple[float, float, float]]:
        pos, out = -reach + float(rng.uniform(0, 30)), []
        while pos < reach:
            out.append((pos, float(rng.choice([8.0, 10.0, 12.0, 14.0])), float(rng.uniform(2.5, 4.0))))
            pos += float(rng.uniform(55.0, 80.0))
        return out

    us, vs = street_positions(), street_positions()
    # carriageways span the whole grid; sidewalks ring each block (drawn before, so roads win at crossings)
    for axis, streets in ((0, us), (1, vs)):
        for k, (p, road_w, _) in enumerate(streets):
            if axis == 0:  # a north-south street (in grid terms) at u = p
                uv = _rect_uv(p, 0.0, road_w, 2 * reach)
                line = np.array([[p, -reach], [p, reach]])
            else:
                uv = _rect_uv(0.0, p, 2 * reach, road_w)
                line = np.array([[-reach, p], [reach, p]])
            en = world.to_en(uv)
            world.roads.append((en, world.to_en(line)))
            world.streets_geo.append(
                {"kind": "road", "name": f"{'NS' if axis == 0 else 'EW'} street {k + 1}", "en": en}
            )
    blocks = []
    for (u0, ru0, su0), (u1, ru1, su1) in itertools.pairwise(us):
        for (v0, rv0, sv0), (v1, rv1, sv1) in itertools.pairwise(vs):
            # the block inside its sidewalks, and the sidewalk widths on its four sides
            bu0, bu1 = u0 + ru0 / 2 + su0, u1 - ru1 / 2 - su1
            bv0, bv1 = v0 + rv0 / 2 + sv0, v1 - rv1 / 2 - sv1
            if bu1 - bu0 > 12 and bv1 - bv0 > 12:
                blocks.append((bu0, bv0, bu1, bv1, su0, sv0, su1, sv1))
    for bu0, bv0, bu1, bv1, su0, sv0, su1, sv1 in blocks:
        outer = np.array(
            [[bu0 - su0, bv0 - sv0], [bu1 + su1, bv0 - sv0], [bu1 + su1, bv1 + sv1], [bu0 - su0, bv1 + sv1]]
        )
        world.ground.append(_Shape(world.to_en(outer), walk_f))
        sides = (  # centre, along, outward, length, width
            (((bu0 + bu1) / 2, bv0 - sv0 / 2), (1.0, 0.0), (0.0, -1.0), bu1 - bu0, sv0),
            (((bu0 + bu1) / 2, bv1 + sv1 / 2), (1.0, 0.0), (0.0, 1.0), bu1 - bu0, sv1),
            ((bu0 - su0 / 2, (bv0 + bv1) / 2), (0.0, 1.0), (-1.0, 0.0), bv1 - bv0, su0),
            ((bu1 + su1 / 2, (bv0 + bv1) / 2), (0.0, 1.0), (1.0, 0.0), bv1 - bv0, su1),
        )
        for centre, along, outward, length, width in sides:
            strip = _Strip(centre, along, outward, length, width)
            world.streets_geo.append(
                {"kind": "sidewalk", "name": "sidewalk", "en": world.to_en(_rect_uv(*centre, length, width, along))}
            )
            world.strips.append(strip)
            # street trees along the kerb, some of the time
            t = -length / 2 + float(rng.uniform(3, 8))
            while t < length / 2 - 3:
                if rng.random() < 0.45:
                    r = float(rng.uniform(1.5, 2.8))
                    off = width / 2 - 0.6
                    cu = centre[0] + along[0] * t + outward[0] * off
                    cv = centre[1] + along[1] * t + outward[1] * off
                    tree_f = world.feature(_jitter_color(rng, _GROUND["tree"][0], 12), _GROUND["tree"][1])
                    world.trees.append((world.to_en(np.array([[cu, cv]]))[0], r, tree_f))
                t += float(rng.uniform(8, 13))
    # carriageways and their dashed centre lines over the sidewalks
    for en, _ in world.roads:
        world.ground.append(_Shape(en, road_f))
    for _, centre_line in world.roads:
        start, end = centre_line
        length = float(np.hypot(*(end - start)))
        direction = (end - start) / length
        t = float(rng.uniform(0, 9))
        while t < length:
            a, b = start + direction * t, start + direction * min(t + 3.0, length)
            world.ground.append(_Shape(np.array([a, b]), mark_f, kind=_LINE, width_m=0.15))
            t += 9.0
    # lots: each block cut along its longer side, in two rows when deep enough
    shrunk = (area[0] / 2 - 10.0, area[1] / 2 - 10.0)
    n_lot = 0
    for bu0, bv0, bu1, bv1, *_ in blocks:
        world.ground.append(
            _Shape(world.to_en(_rect_uv((bu0 + bu1) / 2, (bv0 + bv1) / 2, bu1 - bu0, bv1 - bv0)), yard_f)
        )
        long_u = bu1 - bu0 >= bv1 - bv0
        length, depth = (bu1 - bu0, bv1 - bv0) if long_u else (bv1 - bv0, bu1 - bu0)
        rows = 2 if depth > 36 else 1
        n_cols = max(1, round(length / float(rng.uniform(15, 24))))
        for row in range(rows):
            for col in range(n_cols):
                a0, a1 = length * col / n_cols, length * (col + 1) / n_cols
                d0, d1 = depth * row / rows, depth * (row + 1) / rows
                if long_u:
                    cu, cv, su, sv = bu0 + (a0 + a1) / 2, bv0 + (d0 + d1) / 2, a1 - a0, d1 - d0
                else:
                    cu, cv, su, sv = bu0 + (d0 + d1) / 2, bv0 + (a0 + a1) / 2, d1 - d0, a1 - a0
                n_lot += 1
                lot_en = world.to_en(_rect_uv(cu, cv, su, sv))
                is_building = rng.random() < 0.7
                if is_building:
                    setback_u, setback_v = float(rng.uniform(0.6, 2.5)), float(rng.uniform(0.6, 2.5))
                    ru, rv = su - 2 * setback_u, sv - 2 * setback_v
                    roof_color = _jitter_color(rng, _ROOFS[int(rng.integers(len(_ROOFS)))], 10)
                    roof_en = world.to_en(_rect_uv(cu, cv, ru, rv))
                    height = float(rng.choice([2, 3, 4, 5, 6, 8, 10])) * 3.0 + float(rng.uniform(0, 1.0))
                    world.buildings.append((roof_en, height))
                    roof_f = world.feature(roof_color, float(rng.uniform(0.04, 0.09)))
                    world.roofs.append(_Shape(roof_en, roof_f, elevated=True))
                    _roof_details(world, rng, cu, cv, ru, rv, roof_color)
                    lot = _Lot(f"P{n_lot:04d}", lot_en, True, roof_en, roof_color, height, (cu, cv), (su, sv), (ru, rv))
                else:
                    kind = str(rng.choice(["soil", "grass", "gravel"], p=[0.45, 0.35, 0.2]))
                    color, amp = _GROUND[kind]
                    color = _jitter_color(rng, color, 8)
                    world.ground.append(_Shape(lot_en, world.feature(color, amp)))
                    lot = _Lot(f"P{n_lot:04d}", lot_en, False, None, color, 0.0, (cu, cv), (su, sv), (su, sv))
                centre = world.to_en(np.array([[cu, cv]]))[0]
                if abs(centre[0]) <= shrunk[0] and abs(centre[1]) <= shrunk[1]:
                    world.lots.append(lot)
    return world


def _roof_details(
    world: _World, rng: np.random.Generator, cu: float, cv: float, ru: float, rv: float, roof: Color
) -> None:
    """A parapet, air conditioners and water tanks: in both flights, so not changes."""
    parapet = world.feature(_color(c * 0.72 for c in roof), 0.04)
    ring = _rect_uv(cu, cv, ru - 0.3, rv - 0.3)
    world.roofs.append(
        _Shape(world.to_en(np.vstack([ring, ring[:1]])), parapet, kind=_LINE, elevated=True, width_m=0.3)
    )
    for _ in range(int(rng.integers(0, 4))):
        w, h = float(rng.uniform(0.8, 1.2)), float(rng.uniform(0.5, 0.8))
        du, dv = float(rng.uniform(-ru / 2 + 1.2, ru / 2 - 1.2)), float(rng.uniform(-rv / 2 + 1.2, rv / 2 - 1.2))
        world.roofs.append(
            _Shape(world.to_en(_rect_uv(cu + du, cv + dv, w, h)), world.feature((205, 208, 210), 0.05), elevated=True)
        )
    if rng.random() < 0.4:
        du, dv = float(rng.uniform(-ru / 2 + 1.5, ru / 2 - 1.5)), float(rng.uniform(-rv / 2 + 1.5, rv / 2 - 1.5))
        tank = world.feature(((200, 140, 60), (225, 228, 230))[int(rng.integers(2))], 0.03)
        world.roofs.append(
            _Shape(world.to_en(_disc_uv(cu + du, cv + dv, float(rng.uniform(0.5, 0.8)), 16)), tank, elevated=True)
        )


# --- what changes -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Placed:
    truth: dict[str, Any]
    shapes: list[_Shape]  # fills, drawn after their shadow
    outline: np.ndarray  # footprint whose shadow it casts
    height_m: float
    centre_en: np.ndarray
    radius_m: float
    canopy: bool = False  # raised on a pole (an umbrella): the shadow is the outline moved, not a prism's


def _color_unlike(
    rng: np.random.Generator, palette: Sequence[Color], under: Color, min_distance: float = 90.0
) -> Color:
    choices = [c for c in palette if math.dist(c, under) >= min_distance] or list(palette)
    return choices[int(rng.integers(len(choices)))]


def _place_structures(world: _World, rng: np.random.Generator, n: int) -> list[_Placed]:
    """New structures on roofs and open parcels, one per lot, each fully inside its roof or parcel."""
    lots = list(world.lots)
    order = rng.permutation(len(lots))
    placed: list[_Placed] = []
    for index in order:
        if len(placed) == n:
            break
        lot = lots[int(index)]
        if lot.building:
            kind = "rooftop_shed" if rng.random() < 0.65 else "extra_storey"
            low, high = (10.0, 40.0) if kind == "rooftop_shed" else (40.0, 80.0)
            height = float(rng.uniform(2.5, 3.2)) if kind == "rooftop_shed" else float(rng.uniform(3.0, 3.5))
        else:
            kind, low, high, height = "new_building", 20.0, 80.0, float(rng.uniform(3.0, 6.0))
        room_u, room_v = lot.roof_size_uv[0] - 2.0, lot.roof_size_uv[1] - 2.0  # a metre clear of every edge
        if room_u * room_v < 10.0 / 0.6 or room_u <= 0:
            continue  # too small a roof or parcel for a 10 m² structure
        area = float(rng.uniform(low, high))
        aspect = float(rng.uniform(1.0, 2.2))
        w, h = math.sqrt(area * aspect), math.sqrt(area / aspect)
        if rng.random() < 0.5:
            w, h = h, w
        scale = min(1.0, room_u / w, room_v / h, math.sqrt(0.6 * room_u * room_v / (w * h)))
        w, h = w * scale, h * scale
        if w * h < 10.0:
            continue
        cu = lot.centre_uv[0] + float(rng.uniform(-(room_u - w) / 2, (room_u - w) / 2))
        cv = lot.centre_uv[1] + float(rng.uniform(-(room_v - h) / 2, (room_v - h) / 2))
        roof = _color_unlike(rng, _NEW_ROOFS, lot.surface)
        en = world.to_en(_rect_uv(cu, cv, w, h))
        f = world.feature(roof, 0.05)
        centre = world.to_en(np.array([[cu, cv]]))[0]
        truth = {
            "kind": kind,
            "parcel_id": lot.id,
            "area_m2": round(w * h, 3),
            "height_m": round(height, 3),
            "roof_bgr": list(roof),
            "en": en,
            "centre_en": centre,
        }
        placed.append(_Placed(truth, [_Shape(en, f, elevated=True)], en, height, centre, math.hypot(w, h) / 2))
    if len(placed) < n:
        raise ValueError(
            f"n_structures={n} do not fit the survey area: only {len(placed)} lots have room; "
            "ask for fewer or a larger area_m"
        )
    return placed


def _near(centre: np.ndarray, radius: float, others: Sequence[tuple[np.ndarray, float]], gap: float) -> bool:
    return any(math.dist(centre, c) < radius + r + gap for c, r in others)


def _place_stalls(world: _World, rng: np.random.Generator, n: int, area: tuple[float, float]) -> list[_Placed]:
    """Stalls and umbrellas on sidewalks and at road edges inside the survey area, clear of trees and each other."""
    half = (area[0] / 2 - 5.0, area[1] / 2 - 5.0)
    strips = [s for s in world.strips if _inside(world.to_en(np.array([s.centre_uv]))[0], half, margin=s.length / 2)]
    if not strips and n:
        raise ValueError("the survey area holds no sidewalk for stalls; use a larger area_m")
    taken = [(c, r) for c, r, _ in world.trees]
    placed: list[_Placed] = []
    tries = 0
    while len(placed) < n:
        tries += 1
        if tries > 200 * max(n, 1):
            raise ValueError(f"n_stalls={n} do not fit the sidewalks of the survey area; ask for fewer")
        strip = strips[int(rng.integers(len(strips)))]
        kind = "umbrella" if rng.random() < 0.5 else "stall"
        if kind == "umbrella":
            size = (float(rng.uniform(2.0, 3.6)),) * 2
        else:
            size = (float(rng.uniform(2.0, 4.0)), float(rng.uniform(1.0, 2.0)))
        place = "sidewalk" if rng.random() < 0.7 else "road_edge"
        depth = size[1] / 2
        if place == "sidewalk":
            across = float(
                rng.uniform(
                    -strip.width / 2 + min(depth, strip.width / 2), strip.width / 2 - min(depth, strip.width / 2)
                )
            )
        else:
            across = strip.width / 2 + 0.3 + depth + float(rng.uniform(0.0, 0.8))
        along = float(rng.uniform(-strip.length / 2 + 2.5, strip.length / 2 - 2.5))
        cu = strip.centre_uv[0] + strip.along[0] * along + strip.outward[0] * across
        cv = strip.centre_uv[1] + strip.along[1] * along + strip.outward[1] * across
        centre = world.to_en(np.array([[cu, cv]]))[0]
        radius = math.hypot(*size) / 2
        if not _inside(centre, half) or _near(centre, radius, taken, 0.4):
            continue
        shapes, color = _stall_shapes(world, rng, kind, cu, cv, size, strip.along)
        outline = _disc_uv(cu, cv, size[0] / 2, 8) if kind == "umbrella" else _rect_uv(cu, cv, *size, strip.along)
        truth = {
            "kind": kind,
            "size_m": [round(size[0], 3), round(size[1], 3)],
            "place": place,
            "color_bgr": list(color),
            "en": world.to_en(outline),
            "centre_en": centre,
        }
        height = 2.3 if kind == "umbrella" else 0.9
        placed.append(_Placed(truth, shapes, world.to_en(outline), height, centre, radius, canopy=kind == "umbrella"))
        taken.append((centre, radius))
    return placed


def _stall_shapes(
    world: _World,
    rng: np.random.Generator,
    kind: str,
    cu: float,
    cv: float,
    size: tuple[float, float],
    along: tuple[float, float],
) -> tuple[list[_Shape], Color]:
    if kind == "umbrella":
        a, b = rng.choice(len(_UMBRELLAS), 2, replace=False)
        colors = (_UMBRELLAS[int(a)], _UMBRELLAS[int(b)] if rng.random() < 0.5 else _UMBRELLAS[int(a)])
        fa, fb = world.feature(colors[0], 0.04), world.feature(colors[1], 0.04)
        rib = world.feature(_color(c * 0.55 for c in colors[0]), 0.02)
        r = size[0] / 2
        spin = float(rng.uniform(0, math.pi / 4))
        corners = [
            (cu + r * math.cos(spin + k * math.pi / 4), cv + r * math.sin(spin + k * math.pi / 4)) for k in range(8)
        ]
        shapes = []
        for k in range(8):  # eight panels in alternating colours, ribs between them
            tri = np.array([[cu, cv], corners[k], corners[(k + 1) % 8]])
            shapes.append(_Shape(world.to_en(tri), fa if k % 2 == 0 else fb, elevated=True))
        for k in range(8):
            shapes.append(
                _Shape(world.to_en(np.array([[cu, cv], corners[k]])), rib, kind=_LINE, elevated=True, width_m=0.05)
            )
        shapes.append(_Shape(world.to_en(_disc_uv(cu, cv, 0.12, 8)), rib, elevated=True))
        return shapes, colors[0]
    table = ((70, 110, 160), (196, 198, 200), (60, 130, 60))[int(rng.integers(3))]
    shapes = [_Shape(world.to_en(_rect_uv(cu, cv, *size, along)), world.feature(table, 0.05), elevated=True)]
    ax, ay = along
    px, py = -ay, ax
    box = float(rng.uniform(0.3, 0.5))
    n_along, n_across = max(1, int((size[0] - 0.3) / (box + 0.1))), max(1, int((size[1] - 0.3) / (box + 0.1)))
    for i in range(n_along):
        for j in range(n_across):
            if rng.random() < 0.25:
                continue
            du = (i - (n_along - 1) / 2) * (box + 0.1)
            dv = (j - (n_across - 1) / 2) * (box + 0.1)
            good = world.feature(_GOODS[int(rng.integers(len(_GOODS)))], 0.08)
            g = _rect_uv(cu + ax * du + px * dv, cv + ay * du + py * dv, box, box, along)
            shapes.append(_Shape(world.to_en(g), good, elevated=True))
    return shapes, table


def _inside(en: np.ndarray, half: tuple[float, float], margin: float = 0.0) -> bool:
    return abs(en[0]) <= half[0] + margin and abs(en[1]) <= half[1] + margin


def _place_cars(world: _World, rng: np.random.Generator, avoid: Sequence[tuple[np.ndarray, float]]) -> list[_Placed]:
    """Cars parked along the kerbs, placed afresh for each flight."""
    white_glass = world.feature((40, 42, 46), 0.03)
    taken = list(avoid)
    cars: list[_Placed] = []
    for en, axis in world.roads:
        start, end = axis
        length = float(np.hypot(*(end - start)))
        direction = (end - start) / length
        normal = np.array([-direction[1], direction[0]])
        road_w = float(np.hypot(*(en[1] - en[0])))  # the rectangle's first side is across the road
        t = float(rng.uniform(0, 20))
        while t < length:
            side = 1.0 if rng.random() < 0.5 else -1.0
            centre = start + direction * t + normal * side * (road_w / 2 - 1.3)
            if _inside(centre, world.half_extent) and not _near(centre, 2.5, taken, 0.5):
                heading = direction if rng.random() < 0.5 else -direction
                body = world.feature(_CARS[int(rng.integers(len(_CARS)))], 0.03)
                outline = _rect_oriented(centre, heading, 4.5, 1.8)
                glass = _rect_oriented(centre + heading * 0.55, heading, 0.9, 1.5)
                shapes = [_Shape(outline, body, elevated=True), _Shape(glass, white_glass, elevated=True)]
                cars.append(_Placed({"centre_en": centre}, shapes, outline, 1.5, centre, 2.5))
                taken.append((centre, 2.5))
            t += float(rng.uniform(12, 45))
    return cars


def _rect_oriented(centre: np.ndarray, heading: np.ndarray, length: float, width: float) -> np.ndarray:
    side = np.array([-heading[1], heading[0]])
    h, w = heading * length / 2, side * width / 2
    return np.array([centre - h - w, centre + h - w, centre + h + w, centre - h + w])


# --- light and shadow ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Light:
    sun_azimuth_deg: float
    sun_elevation_deg: float
    gain_bgr: tuple[float, float, float]
    haze: float
    shadow_darkness: float


def _shadow_of(footprint: np.ndarray, height: float, light: _Light, *, hull: bool) -> np.ndarray:
    """Where an object of `footprint` raised `height` metres casts its shadow (on the plane below it)."""
    length = height / math.tan(math.radians(light.sun_elevation_deg))
    away = math.radians(light.sun_azimuth_deg + 180.0)
    moved = footprint + length * np.array([math.sin(away), math.cos(away)])
    if not hull:  # a canopy on a pole: only the canopy's own outline, moved
        return moved
    points = np.vstack([footprint, moved]).astype(np.float32)
    return cv2.convexHull(points)[:, 0, :].astype(np.float64)


# --- rendering -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Scene:
    """A flight's drawing list, its vertices projected once per image."""

    shapes: list[_Shape]
    latlon: np.ndarray  # every vertex of every shape, in order
    bounds: np.ndarray  # (len(shapes) + 1,) offsets into latlon
    light: _Light


def _scene(world: _World, light: _Light, changes: Sequence[Sequence[_Placed]], cars: Sequence[_Placed]) -> _Scene:
    shapes: list[_Shape] = list(world.ground)
    for roof, height in world.buildings:
        shapes.append(_Shape(_shadow_of(roof, height, light, hull=True), 0, kind=_SHADOW))
    for centre, r, _ in world.trees:
        shapes.append(_Shape(_shadow_of(_disc_from(centre, r), 5.0, light, hull=False), 0, kind=_SHADOW))
    for car in cars:
        shapes.append(_Shape(_shadow_of(car.outline, car.height_m, light, hull=True), 0, kind=_SHADOW))
    shapes.extend(world.roofs)
    for group in changes:
        for item in group:
            cast = _shadow_of(item.outline, item.height_m, light, hull=not item.canopy)
            shapes.append(_Shape(cast, 0, kind=_SHADOW))
            shapes.extend(item.shapes)
    for car in cars:
        shapes.extend(car.shapes)
    for centre, r, f in world.trees:
        shapes.append(_Shape(_disc_from(centre, r), f, elevated=True))
    lengths = np.array([len(s.en) for s in shapes])
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    latlon = world.to_latlon(np.vstack([s.en for s in shapes]))
    return _Scene(shapes, latlon, bounds, light)


def _disc_from(centre: np.ndarray, r: float) -> np.ndarray:
    return _disc_uv(float(centre[0]), float(centre[1]), r)


def _texture(rng: np.random.Generator, res: float, size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """A periodic fractal-noise tile (uint8, 128 = no change) anchored to the world, and its raster-from-ENU map.

    Made in the frequency domain, so it wraps without a seam (`BORDER_WRAP` tiles it).
    """
    f = np.fft.fftfreq(size, d=res)  # cycles per metre
    radius = np.hypot(f[:, None], f[None, :])
    spectrum = np.where(radius > 0, 1.0 / np.maximum(radius, 1.0 / (size * res)), 0.0)
    spectrum *= np.exp(-((radius * 0.15) ** 2))  # nothing finer than about 15 cm
    white = np.fft.fft2(rng.standard_normal((size, size)))
    noise = np.real(np.fft.ifft2(white * spectrum))
    noise = (noise - noise.mean()) / noise.std()
    raster = np.clip(128.0 + 45.0 * noise, 0, 255).astype(np.uint8)
    affine = np.array([[1.0 / res, 0.0, 0.0], [0.0, -1.0 / res, 0.0], [0.0, 0.0, 1.0]])
    return raster, affine


def _render(
    world: _World, scene: _Scene, shot: DroneShot, texture: tuple[np.ndarray, np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    k = shot.intrinsics
    width, height = k.width_px, k.height_px
    projector = GroundProjector(shot)
    gsd = projector.gsd_m
    if gsd is None:
        raise DatasetError(f"shot at pitch {shot.gimbal_pitch_deg} sees no ground at its centre; surveys are nadir")
    ids = np.zeros((height, width), np.uint16)
    shadow = np.zeros((height, width), np.uint8)
    pixels = projector.latlons_to_pixels(scene.latlon) - 0.5  # OpenCV puts pixel centres on integers
    starts = scene.bounds[:-1]
    missing = np.logical_or.reduceat(np.isnan(pixels).any(axis=1), starts)  # behind the camera: never for nadir
    pixels = np.nan_to_num(pixels)
    pad = np.array([shape.width_m for shape in scene.shapes]) / gsd
    low = np.stack([np.minimum.reduceat(pixels[:, 0], starts), np.minimum.reduceat(pixels[:, 1], starts)], axis=1)
    high = np.stack([np.maximum.reduceat(pixels[:, 0], starts), np.maximum.reduceat(pixels[:, 1], starts)], axis=1)
    visible = (
        ~missing
        & (high[:, 0] >= -pad)
        & (high[:, 1] >= -pad)
        & (low[:, 0] <= width + pad)
        & (low[:, 1] <= height + pad)
    )
    fixed = np.round(np.clip(pixels, -1e6, 1e6) * 16).astype(np.int32)  # 4 bits of subpixel precision
    for index in np.flatnonzero(visible):
        shape = scene.shapes[index]
        poly = fixed[scene.bounds[index] : scene.bounds[index + 1]]
        if shape.kind == _SHADOW:
            cv2.fillPoly(shadow, [poly], 255, lineType=cv2.LINE_8, shift=4)
        elif shape.kind == _LINE:
            thickness = max(1, round(shape.width_m / gsd))
            cv2.polylines(ids, [poly], False, shape.feature, thickness=thickness, lineType=cv2.LINE_8, shift=4)
            if shape.elevated:
                cv2.polylines(shadow, [poly], False, 0, thickness=thickness, lineType=cv2.LINE_8, shift=4)
        else:
            cv2.fillPoly(ids, [poly], shape.feature, lineType=cv2.LINE_8, shift=4)
            if shape.elevated:
                cv2.fillPoly(shadow, [poly], 0, lineType=cv2.LINE_8, shift=4)
    penumbra_px = 0.15 / gsd
    if penumbra_px > 0.4:
        shadow = np.asarray(cv2.GaussianBlur(shadow, (0, 0), penumbra_px), np.uint8)

    raster, affine = texture
    east, north = latlon_to_enu(*world.origin, shot.lat, shot.lon)
    to_world = np.array([[1.0, 0.0, east], [0.0, 1.0, north], [0.0, 0.0, 1.0]])  # shot ENU → world ENU, to < 1 mm
    half_pixel = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    warp = affine @ to_world @ projector.ground_homography() @ half_pixel
    tex = cv2.warpPerspective(
        raster, warp, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_WRAP
    )

    palette = np.array([c for c, _ in world.palette], np.float32)
    amp = np.array([a for _, a in world.palette], np.float32) / 128.0
    light = scene.light
    tint = np.array([0.8, 0.95, 1.0], np.float32) * light.shadow_darkness  # skylight keeps shadows bluish
    out = np.empty((height, width, 3), np.uint8)
    ys = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) / (height / 2)
    xs = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / (width / 2)
    aspect = (width / math.hypot(width, height), height / math.hypot(width, height))
    band = 512
    for r0 in range(0, height, band):
        r1 = min(r0 + band, height)
        band_ids = ids[r0:r1]
        # brightness: texture, then vignetting
        lum = tex[r0:r1].astype(np.float32)
        lum -= 128.0
        lum *= amp[band_ids]
        lum += 1.0
        lum *= 1.0 - 0.08 * ((xs[None, :] * aspect[0]) ** 2 + (ys[r0:r1, None] * aspect[1]) ** 2)
        shade = shadow[r0:r1].astype(np.float32) / 255.0
        for c in range(3):
            channel = palette[:, c][band_ids]
            channel *= lum
            channel *= 1.0 - shade * tint[c]
            channel *= light.gain_bgr[c]
            channel += light.haze + 0.5
            np.clip(channel, 0, 255, out=channel)
            out[r0:r1, :, c] = channel.astype(np.uint8)
    out = np.asarray(cv2.GaussianBlur(out, (0, 0), 0.6), np.uint8)  # the lens
    for r0 in range(0, height, band):  # then the sensor
        r1 = min(r0 + band, height)
        noisy = out[r0:r1].astype(np.float32) + rng.standard_normal((r1 - r0, width, 3), dtype=np.float32) * 2.0
        np.clip(noisy + 0.5, 0, 255, out=noisy)
        out[r0:r1] = noisy.astype(np.uint8)
    return out


# --- flights -----------------------------------------------------------------------------------------


def _flight_plan(
    rng: np.random.Generator,
    world: _World,
    intrinsics: CameraIntrinsics,
    model: str,
    altitude: float,
    area: tuple[float, float],
    start: datetime,
) -> list[DroneShot]:
    """A lawnmower over the area: north-south lines, heading alternating, the image's top forward."""
    across = altitude * intrinsics.sensor_w_mm / intrinsics.focal_mm  # the image's width on the ground
    along = altitude * intrinsics.sensor_h_mm / intrinsics.focal_mm
    n_lines = max(1, math.ceil(area[0] / (across * (1 - SIDE_OVERLAP)) - 1e-9) + 1)
    n_shots = max(1, math.ceil(area[1] / (along * (1 - FORWARD_OVERLAP)) - 1e-9) + 1)
    xs = np.linspace(-area[0] / 2, area[0] / 2, n_lines) if n_lines > 1 else np.zeros(1)
    ys = np.linspace(-area[1] / 2, area[1] / 2, n_shots) if n_shots > 1 else np.zeros(1)
    shots = []
    t = start
    for line, x in enumerate(xs):
        northward = line % 2 == 0
        for y in ys if northward else ys[::-1]:
            e = float(x + rng.normal(0, 1.0))
            n = float(y + rng.normal(0, 1.0))
            lat, lon = enu_to_latlon_array(*world.origin, [[e, n]])[0]
            yaw = (0.0 if northward else 180.0) + float(rng.normal(0, 1.5))
            yaw = (yaw + 180.0) % 360.0 - 180.0
            rel = altitude + float(rng.normal(0, 0.5))
            shots.append(
                DroneShot(
                    lat=float(lat),
                    lon=float(lon),
                    abs_alt_m=round(rel + TAKEOFF_ALTITUDE_M, 3),
                    rel_alt_m=round(rel, 3),
                    gimbal_pitch_deg=round(-90.0 + float(np.clip(rng.normal(0, 0.2), -0.5, 0.5)), 3),
                    gimbal_yaw_deg=round(yaw, 3),
                    flight_yaw_deg=round(yaw + float(rng.normal(0, 0.8)), 3),
                    taken_at=t,
                    make="DJI",
                    model=model,
                    intrinsics=intrinsics,
                )
            )
            t += timedelta(seconds=2)
        t += timedelta(seconds=8)
    return shots


def _light(rng: np.random.Generator, *, afternoon: bool) -> _Light:
    if afternoon:
        az, el = float(rng.uniform(205, 250)), float(rng.uniform(45, 65))
        gain = (float(rng.uniform(0.86, 0.94)), float(rng.uniform(1.0, 1.06)), float(rng.uniform(1.06, 1.14)))
    else:
        az, el = float(rng.uniform(110, 150)), float(rng.uniform(30, 45))
        gain = (float(rng.uniform(1.02, 1.1)), float(rng.uniform(0.94, 1.0)), float(rng.uniform(0.86, 0.94)))
    return _Light(
        sun_azimuth_deg=round(az, 3),
        sun_elevation_deg=round(el, 3),
        gain_bgr=(round(gain[0], 4), round(gain[1], 4), round(gain[2], 4)),
        haze=round(float(rng.uniform(0, 8)), 3),
        shadow_darkness=round(float(rng.uniform(0.45, 0.6)), 3),
    )


def _write_flight(
    folder: Path,
    world: _World,
    scene: _Scene,
    shots: Sequence[DroneShot],
    texture: Any,
    seed: int,
    flight: int,
    quality: int,
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, shot in enumerate(shots, start=1):
        image = _render(world, scene, shot, texture, np.random.default_rng([seed, 100 + flight, index]))
        path = folder / f"DJI_{index:04d}.JPG"
        try:
            path.write_bytes(encode_drone_jpeg(image, shot, quality=quality))
        except OSError as e:
            raise ImageWriteError(f"cannot write {str(path)!r}") from e
        paths.append(path)
    logger.info("wrote %d images to %s", len(paths), folder)
    return paths


def _utm_crs(lat: float, lon: float) -> str:
    """The WGS84 UTM zone's EPSG code for a place, e.g. "EPSG:32651" for Hangzhou."""
    zone = min(60, int((lon + 180.0) // 6.0) + 1)
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def _write_orthomosaic(
    path: Path,
    world: _World,
    scene: _Scene,
    shots: Sequence[DroneShot],
    texture: Any,
    rng: np.random.Generator,
) -> Path:
    """Render what the flight saw straight down onto the UTM grid, at the flight's ground sample distance.

    The world is flat, so a nadir pinhole turned to grid north *is* an orthographic
    map of it: its pixels are fitted to UTM by an affine (checked to 0.05 px). Pixels
    no image of the flight covers are transparent.
    """
    from pyproj import Transformer

    lat0, lon0 = world.origin
    crs = _utm_crs(lat0, lon0)
    to_utm = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    to_wgs = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    gsd = float(np.median([GroundProjector(s).gsd_m or 0.0 for s in shots]))
    corners = np.concatenate([GroundProjector(s).footprint_latlon() for s in shots])
    xs, ys = to_utm.transform(corners[:, 1], corners[:, 0])
    x0, y1 = math.floor(min(xs) / gsd) * gsd, math.ceil(max(ys) / gsd) * gsd
    width, height = math.ceil((max(xs) - x0) / gsd), math.ceil((y1 - min(ys)) / gsd)
    centre_x, centre_y = x0 + width * gsd / 2, y1 - height * gsd / 2
    (lon_c, lon_n), (lat_c, lat_n) = to_wgs.transform([centre_x, centre_x], [centre_y, centre_y + 100.0])
    east, north = latlon_to_enu(lat_c, lon_c, lat_n, lon_n)
    grid_north = math.degrees(math.atan2(east, north))  # the image's top must point along the grid's north
    altitude, focal = 100.0, 10.0
    camera = CameraIntrinsics(focal, gsd * focal * width / altitude, gsd * focal * height / altitude, width, height)
    virtual = DroneShot(
        lat=lat_c, lon=lon_c, abs_alt_m=None, rel_alt_m=altitude, gimbal_pitch_deg=-90.0,
        gimbal_yaw_deg=grid_north, flight_yaw_deg=grid_north, taken_at=shots[0].taken_at, make="nonsite",
        model="orthomosaic", intrinsics=camera,
    )  # fmt: skip
    image = _render(world, scene, virtual, texture, rng)
    projector = GroundProjector(virtual)
    u, v = np.meshgrid(np.linspace(0, width, 7), np.linspace(0, height, 7))
    grid = np.stack([u.ravel(), v.ravel()], axis=1)
    latlon = projector.pixels_to_latlon(grid)
    gx, gy = to_utm.transform(latlon[:, 1], latlon[:, 0])
    design = np.column_stack([np.ones(len(grid)), grid])
    (east0, east_step, _), *_ = np.linalg.lstsq(design, np.asarray(gx), rcond=None)
    (north0, _, north_step), *_ = np.linalg.lstsq(design, np.asarray(gy), rcond=None)
    transform = (float(east0), float(east_step), 0.0, float(north0), 0.0, float(north_step))  # north-up, as ODM
    residual = max(
        np.abs(design @ np.array([east0, east_step, 0.0]) - gx).max(),
        np.abs(design @ np.array([north0, 0.0, north_step]) - gy).max(),
    )
    if residual > 0.05 * gsd:  # pragma: no cover - a failure of the construction above, not of input
        raise DatasetError(f"the orthomosaic's grid is off UTM by {residual / gsd:.2f} px")
    valid = np.zeros((height, width), np.uint8)
    for shot in shots:
        ring = GroundProjector(shot).footprint_latlon()
        rx, ry = to_utm.transform(ring[:, 1], ring[:, 0])
        px = np.column_stack([(np.asarray(rx) - east0) / east_step, (np.asarray(ry) - north0) / north_step]) - 0.5
        cv2.fillPoly(valid, [np.round(px * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    try:
        return write_geotiff(path, image, crs=crs, transform=transform, valid=valid > 0, overviews=2,
                             file_time=shots[0].taken_at)  # fmt: skip
    except OSError as e:
        raise ImageWriteError(f"cannot write {str(path)!r}") from e


def _holder(rng: np.random.Generator) -> str:
    surnames = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
    return f"{surnames[int(rng.integers(len(surnames)))]}某"


def _dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def write_two_flight_survey(
    out_dir: str | os.PathLike[str],
    *,
    seed: int,
    image_size: tuple[int, int] = (5472, 3648),
    altitude_m: float = 80.0,
    n_structures: int = 6,
    n_stalls: int = 10,
    origin: tuple[float, float] = DEFAULT_ORIGIN,
    area_m: tuple[float, float] = (160.0, 120.0),
    model: str = "FC6310",
    permitted_share: float = 0.4,
    quality: int = 90,
    orthomosaic: bool = False,
) -> SurveyTruth:
    """Render a baseline flight and a later survey flight of one synthetic town into `out_dir`.

    `image_size` is (width, height); the camera `model` from `DRONE_CAMERAS` is scaled to
    it, so small images keep the real camera's field of view. Camera centres cover
    `area_m` (east × north metres around `origin`), where the structures and stalls are
    put. `permitted_share` of the structures stand in permitted parcels. Deterministic
    for a seed. `out_dir` must not already hold a survey. `orthomosaic` also writes the
    baseline flight as an orthomosaic GeoTIFF (`baseline_ortho.tif`).
    """
    width, height = image_size
    if width < 64 or height < 64:
        raise ValueError(f"image_size must be at least 64x64, but got {width}x{height}")
    if not 20.0 <= altitude_m <= 500.0:
        raise ValueError(f"altitude_m must lie in [20, 500], but got {altitude_m}")
    if n_structures < 0 or n_stalls < 0:
        raise ValueError(f"n_structures and n_stalls must be >= 0, but got {n_structures} and {n_stalls}")
    if area_m[0] < 10 or area_m[1] < 10:
        raise ValueError(f"area_m must be at least 10 x 10 m, but got {area_m}")
    if not 0.0 <= permitted_share <= 1.0:
        raise ValueError(f"permitted_share must lie in [0, 1], but got {permitted_share}")
    if model not in DRONE_CAMERAS:
        raise ValueError(f"model must be one of DRONE_CAMERAS ({', '.join(DRONE_CAMERAS)}), but got {model!r}")
    root = Path(out_dir)
    for name in ("baseline", "survey", "truth.json", "baseline_ortho.tif"):
        if (root / name).exists():
            raise DatasetError(f"{root / name} already exists: write the survey into an empty folder")
    intrinsics = DRONE_CAMERAS[model].for_image_size(width, height)
    footprint = (
        altitude_m * intrinsics.sensor_w_mm / intrinsics.focal_mm,
        altitude_m * intrinsics.sensor_h_mm / intrinsics.focal_mm,
    )
    # what any image can see: camera centres, plus half the footprint's diagonal (any yaw), plus jitter
    reach = math.hypot(*footprint) / 2 + 8.0
    half_extent = (area_m[0] / 2 + reach, area_m[1] / 2 + reach)

    world = _build_world(np.random.default_rng([seed, 1]), origin, half_extent, area_m)
    rng_changes = np.random.default_rng([seed, 2])
    structures = _place_structures(world, rng_changes, n_structures)
    stalls = _place_stalls(world, rng_changes, n_stalls, area_m)
    texture = _texture(np.random.default_rng([seed, 3]), float(np.clip(altitude_m / intrinsics.fx, 0.03, 0.1)))

    # permits: the parcels of some structures, and a few parcels with nothing new on them
    n_permitted = round(permitted_share * n_structures)
    permitted = (
        set(int(i) for i in rng_changes.choice(n_structures, n_permitted, replace=False)) if n_structures else set()
    )
    used = {s.truth["parcel_id"] for s in structures}
    spare = [lot.id for lot in world.lots if lot.id not in used]
    decoys = [spare[int(i)] for i in rng_changes.choice(len(spare), min(3, len(spare)), replace=False)] if spare else []
    permit_parcels = sorted({structures[i].truth["parcel_id"] for i in permitted} | set(decoys))
    permit_no = {parcel: f"JS-2026-{100 + k:04d}" for k, parcel in enumerate(permit_parcels)}
    lots_by_id = {lot.id: lot for lot in world.lots}

    flights = []
    ortho_path: Path | None = None
    rng_flights = np.random.default_rng([seed, 4])
    for index, name in enumerate(("baseline", "survey")):
        light = _light(rng_flights, afternoon=index == 1)
        start = (
            datetime(2026, 4, 8, 10, 0, tzinfo=CHINA_TZ)
            if index == 0
            else datetime(2026, 6, 15, 14, 30, tzinfo=CHINA_TZ)
        )
        altitude = altitude_m + float(rng_flights.uniform(-2.0, 2.0)) * (index == 1)
        shots = _flight_plan(rng_flights, world, intrinsics, model, altitude, area_m, start)
        avoid = [(s.centre_en, s.radius_m) for s in stalls] if index == 1 else []
        cars = _place_cars(world, rng_flights, avoid)
        changes = [structures, stalls] if index == 1 else []
        scene = _scene(world, light, changes, cars)
        paths = _write_flight(root / name, world, scene, shots, texture, seed, index, quality)
        if index == 0 and orthomosaic:
            ortho_path = _write_orthomosaic(
                root / "baseline_ortho.tif", world, scene, shots, texture, np.random.default_rng([seed, 150])
            )
        cars_latlon = tuple(
            (float(a), float(b)) for a, b in world.to_latlon(np.array([c.centre_en for c in cars]).reshape(-1, 2))
        )
        flights.append(
            FlightTruth(
                name=name,
                images=tuple(paths),
                shots=tuple(shots),
                sun_azimuth_deg=light.sun_azimuth_deg,
                sun_elevation_deg=light.sun_elevation_deg,
                gain_bgr=light.gain_bgr,
                haze=light.haze,
                shadow_darkness=light.shadow_darkness,
                cars_latlon=cars_latlon,
            )
        )

    structure_truths = []
    for k, placed in enumerate(structures):
        t = placed.truth
        lat, lon = world.to_latlon(t["centre_en"][None, :])[0]
        ring = world.ring_lonlat(t["en"])
        parcel = t["parcel_id"]
        structure_truths.append(
            StructureTruth(
                id=f"S{k + 1:03d}",
                kind=t["kind"],
                lat=round(float(lat), 9),
                lon=round(float(lon), 9),
                polygon_lonlat=tuple((a, b) for a, b in ring),
                area_m2=t["area_m2"],
                height_m=t["height_m"],
                permitted=parcel in permit_no,
                permit_no=permit_no.get(parcel),
                parcel_id=parcel,
                roof_bgr=_color(t["roof_bgr"]),
            )
        )
    stall_truths = []
    for k, placed in enumerate(stalls):
        t = placed.truth
        lat, lon = world.to_latlon(t["centre_en"][None, :])[0]
        ring = world.ring_lonlat(t["en"])
        stall_truths.append(
            StallTruth(
                id=f"T{k + 1:03d}",
                kind=t["kind"],
                lat=round(float(lat), 9),
                lon=round(float(lon), 9),
                size_m=(t["size_m"][0], t["size_m"][1]),
                place=t["place"],
                polygon_lonlat=tuple((a, b) for a, b in ring),
                color_bgr=_color(t["color_bgr"]),
            )
        )

    rng_permits = np.random.default_rng([seed, 5])
    permits = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {
                    "permit_no": permit_no[parcel],
                    "holder": _holder(rng_permits),
                    "valid_until": (date(2027, 1, 1) + timedelta(days=int(rng_permits.integers(0, 730)))).isoformat(),
                    "parcel_id": parcel,
                },
                "geometry": {"type": "Polygon", "coordinates": [world.ring_lonlat(lots_by_id[parcel].en)]},
            }
            for parcel in permit_parcels
        ],
    }
    streets = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"kind": s["kind"], "name": s["name"]},
                "geometry": {"type": "Polygon", "coordinates": [world.ring_lonlat(s["en"])]},
            }
            for s in world.streets_geo
            if _touches(s["en"], half_extent)
        ],
    }
    permits_path, streets_path, truth_path = root / "permits.geojson", root / "streets.geojson", root / "truth.json"
    _dump(permits_path, permits)
    _dump(streets_path, streets)
    _dump(
        truth_path,
        _truth_record(
            root, origin, model, intrinsics, altitude_m, area_m, seed, flights, structure_truths, stall_truths
        ),
    )
    return SurveyTruth(
        out_dir=root,
        origin=origin,
        baseline=flights[0],
        survey=flights[1],
        structures=tuple(structure_truths),
        stalls=tuple(stall_truths),
        permits_path=permits_path,
        streets_path=streets_path,
        truth_path=truth_path,
        orthomosaic_path=ortho_path,
    )


def _touches(en: np.ndarray, half: tuple[float, float]) -> bool:
    lo, hi = en.min(axis=0), en.max(axis=0)
    return bool(hi[0] >= -half[0] and lo[0] <= half[0] and hi[1] >= -half[1] and lo[1] <= half[1])


def _truth_record(
    root: Path,
    origin: tuple[float, float],
    model: str,
    intrinsics: CameraIntrinsics,
    altitude_m: float,
    area_m: tuple[float, float],
    seed: int,
    flights: Sequence[FlightTruth],
    structures: Sequence[StructureTruth],
    stalls: Sequence[StallTruth],
) -> dict[str, Any]:
    def flight_record(f: FlightTruth) -> dict[str, Any]:
        return {
            "images": [
                {
                    "file": str(p.relative_to(root)),
                    "lat": s.lat,
                    "lon": s.lon,
                    "rel_alt_m": s.rel_alt_m,
                    "gimbal_yaw_deg": s.gimbal_yaw_deg,
                    "gimbal_pitch_deg": s.gimbal_pitch_deg,
                    "taken_at": s.taken_at.isoformat() if s.taken_at else None,
                }
                for p, s in zip(f.images, f.shots, strict=True)
            ],
            "light": {
                "sun_azimuth_deg": f.sun_azimuth_deg,
                "sun_elevation_deg": f.sun_elevation_deg,
                "gain_bgr": list(f.gain_bgr),
                "haze": f.haze,
                "shadow_darkness": f.shadow_darkness,
            },
            "cars": [{"lat": round(a, 9), "lon": round(b, 9)} for a, b in f.cars_latlon],
        }

    return {
        "format": FORMAT,
        "seed": seed,
        "origin": {"lat": origin[0], "lon": origin[1]},
        "area_m": list(area_m),
        "altitude_m": altitude_m,
        "camera": {
            "model": model,
            "width_px": intrinsics.width_px,
            "height_px": intrinsics.height_px,
            "focal_mm": intrinsics.focal_mm,
            "sensor_w_mm": intrinsics.sensor_w_mm,
            "sensor_h_mm": intrinsics.sensor_h_mm,
        },
        "flights": {f.name: flight_record(f) for f in flights},
        "structures": [
            {
                "id": s.id,
                "kind": s.kind,
                "lat": s.lat,
                "lon": s.lon,
                "polygon": [list(p) for p in s.polygon_lonlat],
                "area_m2": s.area_m2,
                "height_m": s.height_m,
                "permitted": s.permitted,
                "permit_no": s.permit_no,
                "parcel_id": s.parcel_id,
                "roof_bgr": list(s.roof_bgr),
            }
            for s in structures
        ],
        "stalls": [
            {
                "id": s.id,
                "kind": s.kind,
                "lat": s.lat,
                "lon": s.lon,
                "size_m": list(s.size_m),
                "place": s.place,
                "polygon": [list(p) for p in s.polygon_lonlat],
                "color_bgr": list(s.color_bgr),
            }
            for s in stalls
        ],
    }


def read_survey_truth(out_dir: str | os.PathLike[str]) -> SurveyTruth:
    """Load what `write_two_flight_survey` wrote to `out_dir`; shots are read back from the images."""
    root = Path(out_dir)
    path = root / "truth.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != FORMAT:
        raise DatasetError(f"{path} is not a {FORMAT} truth file (format {data.get('format')!r})")
    flights = []
    for name in ("baseline", "survey"):
        f = data["flights"][name]
        images = tuple(root / item["file"] for item in f["images"])
        light = f["light"]
        flights.append(
            FlightTruth(
                name=name,
                images=images,
                shots=tuple(read_drone_shot(p) for p in images),
                sun_azimuth_deg=light["sun_azimuth_deg"],
                sun_elevation_deg=light["sun_elevation_deg"],
                gain_bgr=(light["gain_bgr"][0], light["gain_bgr"][1], light["gain_bgr"][2]),
                haze=light["haze"],
                shadow_darkness=light["shadow_darkness"],
                cars_latlon=tuple((c["lat"], c["lon"]) for c in f["cars"]),
            )
        )
    return SurveyTruth(
        out_dir=root,
        origin=(data["origin"]["lat"], data["origin"]["lon"]),
        baseline=flights[0],
        survey=flights[1],
        structures=tuple(
            StructureTruth(
                id=s["id"],
                kind=s["kind"],
                lat=s["lat"],
                lon=s["lon"],
                polygon_lonlat=tuple((p[0], p[1]) for p in s["polygon"]),
                area_m2=s["area_m2"],
                height_m=s["height_m"],
                permitted=s["permitted"],
                permit_no=s["permit_no"],
                parcel_id=s["parcel_id"],
                roof_bgr=_color(s["roof_bgr"]),
            )
            for s in data["structures"]
        ),
        stalls=tuple(
            StallTruth(
                id=s["id"],
                kind=s["kind"],
                lat=s["lat"],
                lon=s["lon"],
                size_m=(s["size_m"][0], s["size_m"][1]),
                place=s["place"],
                polygon_lonlat=tuple((p[0], p[1]) for p in s["polygon"]),
                color_bgr=_color(s["color_bgr"]),
            )
            for s in data["stalls"]
        ),
        permits_path=root / "permits.geojson",
        streets_path=root / "streets.geojson",
        truth_path=path,
        orthomosaic_path=root / "baseline_ortho.tif" if (root / "baseline_ortho.tif").is_file() else None,
    )

"""Top-down training chips of a synthetic town: street vending as a drone sees it.

A world (`AerialWorld`) is the town of the two-flight survey (`survey._build_world`: a
street grid with sidewalks, flat roofs with tanks and air conditioners, street trees),
recoloured per seed (asphalt or concrete roads, grey, red or ochre paving, tile, fibre
cement, zinc or concrete roofs), with street vending on it as it looks from above:

- stalls: rectangular tarps and awnings (gabled, flat, striped, two tarps overlapping) in
  many colours, open tables and carts of goods; mostly in rows along the sidewalks (one
  colour down a market row, or each stall its own), some alone, some out on the road edge;
- umbrellas: market umbrellas 2-3.6 m across, round (6-12 panels of one, two or many
  colours) or square, alone, in rows, or over a cart;
- people at the stalls and walking by; cars, taxis, buses and motorbikes parked at the
  kerbs and driving in the lanes.

Everything stands on flat ground and casts a shadow from the chip's sun: on the ground
every shadow falls; on a low object (a stall, a car, a person) only the shadows of
buildings and trees; roofs and tree tops are lit.

A chip is an orthographic (nadir) view (`ChipView`: centre, ground sample distance,
rotation, size) under its own light and camera (`ChipLook`: sun, shadow depth, white
balance, contrast, haze, blur, noise, JPEG quality). Truth is exact, as in the street
scenes: a box is the extent of the pixels an object's own shapes paint in the chip, its
`visible_fraction` the share that nothing drawn above it (an umbrella, a tree) hides.
Class names and ids are those of `SYNTHETIC_CLASSES` (stall, umbrella, person, vehicle),
so aerial chips and street scenes train one model.

`write_aerial_yolo_dataset` writes images/{train,val}, labels/{train,val}, data.yaml and
chips.json (the world seed, view and look of every chip); whole worlds go to train or val.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from datasets.errors import DatasetError, ImageWriteError
from datasets.synthetic.export import YoloDatasetSummary, prepare_yolo_folder, split_seeds, yolo_label_lines
from datasets.synthetic.spec import SYNTHETIC_CLASSES
from datasets.synthetic.survey import (
    _FILL,
    _LINE,
    _build_world,
    _disc_uv,
    _Light,
    _rect_oriented,
    _shadow_of,
    _Shape,
    _texture,
    _World,
)
from datasets.synthetic.truth import FrameTruth, ObjectTruth
from datasets.yolo import write_data_yaml

logger = logging.getLogger(__name__)

AERIAL_CLASSES: tuple[str, ...] = ("stall", "umbrella", "person", "vehicle")
"""What aerial chips draw and can label; names (and so ids) of `SYNTHETIC_CLASSES`."""

AERIAL_FORMAT = "nonsite.synthetic.aerial/1"

Color = tuple[int, int, int]

_GROUND, _LOW, _HIGH = 0, 1, 2  # what a pixel shows: the ground, a low object, or a roof or tree top

# drawing order of the things on the ground: what is higher is drawn later
_TABLE_LAYER, _PERSON_LAYER, _VEHICLE_LAYER, _AWNING_LAYER, _UMBRELLA_LAYER = range(5)

_TARPS: tuple[Color, ...] = (
    (170, 100, 30),  # blue tarp
    (205, 150, 50),  # light blue
    (40, 40, 190),  # red
    (40, 120, 225),  # orange
    (40, 200, 235),  # yellow
    (50, 140, 50),  # green
    (235, 235, 232),  # white
    (196, 198, 200),  # grey-white
    (130, 60, 130),  # purple
    (40, 40, 120),  # maroon
    (140, 150, 40),  # teal
    (55, 55, 58),  # black plastic
)
_UMBRELLAS: tuple[Color, ...] = (
    (40, 40, 210),  # red
    (30, 210, 245),  # yellow
    (190, 100, 20),  # blue
    (60, 170, 60),  # green
    (30, 130, 240),  # orange
    (240, 240, 240),  # white
    (160, 60, 160),  # magenta
    (200, 180, 60),  # cyan
    (60, 60, 60),  # black
    (120, 190, 220),  # beige
)
_GOODS: tuple[Color, ...] = (
    (0, 140, 250),  # oranges, mangoes
    (0, 210, 240),  # bananas, pineapples
    (30, 30, 200),  # tomatoes
    (40, 160, 60),  # greens, avocados
    (100, 40, 90),  # grapes, aubergines
    (60, 100, 140),  # potatoes, bread
    (220, 220, 225),  # packets
    (200, 120, 40),  # blue packets
)
_CARS: tuple[Color, ...] = (
    (235, 235, 235),
    (200, 200, 205),
    (150, 150, 155),
    (35, 35, 38),
    (40, 40, 170),
    (150, 80, 30),
    (40, 90, 60),
    (90, 90, 95),
)
_TAXI: Color = (20, 200, 245)
_GLASS: Color = (55, 48, 42)
_ROOFS: tuple[Color, ...] = (
    (60, 100, 180),  # terracotta tile
    (50, 80, 160),  # dark tile
    (75, 115, 195),  # light tile
    (160, 160, 155),  # fibre cement
    (130, 132, 130),  # old fibre cement
    (70, 100, 140),  # rusty zinc
    (190, 190, 185),  # galvanised sheet
    (150, 150, 146),  # concrete
    (220, 220, 216),  # white coating
    (150, 110, 60),  # blue sheet
    (80, 82, 85),  # dark felt
)
_PAVING: tuple[Color, ...] = ((172, 176, 180), (150, 152, 156), (85, 95, 165), (120, 160, 190), (190, 192, 192))


@dataclass(frozen=True, slots=True)
class ChipView:
    """Where a chip looks: its centre (metres east and north of the world's origin), ground
    sample distance, rotation (degrees clockwise of north-up) and size in pixels (square)."""

    centre_en: tuple[float, float]
    gsd_m: float
    rotation_deg: float
    size_px: int

    def __post_init__(self) -> None:
        if not 0.001 <= self.gsd_m <= 1.0:
            raise ValueError(f"gsd_m must lie in [0.001, 1] metres per pixel, but got {self.gsd_m}")
        if not 16 <= self.size_px <= 4096:
            raise ValueError(f"size_px must lie in [16, 4096], but got {self.size_px}")

    def pixel_from_en(self) -> np.ndarray:
        """The 2×3 affine map from world metres (east, north) to pixel-edge coordinates."""
        t = math.radians(self.rotation_deg)
        right, up = np.array([math.cos(t), -math.sin(t)]), np.array([math.sin(t), math.cos(t)])
        g, half, c = self.gsd_m, self.size_px / 2, np.asarray(self.centre_en)
        return np.array(
            [[right[0] / g, right[1] / g, half - right @ c / g], [-up[0] / g, -up[1] / g, half + up @ c / g]]
        )

    @property
    def reach_m(self) -> float:
        """Half the chip's diagonal on the ground: everything it sees lies this close to its centre."""
        return self.size_px * self.gsd_m / math.sqrt(2.0)


@dataclass(frozen=True, slots=True)
class ChipLook:
    """The light and camera of one chip."""

    sun_azimuth_deg: float
    sun_elevation_deg: float
    shadow_darkness: float  # share of the light a shadow takes away (weak under cloud)
    gain_bgr: tuple[float, float, float]  # white balance and exposure
    contrast: float  # about mid-grey
    haze: float  # grey levels added everywhere
    blur_px: float  # the lens and the orthophoto's resampling
    noise_sigma: float  # sensor noise, grey levels
    noise_seed: int
    jpeg_quality: int


def sample_look(rng: np.random.Generator) -> ChipLook:
    """A random light and camera: sun high or low, clear or overcast, warm or cool."""
    overcast = rng.random() < 0.25
    exposure = float(rng.uniform(0.8, 1.15))
    return ChipLook(
        sun_azimuth_deg=round(float(rng.uniform(0.0, 360.0)), 3),
        sun_elevation_deg=round(float(rng.uniform(30.0, 82.0)), 3),
        shadow_darkness=round(float(rng.uniform(0.08, 0.25) if overcast else rng.uniform(0.35, 0.62)), 3),
        gain_bgr=(
            round(exposure * float(rng.uniform(0.88, 1.12)), 4),
            round(exposure * float(rng.uniform(0.92, 1.08)), 4),
            round(exposure * float(rng.uniform(0.88, 1.12)), 4),
        ),
        contrast=round(float(rng.uniform(0.85, 1.2)), 3),
        haze=round(float(rng.uniform(0.0, 18.0)), 3),
        blur_px=round(float(rng.uniform(0.4, 1.0)), 3),
        noise_sigma=round(float(rng.uniform(1.0, 4.0)), 3),
        noise_seed=int(rng.integers(1 << 31)),
        jpeg_quality=int(rng.integers(55, 96)),
    )


@dataclass(slots=True)
class _Thing:
    """A labelled object: its shapes in world metres and what casts its shadow."""

    kind: str  # its class name
    shapes: list[_Shape]
    footprint: np.ndarray  # (N, 2) what casts the shadow
    height_m: float
    canopy: bool  # raised on poles: its shadow is the footprint moved, not a prism's
    centre: np.ndarray
    radius_m: float
    layer: int


@dataclass(frozen=True, slots=True)
class _Caster:
    footprint: np.ndarray
    height_m: float
    hull: bool
    tall: bool  # buildings and trees: their shadows fall on low objects too
    owner: int  # thing index + 1, 0 for the town's own


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.hypot(*v)), 1e-9)


def _ellipse_en(centre: np.ndarray, heading: np.ndarray, a: float, b: float, n: int = 12) -> np.ndarray:
    """An ellipse with semi-axis `a` along `heading` and `b` across it."""
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    side = np.array([-heading[1], heading[0]])
    return centre + np.outer(np.cos(t) * a, heading) + np.outer(np.sin(t) * b, side)


def _scale(color: Sequence[float], factor: float) -> Color:
    b, g, r = (int(min(max(c * factor, 0), 255)) for c in color)
    return b, g, r


def _jitter(rng: np.random.Generator, color: Color, spread: int = 12) -> Color:
    c = np.clip(np.array(color) + rng.integers(-spread, spread + 1, 3), 0, 255)
    return int(c[0]), int(c[1]), int(c[2])


def _pick(rng: np.random.Generator, palette: Sequence[Color], spread: int = 12) -> Color:
    return _jitter(rng, palette[int(rng.integers(len(palette)))], spread)


class AerialWorld:
    """A synthetic town with street vending, people and traffic, seen from straight above.

    Everything follows from `seed`. `area_m` is the side of the square (centred on the
    origin) that holds the vending and that chip centres are drawn from; the streets
    reach 30 m further, so a chip near the edge still sees town.
    """

    def __init__(self, seed: int, *, area_m: float = 160.0) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, but got {seed}")
        if not 60.0 <= area_m <= 1000.0:
            raise ValueError(f"area_m must lie in [60, 1000] metres, but got {area_m}")
        self.seed, self.area_m = seed, area_m
        half = area_m / 2 + 30.0
        town, colours, vending, people, traffic, texture = (np.random.default_rng([seed, 0xAE1, k]) for k in range(6))
        self.world: _World = _build_world(town, (4.6097, -74.0817), (half, half), (area_m, area_m))
        tall_trees = self._recolour(colours)
        things = self._place_vending(vending)
        things += self._place_people(people, things)
        things += self._place_traffic(traffic, things)
        order = sorted(range(len(things)), key=lambda i: things[i].layer)  # stable
        self.things: tuple[_Thing, ...] = tuple(things[i] for i in order)
        self._texture = _texture(texture, 0.05, size=512)
        self._compile(tall_trees)
        logger.debug("aerial world %d: %s", seed, dict(Counter(t.kind for t in self.things)))

    # --- the town's colours ----------------------------------------------------------------

    def _recolour(self, rng: np.random.Generator) -> list[float]:
        """New colours for the survey town's features; returns each tree's height."""
        pal = self.world.palette
        grey = float(rng.uniform(55, 115)) if rng.random() < 0.8 else float(rng.uniform(135, 170))
        tint = rng.uniform(-6, 6, 3)
        pal[1] = (_color_of((grey + tint).tolist()), pal[1][1])  # the road
        pal[2] = (_pick(rng, _PAVING, 10), float(rng.uniform(0.05, 0.12)))  # the sidewalks
        pal[3] = (((232, 234, 236), (40, 200, 235))[int(rng.random() < 0.3)], pal[3][1])  # lane markings
        pal[0] = (_jitter(rng, ((70, 118, 96), (80, 130, 120), (60, 100, 80))[int(rng.integers(3))], 10), pal[0][1])
        pal[4] = (_jitter(rng, pal[4][0], 14), pal[4][1])
        roofs = self.world.roofs
        for i, shape in enumerate(roofs):
            if shape.kind != _FILL:
                continue
            if i + 1 < len(roofs) and roofs[i + 1].kind == _LINE:  # a roof, its parapet after it
                color = _pick(rng, _ROOFS, 10)
                pal[shape.feature] = (color, float(rng.uniform(0.04, 0.12)))
                pal[roofs[i + 1].feature] = (_scale(color, float(rng.uniform(0.6, 0.85))), 0.04)
            elif len(shape.en) > 8 and rng.random() < 0.55:  # a water tank: black plastic ones are common
                pal[shape.feature] = ((32, 32, 34), 0.03)
        heights = []
        for _, _, feature in self.world.trees:
            green = (
                int(rng.integers(30, 70)),
                int(rng.integers(80, 140)),
                int(rng.integers(40, 90) if rng.random() < 0.8 else rng.integers(90, 140)),
            )
            pal[feature] = (green, float(rng.uniform(0.22, 0.34)))
            heights.append(float(rng.uniform(4.0, 9.0)))
        return heights

    # --- what stands in the streets -------------------------------------------------------------

    def _strips(self) -> list[Any]:
        lim = self.area_m / 2
        out = []
        for s in self.world.strips:
            c = self.world.to_en(np.array([s.centre_uv]))[0]
            if abs(c[0]) <= lim and abs(c[1]) <= lim and s.length > 8.0:
                out.append(s)
        return out

    def _place_vending(self, rng: np.random.Generator) -> list[_Thing]:
        """Rows of stalls (an umbrella here and there) or of umbrellas on the sidewalks, and some standing alone."""
        world = self.world
        strips = self._strips()
        # clear of tree trunks; a crown may still hang over the edge of a stall (vendors like the shade)
        taken: list[tuple[np.ndarray, float]] = [(centre, r * 0.6) for centre, r, _ in world.trees]
        things: list[_Thing] = []
        if not strips:
            return things
        for _ in range(int(rng.integers(3, 10))):
            strip = strips[int(rng.integers(len(strips)))]
            along = _unit(world.to_en(np.array([strip.along]))[0])
            where = str(rng.choice(["kerb", "wall", "road"], p=[0.45, 0.35, 0.2]))
            scheme = str(rng.choice(["one", "two", "each"], p=[0.35, 0.2, 0.45]))
            colours = [_pick(rng, _TARPS, 10), _pick(rng, _TARPS, 10)]
            depth = float(rng.uniform(1.0, 2.2))
            if where != "road":
                depth = min(depth, max(strip.width - 0.3, 0.9))
            across = {
                "kerb": strip.width / 2 - depth / 2 - 0.1,
                "wall": -strip.width / 2 + depth / 2 + 0.1,
                "road": strip.width / 2 + 0.3 + depth / 2,
            }[where]
            umbrellas = rng.random() < 0.25  # a row of umbrellas, each over a cart or a vendor's stool
            t = -strip.length / 2 + float(rng.uniform(1.0, max(strip.length * 0.5, 1.5)))
            for k in range(int(rng.integers(3, 15))):
                length = float(rng.uniform(2.0, 3.4)) if umbrellas else float(rng.uniform(1.6, 3.5))
                if t + length > strip.length / 2 - 1.0:
                    break
                uv = np.array(strip.centre_uv) + np.array(strip.along) * (t + length / 2)
                uv = uv + np.array(strip.outward) * (across + float(rng.uniform(-0.15, 0.15)))
                centre = world.to_en(uv[None, :])[0]
                t += length + float(rng.uniform(0.0, 0.6))
                radius = math.hypot(length, depth) / 2
                if _overlaps(centre, radius * 0.9, taken):
                    continue
                colour = {"one": colours[0], "two": colours[k % 2], "each": _pick(rng, _TARPS, 10)}[scheme]
                turn = math.radians(float(rng.normal(0.0, 2.5)))
                heading = np.array(
                    [
                        along[0] * math.cos(turn) - along[1] * math.sin(turn),
                        along[0] * math.sin(turn) + along[1] * math.cos(turn),
                    ]
                )
                if umbrellas or rng.random() < 0.15:  # an umbrella in the row instead
                    if umbrellas and rng.random() < 0.4:
                        things.append(_cart(rng, world, centre, heading))
                    things.append(_umbrella(rng, world, centre, length / 2))
                else:
                    things.append(_stall(rng, world, centre, heading, length, depth, colour))
                    if rng.random() < 0.15:  # an umbrella over it as well
                        off = centre + heading * float(rng.uniform(-0.3, 0.3)) * length
                        things.append(_umbrella(rng, world, off, float(rng.uniform(1.0, 1.4))))
                taken.append((centre, radius))
        for _ in range(int(rng.integers(4, 15))):  # alone: umbrellas (maybe over a cart) and stalls
            strip = strips[int(rng.integers(len(strips)))]
            along = _unit(world.to_en(np.array([strip.along]))[0])
            t = float(rng.uniform(-strip.length / 2 + 2.0, strip.length / 2 - 2.0))
            on_road = rng.random() < 0.2
            across = strip.width / 2 + 1.0 if on_road else float(rng.uniform(-0.3, 0.3)) * strip.width
            uv = np.array(strip.centre_uv) + np.array(strip.along) * t + np.array(strip.outward) * across
            centre = world.to_en(uv[None, :])[0]
            if rng.random() < 0.6:
                r = float(rng.uniform(1.0, 1.8))
                if _overlaps(centre, r, taken):
                    continue
                if rng.random() < 0.5:
                    things.append(_cart(rng, world, centre, along))
                things.append(_umbrella(rng, world, centre, r))
                taken.append((centre, r))
            else:
                length, depth = float(rng.uniform(1.5, 3.0)), float(rng.uniform(1.0, 1.8))
                if _overlaps(centre, math.hypot(length, depth) / 2, taken):
                    continue
                things.append(_stall(rng, world, centre, along, length, depth, _pick(rng, _TARPS, 10)))
                taken.append((centre, math.hypot(length, depth) / 2))
        return things

    def _place_people(self, rng: np.random.Generator, vending: Sequence[_Thing]) -> list[_Thing]:
        """Customers and vendors at the stalls, and people walking along the sidewalks or crossing."""
        world = self.world
        people: list[_Thing] = []
        taken = [(t.centre, t.radius_m * 0.8) for t in vending]
        stalls = [t for t in vending if t.kind == "stall"]
        for stall in stalls:
            for _ in range(int(rng.integers(0, 4))):
                angle = float(rng.uniform(0.0, 2.0 * math.pi))
                dist = stall.radius_m + float(rng.uniform(0.2, 1.0))
                where = stall.centre + dist * np.array([math.cos(angle), math.sin(angle)])
                if _overlaps(where, 0.3, [(p.centre, p.radius_m) for p in people]):
                    continue
                facing = _unit(stall.centre - where)
                people.append(_person(rng, world, where, facing))
        strips = self._strips()
        for _ in range(int(rng.integers(20, 90)) if strips else 0):
            strip = strips[int(rng.integers(len(strips)))]
            t = float(rng.uniform(-strip.length / 2, strip.length / 2))
            across = float(rng.uniform(-0.4, 0.4)) * strip.width
            if rng.random() < 0.07:  # crossing the road
                across = strip.width / 2 + float(rng.uniform(0.5, 6.0))
            uv = np.array(strip.centre_uv) + np.array(strip.along) * t + np.array(strip.outward) * across
            where = world.to_en(uv[None, :])[0]
            if _overlaps(where, 0.3, taken) or _overlaps(where, 0.3, [(p.centre, p.radius_m) for p in people]):
                continue
            along = _unit(world.to_en(np.array([strip.along]))[0])
            heading = along * (1.0 if rng.random() < 0.5 else -1.0)
            people.append(_person(rng, world, where, heading))
        return people

    def _place_traffic(self, rng: np.random.Generator, others: Sequence[_Thing]) -> list[_Thing]:
        """Cars, taxis and motorbikes parked at the kerbs; cars, taxis, buses and motorbikes in the lanes."""
        world = self.world
        lim = self.area_m / 2 + 25.0
        taken = [(t.centre, t.radius_m) for t in others]
        vehicles: list[_Thing] = []
        for en, axis in world.roads:
            start, end = axis
            length = float(np.hypot(*(end - start)))
            direction = (end - start) / length
            normal = np.array([-direction[1], direction[0]])
            road_w = float(np.hypot(*(en[1] - en[0])))
            t = float(rng.uniform(0.0, 15.0))
            while t < length:
                roll = rng.random()
                side = 1.0 if rng.random() < 0.5 else -1.0
                heading = direction * side
                if roll < 0.45:  # parked at the kerb
                    centre = start + direction * t + normal * side * (road_w / 2 - 1.2)
                    kind = "bike" if rng.random() < 0.25 else "car"
                elif roll < 0.85:  # driving in its lane (on the right)
                    centre = start + direction * t - normal * side * road_w * float(rng.uniform(0.15, 0.3))
                    kind = str(rng.choice(["car", "bike", "bus"], p=[0.65, 0.28, 0.07]))
                else:
                    t += float(rng.uniform(4.0, 20.0))
                    continue
                t += float(rng.uniform(3.0, 22.0))
                if abs(centre[0]) > lim or abs(centre[1]) > lim:
                    continue
                if kind == "bike" and roll < 0.45:  # parked bikes stand in a group, across the kerb
                    for k in range(int(rng.integers(1, 6))):
                        where = centre + direction * 0.9 * k
                        if _overlaps(where, 1.0, taken):
                            continue
                        bike = _motorbike(rng, world, where, normal * -side, rider=False)
                        vehicles.append(bike)
                        taken.append((where, 1.0))
                    t += 5.0
                    continue
                build = {"car": _car, "bike": _motorbike_ridden, "bus": _bus}[kind]
                thing = build(rng, world, centre, heading)
                if _overlaps(centre, thing.radius_m, taken):
                    continue
                vehicles.append(thing)
                taken.append((centre, thing.radius_m))
        return vehicles

    # --- drawing lists -----------------------------------------------------------------------------

    def _compile(self, tree_heights: Sequence[float]) -> None:
        """Flatten the town and the things into one drawing list, and list what casts shadows."""
        world = self.world
        ops: list[tuple[_Shape, int, int]] = [(s, _GROUND, 0) for s in world.ground]
        ops += [(s, _HIGH, 0) for s in world.roofs]
        for k, thing in enumerate(self.things):
            ops += [(s, _LOW, k + 1) for s in thing.shapes]
        casters = [_Caster(roof, h, True, True, 0) for roof, h in world.buildings]
        for (centre, r, feature), height in zip(world.trees, tree_heights, strict=True):
            crown = _crown(centre, r, feature)
            ops += [(s, _HIGH, 0) for s in crown]
            casters.append(_Caster(crown[0].en, height, False, True, 0))
        for k, thing in enumerate(self.things):
            casters.append(_Caster(thing.footprint, thing.height_m, not thing.canopy, False, k + 1))
        self._ops = ops
        self._op_en = np.vstack([s.en for s, _, _ in ops])
        self._op_bounds = np.concatenate([[0], np.cumsum([len(s.en) for s, _, _ in ops])])
        starts = self._op_bounds[:-1]
        pad = np.array([s.width_m for s, _, _ in ops])[:, None]
        self._op_lo = np.minimum.reduceat(self._op_en, starts, axis=0) - pad
        self._op_hi = np.maximum.reduceat(self._op_en, starts, axis=0) + pad
        self._casters = casters
        self._caster_lo = np.array([c.footprint.min(axis=0) for c in casters])
        self._caster_hi = np.array([c.footprint.max(axis=0) for c in casters])
        self._caster_h = np.array([c.height_m for c in casters])
        self._thing_ops: list[list[int]] = [[] for _ in self.things]
        for i, (_, _, owner) in enumerate(ops):
            if owner:
                self._thing_ops[owner - 1].append(i)
        self._palette = np.array([c for c, _ in world.palette], np.float32)
        self._amp = np.array([a for _, a in world.palette], np.float32) / 128.0

    # --- chips -------------------------------------------------------------------------------------

    def sample_view(
        self, rng: np.random.Generator, *, size_px: int = 640, gsd_range: tuple[float, float] = (0.02, 0.06)
    ) -> ChipView:
        """A random chip: mostly around a stall or umbrella (somewhere in the chip), sometimes anywhere."""
        lo, hi = gsd_range
        gsd = float(math.exp(rng.uniform(math.log(lo), math.log(hi)))) if hi > lo else float(lo)
        span = size_px * gsd
        anchors = [t.centre for t in self.things if t.kind in ("stall", "umbrella")]
        if anchors and rng.random() < 0.8:
            centre = anchors[int(rng.integers(len(anchors)))] + rng.uniform(-0.4, 0.4, 2) * span
        else:
            centre = rng.uniform(-self.area_m / 2, self.area_m / 2, 2)
        return ChipView(
            centre_en=(round(float(centre[0]), 3), round(float(centre[1]), 3)),
            gsd_m=round(gsd, 5),
            rotation_deg=round(float(rng.uniform(0.0, 360.0)), 3),
            size_px=size_px,
        )

    def render(
        self, view: ChipView, look: ChipLook, *, hidden: Collection[int] = (), index: int = 0
    ) -> tuple[np.ndarray, FrameTruth]:
        """The chip as an H×W×3 uint8 BGR image and its truth (frame `index`).

        Objects whose ids are in `hidden` are left out, with their shadows.
        """
        size, g = view.size_px, view.gsd_m
        affine = view.pixel_from_en()
        centre, reach = np.asarray(view.centre_en), view.reach_m
        near = np.flatnonzero(
            np.all(self._op_hi >= centre - reach, axis=1) & np.all(self._op_lo <= centre + reach, axis=1)
        )
        ids = np.zeros((size, size), np.uint16)
        level = np.zeros((size, size), np.uint8)
        owner = np.zeros((size, size), np.uint16)
        for i in near:
            shape, lvl, who = self._ops[i]
            if who in hidden:
                continue
            en = self._op_en[self._op_bounds[i] : self._op_bounds[i + 1]]
            poly = _fixed(en, affine)
            _paint(ids, shape, poly, g, shape.feature)
            _paint(level, shape, poly, g, lvl)
            if lvl != _GROUND:
                _paint(owner, shape, poly, g, who)
        shadow_all = np.zeros((size, size), np.uint8)
        shadow_tall = np.zeros((size, size), np.uint8)
        light = _Light(look.sun_azimuth_deg, look.sun_elevation_deg, look.gain_bgr, look.haze, look.shadow_darkness)
        throw = self._caster_h / math.tan(math.radians(look.sun_elevation_deg))
        casting = np.all(self._caster_hi + throw[:, None] >= centre - reach, axis=1) & np.all(
            self._caster_lo - throw[:, None] <= centre + reach, axis=1
        )
        for i in np.flatnonzero(casting):
            caster = self._casters[i]
            if caster.owner in hidden:
                continue
            cast = _fixed(_shadow_of(caster.footprint, caster.height_m, light, hull=caster.hull), affine)
            cv2.fillPoly(shadow_all, [cast], 255, lineType=cv2.LINE_8, shift=4)
            if caster.tall:
                cv2.fillPoly(shadow_tall, [cast], 255, lineType=cv2.LINE_8, shift=4)
        image = self._shade(view, look, affine, ids, level, shadow_all, shadow_tall)
        objects = []
        for k in np.unique(owner[owner > 0]).tolist() + self._cut_off(near, owner, hidden):
            truth = self._object_truth(int(k), affine, g, size, owner)
            if truth is not None:
                objects.append(truth)
        objects.sort(key=lambda o: o.object_id)
        return image, FrameTruth(index=index, objects=tuple(objects))

    def _cut_off(self, near: np.ndarray, owner: np.ndarray, hidden: Collection[int]) -> list[int]:
        """Things near the chip that show no pixel (all hidden) but still have truth, like occluded street actors."""
        seen = set(np.unique(owner).tolist())
        out = set()
        for i in near:
            who = self._ops[i][2]
            if who and who not in seen and who not in hidden:
                out.add(who)
        return sorted(out)

    def _object_truth(self, k: int, affine: np.ndarray, g: float, size: int, owner: np.ndarray) -> ObjectTruth | None:
        thing = self.things[k - 1]
        polys = [
            (self._ops[i][0], _fixed(self._op_en[self._op_bounds[i] : self._op_bounds[i + 1]], affine))
            for i in self._thing_ops[k - 1]
        ]
        every = np.vstack([p for _, p in polys]) / 16.0
        pad = max(2, math.ceil(max(s.width_m for s, _ in polys) / g) + 2)
        x0, y0 = np.floor(every.min(axis=0)).astype(int) - pad
        x1, y1 = np.ceil(every.max(axis=0)).astype(int) + pad + 1
        own = np.zeros((y1 - y0, x1 - x0), np.uint8)
        shift = np.array([x0 * 16, y0 * 16], np.int32)
        for shape, poly in polys:
            _paint(own, shape, poly - shift, g, 1)
        n_all = int(np.count_nonzero(own))
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, size), min(y1, size)
        if n_all == 0 or cx0 >= cx1 or cy0 >= cy1:
            return None
        inside = own[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] > 0
        n_in = int(np.count_nonzero(inside))
        if n_in == 0:
            return None
        rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
        visible = int(np.count_nonzero(inside & (owner[cy0:cy1, cx0:cx1] == k)))
        return ObjectTruth(
            object_id=k,
            class_name=thing.kind,
            class_id=SYNTHETIC_CLASSES.index(thing.kind),
            xyxy=(float(cx0 + cols[0]), float(cy0 + rows[0]), float(cx0 + cols[-1] + 1), float(cy0 + rows[-1] + 1)),
            visible_fraction=visible / n_in,
            in_frame_fraction=n_in / n_all,
        )

    def _shade(
        self,
        view: ChipView,
        look: ChipLook,
        affine: np.ndarray,
        ids: np.ndarray,
        level: np.ndarray,
        shadow_all: np.ndarray,
        shadow_tall: np.ndarray,
    ) -> np.ndarray:
        """Colours, texture, shadows, white balance, contrast and haze; then lens blur and sensor noise.

        Every step after the shadows is the same increasing function of each channel at
        every pixel, so a shadow only ever darkens.
        """
        size = view.size_px
        raster, tex_affine = self._texture
        to_en = np.linalg.inv(np.vstack([affine, [0.0, 0.0, 1.0]]))
        half_pixel = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
        warp = (tex_affine @ to_en @ half_pixel)[:2]
        tex = cv2.warpAffine(
            raster, warp, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_WRAP
        )
        lum = 1.0 + (tex.astype(np.float32) - 128.0) * self._amp[ids]
        shade = np.where(level == _GROUND, shadow_all, np.where(level == _LOW, shadow_tall, 0)).astype(np.float32)
        shade *= np.float32(look.shadow_darkness / 255.0)
        tint = np.array([0.8, 0.95, 1.0], np.float32)  # skylight keeps shadows bluish
        out = np.empty((size, size, 3), np.uint8)
        for c in range(3):
            channel = self._palette[:, c][ids] * lum
            channel *= 1.0 - shade * tint[c]
            channel *= np.float32(look.gain_bgr[c])
            channel -= 128.0
            channel *= np.float32(look.contrast)
            channel += np.float32(128.0 + look.haze + 0.5)
            np.clip(channel, 0, 255, out=channel)
            out[..., c] = channel.astype(np.uint8)
        out = np.asarray(cv2.GaussianBlur(out, (0, 0), look.blur_px), np.uint8)
        noise = np.random.default_rng(look.noise_seed).standard_normal(out.shape, dtype=np.float32)
        noisy = out.astype(np.float32) + noise * np.float32(look.noise_sigma) + 0.5
        np.clip(noisy, 0, 255, out=noisy)
        return noisy.astype(np.uint8)


def _color_of(values: Sequence[float]) -> Color:
    b, g, r = (int(np.clip(v, 0, 255)) for v in values)
    return b, g, r


def _fixed(en: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Pixel coordinates of world points for OpenCV, with 4 bits of subpixel precision (pixel centres on integers)."""
    px = en @ affine[:, :2].T + affine[:, 2] - 0.5
    return np.round(np.clip(px, -1e5, 1e5) * 16).astype(np.int32)


def _paint(buffer: np.ndarray, shape: _Shape, poly: np.ndarray, gsd: float, value: int) -> None:
    if shape.kind == _LINE:
        thickness = max(1, round(shape.width_m / gsd))
        cv2.polylines(buffer, [poly], False, int(value), thickness=thickness, lineType=cv2.LINE_8, shift=4)
    else:
        cv2.fillPoly(buffer, [poly], int(value), lineType=cv2.LINE_8, shift=4)


def _overlaps(centre: np.ndarray, radius: float, others: Sequence[tuple[np.ndarray, float]]) -> bool:
    return any(math.dist(centre, c) < radius + r for c, r in others)


def _crown(centre: np.ndarray, r: float, feature: int) -> list[_Shape]:
    """A tree crown: a disc and a few lobes, one feature."""
    rng = np.random.default_rng([round(abs(float(centre[0])) * 1000), round(abs(float(centre[1])) * 1000)])
    shapes = [_Shape(_disc_uv(float(centre[0]), float(centre[1]), r), feature, elevated=True)]
    for _ in range(int(rng.integers(2, 5))):
        angle, dist = float(rng.uniform(0, 2 * math.pi)), r * float(rng.uniform(0.3, 0.6))
        lobe = _disc_uv(
            float(centre[0]) + dist * math.cos(angle), float(centre[1]) + dist * math.sin(angle), r * 0.6, 16
        )
        shapes.append(_Shape(lobe, feature, elevated=True))
    return shapes


# --- things, from above ------------------------------------------------------------------------------------


def _fill(world: _World, en: np.ndarray, color: Color, amp: float = 0.07) -> _Shape:
    return _Shape(np.asarray(en, np.float64), world.feature(color, amp), elevated=True)


def _line(world: _World, en: np.ndarray, color: Color, width_m: float) -> _Shape:
    return _Shape(np.asarray(en, np.float64), world.feature(color, 0.03), kind=_LINE, elevated=True, width_m=width_m)


def _stall(
    rng: np.random.Generator,
    world: _World,
    centre: np.ndarray,
    heading: np.ndarray,
    length: float,
    depth: float,
    colour: Color,
) -> _Thing:
    """A stall from above: a gabled, flat, striped or two-tarp awning, or an open table of goods."""
    side = np.array([-heading[1], heading[0]])
    outline = _rect_oriented(centre, heading, length, depth)
    style = str(rng.choice(["gable", "flat", "striped", "two_tarps", "table"], p=[0.3, 0.25, 0.15, 0.15, 0.15]))
    shapes: list[_Shape] = []
    if style == "gable":  # a ridge down the middle, one slope in more light than the other
        lit = float(rng.uniform(0.72, 0.88))
        shapes.append(_fill(world, _rect_oriented(centre - side * depth / 4, heading, length, depth / 2), colour))
        shapes.append(
            _fill(world, _rect_oriented(centre + side * depth / 4, heading, length, depth / 2), _scale(colour, lit))
        )
        ridge = np.array([centre - heading * length / 2, centre + heading * length / 2])
        shapes.append(_line(world, ridge, _scale(colour, 0.6), 0.05))
    elif style == "flat":
        shapes.append(_fill(world, outline, colour))
        shapes.append(_fill(world, _rect_oriented(centre, heading, length * 0.8, depth * 0.7), _scale(colour, 0.93)))
        shapes.append(_line(world, np.vstack([outline, outline[:1]]), _scale(colour, 0.7), 0.05))
    elif style == "striped":
        other = _pick(rng, ((235, 235, 232), *_TARPS), 8)
        n = int(rng.integers(4, 11))
        for k in range(n):
            at = centre + heading * length * ((k + 0.5) / n - 0.5)
            shapes.append(_fill(world, _rect_oriented(at, heading, length / n, depth), colour if k % 2 else other))
    elif style == "two_tarps":
        shapes.append(_fill(world, outline, colour))
        second = _pick(rng, _TARPS, 10)
        frac = float(rng.uniform(0.35, 0.6))
        at = centre + heading * length * (0.5 - frac / 2) * (1 if rng.random() < 0.5 else -1)
        shapes.append(_fill(world, _rect_oriented(at, heading, length * frac, depth), second))
    else:  # an open table of goods: no awning
        table = _pick(rng, ((70, 110, 160), (196, 198, 200), (60, 130, 60), (40, 40, 170)), 10)
        shapes.append(_fill(world, outline, table))
        box = float(rng.uniform(0.2, 0.4))
        n_a, n_b = max(1, int((length - 0.2) / (box + 0.06))), max(1, int((depth - 0.2) / (box + 0.06)))
        for i in range(n_a):
            for j in range(n_b):
                if rng.random() < 0.15:
                    continue
                at = centre + heading * (i - (n_a - 1) / 2) * (box + 0.06) + side * (j - (n_b - 1) / 2) * (box + 0.06)
                goods = _pick(rng, _GOODS, 15)
                if rng.random() < 0.5:
                    shapes.append(_fill(world, _rect_oriented(at, heading, box, box), goods, 0.15))
                else:
                    shapes.append(_fill(world, _disc_uv(float(at[0]), float(at[1]), box / 2, 10), goods, 0.15))
        return _Thing("stall", shapes, outline, 0.9, False, centre, math.hypot(length, depth) / 2, _TABLE_LAYER)
    height = float(rng.uniform(2.0, 2.5))
    return _Thing("stall", shapes, outline, height, True, centre, math.hypot(length, depth) / 2, _AWNING_LAYER)


def _cart(rng: np.random.Generator, world: _World, centre: np.ndarray, heading: np.ndarray) -> _Thing:
    """A vendor's cart: a metal body with a glass case or a tray of fruit."""
    length, width = float(rng.uniform(1.2, 1.8)), float(rng.uniform(0.7, 1.0))
    outline = _rect_oriented(centre, heading, length, width)
    body = _pick(rng, ((190, 190, 195), (40, 40, 170), (235, 235, 235), (40, 160, 220)), 10)
    shapes = [_fill(world, outline, body)]
    top = _rect_oriented(centre, heading, length * 0.8, width * 0.75)
    shapes.append(_fill(world, top, _pick(rng, _GOODS, 20) if rng.random() < 0.5 else (200, 205, 195), 0.12))
    return _Thing("stall", shapes, outline, 1.0, False, centre, math.hypot(length, width) / 2, _TABLE_LAYER)


def _umbrella(rng: np.random.Generator, world: _World, centre: np.ndarray, radius: float) -> _Thing:
    """A market umbrella from above: panels of one, two or many colours round a finial, or a square one."""
    n = 4 if rng.random() < 0.2 else int(rng.choice([6, 8, 8, 10, 12]))
    spin = float(rng.uniform(0, 2 * math.pi))
    scheme = str(rng.choice(["two", "one", "many"], p=[0.5, 0.3, 0.2]))
    first, second = _pick(rng, _UMBRELLAS, 10), _pick(rng, _UMBRELLAS, 10)
    light = float(rng.uniform(0, 2 * math.pi))  # panels facing this way are a little brighter: a shallow cone
    rim = radius * (math.sqrt(2.0) if n == 4 else 1.0)  # a square one is 2 * radius a side
    corners = [centre + rim * np.array([math.cos(spin + 2 * math.pi * k / n), math.sin(spin + 2 * math.pi * k / n)])
               for k in range(n)]  # fmt: skip
    shapes = []
    for k in range(n):
        colour = {"two": (first, second)[k % 2], "one": first, "many": _pick(rng, _UMBRELLAS, 10)}[scheme]
        mid = spin + 2 * math.pi * (k + 0.5) / n
        shapes.append(_fill(world, np.array([centre, corners[k], corners[(k + 1) % n]]),
                            _scale(colour, 1.0 + 0.1 * math.cos(mid - light)), 0.04))  # fmt: skip
    rib = _scale(first, 0.55)
    for k in range(n):
        shapes.append(_line(world, np.array([centre, corners[k]]), rib, 0.03))
    if rng.random() < 0.35:  # a valance round the rim
        ring = np.array([*corners, corners[0]])
        shapes.append(_line(world, ring, _pick(rng, _UMBRELLAS, 10), 0.08))
    shapes.append(_fill(world, _disc_uv(float(centre[0]), float(centre[1]), 0.07, 8), (40, 40, 40)))
    outline = np.array(corners)
    height = float(rng.uniform(2.0, 2.6))
    return _Thing("umbrella", shapes, outline, height, True, centre, rim, _UMBRELLA_LAYER)


def _person(rng: np.random.Generator, world: _World, centre: np.ndarray, heading: np.ndarray) -> _Thing:
    """A person from above: shoulders, a head (or a hat), a long thin shadow."""
    shoulders = _ellipse_en(centre, heading, float(rng.uniform(0.11, 0.15)), float(rng.uniform(0.2, 0.26)))
    shirt = (int(rng.integers(20, 235)), int(rng.integers(20, 235)), int(rng.integers(20, 235)))
    shapes = [_fill(world, shoulders, shirt, 0.06)]
    head = centre + heading * 0.03
    if rng.random() < 0.15:  # a hat
        hat = _pick(rng, ((200, 225, 235), (235, 235, 235), (30, 30, 30), (60, 110, 160)), 10)
        shapes.append(_fill(world, _disc_uv(float(head[0]), float(head[1]), float(rng.uniform(0.16, 0.26)), 12), hat))
    else:
        hair = (int(rng.integers(10, 45)), int(rng.integers(12, 50)), int(rng.integers(15, 60)))
        shapes.append(_fill(world, _disc_uv(float(head[0]), float(head[1]), float(rng.uniform(0.085, 0.11)), 10), hair))
    return _Thing("person", shapes, shoulders, float(rng.uniform(1.55, 1.85)), False, centre, 0.3, _PERSON_LAYER)


def _car(rng: np.random.Generator, world: _World, centre: np.ndarray, heading: np.ndarray) -> _Thing:
    """A car or taxi from above: body, windscreen, rear window and roof."""
    length, width = float(rng.uniform(3.9, 4.9)), float(rng.uniform(1.65, 1.9))
    colour = _TAXI if rng.random() < 0.2 else _pick(rng, _CARS, 8)
    side = np.array([-heading[1], heading[0]])
    cut = 0.25
    hl, hw = length / 2, width / 2
    body = np.array([centre + heading * a + side * b for a, b in (
        (hl, hw - cut), (hl - cut, hw), (-hl + cut, hw), (-hl, hw - cut),
        (-hl, -hw + cut), (-hl + cut, -hw), (hl - cut, -hw), (hl, -hw + cut))])  # fmt: skip
    shapes = [_fill(world, body, colour, 0.03)]
    front, back = centre + heading * length * 0.16, centre - heading * length * 0.28
    screen = [(0.45, 0.8), (0.45, -0.8), (0.0, -0.85), (0.0, 0.85)]  # (forward m, across share of half-width)
    rear = [(0.0, 0.85), (0.0, -0.85), (-0.3, -0.75), (-0.3, 0.75)]
    for at, corners in ((front, screen), (back, rear)):
        glass = np.array([at + heading * a + side * hw * b for a, b in corners])
        shapes.append(_fill(world, glass, _GLASS, 0.02))
    roof = _rect_oriented(centre - heading * length * 0.06, heading, length * 0.4, width * 0.8)
    shapes.append(_fill(world, roof, _scale(colour, 1.06), 0.02))
    if colour == _TAXI:  # the roof sign
        shapes.append(_fill(world, _rect_oriented(centre, side, 0.6, 0.2), (240, 240, 240), 0.02))
    return _Thing("vehicle", shapes, body, 1.45, False, centre, length / 2, _VEHICLE_LAYER)


def _bus(rng: np.random.Generator, world: _World, centre: np.ndarray, heading: np.ndarray) -> _Thing:
    """A bus or lorry from above: a long roof with air-conditioning boxes."""
    length, width = float(rng.uniform(8.0, 12.0)), float(rng.uniform(2.4, 2.55))
    body = _rect_oriented(centre, heading, length, width)
    colour = _pick(rng, ((235, 235, 235), (40, 40, 170), (60, 140, 60), (30, 160, 230), (170, 110, 40)), 10)
    shapes = [_fill(world, body, colour, 0.03)]
    for k in range(int(rng.integers(1, 3))):
        at = centre + heading * length * (0.2 - 0.3 * k)
        shapes.append(_fill(world, _rect_oriented(at, heading, 1.6, 1.4), (200, 202, 205), 0.03))
    return _Thing("vehicle", shapes, body, 3.0, False, centre, length / 2, _VEHICLE_LAYER)


def _motorbike(
    rng: np.random.Generator, world: _World, centre: np.ndarray, heading: np.ndarray, *, rider: bool
) -> _Thing:
    """A motorbike from above: a slim body, handlebars, a seat; maybe a rider with a helmet."""
    side = np.array([-heading[1], heading[0]])
    colour = _pick(rng, ((30, 30, 32), (40, 40, 170), (170, 90, 30), (200, 200, 205), (30, 30, 120)), 10)
    body = _ellipse_en(centre, heading, float(rng.uniform(0.9, 1.05)), 0.2, 10)
    shapes = [_fill(world, body, colour, 0.03)]
    bar = centre + heading * 0.55
    shapes.append(_line(world, np.array([bar - side * 0.36, bar + side * 0.36]), (40, 40, 40), 0.06))
    shapes.append(_fill(world, _rect_oriented(centre - heading * 0.2, heading, 0.6, 0.26), (25, 25, 25), 0.03))
    footprint = body
    if rider:
        shoulders = _ellipse_en(centre - heading * 0.1, heading, 0.13, 0.23)
        shapes.append(_fill(world, shoulders, _pick(rng, _CARS + _GOODS, 20), 0.05))
        helmet = centre
        shapes.append(_fill(world, _disc_uv(float(helmet[0]), float(helmet[1]), 0.14, 10), _pick(rng, _UMBRELLAS, 10)))
        footprint = np.vstack([body, shoulders])
    return _Thing("vehicle", shapes, footprint, 1.5 if rider else 1.1, False, centre, 1.1, _VEHICLE_LAYER)


def _motorbike_ridden(rng: np.random.Generator, world: _World, centre: np.ndarray, heading: np.ndarray) -> _Thing:
    return _motorbike(rng, world, centre, heading, rider=True)


# --- the dataset --------------------------------------------------------------------------------------------


def _write_image(path: Path, image: np.ndarray, quality: int) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix == ".jpg" else []
    try:
        ok = cv2.imwrite(str(path), image, params)
    except cv2.error as e:
        raise ImageWriteError(f"cannot write {str(path)!r}") from e
    if not ok:
        raise ImageWriteError(f"OpenCV refused to write {str(path)!r}")


def write_aerial_yolo_dataset(
    out_dir: str | os.PathLike[str],
    images: int,
    seed: int,
    *,
    chip: int = 640,
    gsd_range: tuple[float, float] = (0.02, 0.06),
    classes: Sequence[str] = AERIAL_CLASSES,
    val_fraction: float = 0.2,
    chips_per_world: int = 10,
    area_m: float = 160.0,
    min_box_px: float = 4.0,
    min_visible: float = 0.4,
    image_ext: str = ".jpg",
) -> YoloDatasetSummary:
    """Write a YOLO detection dataset of `images` top-down chips of synthetic towns.

    Each world (an `AerialWorld` of a seed drawn from `seed`) gives `chips_per_world`
    chips, each with its own ground sample distance (log-uniform in `gsd_range`, metres
    per pixel), rotation, light and camera. Whole worlds go to train or val, so no town
    leaks across the split. Objects of `classes` (a subset of `AERIAL_CLASSES`) are
    labelled with their `SYNTHETIC_CLASSES` ids, and data.yaml names every class of
    `SYNTHETIC_CLASSES`, so the set merges with `write_yolo_dataset`'s street frames;
    drawn objects of other classes stay unlabelled. Deterministic for a seed.
    """
    if images < 1:
        raise ValueError(f"images must be >= 1, but got {images}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, but got {seed}")
    if not 64 <= chip <= 4096:
        raise ValueError(f"chip must lie in [64, 4096] pixels, but got {chip}")
    lo, hi = gsd_range
    if not 0.005 <= lo <= hi <= 0.5:
        raise ValueError(f"gsd_range must be (low, high) with 0.005 <= low <= high <= 0.5 m/px, but got {gsd_range}")
    wanted = tuple(classes)
    unknown = [c for c in wanted if c not in AERIAL_CLASSES]
    if not wanted or unknown or len(set(wanted)) != len(wanted):
        raise ValueError(
            f"classes must be distinct names from {AERIAL_CLASSES} (what aerial chips draw), but got {wanted}"
        )
    if chips_per_world < 1:
        raise ValueError(f"chips_per_world must be >= 1, but got {chips_per_world}")
    root = prepare_yolo_folder(out_dir, val_fraction, image_ext)
    n_worlds = math.ceil(images / chips_per_world)
    world_seeds, val_set = split_seeds(seed, 0xAE7, n_worlds, val_fraction, np.random.default_rng([seed, 0x5B17]))
    label_ids = {SYNTHETIC_CLASSES.index(c) for c in wanted}
    manifest: list[dict[str, Any]] = []
    counts = {"train": 0, "val": 0}
    per_class: Counter[str] = Counter()
    remaining = images
    for world_seed in world_seeds:
        world = AerialWorld(world_seed, area_m=area_m)
        split = "val" if world_seed in val_set else "train"
        rng = np.random.default_rng([seed, world_seed, 0xC41])
        for index in range(min(chips_per_world, remaining)):
            view = world.sample_view(rng, size_px=chip, gsd_range=gsd_range)
            look = sample_look(rng)
            image, truth = world.render(view, look, index=index)
            kept = FrameTruth(truth.index, tuple(o for o in truth.objects if o.class_id in label_ids))
            lines = yolo_label_lines(kept, chip, chip, min_box_px=min_box_px, min_visible=min_visible)
            stem = f"{world_seed}_{index:04d}"
            _write_image(root / "images" / split / f"{stem}{image_ext}", image, look.jpeg_quality)
            (root / "labels" / split / f"{stem}.txt").write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
            per_class.update(SYNTHETIC_CLASSES[int(line.split()[0])] for line in lines)
            image_name = f"images/{split}/{stem}{image_ext}"
            manifest.append({"image": image_name, "split": split, "world_seed": world_seed, "chip": index,
                             "view": asdict(view), "look": asdict(look), "boxes": len(lines)})  # fmt: skip
            counts[split] += 1
            remaining -= 1
        if remaining == 0:
            break
    if remaining:
        raise DatasetError(f"wrote {images - remaining} of {images} chips: too few worlds")
    data_yaml = write_data_yaml(root, SYNTHETIC_CLASSES)
    record = {"format": AERIAL_FORMAT, "seed": seed, "classes": list(wanted), "chips": manifest}
    tmp = root / ".chips.json.partial"
    tmp.write_text(json.dumps(record, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, root / "chips.json")
    used = {m["world_seed"] for m in manifest}
    n_boxes = sum(per_class.values())
    logger.info(
        "wrote aerial YOLO dataset %s: %d train, %d val, %d boxes", root, counts["train"], counts["val"], n_boxes
    )
    return YoloDatasetSummary(
        root=root,
        data_yaml=data_yaml,
        n_train=counts["train"],
        n_val=counts["val"],
        n_boxes=n_boxes,
        train_seeds=tuple(s for s in world_seeds if s in used and s not in val_set),
        val_seeds=tuple(s for s in world_seeds if s in used and s in val_set),
        boxes_per_class=dict(sorted(per_class.items())),
    )

"""Actors: the things that get ground truth (and the plume model that steam reuses).

Each actor is a pure function of the frame index: `sprite(t)` paints it as it is at frame
`t`, so any frame can be rendered on its own and twice renders are identical.
"""

from __future__ import annotations

import itertools
import logging
import math
from abc import ABC, abstractmethod

import cv2
import numpy as np

from datasets.synthetic.background import Layout
from datasets.synthetic.draw import Color, Pen, Point, Sprite, clip_rect, random_color, shade
from datasets.synthetic.spec import ActorKind, StructureStyle

logger = logging.getLogger(__name__)

SMOKE_ALPHA_THRESHOLD = 0.06
"""Plume opacity below this is cut to zero, so the truth box is the visible plume extent."""


class Actor(ABC):
    """Something drawn into the scene; `kind` is None for distractors, which get no truth."""

    kind: ActorKind | None
    object_id: int
    depth: float  # foot y in pixels; actors are drawn far (small) to near (large)
    appear_frame: int = 0

    @abstractmethod
    def sprite(self, t: int) -> Sprite | None:
        """The actor as painted at frame `t`, or None when it is not in the scene."""


class Plume(Actor):
    """Puffs emitted from a vent that rise, grow, drift with a varying wind and fade.

    Smoke is long-lived and grey to black (Ringelmann levels); steam is white and gone
    within a second, which is what tells them apart for a detector.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        layout: Layout,
        fps: float,
        frame_count: int,
        *,
        vent: tuple[int, int],
        start: int,
        steam: bool,
        kind: ActorKind | None,
        object_id: int,
    ) -> None:
        h = layout.height
        self.kind, self.object_id = kind, object_id
        self.layout, self.fps, self.steam = layout, fps, steam
        self.depth = float(layout.sidewalk_top - 2)
        self.appear_frame = start
        self.vent = (vent[0] + (float(rng.uniform(-3, 3)) if steam else 0.0), float(vent[1]))
        if steam:
            self.ringelmann = 0
            self.grey = float(rng.uniform(232, 252))
            life = rng.uniform(0.35, 0.9)
            rise, growth, r0 = h * rng.uniform(0.12, 0.22), h * rng.uniform(0.03, 0.06), h * 0.012
            self.max_opacity, self.k = float(rng.uniform(0.55, 0.85)), 1.4
            rate = rng.uniform(3.0, 7.0)
        else:
            self.ringelmann = int(rng.integers(0, 6))
            self.grey = float(np.clip(235 - 40 * self.ringelmann + rng.uniform(-12, 12), 20, 245))
            life = rng.uniform(2.0, 4.0)
            rise, growth, r0 = h * rng.uniform(0.06, 0.12), h * rng.uniform(0.02, 0.04), h * rng.uniform(0.012, 0.022)
            self.max_opacity = float(np.clip(0.6 + 0.07 * self.ringelmann + rng.uniform(-0.05, 0.1), 0.4, 0.97))
            self.k = float(rng.uniform(2.2, 3.5))
            rate = rng.uniform(7.0, 14.0)
        self.tint = rng.uniform(-8, 8, 3)
        wind0, wind1 = h * rng.uniform(-0.07, 0.07), h * rng.uniform(0.0, 0.04)
        wind_period, wind_phase = rng.uniform(2.0, 6.0), rng.uniform(0, 2 * math.pi)
        puff_period, puff_phase = rng.uniform(0.8, 3.0), rng.uniform(0, 2 * math.pi)
        emits: list[float] = []
        carry = 0.0
        for f in range(start, frame_count):
            s = f / fps
            # puffing: emission rises and falls, with short pauses for smoke
            level = 0.55 + 0.45 * math.sin(2 * math.pi * s / puff_period + puff_phase)
            carry += rate * max(level, 0.08 if not steam else 0.0) / fps
            while carry >= 1.0:
                carry -= 1.0
                emits.append(f + float(rng.uniform(0, 1)))
        n = len(emits)
        self.emit = np.asarray(emits, np.float64)  # frame of emission
        self.life = life * rng.uniform(0.8, 1.2, n)
        self.rise = rise * rng.uniform(0.8, 1.2, n)
        self.growth = growth * rng.uniform(0.7, 1.3, n)
        self.r0 = r0 * rng.uniform(0.7, 1.3, n)
        self.dens = rng.uniform(0.6, 1.0, n)
        self.jx = rng.normal(0, h * 0.004, n)
        self.wiggle = rng.uniform(0, 2 * math.pi, n)
        mid = self.emit / fps
        self.wind = wind0 + wind1 * np.sin(2 * math.pi * mid / wind_period + wind_phase)
        self.tex_id = rng.integers(0, 1 << 30, n)
        self.textures: list[np.ndarray] = []

    def sprite(self, t: int) -> Sprite | None:
        if t < self.appear_frame or not len(self.emit):
            return None
        age = (t - self.emit) / self.fps
        live = (age >= 0) & (age < self.life)
        if not np.any(live):
            return None
        a, life = age[live], self.life[live]
        frac = a / life
        x = self.vent[0] + self.jx[live] + self.wind[live] * a * (0.4 + 0.6 * frac)
        x = x + np.sin(self.wiggle[live] + 3.0 * a) * self.growth[live] * a * 0.15
        y = self.vent[1] - self.rise[live] * a * (1.0 - 0.3 * frac)
        r = self.r0[live] + self.growth[live] * a
        d = self.dens[live] * (1.0 - frac) ** (2.5 if self.steam else 1.3) * np.minimum(1.0, 0.3 + a * 4.0)
        tex_ids = self.tex_id[live]
        lw, lh = self.layout.width, self.layout.height
        rect = clip_rect(
            math.floor((x - r).min()),
            math.floor((y - r).min()),
            math.ceil((x + r).max() - (x - r).min()) + 2,
            math.ceil((y + r).max() - (y - r).min()) + 2,
            width=lw,
            height=lh,
        )
        if rect is None:
            return None
        fx0, fy0, fx1, fy1 = rect
        density = np.zeros((fy1 - fy0, fx1 - fx0), np.float32)
        for i in range(len(x)):
            size = max(round(2 * r[i]), 2)
            px, py = round(x[i] - r[i]) - fx0, round(y[i] - r[i]) - fy0
            cx0, cy0 = max(px, 0), max(py, 0)
            cx1, cy1 = min(px + size, density.shape[1]), min(py + size, density.shape[0])
            if cx0 >= cx1 or cy0 >= cy1:
                continue
            tex = _PUFFS[int(tex_ids[i]) % len(_PUFFS)]
            blob = cv2.resize(tex, (size, size), interpolation=cv2.INTER_LINEAR)
            density[cy0:cy1, cx0:cx1] += blob[cy0 - py : cy1 - py, cx0 - px : cx1 - px] * np.float32(d[i])
        alpha = 1.0 - np.exp(-self.k * density)
        alpha = np.clip((alpha - SMOKE_ALPHA_THRESHOLD) / (1.0 - SMOKE_ALPHA_THRESHOLD), 0.0, 1.0)
        alpha = (alpha * self.max_opacity).astype(np.float32)
        if not np.any(alpha > 0):
            return None
        # denser cores look a little darker (smoke) or brighter (steam)
        lum = self.grey * (1.0 + (0.06 if self.steam else -0.12) * alpha)
        color = np.clip(lum[..., None] + self.tint.astype(np.float32), 0, 255).astype(np.uint8)
        return Sprite(fx0, fy0, color, alpha, opaque=False)


def _make_puffs() -> list[np.ndarray]:
    from datasets.synthetic.draw import puff_textures

    return puff_textures(np.random.default_rng(20240611), 8)


_PUFFS = _make_puffs()


class _Staying(Actor):
    """An object that appears at `appear_frame` and stays put (its shape is fixed at build)."""

    _cached: Sprite | None = None

    def sprite(self, t: int) -> Sprite | None:
        if t < self.appear_frame:
            return None
        if self._cached is None:
            self._cached = self._paint()
        return self._cached

    @abstractmethod
    def _paint(self) -> Sprite: ...


def _sidewalk_foot(rng: np.random.Generator, layout: Layout) -> float:
    return float(rng.uniform(layout.sidewalk_top + 0.35 * (layout.road_top - layout.sidewalk_top), layout.road_top - 2))


class Stall(_Staying):
    """A vendor stall: a table or cart under a striped canopy with goods on top."""

    def __init__(self, rng: np.random.Generator, layout: Layout, appear: int, object_id: int) -> None:
        self.kind, self.object_id, self.appear_frame = ActorKind.STALL, object_id, appear
        self.depth = _sidewalk_foot(rng, layout)
        s = layout.scale_at(self.depth)
        h = layout.height
        self.w, self.h = h * rng.uniform(0.28, 0.48) * s, h * rng.uniform(0.26, 0.36) * s
        self.cx = float(rng.uniform(0.05 * layout.width, 0.95 * layout.width))
        self.rng = np.random.default_rng(rng.integers(1 << 62))

    def _paint(self) -> Sprite:
        rng, w, h, cx, foot = self.rng, self.w, self.h, self.cx, self.depth
        x0, x1 = cx - w / 2, cx + w / 2
        top = foot - h
        pen = Pen.around([(x0, top), (x1, foot)], 3)
        pole = max(h * 0.025, 1)
        pole_c = random_color(rng, 30, 120)
        table_y = foot - h * rng.uniform(0.38, 0.48)
        canopy_bottom = top + h * 0.22
        pen.line((x0 + w * 0.06, canopy_bottom), (x0 + w * 0.06, foot), pole_c, pole)
        pen.line((x1 - w * 0.06, canopy_bottom), (x1 - w * 0.06, foot), pole_c, pole)
        table_c = random_color(rng, 40, 200)
        pen.rect(x0 + w * 0.03, table_y, x1 - w * 0.03, table_y + h * 0.07, table_c)
        if rng.random() < 0.5:  # a cart: closed body and wheels
            pen.rect(x0 + w * 0.08, table_y + h * 0.07, x1 - w * 0.08, foot - h * 0.1, shade(table_c, 0.8))
            for wx in (x0 + w * 0.2, x1 - w * 0.2):
                pen.circle((wx, foot - h * 0.08), h * 0.08, (30, 30, 30))
        else:
            pen.line((x0 + w * 0.12, table_y), (x0 + w * 0.12, foot), shade(table_c, 0.6), pole)
            pen.line((x1 - w * 0.12, table_y), (x1 - w * 0.12, foot), shade(table_c, 0.6), pole)
        x = x0 + w * 0.08
        while x < x1 - w * 0.12:  # goods for sale on the table
            gw = w * rng.uniform(0.05, 0.12)
            gh = h * rng.uniform(0.04, 0.1)
            pen.rect(x, table_y - gh, x + gw, table_y, random_color(rng))
            x += gw + w * 0.02
        c1, c2 = random_color(rng, 30, 240), random_color(rng, 180, 250)
        stripes = int(rng.integers(4, 9))
        over = w * 0.04
        for i in range(stripes):
            a, b = i / stripes, (i + 1) / stripes
            lx0, lx1 = x0 + w * 0.12 + (w * 0.76) * a, x0 + w * 0.12 + (w * 0.76) * b
            bx0, bx1 = x0 - over + (w + 2 * over) * a, x0 - over + (w + 2 * over) * b
            pen.poly([(lx0, top), (lx1, top), (bx1, canopy_bottom), (bx0, canopy_bottom)], c1 if i % 2 else c2)
        n_scallops = stripes * 2
        for i in range(n_scallops):
            sx = x0 - over + (w + 2 * over) * (i + 0.5) / n_scallops
            pen.ellipse((sx, canopy_bottom), ((w + 2 * over) / n_scallops / 2, h * 0.04), 0, 0, 180, c1)
        return pen.sprite()


class Umbrella(_Staying):
    """A large street umbrella, seen from the side or from above, maybe with a table."""

    def __init__(self, rng: np.random.Generator, layout: Layout, appear: int, object_id: int) -> None:
        self.kind, self.object_id, self.appear_frame = ActorKind.UMBRELLA, object_id, appear
        self.depth = _sidewalk_foot(rng, layout)
        s = layout.scale_at(self.depth)
        self.w = layout.height * rng.uniform(0.3, 0.5) * s
        self.h = layout.height * rng.uniform(0.28, 0.38) * s
        self.cx = float(rng.uniform(0.05 * layout.width, 0.95 * layout.width))
        self.rng = np.random.default_rng(rng.integers(1 << 62))

    def _paint(self) -> Sprite:
        rng, w, h, cx, foot = self.rng, self.w, self.h, self.cx, self.depth
        top = foot - h
        pen = Pen.around([(cx - w / 2, top), (cx + w / 2, foot)], 3)
        colors = [random_color(rng, 30, 250), random_color(rng, 150, 255)]
        pen.line((cx, top + h * 0.1), (cx, foot), (90, 90, 90), max(h * 0.025, 1))
        pen.rect(cx - w * 0.1, foot - h * 0.03, cx + w * 0.1, foot, (60, 60, 60))
        if rng.random() < 0.5:
            table_y = foot - h * 0.3
            pen.rect(cx - w * 0.25, table_y, cx + w * 0.25, table_y + h * 0.04, random_color(rng, 100, 250))
            pen.line((cx - w * 0.2, table_y), (cx - w * 0.2, foot), (70, 70, 70), max(h * 0.015, 1))
            pen.line((cx + w * 0.2, table_y), (cx + w * 0.2, foot), (70, 70, 70), max(h * 0.015, 1))
        panels = int(rng.integers(6, 11))
        if rng.random() < 0.6:  # side view: a dome with a scalloped rim
            dome_h = h * rng.uniform(0.25, 0.35)
            rim = top + dome_h
            for i in range(panels):
                a0, a1 = 180 + 180 * i / panels, 180 + 180 * (i + 1) / panels
                pen.ellipse((cx, rim), (w / 2, dome_h), 0, a0, a1, colors[i % 2])
            for i in range(panels):
                sx = cx - w / 2 + w * (i + 0.5) / panels
                pen.ellipse((sx, rim), (w / panels / 2, h * 0.035), 0, 0, 180, colors[i % 2])
        else:  # seen from above at a slant: a flattened disc of sectors
            disc_h = h * rng.uniform(0.18, 0.28)
            centre = (cx, top + disc_h / 2)
            for i in range(panels):
                pen.ellipse(centre, (w / 2, disc_h / 2), 0, 360 * i / panels, 360 * (i + 1) / panels, colors[i % 2])
        return pen.sprite()


class Goods(_Staying):
    """Crates, cardboard boxes and bags stacked on the sidewalk."""

    def __init__(self, rng: np.random.Generator, layout: Layout, appear: int, object_id: int) -> None:
        self.kind, self.object_id, self.appear_frame = ActorKind.GOODS, object_id, appear
        self.depth = _sidewalk_foot(rng, layout)
        self.s = layout.scale_at(self.depth) * layout.height
        self.cx = float(rng.uniform(0.05 * layout.width, 0.95 * layout.width))
        self.rng = np.random.default_rng(rng.integers(1 << 62))

    def _paint(self) -> Sprite:
        rng, s, foot = self.rng, self.s, self.depth
        cols = int(rng.integers(1, 4))
        items: list[tuple[str, float, float, float, float, Color]] = []
        x = self.cx
        for _ in range(cols):
            y = foot
            iw = s * rng.uniform(0.06, 0.1)
            for _ in range(int(rng.integers(1, 4))):
                ih = iw * rng.uniform(0.6, 1.0)
                kind = str(rng.choice(["crate", "box", "bag"], p=[0.35, 0.4, 0.25]))
                if kind == "box":
                    color: Color = (int(rng.integers(40, 90)), int(rng.integers(100, 150)), int(rng.integers(150, 200)))
                elif kind == "crate":
                    color = random_color(rng, 20, 230)
                else:
                    color = random_color(rng, 150, 250) if rng.random() < 0.5 else (200, 120, 40)
                items.append((kind, x, y - ih, x + iw, y, color))
                y -= ih
            x += iw * rng.uniform(0.95, 1.1)
        xs = [i[1] for i in items] + [i[3] for i in items]
        ys = [i[2] for i in items] + [i[4] for i in items]
        pen = Pen.around([(min(xs), min(ys)), (max(xs), max(ys))], 3)
        for kind, ix0, iy0, ix1, iy1, color in items:
            if kind == "bag":
                pen.ellipse(
                    ((ix0 + ix1) / 2, (iy0 + iy1) / 2 + 1), ((ix1 - ix0) / 2, (iy1 - iy0) / 2), 0, 0, 360, color
                )
                continue
            pen.rect(ix0, iy0, ix1, iy1, color)
            dark = shade(color, 0.55)
            if kind == "crate":
                for k in range(1, 3):
                    yy = iy0 + (iy1 - iy0) * k / 3
                    pen.line((ix0 + 1, yy), (ix1 - 1, yy), dark, 1)
            else:
                pen.line(((ix0 + ix1) / 2, iy0 + 1), ((ix0 + ix1) / 2, iy1 - 1), shade(color, 1.3), 1)
            pen.outline([(ix0, iy0), (ix1, iy0), (ix1, iy1), (ix0, iy1)], dark)
        return pen.sprite()


PX_PER_M = 0.14
"""Pixels per metre of something standing at a foot line, in frame heights times
`Layout.scale_at` (so people, 1.45-1.9 m, are the 0.2-0.27 of a frame `Person` draws)."""

GROUND_TILT = 0.25
"""How far up the image a metre of depth on the ground goes, in pixels of a metre across:
the camera looks down a little, so tops and far edges show."""


def _px_per_m(layout: Layout, foot: float) -> float:
    return layout.height * layout.scale_at(foot) * PX_PER_M


def _recede(layout: Layout, cx: float, depth_px: float) -> Point:
    """Offset from the front of something `depth_px` deep (pixels of a metre across) to its back.

    The back lies higher in the image and towards its centre, where the street's lines meet.
    """
    lean = (cx - layout.width / 2) / (layout.width / 2)
    return -0.35 * lean * depth_px, -GROUND_TILT * depth_px


def _cuboid(pen: Pen, x0: float, x1: float, foot: float, height: float, back: Point, color: Color) -> None:
    """A box seen from the front and a little above: front face, top, and the side turned to the camera."""
    dx, dy = back
    top = foot - height
    if abs(dx) >= 0.5:
        sx = x0 if dx < 0 else x1
        pen.poly([(sx, top), (sx + dx, top + dy), (sx + dx, foot + dy), (sx, foot)], shade(color, 0.72))
    pen.poly([(x0, top), (x1, top), (x1 + dx, top + dy), (x0 + dx, top + dy)], shade(color, 1.15))
    pen.rect(x0, top, x1, foot, color)


def _cuboid_bounds(x0: float, x1: float, foot: float, height: float, back: Point) -> list[Point]:
    dx, dy = back
    return [(x0 + min(dx, 0.0), foot - height + dy), (x1 + max(dx, 0.0), foot)]


_PLASTIC: tuple[Color, ...] = (
    (40, 40, 200),  # red
    (190, 110, 30),  # blue
    (235, 235, 235),  # white
    (60, 150, 60),  # green
    (40, 190, 235),  # yellow
    (30, 120, 230),  # orange
)
_WOOD: tuple[Color, ...] = ((60, 110, 160), (80, 140, 190), (40, 70, 110), (110, 160, 200))


def _pick(rng: np.random.Generator, palette: tuple[Color, ...], spread: int = 12) -> Color:
    base = palette[int(rng.integers(len(palette)))]
    return (
        int(np.clip(base[0] + rng.integers(-spread, spread + 1), 0, 255)),
        int(np.clip(base[1] + rng.integers(-spread, spread + 1), 0, 255)),
        int(np.clip(base[2] + rng.integers(-spread, spread + 1), 0, 255)),
    )


class Table(_Staying):
    """A table set out on the sidewalk: folding, square plastic, round or a low hot-pot table, maybe with a
    cloth and dishes on it. `Chair`s place themselves around it."""

    def __init__(self, rng: np.random.Generator, layout: Layout, appear: int, object_id: int) -> None:
        self.kind, self.object_id, self.appear_frame = ActorKind.TABLE, object_id, appear
        self.depth = _sidewalk_foot(rng, layout)
        self.m = _px_per_m(layout, self.depth)
        self.style = str(rng.choice(["folding", "square", "round", "low"], p=[0.3, 0.3, 0.2, 0.2]))
        if self.style == "folding":
            width, deep, height = rng.uniform(1.1, 1.8), rng.uniform(0.6, 0.8), rng.uniform(0.7, 0.78)
        elif self.style == "square":
            width = rng.uniform(0.7, 0.95)
            deep, height = width, rng.uniform(0.7, 0.78)
        elif self.style == "round":
            width = rng.uniform(0.7, 1.1)
            deep, height = width, rng.uniform(0.7, 0.76)
        else:
            width, deep, height = rng.uniform(0.6, 0.9), rng.uniform(0.5, 0.7), rng.uniform(0.38, 0.5)
        self.w, self.d, self.h = float(width * self.m), float(deep * self.m), float(height * self.m)
        self.cx = float(rng.uniform(0.05 * layout.width, 0.95 * layout.width))
        self.back = _recede(layout, self.cx, self.d)
        self.first_side = int(rng.integers(0, 4))  # where its first chair goes
        self.rng = np.random.default_rng(rng.integers(1 << 62))

    def _paint(self) -> Sprite:
        rng, m, w, h, cx, foot = self.rng, self.m, self.w, self.h, self.cx, self.depth
        dx, dy = self.back
        x0, x1, top = cx - w / 2, cx + w / 2, foot - h
        color = _pick(rng, _WOOD) if self.style == "folding" and rng.random() < 0.4 else _pick(rng, _PLASTIC)
        metal = self.style == "folding" and rng.random() < 0.6
        leg_c = (150, 150, 152) if metal else shade(color, 0.8)
        thick = max(0.035 * m, 1.5)
        leg = max((0.03 if metal else 0.05) * m, 1.0)
        pen = Pen.around([*_cuboid_bounds(x0, x1, top + thick, 0.0, self.back), (x1, top - 0.3 * m), (x0, foot)], 3)
        if self.style == "round":  # a pedestal in the middle of a disc
            mid = (cx + dx / 2, foot + dy / 2)
            pen.ellipse(mid, (w * 0.22, max(-dy * 0.22, 1.0)), 0, 0, 360, shade(leg_c, 0.8))
            pen.line((mid[0], top + dy / 2), mid, leg_c, max(0.06 * m, 1.0))
            centre = (cx + dx / 2, top + dy / 2)
            pen.ellipse((centre[0], centre[1] + thick), (w / 2, max(-dy / 2, 1.0)), 0, 0, 180, shade(color, 0.75))
            pen.rect(x0 + dx / 2, centre[1], x1 + dx / 2, centre[1] + thick, shade(color, 0.75))
            pen.ellipse(centre, (w / 2, max(-dy / 2, 1.0)), 0, 0, 360, shade(color, 1.1))
        else:
            inset = w * 0.06
            for lx in (x0 + inset, x1 - inset):  # far legs first, the top hides their upper ends
                pen.line((lx + dx, top + dy), (lx + dx, foot + dy), shade(leg_c, 0.7), leg)
            _cuboid(pen, x0, x1, top + thick, thick, self.back, color)
            for lx in (x0 + inset, x1 - inset):
                pen.line((lx, top + thick), (lx, foot), leg_c, leg)
            if self.style == "folding" and rng.random() < 0.35:  # a cloth hanging over the front edge
                cloth = _pick(rng, ((40, 40, 190), (230, 230, 230), (180, 120, 40)), 10)
                drop = top + h * float(rng.uniform(0.25, 0.5))
                pen.rect(x0 - 1, top, x1 + 1, drop, cloth)
                if rng.random() < 0.5:  # checked
                    sq = max(0.08 * m, 2.0)
                    for i, yy in enumerate(np.arange(top, drop, sq)):
                        for j, xx in enumerate(np.arange(x0 - 1, x1 + 1, sq)):
                            if (i + j) % 2:
                                corners = [(xx, yy), (xx + sq, yy), (xx + sq, yy + sq), (xx, yy + sq)]
                                pen.poly(corners, (235, 235, 235))
                pen.outline([(x0 - 1, top), (x1 + 1, top), (x1 + 1, drop), (x0 - 1, drop)], shade(cloth, 0.6))
        if rng.random() < 0.65:  # dishes and bottles on the top
            for _ in range(int(rng.integers(1, 6))):
                depth_at = float(rng.uniform(0.25, 0.75))
                bx = float(rng.uniform(x0 + w * 0.12, x1 - w * 0.12)) + dx * depth_at
                by = top + dy * depth_at
                if rng.random() < 0.4:  # a bottle
                    bc = ((40, 120, 40), (30, 60, 110), (200, 210, 200))[int(rng.integers(3))]
                    bw, bh = max(0.06 * m, 1.5), 0.25 * m
                    pen.rect(bx - bw / 2, by - bh, bx + bw / 2, by, bc)
                    pen.rect(bx - bw / 4, by - bh * 1.25, bx + bw / 4, by - bh, bc)
                else:  # a bowl
                    bc = random_color(rng, 170, 250)
                    pen.ellipse((bx, by), (0.08 * m, max(0.04 * m, 1.0)), 0, 0, 180, bc)
                    pen.ellipse((bx, by), (0.08 * m, max(0.02 * m, 1.0)), 0, 180, 360, shade(bc, 0.8))
        return pen.sprite()


_CHAIR_SIDES = ("left", "right", "behind", "front")


class Chair(_Staying):
    """A chair or stool on the sidewalk: a plastic stool, a monobloc or folding chair, or a low stool.

    Beside a `Table` it stands at one of the table's sides facing it (its `slot`-th chair
    goes round the sides); on its own it stands anywhere on the sidewalk facing any way.
    `seated` says whether someone sits on it (a `SeatedPerson`, drawn from `sitter_seed`).
    """

    def __init__(
        self,
        rng: np.random.Generator,
        layout: Layout,
        appear: int,
        object_id: int,
        *,
        table: Table | None = None,
        slot: int = 0,
    ) -> None:
        self.kind, self.object_id, self.appear_frame = ActorKind.CHAIR, object_id, appear
        styles, weights = ["stool", "monobloc", "folding", "low_stool"], [0.3, 0.35, 0.2, 0.15]
        if table is not None and table.style == "low":
            weights = [0.15, 0.05, 0.05, 0.75]
        self.style = str(rng.choice(styles, p=weights))
        seat_h = rng.uniform(0.22, 0.3) if self.style == "low_stool" else rng.uniform(0.42, 0.47)
        seat = rng.uniform(0.3, 0.36) if "stool" in self.style else rng.uniform(0.4, 0.46)
        back_h = 0.0 if "stool" in self.style else rng.uniform(0.36, 0.46)
        lo, hi = layout.sidewalk_top + 2.0, layout.road_top - 1.0
        if table is None:
            self.depth = _sidewalk_foot(rng, layout)
            self.cx = float(rng.uniform(0.05 * layout.width, 0.95 * layout.width))
            self.facing = str(rng.choice(["left", "right", "front", "back"]))
        else:
            side = _CHAIR_SIDES[(table.first_side + slot) % 4] if slot < 4 else str(rng.choice(_CHAIR_SIDES))
            tm = table.m
            if side in ("left", "right"):
                sign = -1.0 if side == "left" else 1.0
                self.cx = table.cx + sign * (table.w / 2 + seat * tm * rng.uniform(0.3, 0.7))
                self.depth = table.depth + table.back[1] * float(rng.uniform(0.2, 0.7))
                self.facing = "right" if side == "left" else "left"
            elif side == "behind":
                self.cx = table.cx + table.back[0] + table.w * float(rng.uniform(-0.25, 0.25))
                self.depth = table.depth + table.back[1] - GROUND_TILT * tm * float(rng.uniform(0.05, 0.2))
                self.facing = "front"
            else:
                self.cx = table.cx + table.w * float(rng.uniform(-0.25, 0.25))
                self.depth = table.depth + GROUND_TILT * tm * float(rng.uniform(0.35, 0.6))
                self.facing = "back"
            self.depth = float(min(max(self.depth, lo), hi))
        self.m = _px_per_m(layout, self.depth)
        self.seat_h, self.seat, self.back_h = float(seat_h * self.m), float(seat * self.m), float(back_h * self.m)
        # seen from the side, the chair's depth runs across the image and its width goes into the picture
        self.recede = _recede(layout, self.cx, self.seat)
        self.seated = bool(rng.random() < (0.45 if table is not None else 0.15))
        self.sitter_seed = int(rng.integers(1 << 62))
        self.rng = np.random.default_rng(rng.integers(1 << 62))

    @property
    def seat_y(self) -> float:
        """Image y of the front edge of the seat's top."""
        return self.depth - self.seat_h

    def _paint(self) -> Sprite:
        rng, m, cx, foot = self.rng, self.m, self.cx, self.depth
        s, seat_y, back_h = self.seat, self.seat_y, self.back_h
        dx, dy = self.recede
        color = _pick(rng, _PLASTIC) if self.style != "folding" else _pick(rng, ((150, 150, 152), *_WOOD[:2]))
        frame_c = (120, 120, 124) if self.style == "folding" else shade(color, 0.85)
        leg = max((0.025 if self.style == "folding" else 0.045) * m, 1.0)
        slab = max(0.04 * m, 1.5)
        x0, x1 = cx - s / 2, cx + s / 2
        pen = Pen.around(
            [(x0 + min(dx, 0.0) - 0.1 * m, seat_y - back_h + dy - 2), (x1 + max(dx, 0.0) + 0.1 * m, foot)], 3
        )
        splay = 0.04 * m if "stool" in self.style else 0.0
        side_view = self.facing in ("left", "right")
        f = 1.0 if self.facing == "right" else -1.0
        back_x = cx - f * s / 2  # side view: where the backrest rises

        def legs(offset: Point, c: Color) -> None:
            ox, oy = offset
            for lx, out in ((x0 + leg / 2, -splay), (x1 - leg / 2, splay)):
                if self.style == "folding" and side_view:  # an X under the seat
                    other = x1 - leg / 2 if lx < cx else x0 + leg / 2
                    pen.line((lx + ox, seat_y + oy), (other + ox, foot + oy), c, leg)
                else:
                    pen.line((lx + ox, seat_y + oy), (lx + out + ox, foot + oy), c, leg)

        def backrest(at_x: float, at_y: float, offset: Point, c: Color) -> None:
            ox, oy = offset
            lean = -f * 0.06 * m
            plate = [
                (at_x, at_y),
                (at_x + ox, at_y + oy),
                (at_x + ox + lean, at_y + oy - back_h),
                (at_x + lean, at_y - back_h),
            ]
            pen.poly(plate, c)

        if self.facing == "front" and back_h:  # the backrest stands behind the seat
            pen.rect(x0 + dx, seat_y + dy - back_h, x1 + dx, seat_y + dy, shade(color, 0.9))
        legs(self.recede, shade(frame_c, 0.7))
        if self.style == "stool" and rng.random() < 0.5:  # a round stool: a disc with a rim
            pen.ellipse(
                (cx + dx / 2, seat_y + dy / 2 + slab), (s / 2, max(-dy / 2, 1.0)), 0, 0, 180, shade(color, 0.75)
            )
            pen.rect(x0 + dx / 2, seat_y + dy / 2, x1 + dx / 2, seat_y + dy / 2 + slab, shade(color, 0.75))
            pen.ellipse((cx + dx / 2, seat_y + dy / 2), (s / 2, max(-dy / 2, 1.0)), 0, 0, 360, shade(color, 1.1))
        else:
            _cuboid(pen, x0, x1, seat_y + slab, slab, self.recede, color)
        legs((0.0, 0.0), frame_c)
        if "stool" in self.style and rng.random() < 0.6:  # a ring between the legs
            ring_y = seat_y + (foot - seat_y) * 0.6
            pen.line((x0 - splay * 0.4, ring_y), (x1 + splay * 0.4, ring_y), frame_c, max(leg * 0.6, 1.0))
        if side_view and back_h:  # a plate rising from the seat's back edge, seen edge-on at a slant
            backrest(back_x, seat_y, self.recede, shade(color, 0.9))
        if self.facing == "back" and back_h:  # the backrest is nearest the camera
            pen.rect(x0, seat_y - back_h, x1, seat_y + slab, shade(color, 0.95))
            if self.style == "monobloc":
                for k in range(1, 4):  # slats
                    sx = x0 + s * k / 4
                    pen.outline([(sx, seat_y - back_h * 0.85), (sx, seat_y - back_h * 0.2)], shade(color, 0.7))
        return pen.sprite()


class SeatedPerson(_Staying):
    """Someone sitting on a `Chair`, turned the way the chair faces; labelled as a person (no event)."""

    def __init__(self, chair: Chair, frame_count: int, object_id: int) -> None:
        rng = np.random.default_rng(chair.sitter_seed)
        self.kind, self.object_id, self.chair = ActorKind.PERSON, object_id, chair
        wait = max((frame_count - chair.appear_frame) // 2, 1)
        self.appear_frame = chair.appear_frame + int(rng.integers(0, wait))
        # facing away, the chair's backrest hides the sitter's back: drawn just before the chair, else just after
        self.depth = chair.depth + (-0.01 if chair.facing == "back" else 0.01)
        self.h = chair.m * float(rng.uniform(1.5, 1.85))  # standing height
        self.shirt, self.pants = random_color(rng), random_color(rng, 10, 140)
        self.skin = shade((130, 170, 220), float(rng.uniform(0.45, 1.0)))
        self.hair = random_color(rng, 5, 60)
        self.shoes = random_color(rng, 5, 80)
        self.wide = float(rng.uniform(0.85, 1.2))

    def _paint(self) -> Sprite:
        c, h = self.chair, self.h
        foot, seat_y = c.depth, c.seat_y + c.recede[1] * 0.5
        hip_y = seat_y - h * 0.02
        torso_w = h * 0.11 * self.wide
        leg = max(h * 0.07 * self.wide, 1.0)
        pen = Pen.around([(c.cx - h * 0.45, hip_y - h * 0.55), (c.cx + h * 0.45, foot + 0.15 * c.m)], 3)
        if c.facing in ("left", "right"):
            f = 1.0 if c.facing == "right" else -1.0
            hip = (c.cx - f * c.seat * 0.2, hip_y)
            knee = (c.cx + f * (c.seat / 2 + h * 0.04), hip_y - h * 0.01)
            heel = (knee[0] + f * h * 0.02, foot)
            pen.line(hip, knee, self.pants, leg)
            pen.line(knee, heel, self.pants, leg * 0.9)
            pen.line(heel, (heel[0] + f * h * 0.07, heel[1]), self.shoes, max(leg * 0.8, 1.0))
            shoulder = (hip[0] - f * h * 0.02, hip_y - h * 0.3)
            sx, sy = shoulder
            pen.poly([(sx - torso_w * 0.55, sy), (sx + torso_w * 0.55, sy), (hip[0] + torso_w * 0.5, hip_y + 1),
                      (hip[0] - torso_w * 0.5, hip_y + 1)], self.shirt)  # fmt: skip
            elbow = (shoulder[0] + f * h * 0.1, shoulder[1] + h * 0.15)
            pen.line((shoulder[0], shoulder[1] + 2), elbow, shade(self.shirt, 0.85), max(h * 0.05, 1.0))
            pen.line(elbow, (elbow[0] + f * h * 0.13, elbow[1] - h * 0.03), self.skin, max(h * 0.04, 1.0))
            head: Point = (shoulder[0] + f * h * 0.015, shoulder[1] - h * 0.09)
        else:
            shoulder_y = hip_y - h * 0.3
            if c.facing == "front":  # knees come towards the camera, shins go down to the ground
                for sign in (-1.0, 1.0):
                    knee = (c.cx + sign * h * 0.05, hip_y + h * 0.03)
                    pen.line((c.cx + sign * h * 0.04, hip_y), knee, self.pants, leg)
                    pen.line(knee, (knee[0], foot + 0.12 * c.m), self.pants, leg * 0.9)
                    pen.circle((knee[0], foot + 0.12 * c.m), max(leg * 0.6, 1.0), self.shoes)
            pen.poly([(c.cx - torso_w, shoulder_y), (c.cx + torso_w, shoulder_y), (c.cx + torso_w * 0.9, hip_y + 2),
                      (c.cx - torso_w * 0.9, hip_y + 2)], self.shirt)  # fmt: skip
            for sign in (-1.0, 1.0):
                hand = (c.cx + sign * torso_w * 1.1, hip_y - h * 0.02)
                pen.line((c.cx + sign * torso_w, shoulder_y + 2), hand, shade(self.shirt, 0.85), max(h * 0.05, 1.0))
            head = (c.cx, shoulder_y - h * 0.09)
        pen.circle(head, h * 0.075, self.skin)
        if c.facing == "back":
            pen.circle(head, h * 0.075, self.hair)
        else:
            pen.ellipse((head[0], head[1] - h * 0.02), (h * 0.078, h * 0.06), 0, 180, 360, self.hair)
        return pen.sprite()


class Materials(_Staying):
    """A lot of construction materials on the sidewalk or a site.

    One of: stacked bricks or concrete blocks (maybe on a pallet), a sand, gravel or soil
    pile (maybe under a green dust net), a rebar bundle on sleepers, a timber or plywood
    stack, or bagged cement on a pallet.
    """

    STYLES = ("bricks", "pile", "rebar", "timber", "cement")

    def __init__(self, rng: np.random.Generator, layout: Layout, appear: int, object_id: int) -> None:
        self.kind, self.object_id, self.appear_frame = ActorKind.MATERIALS, object_id, appear
        self.depth = _sidewalk_foot(rng, layout)
        self.m = _px_per_m(layout, self.depth)
        self.style = str(rng.choice(self.STYLES, p=[0.25, 0.25, 0.15, 0.15, 0.2]))
        self.cx = float(rng.uniform(0.05 * layout.width, 0.95 * layout.width))
        self.layout = layout
        self.rng = np.random.default_rng(rng.integers(1 << 62))

    def _paint(self) -> Sprite:
        painters = {
            "bricks": self._bricks,
            "pile": self._pile,
            "rebar": self._rebar,
            "timber": self._timber,
            "cement": self._cement,
        }
        return painters[self.style]()

    def _back(self, cx: float, deep_m: float) -> Point:
        return _recede(self.layout, cx, deep_m * self.m)

    def _pallet(self, pen: Pen, x0: float, x1: float, back: Point) -> float:
        """A wooden pallet under a stack; returns the y its load stands on."""
        m, foot = self.m, self.depth
        h = 0.13 * m
        wood = _pick(self.rng, _WOOD, 10)
        _cuboid(pen, x0, x1, foot, h, back, wood)
        for k in range(3):  # the gaps between its blocks
            gx = x0 + (x1 - x0) * (0.2 + 0.3 * k)
            pen.outline([(gx - 0.06 * m, foot - h * 0.35), (gx + 0.06 * m, foot - h * 0.35)], shade(wood, 0.4), 2)
        return foot - h

    def _bricks(self) -> Sprite:
        rng, m, foot = self.rng, self.m, self.depth
        block = rng.random() < 0.35  # grey concrete blocks instead of red bricks
        course, unit = (0.2, 0.4) if block else (0.065, 0.24)
        n = int(rng.integers(1, 4))
        widths = [float(rng.uniform(0.8, 1.1)) * m for _ in range(n)]
        gaps = [float(rng.uniform(0.05, 0.25)) * m for _ in range(n)]
        heights = [float(rng.uniform(0.5, 1.1)) * m for _ in range(n)]
        total = sum(widths) + sum(gaps[:-1])
        x = self.cx - total / 2
        deep = float(rng.uniform(0.8, 1.0))
        back = self._back(self.cx, deep)
        pen = Pen.around([*_cuboid_bounds(x, x + total, foot, max(heights) + 0.14 * m, back)], 3)
        for width, gap, height in zip(widths, gaps, heights, strict=True):
            color = _pick(
                rng, ((150, 150, 150), (170, 168, 160)) if block else ((40, 65, 165), (50, 80, 180), (45, 55, 140))
            )
            base = self._pallet(pen, x, x + width, back) if rng.random() < 0.6 else foot
            _cuboid(pen, x, x + width, base, height, back, color)
            joint = shade(color, 0.6)
            rows = max(int(height / (course * m)), 1)
            for r in range(rows + 1):
                y = base - height * r / rows
                pen.outline([(x, y), (x + width, y)], joint)
                off = (unit * m / 2) if r % 2 else 0.0
                for jx in np.arange(x + off + unit * m, x + width, unit * m):
                    pen.outline([(float(jx), y), (float(jx), y - height / rows)], joint)
            if rng.random() < 0.4:  # part of the top layer already taken
                used = width * float(rng.uniform(0.3, 0.7))
                top_h = height / rows * int(rng.integers(1, 3))
                _cuboid(pen, x, x + used, base - height, top_h, back, color)
            x += width + gap
        return pen.sprite()

    def _pile(self) -> Sprite:
        rng, m, foot = self.rng, self.m, self.depth
        kind = str(rng.choice(["sand", "gravel", "soil"], p=[0.45, 0.35, 0.2]))
        base_c = {"sand": (110, 175, 210), "gravel": (135, 140, 145), "soil": (55, 80, 105)}[kind]
        color = _pick(rng, (base_c,), 15)
        w = float(rng.uniform(1.4, 3.2)) * m
        hh = min(float(rng.uniform(0.4, 1.0)) * m, 0.45 * w)
        depth_px = GROUND_TILT * w * 0.3  # half the footprint's depth, as seen
        x0, x1 = self.cx - w / 2, self.cx + w / 2
        t = np.linspace(0.0, 1.0, 33)
        bumps = 1.0 + 0.08 * np.sin(2 * math.pi * (t * float(rng.uniform(1.5, 3.0)) + float(rng.uniform(0, 1))))
        profile = np.clip(1.0 - (2 * t - 1) ** 2, 0.0, 1.0) ** 0.8 * bumps
        crest = foot - depth_px
        upper = [(x0 + w * float(a), crest - hh * float(p)) for a, p in zip(t, profile, strict=True)]
        lower = [(x0 + w * float(a), crest + depth_px * math.sqrt(max(1.0 - (2 * float(a) - 1) ** 2, 0.0)))
                 for a in t[::-1]]  # fmt: skip
        outline = upper + lower
        pen = Pen.around(outline, 3)
        netted = kind != "gravel" and rng.random() < 0.35
        if netted:
            color = _pick(rng, ((50, 120, 45), (40, 100, 40)), 10)
        pen.poly(outline, color)
        lit = 1.0 if rng.random() < 0.5 else -1.0  # the side the light comes from
        sunny = [(x, y) for x, y in upper if (x - self.cx) * lit >= -w * 0.1]
        sunny += [(self.cx + lit * w * 0.05, crest + depth_px * 0.6)]
        pen.poly(sunny, shade(color, 1.15))
        pen.poly([(self.cx - lit * w * 0.02, crest - hh * 0.2), *[(x, y) for x, y in lower if (x - self.cx) * lit < 0]],
                 shade(color, 0.82))  # fmt: skip
        pen.outline(outline, shade(color, 0.75))
        if netted:
            step = max(0.12 * m, 3.0)
            for gx in np.arange(x0, x1, step):
                pen.outline([(float(gx), crest - hh - 2), (float(gx) + step, crest + depth_px + 2)], shade(color, 0.6))
        else:
            inside = np.asarray(outline, np.float32)
            for _ in range(int(w * hh / 25)):  # grains and stones
                px, py = float(rng.uniform(x0, x1)), float(rng.uniform(crest - hh, foot))
                if cv2.pointPolygonTest(inside, (px, py), False) > 0:
                    grain = shade(color, float(rng.choice([0.65, 1.3])))
                    if kind == "gravel" and rng.random() < 0.4:
                        pen.circle((px, py), float(rng.uniform(1.0, 1.8)), grain)
                    else:
                        pen.line((px, py), (px, py), grain, 1)
        return pen.sprite()

    def _rebar(self) -> Sprite:
        rng, m, foot = self.rng, self.m, self.depth
        length = min(float(rng.uniform(2.5, 5.0)) * m, 0.6 * self.layout.width)
        thick = float(rng.uniform(0.18, 0.4)) * m
        x0 = self.cx - length / 2
        back = self._back(self.cx, float(rng.uniform(0.4, 0.8)))
        color = _pick(rng, ((40, 70, 125), (60, 85, 120), (80, 80, 86)), 10)
        sleeper = 0.1 * m
        stick = [float(rng.uniform(0.0, 0.3)) * m for _ in range(4)]
        pen = Pen.around([*_cuboid_bounds(x0, x0 + length + max(stick), foot, thick + sleeper, back)], 3)
        wood = _pick(rng, _WOOD, 10)
        for k in range(int(rng.integers(2, 4))):
            sx = x0 + length * (0.15 + 0.7 * k / 2)
            _cuboid(pen, sx - 0.08 * m, sx + 0.08 * m, foot, sleeper, back, wood)
        body_foot = foot - sleeper
        _cuboid(pen, x0, x0 + length, body_foot, thick, back, color)
        bar = max(0.025 * m, 1.5)
        for k, y in enumerate(np.arange(body_foot - thick, body_foot, bar)):
            pen.outline([(x0, float(y)), (x0 + length, float(y))], shade(color, 0.7 if k % 2 else 1.2))
        for k, extra in enumerate(stick):  # a few bars longer than the rest
            y = body_foot - thick * (0.2 + 0.2 * k)
            pen.line((x0 + length, y), (x0 + length + extra, y), shade(color, 0.9), 1)
        for k in range(int(rng.integers(2, 4))):  # binding wire
            wx = x0 + length * (0.2 + 0.3 * k)
            pen.outline([(wx, body_foot - thick), (wx, body_foot)], (40, 40, 40), 2)
        return pen.sprite()

    def _timber(self) -> Sprite:
        rng, m, foot = self.rng, self.m, self.depth
        plywood = rng.random() < 0.4  # formwork boards: film-faced, red-brown or yellow
        length = min(float(rng.uniform(1.8, 2.5 if plywood else 4.0)) * m, 0.5 * self.layout.width)
        layer = (0.018 if plywood else float(rng.uniform(0.05, 0.1))) * m
        layers = int(rng.integers(12, 40)) if plywood else int(rng.integers(3, 9))
        height = max(layer * layers, 2.0)
        x0 = self.cx - length / 2
        back = self._back(self.cx, 1.2 if plywood else float(rng.uniform(0.5, 1.0)))
        palette = ((35, 60, 130), (40, 150, 190)) if plywood else _WOOD
        color = _pick(rng, palette, 10)
        pen = Pen.around([*_cuboid_bounds(x0, x0 + length, foot, height + 0.1 * m, back)], 3)
        base = foot
        if rng.random() < 0.7:
            wood = _pick(rng, _WOOD, 10)
            for sx in (x0 + length * 0.15, x0 + length * 0.85):
                _cuboid(pen, sx - 0.05 * m, sx + 0.05 * m, foot, 0.1 * m, back, shade(wood, 0.8))
            base = foot - 0.1 * m
        _cuboid(pen, x0, x0 + length, base, height, back, color)
        gap = shade(color, 0.5)
        step = max(layer, 2.0)
        for k, y in enumerate(np.arange(base - height + step, base, step)):
            jitter = float(rng.uniform(-0.04, 0.04)) * m if not plywood else 0.0
            pen.outline(
                [(x0, float(y)), (x0 + length + jitter, float(y))], gap if k % 2 or not plywood else shade(color, 0.8)
            )
        if not plywood:  # plank ends on the side turned to the camera
            dx, dy = back
            ex = x0 if dx < 0 else x0 + length
            for k in range(int(rng.integers(2, 6))):
                a = (k + 1) / 6
                pen.outline([(ex + dx * a, base - height + dy * a), (ex + dx * a, base + dy * a)], gap)
        return pen.sprite()

    def _cement(self) -> Sprite:
        rng, m = self.rng, self.m
        width = float(rng.uniform(1.0, 1.25)) * m
        x0, x1 = self.cx - width / 2, self.cx + width / 2
        back = self._back(self.cx, float(rng.uniform(0.9, 1.1)))
        bag = float(rng.uniform(0.1, 0.13)) * m
        courses = int(rng.integers(4, 11))
        paper = (180, 185, 190) if rng.random() < 0.5 else ((110, 150, 190) if rng.random() < 0.6 else (225, 228, 230))
        color = _pick(rng, (paper,), 10)
        band = ((40, 40, 190), (170, 90, 30), (40, 160, 40), (30, 120, 220))[int(rng.integers(4))]
        pen = Pen.around([*_cuboid_bounds(x0, x1, self.depth, courses * bag + 0.14 * m, back)], 3)
        base = self._pallet(pen, x0, x1, back)
        _cuboid(pen, x0, x1, base, courses * bag, back, color)
        for c in range(courses):
            y1 = base - c * bag
            split = 0.5 if c % 2 else float(rng.choice([0.33, 0.66]))  # bags lie crosswise in alternate courses
            edges = [x0, x0 + width * split, x1] if c % 2 else [x0, x0 + width * split / 2, x0 + width * split, x1]
            for a, b in itertools.pairwise(edges):
                pen.outline([(a, y1 - bag), (b, y1 - bag), (b, y1), (a, y1)], shade(color, 0.65))
                mid = (a + b) / 2
                pen.outline([(mid - (b - a) * 0.2, y1 - bag / 2), (mid + (b - a) * 0.2, y1 - bag / 2)], band, 1)
        if rng.random() < 0.25:  # a tarp thrown over the top
            dx, dy = back
            tarp = _pick(rng, ((170, 100, 30), (40, 110, 40), (40, 120, 220)), 12)
            top = base - courses * bag
            pen.poly([(x0, top + bag * 1.5), (x0, top), (x0 + dx, top + dy), (x1 + dx, top + dy), (x1, top),
                      (x1, top + bag * 1.5)], tarp)  # fmt: skip
        return pen.sprite()


class Person(Actor):
    """A walking figure: swinging legs and arms, varied clothes, skin and hair."""

    def __init__(self, rng: np.random.Generator, layout: Layout, fps: float, frame_count: int, object_id: int) -> None:
        self.kind, self.object_id, self.fps = ActorKind.PERSON, object_id, fps
        self.depth = float(rng.uniform(layout.sidewalk_top + 3, layout.road_top - 1))
        if rng.random() < 0.15:  # some people cross the road
            self.depth = float(rng.uniform(layout.road_top + 4, layout.height - 2))
        s = layout.scale_at(self.depth)
        self.h = layout.height * rng.uniform(0.2, 0.27) * s
        self.direction = 1.0 if rng.random() < 0.5 else -1.0
        self.speed = self.h * rng.uniform(0.5, 0.9)  # pixels per second
        duration = frame_count / fps
        enter = rng.uniform(-0.6, 0.7) * duration
        start_x = -self.h if self.direction > 0 else layout.width + self.h
        self.x_at0 = start_x - self.direction * self.speed * enter
        self.stride = rng.uniform(1.6, 2.2)  # steps per second
        self.phase = rng.uniform(0, 2 * math.pi)
        self.shirt, self.pants = random_color(rng), random_color(rng, 10, 140)
        tone = rng.uniform(0.45, 1.0)
        self.skin = shade((130, 170, 220), tone)
        self.hair = random_color(rng, 5, 60)
        self.shoes = random_color(rng, 5, 80)
        self.bag = random_color(rng) if rng.random() < 0.3 else None
        self.wide = rng.uniform(0.8, 1.2)
        self.width = layout.width

    def sprite(self, t: int) -> Sprite | None:
        s = t / self.fps
        cx = self.x_at0 + self.direction * self.speed * s
        h, foot = self.h, self.depth
        if cx + h < 0 or cx - h > self.width:
            return None
        swing = math.sin(2 * math.pi * self.stride * s / 2 + self.phase)
        pen = Pen.around([(cx - h * 0.45, foot - h), (cx + h * 0.45, foot)], 3)
        hip = (cx, foot - h * 0.47)
        shoulder = (cx, foot - h * 0.8)
        leg = max(h * 0.07 * self.wide, 1)
        for sign in (1.0, -1.0):
            ang = sign * swing * 0.45
            heel = (cx + math.sin(ang) * h * 0.47, hip[1] + math.cos(ang) * h * 0.47)
            pen.line(hip, heel, self.pants, leg)
            pen.line(heel, (heel[0] + self.direction * h * 0.06, heel[1]), self.shoes, max(leg * 0.8, 1))
        tw = h * 0.11 * self.wide
        pen.poly(
            [
                (cx - tw, shoulder[1]),
                (cx + tw, shoulder[1]),
                (cx + tw * 0.85, hip[1] + 2),
                (cx - tw * 0.85, hip[1] + 2),
            ],
            self.shirt,
        )
        for sign in (1.0, -1.0):
            ang = -sign * swing * 0.4
            hand = (cx + math.sin(ang) * h * 0.33, shoulder[1] + math.cos(ang) * h * 0.33)
            pen.line((cx, shoulder[1] + 2), hand, shade(self.shirt, 0.85), max(h * 0.05, 1))
        if self.bag is not None:
            pen.rect(cx - tw * 1.6, hip[1] - h * 0.1, cx - tw * 0.9, hip[1] + h * 0.04, self.bag)
        head: Point = (cx + self.direction * h * 0.01, foot - h * 0.9)
        pen.circle(head, h * 0.075, self.skin)
        pen.ellipse((head[0], head[1] - h * 0.02), (h * 0.078, h * 0.06), 0, 180, 360, self.hair)
        return pen.sprite()


class Vehicle(Actor):
    """A car or van driving along a lane; one may slow down and park at the kerb."""

    def __init__(
        self,
        rng: np.random.Generator,
        layout: Layout,
        fps: float,
        frame_count: int,
        object_id: int,
        *,
        parks: bool,
    ) -> None:
        self.kind, self.object_id, self.fps = ActorKind.VEHICLE, object_id, fps
        road_h = layout.height - layout.road_top
        self.direction = 1.0 if rng.random() < 0.5 else -1.0
        if parks:
            self.depth = layout.road_top + road_h * rng.uniform(0.22, 0.32)
        else:
            lane = 0.45 if self.direction > 0 else 0.8
            self.depth = layout.road_top + road_h * (lane + rng.uniform(-0.08, 0.08))
        s = layout.scale_at(self.depth)
        self.length = layout.height * rng.uniform(0.42, 0.6) * s
        self.van = bool(rng.random() < 0.3)
        self.height = self.length * (0.45 if self.van else rng.uniform(0.3, 0.36))
        self.color = random_color(rng, 10, 245)
        self.speed = layout.width * rng.uniform(0.12, 0.3)  # pixels per second
        duration = frame_count / fps
        entry = -self.length if self.direction > 0 else layout.width + self.length
        self.parks = parks
        if parks:
            self.stop_x = float(rng.uniform(0.25, 0.75) * layout.width)
            self.stop_s = float(rng.uniform(0.2, 0.6) * duration)
            self.brake_s = float(rng.uniform(1.0, 2.0))
        self.enter_s = float(rng.uniform(-0.5, 0.75) * duration)
        self.entry = entry
        self.wheel_phase = rng.uniform(0, 2 * math.pi)
        self.width = layout.width

    def _x(self, s: float) -> float:
        if not self.parks:
            return self.entry + self.direction * self.speed * (s - self.enter_s)
        tau = self.stop_s - s  # seconds until it stands still
        if tau <= 0:
            return self.stop_x
        dist = (
            self.speed * tau * tau / (2 * self.brake_s) if tau < self.brake_s else self.speed * (tau - self.brake_s / 2)
        )
        return self.stop_x - self.direction * dist

    def sprite(self, t: int) -> Sprite | None:
        cx = self._x(t / self.fps)
        L, H, foot, d = self.length, self.height, self.depth, self.direction
        if cx + L < 0 or cx - L > self.width:
            return None
        x0, x1 = cx - L / 2, cx + L / 2
        pen = Pen.around([(x0, foot - H), (x1, foot)], 3)
        wheel_r = H * (0.2 if self.van else 0.26)
        body_top = foot - H * (0.75 if self.van else 0.55)
        body_bottom = foot - wheel_r * 0.6
        front, back = (x1, x0) if d > 0 else (x0, x1)
        nose = front - d * L * 0.04
        pen.poly([(back, body_top), (nose, body_top + H * 0.08), (front, body_top + H * 0.18), (front, body_bottom),
                  (back, body_bottom)], self.color)  # fmt: skip
        glass = (90, 70, 50)
        if self.van:
            roof = foot - H
            shield = front - d * L * 0.2
            outline = [(back, roof), (shield, roof), (front, body_top + H * 0.05), (front, body_bottom)]
            pen.poly([*outline, (back, body_bottom)], self.color)
            pen.poly([(shield, roof + H * 0.06), (front - d * L * 0.02, body_top), (shield, body_top)], glass)
            for k in range(3):
                wx0 = back + d * L * (0.06 + 0.22 * k)
                pen.rect(min(wx0, wx0 + d * L * 0.17), roof + H * 0.08, max(wx0, wx0 + d * L * 0.17), body_top, glass)
        else:
            roof = foot - H
            r0, r1 = back + d * L * 0.22, front - d * L * 0.3
            pen.poly([(back + d * L * 0.12, body_top), (r0, roof), (r1, roof), (front - d * L * 0.18, body_top)],
                     self.color)  # fmt: skip
            mid = (r0 + r1) / 2
            pen.poly([(r0 + d * 2, roof + H * 0.07), (mid - d, roof + H * 0.07), (mid - d, body_top - 1),
                      (back + d * L * 0.17, body_top - 1)], glass)  # fmt: skip
            pen.poly([(mid + d, roof + H * 0.07), (r1 - d * 2, roof + H * 0.07), (front - d * L * 0.23, body_top - 1),
                      (mid + d, body_top - 1)], glass)  # fmt: skip
        pen.rect(min(front, front - d * L * 0.03), body_top + H * 0.2, max(front, front - d * L * 0.03),
                 body_top + H * 0.28, (200, 240, 250))  # fmt: skip
        spin = self._x(t / self.fps) / max(wheel_r, 1)
        for wx in (x0 + L * 0.2, x1 - L * 0.2):
            pen.circle((wx, foot - wheel_r), wheel_r, (25, 25, 25))
            pen.circle((wx, foot - wheel_r), wheel_r * 0.5, (150, 150, 150))
            ang = spin + self.wheel_phase
            hub = (wx, foot - wheel_r)
            pen.line(
                hub, (wx + math.cos(ang) * wheel_r * 0.45, hub[1] + math.sin(ang) * wheel_r * 0.45), (80, 80, 80), 1
            )
        return pen.sprite()


class Scaffolding(Actor):
    """A scaffold of poles, ledgers and planks that grows level by level up a building."""

    def __init__(
        self, rng: np.random.Generator, layout: Layout, frame_count: int, *, appear: int, object_id: int
    ) -> None:
        self.kind, self.object_id, self.appear_frame = ActorKind.SCAFFOLDING, object_id, appear
        self.depth = float(layout.sidewalk_top + 1)
        b = layout.buildings[int(rng.integers(0, len(layout.buildings)))]
        bw = b.x1 - b.x0
        h = layout.height
        self.bay = h * rng.uniform(0.07, 0.12)
        self.level = h * rng.uniform(0.07, 0.1)
        n_bays = max(int(bw * rng.uniform(0.5, 1.0) / self.bay), 2)
        self.x0 = float(rng.uniform(b.x0, max(b.x1 - n_bays * self.bay, b.x0 + 1)))
        self.n_bays = n_bays
        self.ground = float(layout.sidewalk_top + 1)
        self.n_levels = max(int((self.ground - b.roof_y) / self.level), 2)
        grow_frames = max((frame_count - appear) * rng.uniform(0.4, 0.9), 1.0)
        self.grow_frames = grow_frames
        self.pole_c: Color = (
            random_color(rng, 120, 200)
            if rng.random() < 0.5
            else ((0, 140, 240) if rng.random() < 0.5 else (40, 200, 230))
        )
        self.plank_c = (int(rng.integers(30, 60)), int(rng.integers(80, 120)), int(rng.integers(130, 170)))
        self.thick = max(h / 220, 1)
        self.braces = [bool(rng.random() < 0.5) for _ in range(n_bays * self.n_levels)]
        self.net = bool(rng.random() < 0.4)
        self.net_c = (int(rng.integers(40, 90)), int(rng.integers(120, 170)), int(rng.integers(30, 80)))

    def sprite(self, t: int) -> Sprite | None:
        if t < self.appear_frame:
            return None
        progress = min((t - self.appear_frame + 1) / self.grow_frames, 1.0)
        levels = max(math.ceil(progress * self.n_levels), 1)
        top = self.ground - levels * self.level
        x0, x1 = self.x0, self.x0 + self.n_bays * self.bay
        pen = Pen.around([(x0, top - self.level * 0.3), (x1, self.ground)], 3)
        for k in range(levels):
            y = self.ground - (k + 1) * self.level
            if self.net and k < levels - 1:
                for i in range(self.n_bays):
                    bx = x0 + i * self.bay
                    pen.rect(bx + 1, y + 2, bx + self.bay - 1, y + self.level - 1, self.net_c)
            for i in range(self.n_bays):
                if self.braces[k * self.n_bays + i]:
                    bx = x0 + i * self.bay
                    pen.line((bx, y + self.level), (bx + self.bay, y), self.pole_c, self.thick)
            pen.rect(x0, y, x1, y + max(self.level * 0.1, 2), self.plank_c)
        for i in range(self.n_bays + 1):
            x = x0 + i * self.bay
            pen.line((x, self.ground), (x, top - self.level * 0.3), self.pole_c, self.thick)
        return pen.sprite()


class Machinery(Actor):
    """An excavator: tracks, a cab and a boom whose arm digs back and forth."""

    def __init__(self, rng: np.random.Generator, layout: Layout, fps: float, *, appear: int, object_id: int) -> None:
        self.kind, self.object_id, self.appear_frame, self.fps = ActorKind.MACHINERY, object_id, appear, fps
        lo = layout.sidewalk_top + 0.5 * (layout.road_top - layout.sidewalk_top)
        self.depth = float(rng.uniform(lo, layout.road_top + 0.35 * (layout.height - layout.road_top)))
        s = layout.scale_at(self.depth)
        self.L = layout.height * rng.uniform(0.4, 0.6) * s
        self.cx = float(rng.uniform(0.1, 0.9) * layout.width)
        self.d = 1.0 if rng.random() < 0.5 else -1.0
        self.body_c: Color = (
            (0, int(rng.integers(150, 215)), int(rng.integers(220, 256))) if rng.random() < 0.8 else random_color(rng)
        )
        self.period = rng.uniform(2.5, 5.0)
        self.phase = rng.uniform(0, 2 * math.pi)

    def sprite(self, t: int) -> Sprite | None:
        if t < self.appear_frame:
            return None
        L, foot, d, cx = self.L, self.depth, self.d, self.cx
        dig = math.sin(2 * math.pi * (t / self.fps) / self.period + self.phase)
        track_h = L * 0.16
        body_top = foot - track_h - L * 0.22
        shoulder = (cx + d * L * 0.15, body_top + L * 0.05)
        boom_ang = math.radians(40 + 12 * dig)
        elbow = (shoulder[0] + d * math.cos(boom_ang) * L * 0.5, shoulder[1] - math.sin(boom_ang) * L * 0.5)
        arm_ang = math.radians(-70 + 25 * dig)
        wrist = (elbow[0] + d * math.cos(arm_ang) * L * 0.35, elbow[1] - math.sin(arm_ang) * L * 0.35)
        pts = [(cx - L / 2, foot), (cx + L / 2, foot), elbow, wrist, (wrist[0] + d * L * 0.12, wrist[1] + L * 0.12)]
        pen = Pen.around([*pts, (cx - L / 2, body_top - L * 0.2)], 4)
        pen.rect(cx - L * 0.42, foot - track_h, cx + L * 0.42, foot, (40, 40, 40))
        for k in range(5):
            pen.circle((cx - L * 0.34 + k * L * 0.17, foot - track_h / 2), track_h * 0.3, (90, 90, 90))
        pen.rect(cx - L * 0.3, body_top, cx + L * 0.25, foot - track_h, self.body_c)
        cab_x = cx - d * L * 0.05
        pen.rect(min(cab_x, cab_x + d * L * 0.2), body_top - L * 0.2, max(cab_x, cab_x + d * L * 0.2), body_top,
                 self.body_c)  # fmt: skip
        pen.rect(min(cab_x + d * L * 0.03, cab_x + d * L * 0.17), body_top - L * 0.17,
                 max(cab_x + d * L * 0.03, cab_x + d * L * 0.17), body_top - L * 0.05, (90, 70, 50))  # fmt: skip
        pen.line(shoulder, elbow, shade(self.body_c, 0.9), max(L * 0.06, 2))
        pen.line(elbow, wrist, shade(self.body_c, 0.8), max(L * 0.045, 2))
        bucket = [wrist, (wrist[0] + d * L * 0.12, wrist[1] + L * 0.04), (wrist[0] + d * L * 0.04, wrist[1] + L * 0.12)]
        pen.poly(bucket, (50, 50, 50))
        return pen.sprite()


class Structure(Actor):
    """A hoarding, a brick wall or a rooftop shed built part by part, then standing.

    No detector class covers it (`kind` is None, so frames get no label for it); the scene
    still makes a construction event of it, for rules that look for structural change.
    """

    kind = None

    def __init__(
        self,
        rng: np.random.Generator,
        layout: Layout,
        fps: float,
        *,
        style: StructureStyle,
        appear: int,
        build_frames: int,
        remove: int | None,
        object_id: int,
    ) -> None:
        self.object_id, self.appear_frame, self.style = object_id, appear, style
        self.build_frames, self.remove_frame = max(build_frames, 1), remove
        w, h = layout.width, layout.height
        if style is StructureStyle.SHED:
            b = layout.buildings[int(rng.integers(0, len(layout.buildings)))]
            if b.roof_y < 0.12 * h or b.x1 - b.x0 < 0.2 * w:  # room above the roof, and on it
                b = max(layout.buildings, key=lambda c: min(c.roof_y / h, 0.12) * (c.x1 - c.x0))
            bw = b.x1 - b.x0
            self.w = float(min(bw * 0.8, w * rng.uniform(0.15, 0.25)))
            self.h = float(min(h * rng.uniform(0.1, 0.15), b.roof_y - 2))
            self.x0 = float(rng.uniform(b.x0 + 0.1 * bw, max(b.x1 - 0.1 * bw - self.w, b.x0 + 0.1 * bw + 1)))
            self.foot = float(b.roof_y + max(h // 90, 2))
        else:
            self.foot = float(rng.uniform(layout.sidewalk_top + 0.3 * (layout.road_top - layout.sidewalk_top),
                                          layout.road_top - 2))  # fmt: skip
            s = layout.scale_at(self.foot)
            self.w = float(w * rng.uniform(0.18, 0.32))
            self.h = float(
                h * s * (rng.uniform(0.13, 0.2) if style is StructureStyle.HOARDING else rng.uniform(0.1, 0.16))
            )
            self.x0 = float(rng.uniform(0.02 * w, 0.98 * w - self.w))
        self.depth = self.foot
        palettes: dict[StructureStyle, list[Color]] = {
            StructureStyle.HOARDING: [(150, 90, 20), (60, 140, 40), (235, 235, 235), (40, 120, 220)],
            StructureStyle.WALL: [(60, 80, 170), (150, 150, 155), (70, 110, 190)],
            StructureStyle.SHED: [(170, 150, 120), (120, 120, 125), (80, 140, 200), (200, 200, 205)],
        }
        palette = palettes[style]
        self.color: Color = palette[int(rng.integers(0, len(palette)))]
        self.trim: Color = shade(self.color, float(rng.uniform(0.45, 0.7)))
        self.parts = int(rng.integers(5, 9))
        self._cache: dict[int, Sprite] = {}

    def parts_at(self, t: int) -> int:
        """How many parts stand at frame `t` (0 before building starts or after removal)."""
        if t < self.appear_frame or (self.remove_frame is not None and t >= self.remove_frame):
            return 0
        progress = (t - self.appear_frame + 1) / self.build_frames
        return max(1, min(self.parts, math.ceil(progress * self.parts)))

    def box(self) -> tuple[float, float, float, float]:
        """The extent of the pixels the finished structure paints (before clipping to the frame)."""
        sprite = self._paint(self.parts)
        rows, cols = np.flatnonzero(sprite.alpha.any(axis=1)), np.flatnonzero(sprite.alpha.any(axis=0))
        x0, y0 = sprite.x0 + int(cols[0]), sprite.y0 + int(rows[0])
        return float(x0), float(y0), float(sprite.x0 + int(cols[-1]) + 1), float(sprite.y0 + int(rows[-1]) + 1)

    def sprite(self, t: int) -> Sprite | None:
        n = self.parts_at(t)
        if n == 0:
            return None
        if n not in self._cache:
            self._cache[n] = self._paint(n)
        return self._cache[n]

    def _paint(self, n: int) -> Sprite:
        x0, w, h, foot = self.x0, self.w, self.h, self.foot
        pen = Pen.around([(x0, foot - h), (x0 + w, foot)], 2)
        if self.style is StructureStyle.HOARDING:  # panels put up left to right
            pw = w / self.parts
            for i in range(n):
                px = x0 + i * pw
                pen.rect(px, foot - h, px + pw, foot, self.color)
                pen.rect(px, foot - h, px + pw, foot - h * 0.88, self.trim)
                pen.line((px, foot - h), (px, foot), self.trim, max(h * 0.03, 1))
        elif self.style is StructureStyle.WALL:  # courses of bricks from the ground up
            ch = h / self.parts
            for i in range(n):
                y1 = foot - i * ch
                pen.rect(x0, y1 - ch, x0 + w, y1, self.color)
                pen.line((x0, y1 - ch), (x0 + w, y1 - ch), self.trim, 1)
                off = (ch if i % 2 else 0.0) + ch
                for bx in np.arange(x0 + off, x0 + w, 2 * ch):
                    pen.line((float(bx), y1 - ch), (float(bx), y1), self.trim, 1)
        else:  # a shed: walls rise, then the roof goes on
            wall_h = h * 0.75 * min(n, self.parts - 1) / (self.parts - 1)
            pen.rect(x0, foot - wall_h, x0 + w, foot, self.color)
            if wall_h > h * 0.3:
                door = (x0 + w * 0.15, foot - min(wall_h, h * 0.55), x0 + w * 0.3, foot)
                pen.rect(*door, self.trim)
                win_top = foot - min(wall_h, h * 0.6)
                pen.rect(x0 + w * 0.55, win_top, x0 + w * 0.8, win_top + h * 0.2, (90, 70, 50))
            if n >= self.parts:
                top = foot - h * 0.75
                pen.poly([(x0 - w * 0.05, top), (x0 + w * 1.05, top), (x0 + w * 0.9, foot - h),
                          (x0 + w * 0.1, foot - h)], self.trim)  # fmt: skip
        return pen.sprite()

"""Actors: the things that get ground truth (and the plume model that steam reuses).

Each actor is a pure function of the frame index: `sprite(t)` paints it as it is at frame
`t`, so any frame can be rendered on its own and twice renders are identical.
"""

from __future__ import annotations

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

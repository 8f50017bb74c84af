"""Drawing helpers: a `Pen` that paints colour and coverage together, and `Sprite` compositing.

Every actor is painted into its own small patch with a coverage mask drawn by the very same
shapes, so the ground-truth box is the box of the pixels that actually change: truth
cannot drift from the picture.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

logger = logging.getLogger(__name__)

Color = tuple[int, int, int]
Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Sprite:
    """A painted patch placed at (x0, y0) in frame pixels (may stick out of the frame).

    `alpha` is float32 in [0, 1]; pixels with alpha 0 leave the frame untouched, so the
    box of `alpha > 0` bounds every pixel the sprite changes.
    """

    x0: int
    y0: int
    color: np.ndarray  # (h, w, 3) uint8 BGR
    alpha: np.ndarray  # (h, w) float32
    opaque: bool  # alpha is only 0 or 1: composite by copying


def clip_rect(x0: int, y0: int, w: int, h: int, *, width: int, height: int) -> tuple[int, int, int, int] | None:
    """Frame-clipped (fx0, fy0, fx1, fy1) of a w×h patch at (x0, y0), or None if it is off-frame."""
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + w, width), min(y0 + h, height)
    if fx0 >= fx1 or fy0 >= fy1:
        return None
    return fx0, fy0, fx1, fy1


def composite(frame: np.ndarray, sprite: Sprite, gain: float = 1.0) -> None:
    """Blend `sprite` onto `frame` in place; `gain` darkens the sprite (night scenes)."""
    h, w = sprite.alpha.shape
    rect = clip_rect(sprite.x0, sprite.y0, w, h, width=frame.shape[1], height=frame.shape[0])
    if rect is None:
        return
    fx0, fy0, fx1, fy1 = rect
    sx0, sy0 = fx0 - sprite.x0, fy0 - sprite.y0
    sx1, sy1 = sx0 + (fx1 - fx0), sy0 + (fy1 - fy0)
    roi = frame[fy0:fy1, fx0:fx1]
    color = sprite.color[sy0:sy1, sx0:sx1]
    if gain != 1.0:
        color = cv2.convertScaleAbs(color, alpha=gain)
    alpha = sprite.alpha[sy0:sy1, sx0:sx1]
    if sprite.opaque:
        np.copyto(roi, color, where=(alpha > 0)[..., None])
        return
    a = alpha[..., None]
    blended = roi.astype(np.float32) * (1.0 - a) + color.astype(np.float32) * a
    np.copyto(roi, (blended + 0.5).astype(np.uint8), where=(a > 0))


class Pen:
    """Paints shapes given in frame coordinates into a patch and its coverage mask at once."""

    def __init__(self, x0: int, y0: int, x1: int, y1: int) -> None:
        self.x0, self.y0 = int(x0), int(y0)
        w, h = max(int(x1) - self.x0, 1), max(int(y1) - self.y0, 1)
        self.color = np.zeros((h, w, 3), np.uint8)
        self.mask = np.zeros((h, w), np.uint8)

    @classmethod
    def around(cls, points: Sequence[Point], margin: float) -> Pen:
        """A pen whose patch covers `points` plus `margin` pixels on every side."""
        arr = np.asarray(points, np.float32)
        lo = np.floor(arr.min(axis=0) - margin).astype(int)
        hi = np.ceil(arr.max(axis=0) + margin).astype(int) + 1
        return cls(int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1]))

    def _pts(self, points: Sequence[Point] | np.ndarray) -> np.ndarray:
        arr = np.asarray(points, np.float64) - (self.x0, self.y0)
        return np.round(arr).astype(np.int32).reshape(-1, 1, 2)

    def _xy(self, p: Point) -> tuple[int, int]:
        return round(p[0] - self.x0), round(p[1] - self.y0)

    def poly(self, points: Sequence[Point] | np.ndarray, color: Color) -> None:
        pts = self._pts(points)
        cv2.fillPoly(self.color, [pts], color)
        cv2.fillPoly(self.mask, [pts], 255)

    def rect(self, x0: float, y0: float, x1: float, y1: float, color: Color) -> None:
        self.poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], color)

    def line(self, p0: Point, p1: Point, color: Color, thickness: float) -> None:
        t = max(round(thickness), 1)
        cv2.line(self.color, self._xy(p0), self._xy(p1), color, t)
        cv2.line(self.mask, self._xy(p0), self._xy(p1), 255, t)

    def circle(self, center: Point, radius: float, color: Color) -> None:
        r = max(round(radius), 1)
        cv2.circle(self.color, self._xy(center), r, color, -1)
        cv2.circle(self.mask, self._xy(center), r, 255, -1)

    def ellipse(self, center: Point, axes: Point, angle: float, start: float, end: float, color: Color) -> None:
        ax = (max(round(axes[0]), 1), max(round(axes[1]), 1))
        cv2.ellipse(self.color, self._xy(center), ax, angle, start, end, color, -1)
        cv2.ellipse(self.mask, self._xy(center), ax, angle, start, end, 255, -1)

    def outline(self, points: Sequence[Point] | np.ndarray, color: Color, thickness: int = 1) -> None:
        """A closed outline that only recolours pixels already covered (adds detail, not extent)."""
        before = self.mask.copy()
        cv2.polylines(self.color, [self._pts(points)], True, color, thickness)
        np.copyto(self.mask, before)
        self.color[before == 0] = 0

    def sprite(self) -> Sprite:
        return Sprite(self.x0, self.y0, self.color, (self.mask > 0).astype(np.float32), opaque=True)


def shade(color: Color, factor: float) -> Color:
    """`color` scaled by `factor` and clipped to 0..255 (darker below 1, lighter above)."""
    return (
        int(min(max(color[0] * factor, 0), 255)),
        int(min(max(color[1] * factor, 0), 255)),
        int(min(max(color[2] * factor, 0), 255)),
    )


def random_color(rng: np.random.Generator, low: int = 20, high: int = 235) -> Color:
    return (int(rng.integers(low, high)), int(rng.integers(low, high)), int(rng.integers(low, high)))


def puff_textures(rng: np.random.Generator, n: int, size: int = 48) -> list[np.ndarray]:
    """Soft, lumpy round density blobs (peak 1) for smoke and steam puffs."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2.0
    r = np.hypot(xx - c, yy - c) / c
    textures = []
    for _ in range(n):
        coarse = rng.random((size // 6, size // 6)).astype(np.float32)
        noise = np.asarray(cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC), np.float32)
        falloff = np.clip(1.0 - r * (0.85 + 0.3 * noise), 0.0, 1.0) ** 1.5
        tex = falloff * (0.6 + 0.4 * noise)
        textures.append((tex / max(float(tex.max()), 1e-6)).astype(np.float32))
    return textures

"""The procedural street behind every scene: sky, buildings with shop fronts, a restaurant
with an exhaust vent, sidewalk, road and street lamps; drawn once per scene, by day and by night.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from datasets.synthetic.draw import Color, random_color, shade

logger = logging.getLogger(__name__)

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive ends)


@dataclass(frozen=True)
class Building:
    """One building front: its span, roof line and the ground-floor shop under it."""

    x0: int
    x1: int
    roof_y: int
    color: Color
    is_restaurant: bool


@dataclass(frozen=True)
class Layout:
    """Where things are in a scene; actors place themselves from it."""

    width: int
    height: int
    sidewalk_top: int  # facade meets the sidewalk
    road_top: int  # the kerb
    buildings: tuple[Building, ...]
    vents: tuple[tuple[int, int], ...]  # exhaust outlets; the first is the restaurant's
    lamps: tuple[tuple[int, int], ...]  # lamp heads
    windows: tuple[Rect, ...]  # upper-floor windows (lit at night)
    flag_mount: tuple[int, int]  # top of a flag pole
    sky_mask: np.ndarray = field(repr=False)  # (H, W) float32, 1 where sky

    def scale_at(self, foot_y: float) -> float:
        """Apparent size factor of something standing at `foot_y` (nearer is bigger)."""
        span = max(self.height - self.sidewalk_top, 1)
        return 0.8 + 0.45 * (foot_y - self.sidewalk_top) / span

    def zones(self) -> dict[str, list[list[float]]]:
        """Named polygons of the scene, for event truth and zone rules."""
        w, h = float(self.width), float(self.height)
        roof = float(min(b.roof_y for b in self.buildings))
        sw, road = float(self.sidewalk_top), float(self.road_top)
        return {
            "facade": [[0.0, roof], [w, roof], [w, sw], [0.0, sw]],
            "sidewalk": [[0.0, sw], [w, sw], [w, road], [0.0, road]],
            "road": [[0.0, road], [w, road], [w, h], [0.0, h]],
            "sky": [[0.0, 0.0], [w, 0.0], [w, roof], [0.0, roof]],
        }

    def zone_of(self, x: float, y: float) -> str:
        """Name of the zone holding point (x, y); the sky holds everything above the facade."""
        if y >= self.road_top:
            return "road"
        if y >= self.sidewalk_top:
            return "sidewalk"
        if any(b.x0 <= x < b.x1 and y >= b.roof_y for b in self.buildings):
            return "facade"
        return "sky"


def build_layout(rng: np.random.Generator, width: int, height: int) -> Layout:
    """Pick a street layout: roof lines, shop widths, vent, lamps, all scaled to the frame."""
    w, h = width, height
    sidewalk_top = int(h * rng.uniform(0.56, 0.66))
    road_top = int(sidewalk_top + h * rng.uniform(0.12, 0.17))
    n_buildings = int(rng.integers(2, 5))
    cuts = np.sort(rng.uniform(0.15, 0.85, n_buildings - 1)) * w
    edges = [0, *[int(c) for c in cuts], w]
    restaurant = int(rng.integers(0, n_buildings))
    buildings = []
    for i in range(n_buildings):
        roof = int(h * rng.uniform(0.04, 0.24))
        base = random_color(rng, 70, 215)
        buildings.append(Building(edges[i], edges[i + 1], roof, base, i == restaurant))
    rb = buildings[restaurant]
    on_roof = bool(rng.random() < 0.35)
    vx = int(rng.uniform(rb.x0 + 0.2 * (rb.x1 - rb.x0), rb.x1 - 0.2 * (rb.x1 - rb.x0)))
    if on_roof and rb.roof_y > h * 0.16:  # leave the plume room to rise in frame
        vy = int(rb.roof_y - h * 0.05)
    else:  # on the wall, above the shop sign
        lo = max(rb.roof_y + h * 0.03, h * 0.2)
        vy = int(rng.uniform(lo, max(sidewalk_top - h * 0.34, lo + 1)))
    vy = max(vy, 4)
    other = buildings[(restaurant + 1) % n_buildings]
    vents = ((vx, vy), (int((other.x0 + other.x1) / 2), int(max(other.roof_y + h * 0.05, 4))))
    n_lamps = int(rng.integers(1, 4))
    lamps = tuple(
        (int(x), int(sidewalk_top - h * rng.uniform(0.16, 0.22))) for x in np.sort(rng.uniform(0.05, 0.95, n_lamps)) * w
    )
    windows: list[tuple[int, int, int, int]] = []
    shop_top = int(sidewalk_top - h * 0.27)
    for b in buildings:
        ww = max(int(w * rng.uniform(0.025, 0.045)), 3)
        wh = max(int(h * rng.uniform(0.05, 0.08)), 3)
        gap_x = max(int(ww * rng.uniform(0.6, 1.4)), 2)
        gap_y = max(int(wh * rng.uniform(0.5, 0.9)), 2)
        y = b.roof_y + gap_y
        while y + wh < shop_top - gap_y:
            x = b.x0 + gap_x
            while x + ww < b.x1 - gap_x:
                windows.append((x, y, x + ww, y + wh))
                x += ww + gap_x
            y += wh + gap_y
    fb = buildings[int(rng.integers(0, n_buildings))]
    flag_mount = (int(rng.uniform(fb.x0 + 4, max(fb.x1 - 4, fb.x0 + 5))), int(max(fb.roof_y - h * 0.12, 2)))
    sky_mask = np.zeros((h, w), np.float32)
    for b in buildings:
        sky_mask[: b.roof_y, b.x0 : b.x1] = 1.0
    return Layout(w, h, sidewalk_top, road_top, tuple(buildings), vents, lamps, tuple(windows), flag_mount, sky_mask)


def _sign_text(img: np.ndarray, rng: np.random.Generator, rect: Rect, color: Color) -> None:
    """Glyph-like blocks on a shop sign (no real text, only its texture)."""
    x0, y0, x1, y1 = rect
    gh = max(int((y1 - y0) * 0.55), 2)
    gy = y0 + ((y1 - y0) - gh) // 2
    x = x0 + max(gh // 2, 2)
    while x + gh < x1 - 2:
        gw = gh
        for _ in range(int(rng.integers(2, 5))):
            a = (x + int(rng.integers(0, gw)), gy + int(rng.integers(0, gh)))
            b = (x + int(rng.integers(0, gw)), gy + int(rng.integers(0, gh)))
            cv2.line(img, a, b, color, max(gh // 6, 1))
        x += gw + max(gh // 3, 1)


def draw_background(rng: np.random.Generator, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Day and night images of the empty street (H×W×3 uint8 BGR each)."""
    w, h = layout.width, layout.height
    img = np.empty((h, w, 3), np.uint8)
    top, bottom = np.array(random_color(rng, 150, 250)), np.array((235, 225, 215))
    top[0] = max(top[0], 200)  # skies lean blue
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    img[:] = (top * (1 - t) + bottom * t).astype(np.uint8)[:, None, :]
    shop_top = int(layout.sidewalk_top - h * 0.27)
    for b in layout.buildings:
        cv2.rectangle(img, (b.x0, b.roof_y), (b.x1 - 1, layout.sidewalk_top), b.color, -1)
        cv2.rectangle(img, (b.x0, b.roof_y), (b.x1 - 1, b.roof_y + max(h // 90, 2)), shade(b.color, 0.7), -1)
        cv2.line(img, (b.x0, b.roof_y), (b.x0, layout.sidewalk_top), shade(b.color, 0.6), 1)
        # ground-floor shop: sign band, door, display windows
        shop_color = random_color(rng, 40, 200)
        cv2.rectangle(img, (b.x0 + 2, shop_top), (b.x1 - 3, layout.sidewalk_top), shop_color, -1)
        sign_h = max(int(h * 0.05), 4)
        sign = (b.x0 + 4, shop_top - sign_h - 2, b.x1 - 5, shop_top - 2)
        sign_color = (0, 0, 200) if b.is_restaurant and rng.random() < 0.6 else random_color(rng)
        cv2.rectangle(img, sign[:2], sign[2:], sign_color, -1)
        _sign_text(img, rng, sign, shade(sign_color, 2.5) if sum(sign_color) < 300 else shade(sign_color, 0.3))
        door_w = max(int(w * rng.uniform(0.03, 0.05)), 4)
        door_x = int(rng.uniform(b.x0 + 6, max(b.x1 - door_w - 6, b.x0 + 7)))
        door_top = int(layout.sidewalk_top - h * 0.2)
        cv2.rectangle(img, (door_x, door_top), (door_x + door_w, layout.sidewalk_top - 1), shade(shop_color, 0.4), -1)
        glass = (int(rng.integers(90, 160)), int(rng.integers(90, 150)), int(rng.integers(60, 120)))
        for x0, x1 in ((b.x0 + 6, door_x - 4), (door_x + door_w + 4, b.x1 - 7)):
            if x1 - x0 > 6:
                cv2.rectangle(img, (x0, door_top + 3), (x1, layout.sidewalk_top - int(h * 0.03)), glass, -1)
                cv2.rectangle(img, (x0, door_top + 3), (x1, layout.sidewalk_top - int(h * 0.03)), shade(glass, 0.5), 1)
    for x0, y0, x1, y1 in layout.windows:
        glass = (int(rng.integers(80, 140)), int(rng.integers(70, 120)), int(rng.integers(50, 100)))
        cv2.rectangle(img, (x0, y0), (x1, y1), glass, -1)
        cv2.rectangle(img, (x0, y0), (x1, y1), (230, 230, 230) if rng.random() < 0.5 else (60, 60, 60), 1)
    # restaurant exhaust duct, from the shop up to the vent outlet
    vx, vy = layout.vents[0]
    duct_w = max(int(w * 0.012), 3)
    duct = (170, 170, 175)
    cv2.rectangle(img, (vx - duct_w, vy), (vx + duct_w, shop_top - int(h * 0.06)), duct, -1)
    cv2.rectangle(img, (vx - duct_w - 2, vy - 2), (vx + duct_w + 2, vy + max(h // 60, 3)), (120, 120, 125), -1)
    sx, sy = layout.vents[1]
    cv2.rectangle(img, (sx - duct_w // 2 - 1, sy), (sx + duct_w // 2 + 1, sy + max(h // 30, 4)), (110, 115, 120), -1)
    # sidewalk with paving joints, kerb, road with lane marks
    pave = random_color(rng, 150, 205)
    pave = (pave[0], pave[0] - 5 if pave[0] > 5 else 0, pave[0] - 10 if pave[0] > 10 else 0)
    cv2.rectangle(img, (0, layout.sidewalk_top), (w, layout.road_top), pave, -1)
    step = max(int(w * rng.uniform(0.04, 0.08)), 6)
    for x in range(int(rng.integers(0, step)), w, step):
        cv2.line(img, (x, layout.sidewalk_top), (x - step // 3, layout.road_top), shade(pave, 0.85), 1)
    cv2.rectangle(img, (0, layout.road_top - max(h // 80, 2)), (w, layout.road_top), (200, 200, 200), -1)
    asphalt = int(rng.integers(50, 100))
    cv2.rectangle(img, (0, layout.road_top + 1), (w, h), (asphalt, asphalt, asphalt + 3), -1)
    lane_y = int((layout.road_top + h) / 2 + h * 0.03)
    dash = max(w // 20, 6)
    for x in range(int(rng.integers(0, dash)), w, 2 * dash):
        cv2.rectangle(img, (x, lane_y), (x + dash, lane_y + max(h // 120, 2)), (225, 225, 225), -1)
    grain = rng.normal(0.0, 3.0, (h, w, 1)).astype(np.float32)
    img = np.clip(img.astype(np.float32) + grain, 0, 255).astype(np.uint8)
    for lx, ly in layout.lamps:
        pole = max(w // 320, 2)
        cv2.rectangle(img, (lx - pole, ly), (lx + pole, layout.road_top - 3), (60, 60, 60), -1)
        cv2.ellipse(img, (lx, ly), (max(w // 80, 4), max(h // 120, 2)), 0, 180, 360, (70, 70, 70), -1)
    night = _night(img, rng, layout)
    return img, night


def _night(day: np.ndarray, rng: np.random.Generator, layout: Layout) -> np.ndarray:
    """The same street at night: dark and bluish, some windows lit, lamps glowing."""
    h, w = day.shape[:2]
    night = cv2.convertScaleAbs(day, alpha=0.22)
    night[..., 0] = np.minimum(night[..., 0].astype(np.int16) + 12, 255).astype(np.uint8)
    sky = layout.sky_mask > 0
    night[sky] = (night[sky] * 0.5 + np.array((40, 18, 10)) * 0.5).astype(np.uint8)
    for x0, y0, x1, y1 in layout.windows:
        if rng.random() < 0.45:
            warm = (int(rng.integers(60, 140)), int(rng.integers(170, 230)), int(rng.integers(220, 256)))
            cv2.rectangle(night, (x0 + 1, y0 + 1), (x1 - 1, y1 - 1), warm, -1)
    glow = np.zeros((h, w), np.float32)
    for lx, ly in layout.lamps:
        cv2.circle(glow, (lx, ly + 2), max(w // 25, 6), 1.0, -1)
    glow = np.asarray(cv2.GaussianBlur(glow, (0, 0), max(w / 60, 3)), np.float32)
    glow = glow / max(float(glow.max()), 1e-6)
    light = np.array((120, 200, 255), np.float32)
    out = night.astype(np.float32) + glow[..., None] * light * 0.9
    for lx, ly in layout.lamps:
        cv2.circle(out, (lx, ly + 1), max(w // 160, 2), (200, 245, 255), -1)
    return np.clip(out, 0, 255).astype(np.uint8)

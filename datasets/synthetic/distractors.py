"""Distractors: effects that change pixels but must never be labelled.

Clouds and a flag are painted behind the actors; rain, fog, lighting changes, sensor
noise and JPEG artefacts act on the finished frame. Steam is a `Plume` without a class,
built in `scene`. Every effect is a function of the frame index, like the actors.
"""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np

from datasets.synthetic.background import Layout
from datasets.synthetic.spec import DistractorKind, SceneSpec

logger = logging.getLogger(__name__)


class Effects:
    """The scene-wide distractors chosen by a spec, precomputed once per scene."""

    def __init__(self, rng: np.random.Generator, spec: SceneSpec, layout: Layout) -> None:
        self.kinds = frozenset(spec.distractors)
        self.fps, self.layout = spec.fps, layout
        w, h = spec.width, spec.height
        n = spec.frame_count
        self.seed = spec.seed
        self.jpeg_quality = spec.jpeg_quality
        if DistractorKind.CLOUDS in self.kinds:
            sky_rows = max(int(max(b.roof_y for b in layout.buildings)), 1)
            cw = 2 * w
            base = rng.random((max(sky_rows // 12, 2), max(cw // 24, 2))).astype(np.float32)
            field = cv2.resize(base, (cw, sky_rows), interpolation=cv2.INTER_CUBIC)
            detail = cv2.resize(rng.random((max(sky_rows // 4, 2), max(cw // 8, 2))).astype(np.float32), (cw, sky_rows))
            field = 0.75 * field + 0.25 * detail
            cover = rng.uniform(0.45, 0.65)
            self.cloud_alpha = np.clip((field - cover) * 3.0, 0.0, 0.9).astype(np.float32)
            self.cloud_grey = float(rng.uniform(200, 250))
            self.cloud_speed = float(rng.uniform(0.02, 0.08) * w * rng.choice([-1.0, 1.0]))  # px per second
            self.sky_rows = sky_rows
        if DistractorKind.RAIN in self.kinds:
            m = int(rng.integers(120, 260) * w * h / (640 * 360))
            self.rain_x = rng.uniform(-0.2 * w, 1.2 * w, m)
            self.rain_y = rng.uniform(0, h, m)
            self.rain_len = rng.uniform(0.03, 0.07, m) * h
            self.rain_speed = rng.uniform(1.5, 2.5, m) * h  # px per second
            self.rain_slant = float(rng.uniform(-0.25, 0.25))
        if DistractorKind.FOG in self.kinds:
            self.fog_base, self.fog_swing = float(rng.uniform(0.2, 0.45)), float(rng.uniform(0.0, 0.15))
            self.fog_period = float(rng.uniform(4.0, 12.0))
            self.fog_color = np.float32(rng.uniform(170, 225))
            self.fog_rows = np.linspace(1.0, 0.6, h, dtype=np.float32)[:, None, None]
        self.gain = np.ones(n, np.float32)
        if DistractorKind.LIGHTING_DRIFT in self.kinds:
            amp, period = rng.uniform(0.15, 0.35), rng.uniform(1.0, 3.0) * spec.duration_s
            phase = rng.uniform(0, 2 * math.pi)
            s = np.arange(n) / spec.fps
            self.gain *= (1.0 + amp * np.sin(2 * math.pi * s / period + phase)).astype(np.float32)
        if DistractorKind.LIGHTING_SWITCH in self.kinds:
            at = int(rng.integers(n // 4, max(3 * n // 4, n // 4 + 1))) if n > 1 else 0
            self.gain[at:] *= np.float32(rng.choice([rng.uniform(0.5, 0.75), rng.uniform(1.25, 1.5)]))
            self.switch_frame = at
        if DistractorKind.NOISE in self.kinds and spec.noise_sigma > 0:
            pad = 16
            fields = rng.normal(0.0, spec.noise_sigma, (3, h + pad, w + pad, 3)).astype(np.float32)
            self.noise_pos = np.clip(fields, 0, 255).astype(np.uint8)
            self.noise_neg = np.clip(-fields, 0, 255).astype(np.uint8)
            self.noise_pad = pad
        if DistractorKind.FLAG in self.kinds:
            self.flag_w = float(h * rng.uniform(0.07, 0.12))
            self.flag_h = self.flag_w * rng.uniform(0.55, 0.7)
            self.flag_colors = (
                [(40, 40, 220), (40, 200, 240)] if rng.random() < 0.5 else [(200, 80, 20), (250, 250, 250)]
            )
            self.flag_freq = float(rng.uniform(1.0, 2.5))
            self.flag_dir = 1.0 if rng.random() < 0.5 else -1.0

    @property
    def night(self) -> bool:
        return DistractorKind.NIGHT in self.kinds

    def before_actors(self, frame: np.ndarray, t: int) -> None:
        """Clouds in the sky and the flag on its pole, painted over the background in place."""
        if DistractorKind.CLOUDS in self.kinds:
            self._clouds(frame, t)
        if DistractorKind.FLAG in self.kinds:
            self._flag(frame, t)

    def after_actors(self, frame: np.ndarray, t: int) -> np.ndarray:
        """Rain, fog, lighting, noise and compression applied to the finished frame."""
        if DistractorKind.RAIN in self.kinds:
            self._rain(frame, t)
        if DistractorKind.FOG in self.kinds:
            f = self.fog_base + self.fog_swing * math.sin(2 * math.pi * (t / self.fps) / self.fog_period)
            weight = self.fog_rows * np.float32(f)
            frame[:] = (frame * (1.0 - weight) + self.fog_color * weight).astype(np.uint8)
        gain = float(self.gain[min(t, len(self.gain) - 1)])
        if gain != 1.0:
            lut = np.clip(np.arange(256, dtype=np.float32) * gain, 0, 255).astype(np.uint8)
            frame = cv2.LUT(frame, lut)
        if DistractorKind.NOISE in self.kinds and hasattr(self, "noise_pos"):
            rng = np.random.default_rng([self.seed, t, 0x401])
            k, dy, dx = (
                int(rng.integers(0, 3)),
                int(rng.integers(0, self.noise_pad)),
                int(rng.integers(0, self.noise_pad)),
            )
            h, w = frame.shape[:2]
            frame = cv2.add(frame, self.noise_pos[k, dy : dy + h, dx : dx + w])
            frame = cv2.subtract(frame, self.noise_neg[k, dy : dy + h, dx : dx + w])
        if DistractorKind.JPEG in self.kinds:
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
            if decoded is not None:
                frame = decoded
        return frame

    def _clouds(self, frame: np.ndarray, t: int) -> None:
        rows, w = self.sky_rows, frame.shape[1]
        cw = self.cloud_alpha.shape[1]
        off = round(self.cloud_speed * t / self.fps) % cw
        idx = (np.arange(w) + off) % cw
        alpha = self.cloud_alpha[:, idx] * self.layout.sky_mask[:rows]
        sky = frame[:rows].astype(np.float32)
        grey = self.cloud_grey * (0.35 if self.night else 1.0)
        frame[:rows] = (sky * (1.0 - alpha[..., None]) + grey * alpha[..., None]).astype(np.uint8)

    def _rain(self, frame: np.ndarray, t: int) -> None:
        h = frame.shape[0]
        s = t / self.fps
        y = (self.rain_y + self.rain_speed * s) % (h + self.rain_len) - self.rain_len
        x = self.rain_x + self.rain_slant * (y - self.rain_y)
        overlay = frame.copy()
        dx, dy = self.rain_slant * self.rain_len, self.rain_len
        for i in range(len(x)):
            cv2.line(overlay, (int(x[i]), int(y[i])), (int(x[i] + dx[i]), int(y[i] + dy[i])), (215, 215, 215), 1)
        cv2.addWeighted(overlay, 0.5, frame, 0.5, 0, dst=frame)
        frame[:] = cv2.convertScaleAbs(frame, alpha=0.92)

    def _flag(self, frame: np.ndarray, t: int) -> None:
        px, py = self.layout.flag_mount
        pole_len = self.flag_w * 1.6
        cv2.line(frame, (px, py), (px, int(py + pole_len)), (150, 150, 150), max(frame.shape[0] // 240, 1))
        s = t / self.fps
        n = 12
        xs = np.linspace(0.0, 1.0, n)
        wave = np.sin(2 * math.pi * (self.flag_freq * s - 1.2 * xs)) * xs * self.flag_h * 0.18
        fx = px + self.flag_dir * xs * self.flag_w * (1.0 - 0.08 * np.abs(np.sin(2 * math.pi * self.flag_freq * s)))
        top = np.stack([fx, py + wave], axis=1)
        for i, color in enumerate(self.flag_colors):
            y0, y1 = self.flag_h * i / len(self.flag_colors), self.flag_h * (i + 1) / len(self.flag_colors)
            poly = np.concatenate([top + np.array((0.0, y0)), (top + np.array((0.0, y1)))[::-1]])
            shade = 0.35 if self.night else 1.0
            cv2.fillPoly(frame, [np.round(poly).astype(np.int32)], tuple(int(c * shade) for c in color))

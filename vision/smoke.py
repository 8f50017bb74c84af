"""What a smoke box looks like: colour, translucency, movement and Ringelmann blackness.

A detector's smoke box is a candidate; a plume is confirmed by how its pixels behave.
Smoke is grey (white to black, little saturation), lets the background show through
(lower local contrast than the same place without it), and moves from frame to frame.
A waving flag is saturated and opaque, a shadow does not move, a lit window is bright and
still; steam is white and brief (the rule's persistence window handles that).

The Ringelmann estimate (林格曼黑度, 0-5) reads the blackness of the plume's densest part
against white: level N is N × 20% black. It is an estimate from one camera, not a
measurement to the standard's procedure (HJ/T 398); evidence records it as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: opacity assumed for the densest part of a plume when unmixing it from the background;
#: chosen on synthetic plumes of seeds 0-11, checked on seeds 12-59 (tests/vision/test_smoke.py)
ASSUMED_OPACITY = 0.7


@dataclass(frozen=True, slots=True)
class SmokeAppearance:
    saturation: float  # mean chroma (max - min channel) of the changed pixels, 0-1
    changed_fraction: float  # share of the box that differs from the background
    contrast_ratio: float  # local contrast in the box now / in the background; < 1 for translucent cover
    background_contrast: float  # mean absolute Laplacian of the background: how textured it is
    motion_fraction: float  # share of the box that changed since the previous frame
    blackness: float  # 0 (white) .. 1 (black) of the plume itself
    ringelmann: int  # 0..5

    def looks_like_smoke(
        self, *, max_saturation: float, min_motion: float, max_contrast_ratio: float, min_texture: float = 4.0
    ) -> bool:
        """Grey, moving, and (over a textured background, where it can be judged) translucent.

        Over a flat background (a clear sky, a plain wall) a plume's own soft edges are all
        the texture there is, so the contrast test says nothing and is skipped.
        """
        translucent = self.background_contrast < min_texture or self.contrast_ratio <= max_contrast_ratio
        return self.saturation <= max_saturation and self.motion_fraction >= min_motion and translucent


def _crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x1, y1, x2, y2 = box
    return image[y1:y2, x1:x2]


def _int_box(xyxy: np.ndarray | tuple[float, ...], shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    h, w = shape[:2]
    x1, y1 = max(0, int(np.floor(xyxy[0]))), max(0, int(np.floor(xyxy[1])))
    x2, y2 = min(w, int(np.ceil(xyxy[2]))), min(h, int(np.ceil(xyxy[3])))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    return x1, y1, x2, y2


def _local_contrast(gray: np.ndarray) -> float:
    return float(np.abs(cv2.Laplacian(gray, cv2.CV_32F, ksize=3)).mean())


def ringelmann_level(blackness: float) -> int:
    """Ringelmann number for a blackness in [0, 1]: level N is N × 20% black."""
    if not 0.0 <= blackness <= 1.0:
        raise ValueError(f"blackness must lie in [0, 1], but got {blackness}")
    return int(min(5, np.floor(blackness * 5 + 0.5)))


def smoke_appearance(
    image: np.ndarray,
    previous: np.ndarray,
    background: np.ndarray,
    xyxy: np.ndarray | tuple[float, ...],
    *,
    change_threshold: int = 12,
) -> SmokeAppearance | None:
    """Measure the smoke box `xyxy` in `image` against an earlier frame (`previous`) and the background.

    All three are H×W×3 BGR of one camera: uint8, or (the background) a float running
    average, of which only the box is converted. Returns None for a box too small to
    measure (under 2 px a side once clipped to the frame).
    """
    if image.shape != previous.shape or image.shape != background.shape:
        raise ValueError(
            f"image, previous and background must have one shape, but got {image.shape}, "
            f"{previous.shape} and {background.shape}"
        )
    box = _int_box(xyxy, image.shape)
    if box is None:
        return None
    now, before = _crop(image, box), _crop(previous, box)
    bg = np.clip(_crop(background, box), 0, 255).astype(np.uint8)
    gray_now = cv2.cvtColor(now, cv2.COLOR_BGR2GRAY)
    gray_before = cv2.cvtColor(before, cv2.COLOR_BGR2GRAY)
    gray_bg = cv2.cvtColor(bg, cv2.COLOR_BGR2GRAY)
    changed = np.abs(gray_now.astype(np.int16) - gray_bg.astype(np.int16)) > change_threshold
    moving = np.abs(gray_now.astype(np.int16) - gray_before.astype(np.int16)) > change_threshold // 2
    area = changed.size
    changed_fraction = float(changed.sum()) / area
    pixels = changed if changed.any() else np.ones_like(changed)
    # chroma, not HSV saturation: saturation divides by brightness and calls dark grey smoke colourful
    chroma = now.max(axis=2).astype(np.int16) - now.min(axis=2)
    saturation = float(chroma[pixels].mean()) / 255.0
    contrast_bg = _local_contrast(gray_bg)
    contrast_ratio = _local_contrast(gray_now) / contrast_bg if contrast_bg > 1e-3 else 1.0
    blackness = _plume_blackness(
        gray_now[pixels].astype(np.float32), gray_bg[pixels].astype(np.float32), ASSUMED_OPACITY
    )
    return SmokeAppearance(
        saturation=saturation,
        changed_fraction=changed_fraction,
        contrast_ratio=contrast_ratio,
        background_contrast=contrast_bg,
        motion_fraction=float(moving.sum()) / area,
        blackness=blackness,
        ringelmann=ringelmann_level(blackness),
    )


def _plume_blackness(observed: np.ndarray, background: np.ndarray, opacity: float) -> float:
    """Blackness of the plume's own shade in its densest part.

    observed = α·plume + (1 − α)·background for a plume of opacity α, so the plume's shade
    is background + (observed − background)/α. The densest tenth of the changed pixels is
    unmixed with `opacity`.
    """
    if observed.size == 0:
        return 0.0
    delta = observed - background
    core = np.abs(delta) >= np.percentile(np.abs(delta), 90)
    shade = np.clip(background[core] + delta[core] / opacity, 0.0, 255.0)
    return float(np.clip(1.0 - np.median(shade) / 255.0, 0.0, 1.0))

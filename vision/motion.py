"""A motion gate: run the detector only on frames where something moved in a watched zone.

Frigate's approach: shrink each frame to a small grayscale image, compare it with a
running-average background, and call pixels that differ by more than a threshold
"changed". Changed pixels are counted per zone; a zone is in motion when enough of it
changed. Objects that stopped moving (a stall set up and left) still need looking at, so
the gate also asks for inference every `recheck_interval_s`.

Once the frame is downscaled, the per-pixel work (difference, threshold, background
update, counts per zone) is one fused Numba pass. Zones may overlap: each downscaled
pixel holds a bit per zone it belongs to, so at most 64 zones per camera.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vision._jit import FAST, njit
from vision._union_find import find_root

logger = logging.getLogger(__name__)

#: zone membership is one bit per zone in a uint64 map
MAX_ZONES = 64
#: fixed-point bits for cv2.fillPoly, so that zone edges land at sub-pixel precision
_SHIFT = 4


class MotionConfig(BaseModel):
    """How a camera's motion gate decides that something moved."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frame_height: int = Field(
        default=120,
        title="Frame height",
        ge=16,
        le=1080,
        description="About how many pixels high frames are shrunk to before comparing: they shrink by the "
        "whole factor nearest to frame height / this (1080 / 120 = 9), which keeps the aspect ratio and the "
        "resize fast; the few edge pixels beyond a multiple of the factor are not watched.",
    )
    threshold: int = Field(
        default=25,
        title="Pixel threshold",
        ge=1,
        le=255,
        description="Grey-level difference from the background above which a pixel has changed.",
    )
    min_changed_fraction: float = Field(
        default=0.002,
        title="Minimum changed fraction",
        gt=0.0,
        le=1.0,
        description="Fraction of a zone's pixels that must change for the zone to be in motion.",
    )
    alpha: float = Field(
        default=0.02,
        title="Background learning rate",
        gt=0.0,
        le=1.0,
        description="Weight of each new frame in the running-average background; higher forgets sooner.",
    )
    blur_size: int = Field(
        default=3,
        title="Blur size",
        ge=0,
        le=15,
        description="Side of the Gaussian kernel that smooths sensor noise after shrinking; odd, 0 for none.",
    )
    contour_area: int = Field(
        default=4,
        title="Minimum blob area",
        ge=1,
        le=10_000,
        description="Smallest connected blob of changed pixels, in shrunk pixels, that counts as motion; "
        "smaller specks are noise.",
    )
    lighting_change_fraction: float = Field(
        default=0.8,
        title="Lighting change fraction",
        gt=0.0,
        le=1.0,
        description="Fraction of the whole frame whose change means lighting changed (lights on, a cloud, "
        "the camera's day/night switch), not motion: the background is reset instead.",
    )
    recheck_interval_s: float = Field(
        default=10.0,
        title="Recheck interval",
        gt=0.0,
        le=3600.0,
        description="Seconds after which inference runs even without motion, so objects that stopped "
        "moving are still seen.",
    )
    skip_frames_max: int | None = Field(
        default=None,
        title="Most skipped frames",
        ge=1,
        le=100_000,
        description="Most consecutive frames without inference before one is forced; none: only the "
        "recheck interval forces it.",
    )

    @field_validator("blur_size")
    @classmethod
    def _odd_blur(cls, size: int) -> int:
        if size and size % 2 == 0:
            raise ValueError(f"blur_size must be odd or 0, but got {size}")
        return size


class InferReason(StrEnum):
    """Why the gate asked for inference."""

    FIRST_FRAME = "first_frame"
    MOTION = "motion"
    RECHECK = "recheck"
    SKIP_LIMIT = "skip_limit"


@dataclass(frozen=True, slots=True)
class MotionResult:
    """What the gate saw in one frame."""

    #: enough of the frame changed, in or out of zones
    motion: bool
    #: run the detector on this frame
    should_infer: bool
    infer_reason: InferReason | None
    #: most of the frame changed at once; the background was reset and nothing counts as motion
    lighting_change: bool
    #: fraction of the whole frame that changed
    changed_fraction: float
    #: fraction of each zone that changed, by zone name
    zone_fractions: dict[str, float]
    #: zones whose changed fraction reached `min_changed_fraction`
    zones_in_motion: tuple[str, ...]
    #: boxes around blobs of change, x1 y1 x2 y2 in full-resolution pixels
    boxes: tuple[tuple[int, int, int, int], ...]


@njit(**FAST)
def _motion_kernel(
    gray: np.ndarray,
    background: np.ndarray,
    zone_bits: np.ndarray,
    threshold: float,
    alpha: float,
    changed: np.ndarray,
    counts: np.ndarray,
) -> int:
    """Mark and count changed pixels, per zone, and move the background towards `gray`."""
    t = np.float32(threshold)
    a = np.float32(alpha)
    h, w = gray.shape
    total = 0
    # branch-free, so that it vectorises: a static frame costs this loop alone
    for y in range(h):
        gray_row, background_row, changed_row = gray[y], background[y], changed[y]
        for x in range(w):
            b = background_row[x]
            d = np.float32(gray_row[x]) - b
            background_row[x] = b + a * d
            hit = abs(d) > t
            changed_row[x] = hit
            total += hit
    for k in range(counts.shape[0]):
        counts[k] = 0
    if total == 0 or counts.shape[0] == 0:
        return total
    for y in range(h):
        for x in range(w):
            if changed[y, x]:
                bits = zone_bits[y, x]
                k = 0
                while bits:
                    if bits & np.uint64(1):
                        counts[k] += 1
                    bits >>= np.uint64(1)
                    k += 1
    return total


@njit(**FAST)
def _union(parent: np.ndarray, a: int, b: int) -> int:
    ra, rb = find_root(parent, a), find_root(parent, b)
    if ra < rb:
        parent[rb] = ra
        return ra
    parent[ra] = rb
    return rb


@njit(**FAST)
def _blobs_kernel(
    changed: np.ndarray,
    zone_bits: np.ndarray,
    min_area: int,
    labels: np.ndarray,
    parent: np.ndarray,
    remap: np.ndarray,
    stats: np.ndarray,
    counts: np.ndarray,
) -> tuple[int, int]:
    """Label 8-connected blobs of changed pixels, box them, and count per zone the pixels of
    blobs of at least `min_area`.

    One labelling sweep with union-find (a root is always its set's smallest label), boxes
    and areas gathered per provisional label and merged into roots; `stats[1..n]` gets
    x0, y0, x1, y1 (inclusive) and area of each blob. `counts` is recounted only when
    some blob is too small, otherwise `_motion_kernel`'s counts stand. Returns (n, pixels
    in kept blobs). `labels`, `parent` and `remap` are scratch.
    """
    h, w = changed.shape
    n = 0
    for y in range(h):
        for x in range(w):
            if changed[y, x] == 0:
                labels[y, x] = 0
                continue
            label = 0
            if x > 0:
                label = labels[y, x - 1]
            if y > 0:
                for xx in range(max(x - 1, 0), min(x + 2, w)):
                    above = labels[y - 1, xx]
                    if above != 0:
                        label = above if label == 0 else _union(parent, label, above)
            if label == 0:
                n += 1
                parent[n] = n
                label = n
                stats[n, 0] = x
                stats[n, 1] = y
                stats[n, 2] = x
                stats[n, 3] = y
                stats[n, 4] = 0
            labels[y, x] = label
            stats[label, 0] = min(stats[label, 0], x)
            stats[label, 2] = max(stats[label, 2], x)
            stats[label, 3] = y
            stats[label, 4] += 1
    blobs = 0
    for i in range(1, n + 1):
        # parent[i] <= i, and every label below i already points at its root
        root = parent[parent[i]]
        parent[i] = root
        if root == i:
            blobs += 1
            remap[i] = blobs
            for c in range(5):
                stats[blobs, c] = stats[i, c]
        else:
            b = remap[root]
            remap[i] = b
            stats[b, 0] = min(stats[b, 0], stats[i, 0])
            stats[b, 1] = min(stats[b, 1], stats[i, 1])
            stats[b, 2] = max(stats[b, 2], stats[i, 2])
            stats[b, 3] = max(stats[b, 3], stats[i, 3])
            stats[b, 4] += stats[i, 4]
    total = 0
    dropped = False
    for b in range(1, blobs + 1):
        if stats[b, 4] >= min_area:
            total += stats[b, 4]
        else:
            dropped = True
    if dropped:
        for k in range(counts.shape[0]):
            counts[k] = 0
        for y in range(h):
            for x in range(w):
                label = labels[y, x]
                if label != 0 and stats[remap[label], 4] >= min_area:
                    bits = zone_bits[y, x]
                    k = 0
                    while bits:
                        if bits & np.uint64(1):
                            counts[k] += 1
                        bits >>= np.uint64(1)
                        k += 1
    return blobs, total


def find_blobs(mask: np.ndarray, min_area: int = 1) -> np.ndarray:
    """The 8-connected blobs of nonzero pixels in `mask` (h, w) uint8 with at least
    `min_area` pixels, as (n, 5) int64 rows of x1, y1, x2, y2 (exclusive) and area, in
    the order of their first pixel in a row-major scan (as OpenCV labels them)."""
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"mask must be 2D uint8, but got {mask.dtype} with shape {mask.shape}")
    if min_area < 1:
        raise ValueError(f"min_area must be >= 1, but got {min_area}")
    h, w = mask.shape
    labels = np.empty((h, w), np.int32)
    parent, remap = np.empty(h * w + 1, np.int32), np.empty(h * w + 1, np.int32)
    stats = np.empty((h * w + 1, 5), np.int32)
    n, _ = _blobs_kernel(
        np.ascontiguousarray(mask),
        np.zeros((h, w), np.uint64),
        min_area,
        labels,
        parent,
        remap,
        stats,
        np.zeros(0, np.int64),
    )
    blobs = stats[1 : n + 1].astype(np.int64)
    blobs[:, 2:4] += 1
    return blobs[blobs[:, 4] >= min_area]


def motion_step(
    gray: np.ndarray,
    background: np.ndarray,
    zone_bits: np.ndarray,
    threshold: float,
    alpha: float,
    changed: np.ndarray,
    counts: np.ndarray,
) -> int:
    """One fused pass over a downscaled frame; returns the number of changed pixels.

    `gray` (h, w) uint8 is compared with `background` (h, w) float32: `changed` (h, w)
    uint8 gets 1 where they differ by more than `threshold`, `counts` (Z,) int64 the
    changed pixels of each zone (bit k of `zone_bits` (h, w) uint64 marks zone k), and
    `background` moves towards `gray` by `alpha`. The three output arrays are written in
    place; `gray` and `zone_bits` are only read.
    """
    h, w = gray.shape if gray.ndim == 2 else (-1, -1)
    for name, array, dtype in (
        ("gray", gray, np.uint8),
        ("background", background, np.float32),
        ("zone_bits", zone_bits, np.uint64),
        ("changed", changed, np.uint8),
    ):
        if array.dtype != dtype or array.shape != (h, w):
            raise ValueError(
                f"{name} must be {np.dtype(dtype)} with shape {gray.shape}, but got {array.dtype} {array.shape}"
            )
    for name, array in (("background", background), ("changed", changed)):
        if not array.flags.writeable:
            raise ValueError(f"{name} is written in place, so it must be writeable")
    if counts.ndim != 1 or counts.dtype != np.int64 or not counts.flags.writeable:
        raise ValueError(f"counts must be a writeable int64 vector, but got {counts.dtype} {counts.shape}")
    if not (0.0 <= threshold <= 255.0 and 0.0 <= alpha <= 1.0):
        raise ValueError(f"threshold must lie in [0, 255] and alpha in [0, 1], but got {threshold} and {alpha}")
    return int(_motion_kernel(gray, background, zone_bits, threshold, alpha, changed, counts))


class MotionGate:
    """Decides, frame by frame, whether a camera's frame is worth running the detector on.

    The gate owns its background and scratch buffers; the frames it is given are only read.
    It assumes the caller runs the detector whenever `should_infer` is True; call
    `note_inference` after running it for some other reason.
    """

    def __init__(
        self,
        config: MotionConfig,
        frame_hw: tuple[int, int],
        zones_polygons: Mapping[str, npt.ArrayLike] | None = None,
    ) -> None:
        """`zones_polygons` maps zone names to (M, 2) polygons in frame pixels; with none,
        the whole frame is watched."""
        h, w = frame_hw
        if h < 1 or w < 1:
            raise ValueError(f"frame_hw must be a positive (height, width), but got {frame_hw}")
        zones = dict(zones_polygons or {})
        if len(zones) > MAX_ZONES:
            raise ValueError(f"at most {MAX_ZONES} zones per motion gate, but got {len(zones)}")
        self.config = config
        self.frame_hw = (int(h), int(w))
        # a whole factor: area averaging over fixed k×k blocks is OpenCV's fast INTER_AREA path
        self.factor = max(1, round(h / config.frame_height))
        if w < self.factor:
            raise ValueError(f"frame_hw {frame_hw} is too narrow to shrink {self.factor} times")
        self.small_hw = (h // self.factor, w // self.factor)
        self._zone_names = tuple(zones)
        self._zone_bits = np.zeros(self.small_hw, np.uint64)
        self._zone_pixels = np.zeros(len(zones), np.int64)
        for k, (name, polygon) in enumerate(zones.items()):
            mask = self._zone_mask(name, polygon)
            self._zone_bits[mask] |= np.uint64(1) << np.uint64(k)
            self._zone_pixels[k] = int(mask.sum())
        self._zone_bits.flags.writeable = False
        self._background = np.zeros(self.small_hw, np.float32)
        self._changed = np.zeros(self.small_hw, np.uint8)
        self._counts = np.zeros(len(zones), np.int64)
        # blob labelling scratch: at most one provisional label per pixel
        pixels = self.small_hw[0] * self.small_hw[1]
        self._labels = np.zeros(self.small_hw, np.int32)
        self._parent = np.zeros(pixels + 1, np.int32)
        self._remap = np.zeros(pixels + 1, np.int32)
        self._stats = np.zeros((pixels + 1, 5), np.int32)
        self._last_at: datetime | None = None
        self._last_inference_at: datetime | None = None
        self._skipped = 0

    def _zone_mask(self, name: str, polygon: npt.ArrayLike) -> np.ndarray:
        points = np.asarray(polygon, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] < 3 or not np.all(np.isfinite(points)):
            raise ValueError(f"zone {name!r}: polygon must be finite with shape (M, 2), M >= 3, but got {points.shape}")
        # pixel centres sit at +0.5: map frame coordinates to shrunk ones, then to fillPoly's grid
        scaled = points / self.factor - 0.5
        fixed = np.round(scaled * (1 << _SHIFT)).astype(np.int32)
        mask = np.zeros(self.small_hw, np.uint8)
        cv2.fillPoly(mask, [fixed], 1, lineType=cv2.LINE_8, shift=_SHIFT)
        if not mask.any():
            raise ValueError(
                f"zone {name!r} covers no pixel of the {self.small_hw[1]}x{self.small_hw[0]} motion image; "
                "raise motion.frame_height or enlarge the zone"
            )
        return mask.astype(bool)

    @property
    def zone_names(self) -> tuple[str, ...]:
        return self._zone_names

    def downscale(self, image: np.ndarray) -> np.ndarray:
        """The frame as the gate compares it: shrunk (area-averaged), grey, smoothed."""
        h, w = self.frame_hw
        if image.dtype != np.uint8 or image.shape[:2] != (h, w) or image.ndim not in (2, 3):
            raise ValueError(
                f"image must be uint8 with shape ({h}, {w}, 3) or ({h}, {w}), but got {image.dtype} {image.shape}"
            )
        if image.ndim == 3 and image.shape[2] != 3:
            raise ValueError(f"a colour image must be BGR with 3 channels, but got shape {image.shape}")
        # grey first: the resize then averages one channel instead of three (about 1.5× faster)
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        if self.factor > 1:
            small_h, small_w = self.small_hw
            cropped = gray[: small_h * self.factor, : small_w * self.factor]
            gray = cv2.resize(cropped, (small_w, small_h), interpolation=cv2.INTER_AREA)
        if self.config.blur_size:
            k = self.config.blur_size
            gray = cv2.GaussianBlur(gray, (k, k), 0)
        return np.ascontiguousarray(gray)

    def update(self, image: np.ndarray, at: datetime) -> MotionResult:
        """Look at one frame (H×W×3 BGR or H×W grey, uint8) captured at `at`."""
        return self.update_downscaled(self.downscale(image), at)

    def update_downscaled(self, gray: np.ndarray, at: datetime) -> MotionResult:
        """`update` for a frame already passed through `downscale` (or shrunk elsewhere to
        `small_hw`, e.g. from a camera's sub-stream): uint8 grey, only read."""
        if gray.dtype != np.uint8 or gray.shape != self.small_hw:
            raise ValueError(f"gray must be uint8 with shape {self.small_hw}, but got {gray.dtype} {gray.shape}")
        if at.utcoffset() is None:
            raise ValueError(f"at must be timezone-aware, but got naive {at.isoformat()}")
        if self._last_at is not None and at < self._last_at:
            raise ValueError(
                f"frames must come in time order, but {at.isoformat()} is before {self._last_at.isoformat()}"
            )
        gray = np.ascontiguousarray(gray)
        first = self._last_at is None
        self._last_at = at
        if first:
            self._background[...] = gray
            return self._decide(at, first=True, changed=0, lighting=False, boxes=())
        cfg = self.config
        changed = int(
            _motion_kernel(
                gray, self._background, self._zone_bits, cfg.threshold, cfg.alpha, self._changed, self._counts
            )
        )
        if changed > cfg.lighting_change_fraction * gray.size:
            logger.debug("lighting change: %d of %d pixels changed; background reset", changed, gray.size)
            self._background[...] = gray
            self._counts[:] = 0
            return self._decide(at, first=False, changed=0, lighting=True, boxes=())
        boxes: tuple[tuple[int, int, int, int], ...] = ()
        if changed:
            changed, boxes = self._blobs()
        return self._decide(at, first=False, changed=changed, lighting=False, boxes=boxes)

    def _blobs(self) -> tuple[int, tuple[tuple[int, int, int, int], ...]]:
        """Drop specks below `contour_area`, recount, and box what is left in frame pixels."""
        n, changed = _blobs_kernel(
            self._changed,
            self._zone_bits,
            self.config.contour_area,
            self._labels,
            self._parent,
            self._remap,
            self._stats,
            self._counts,
        )
        f = self.factor
        boxes = tuple(
            (int(x0) * f, int(y0) * f, (int(x1) + 1) * f, (int(y1) + 1) * f)
            for x0, y0, x1, y1, area in self._stats[1 : n + 1]
            if area >= self.config.contour_area
        )
        return int(changed), boxes

    def _decide(
        self, at: datetime, *, first: bool, changed: int, lighting: bool, boxes: tuple[tuple[int, int, int, int], ...]
    ) -> MotionResult:
        cfg = self.config
        pixels = self.small_hw[0] * self.small_hw[1]
        fraction = changed / pixels
        zone_fractions = dict(zip(self._zone_names, (self._counts / self._zone_pixels).tolist(), strict=True))
        zones_in_motion = tuple(n for n, f in zone_fractions.items() if f >= cfg.min_changed_fraction)
        motion = fraction >= cfg.min_changed_fraction and not first and not lighting
        watched_motion = bool(zones_in_motion) if self._zone_names else motion
        reason: InferReason | None = None
        if first:
            reason = InferReason.FIRST_FRAME
        elif watched_motion:
            reason = InferReason.MOTION
        elif (
            self._last_inference_at is not None
            and (at - self._last_inference_at).total_seconds() >= cfg.recheck_interval_s
        ):
            reason = InferReason.RECHECK
        elif cfg.skip_frames_max is not None and self._skipped >= cfg.skip_frames_max:
            reason = InferReason.SKIP_LIMIT
        if reason is None:
            self._skipped += 1
        else:
            self.note_inference(at)
        return MotionResult(
            motion=motion,
            should_infer=reason is not None,
            infer_reason=reason,
            lighting_change=lighting,
            changed_fraction=fraction,
            zone_fractions=zone_fractions,
            zones_in_motion=zones_in_motion,
            boxes=boxes,
        )

    def note_inference(self, at: datetime) -> None:
        """Record that the detector ran at `at`, which restarts the recheck interval."""
        self._last_inference_at = at
        self._skipped = 0

    @property
    def background(self) -> np.ndarray:
        """A read-only view of the running-average background (h, w) float32."""
        view = self._background.view()
        view.flags.writeable = False
        return view

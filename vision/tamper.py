"""Camera tampering and faults, seen from the frames alone: covered, moved, defocused.

A camera that was covered, turned away or knocked out of focus keeps streaming, and
nothing downstream notices: the detector just stops finding violations. What is found
here is a camera *health event* for the operators, never a violation.

The detector first learns a reference of its scene (`learn_s` of frames), then compares
each frame with it on a small grey copy (about `analysis_width` pixels wide) by figures
that ignore what a street normally does:

- *contrast* (the grey levels' standard deviation) and *detail* (the energy of edges a few
  pixels wide): a covered, blacked-out or sprayed lens leaves a near-uniform image, with
  both far below the reference. Detail is judged against the reference, so a dark scene
  is not a covered one;
- *similarity*: the median, over a 4×4 grid of tiles, of the correlation between the
  frame's edge maps and the reference's. People and cars change a few tiles, which the
  median ignores; a camera turned off its scene changes them all. Correlation is blind
  to gain and offset, so dusk does not read as a move. Vertical and horizontal edges are
  compared apart: a pan leaves a street's horizontal edges (kerbs, roofs, the horizon)
  in place, and one map of both would still half match;
- *sharpness*: the variance of the Laplacian over the image's own variance, so that it
  measures focus, not brightness or contrast. A soft focus loses it but keeps the edges
  where they were, so it is not mistaken for a move.

The reference follows slow change (a parked car, the light over the day) with a time
constant of `adapt_s`, but only while every figure is normal, so that a covered or
turned camera never becomes the new normal. A condition is reported once it has lasted
`hold_s` and cleared once it has been gone as long, so one odd frame reports nothing.
"""

from __future__ import annotations

import logging
import math
import statistics
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

#: tiles per side of the grid over which edge maps are compared
GRID = 4
#: the edge maps keep structure between these two Gaussian scales, in analysis pixels:
#: coarse enough that sensor noise, a soft focus and a camera's sway of a few pixels leave
#: them as they were, fine enough that a shift of about 2% of the width does not
_FINE_SIGMA = 2.5
_COARSE_SIGMA = 6.0
#: kernels reach ±2σ: the band-pass needs no more, and the coarse blur is the costliest step
_FINE_KSIZE = 11
_COARSE_KSIZE = 25
#: a tile is compared only if the reference holds there at least this share of the mean
#: tile energy: a tile of clear sky or plain wall matches anything or nothing
_TEXTURED_SHARE = 0.1
#: nor if its reference energy, in (grey levels per analysis pixel)² of the band-passed
#: gradients, is under this: sensor noise on a covered or plain view stays far below it,
#: a street at night a little above
_MIN_TILE_ENERGY = 0.25
#: with fewer textured tiles than this in an edge map, a move cannot be judged from it
_MIN_TEXTURED_TILES = 4
#: the smallest analysis image: each tile of the grid must hold a few pixels to correlate
_MIN_ANALYSIS_SIDE = 4 * GRID


class TamperConfig(BaseModel):
    """How a camera's tamper detector decides that the camera was covered, moved or defocused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True,
        title="Enabled",
        description="Watch the camera for tampering; when off, frames are not looked at.",
    )
    learn_s: float = Field(
        default=10.0,
        title="Learning time",
        gt=0.0,
        le=3600.0,
        description="Seconds of frames from which the reference scene is learned before anything is judged; "
        "the camera must show its normal view meanwhile.",
    )
    hold_s: float = Field(
        default=3.0,
        title="Hold time",
        ge=0.0,
        le=3600.0,
        description="Seconds a condition must last before it is reported, and be gone before it is cleared, "
        "so that one odd frame (a flash, a bird on the lens) reports nothing.",
    )
    adapt_s: float = Field(
        default=300.0,
        title="Adaptation time",
        gt=0.0,
        le=86_400.0,
        description="Time constant, in seconds, with which the reference follows gradual change (the light "
        "over the day, a parked car); it adapts only while nothing is amiss.",
    )
    analysis_width: int = Field(
        default=160,
        title="Analysis width",
        ge=_MIN_ANALYSIS_SIDE,
        le=1920,
        description="About how many pixels wide frames are shrunk to, in grey, before being judged: they "
        "shrink by the whole factor nearest to frame width / this (640 / 160 = 4), which keeps the resize "
        "fast; the few edge pixels beyond a multiple of the factor and of the 4×4 grid are not watched.",
    )
    covered_contrast: float = Field(
        default=15.0,
        title="Covered contrast",
        gt=0.0,
        le=128.0,
        description="Standard deviation of the shrunk frame's grey levels (0-255) below which the view is "
        "near-uniform, as when the lens is covered, blacked out or sprayed.",
    )
    covered_detail_ratio: float = Field(
        default=0.2,
        title="Covered detail ratio",
        gt=0.0,
        lt=1.0,
        description="Share of the reference's detail (energy of edges a few pixels wide) below which, with a "
        "contrast under covered_contrast, the lens is covered; relative, so that a dark scene is not covered.",
    )
    defocus_ratio: float = Field(
        default=0.35,
        title="Defocus ratio",
        gt=0.0,
        lt=1.0,
        description="Share of the reference's sharpness (variance of the Laplacian over the image's variance) "
        "below which the camera is out of focus.",
    )
    moved_min_similarity: float = Field(
        default=0.4,
        title="Moved similarity",
        gt=0.0,
        lt=1.0,
        description="Median correlation, over the textured tiles of a 4×4 grid, between the frame's edges and "
        "the reference's (the lower of vertical and horizontal edges), below which the camera no longer "
        "looks at its scene: turned, shifted by more than about 2% of the width, or facing something else.",
    )


class TamperKind(StrEnum):
    """What is wrong with a camera, as its health events name it."""

    COVERED = "covered"  # lens covered, blacked out or sprayed: the view is near-uniform
    MOVED = "moved"  # the camera looks at something other than its scene
    DEFOCUSED = "defocused"  # the scene is there but soft


@dataclass(frozen=True, slots=True)
class TamperEvent:
    """A tamper condition that started (`active`) or cleared (not `active`) on one camera.

    `at` is the capture time of the first frame that showed the change; the event comes
    `hold_s` later, from the frame that confirmed it. `detail` gives the measured figures
    against their reference or threshold, for the operator and the log.
    """

    kind: TamperKind
    active: bool
    at: datetime
    detail: str


@dataclass(frozen=True, slots=True)
class _Measures:
    """The figures of one shrunk frame. `edges` stacks its band-passed horizontal and
    vertical gradients, (2·h, w) float32, so that tile sums of both take one resize."""

    contrast: float
    detail: float
    sharpness: float
    edges: np.ndarray


class TamperDetector:
    """Watches one camera's frames for covering, moves and defocus, and reports each
    condition as it starts and as it clears.

    The reference is learned from the first `learn_s` of frames, so build the detector
    while the camera shows its normal view; after a camera is re-aimed on purpose, build a
    new one, which learns the new view. Frames must keep one shape and come in time order;
    they are only read.
    """

    def __init__(self, config: TamperConfig) -> None:
        self.config = config
        self._frame_shape: tuple[int, ...] | None = None
        self._factor = 1
        self._small_hw = (0, 0)
        self._first_at: datetime | None = None
        self._last_at: datetime | None = None
        # learning: the sum of edge maps and the figures of the first learn_s of frames
        self._edges_sum: np.ndarray | None = None
        self._details: list[float] = []
        self._sharpnesses: list[float] = []
        # the reference, once learned
        self._reference: np.ndarray | None = None
        self._reference_detail = 0.0
        self._reference_sharpness = 0.0
        self._products = np.empty((0, 0), np.float32)
        self._active: set[TamperKind] = set()
        # when the run of frames disagreeing with each condition's state began
        self._pending: dict[TamperKind, datetime | None] = dict.fromkeys(TamperKind)

    @property
    def active(self) -> frozenset[TamperKind]:
        """The conditions reported and not yet cleared."""
        return frozenset(self._active)

    def update(self, image: np.ndarray, at: datetime) -> list[TamperEvent]:
        """Look at one frame (H×W×3 BGR or H×W grey, uint8) captured at `at` (timezone-aware);
        return the conditions that started or cleared with it, covered before moved before
        defocused. Nothing is judged while the reference is being learned."""
        if not self.config.enabled:
            return []
        self._check(image, at)
        dt = 0.0 if self._last_at is None else (at - self._last_at).total_seconds()
        self._last_at = at
        if self._first_at is None:
            self._first_at = at
        measures = self._measure(image)
        if self._reference is None:
            self._learn(measures)
            if (at - self._first_at).total_seconds() < self.config.learn_s:
                return []
            self._finish_learning()
        return self._judge(measures, at, dt)

    def _check(self, image: np.ndarray, at: datetime) -> None:
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
            raise ValueError(f"image must be uint8 with shape (H, W, 3) or (H, W), but got {image.dtype} {image.shape}")
        if at.utcoffset() is None:
            raise ValueError(f"at must be timezone-aware, but got naive {at.isoformat()}")
        if self._last_at is not None and at < self._last_at:
            raise ValueError(
                f"frames must come in time order, but {at.isoformat()} is before {self._last_at.isoformat()}"
            )
        if self._frame_shape is None:
            self._size_analysis(image.shape[0], image.shape[1])
            self._frame_shape = image.shape
        elif image.shape != self._frame_shape:
            raise ValueError(
                f"frames must keep the shape {self._frame_shape} the reference is learned at, but got "
                f"{image.shape}; build a new TamperDetector for the new stream"
            )

    def _size_analysis(self, h: int, w: int) -> None:
        # a whole factor: area averaging over fixed k×k blocks is OpenCV's fast INTER_AREA path
        factor = max(1, round(w / self.config.analysis_width))
        small_h, small_w = (h // factor) // GRID * GRID, (w // factor) // GRID * GRID
        if min(small_h, small_w) < _MIN_ANALYSIS_SIDE:
            raise ValueError(
                f"a {w}x{h} frame shrinks {factor} times to {small_w}x{small_h}, but tamper detection needs at "
                f"least {_MIN_ANALYSIS_SIDE}x{_MIN_ANALYSIS_SIDE}; raise tamper.analysis_width or send larger frames"
            )
        self._factor = factor
        self._small_hw = (small_h, small_w)
        # cur², cur·reference and reference² of both edge maps, stacked for one tiling resize
        self._products = np.empty((6 * small_h, small_w), np.float32)

    def _measure(self, image: np.ndarray) -> _Measures:
        small_h, small_w = self._small_hw
        f = self._factor
        cropped = image[: small_h * f, : small_w * f]
        # grey first: the resize then averages one channel instead of three
        gray = cv2.cvtColor(cropped, cv2.COLOR_BGR2GRAY) if cropped.ndim == 3 else cropped
        if f > 1:
            gray = cv2.resize(gray, (small_w, small_h), interpolation=cv2.INTER_AREA)
        small = gray.astype(np.float32)
        _, std = cv2.meanStdDev(small)
        _, laplacian_std = cv2.meanStdDev(cv2.Laplacian(small, cv2.CV_32F))
        contrast = float(std[0, 0])
        # the +1 grey level² keeps a flat frame's sharpness at 0 instead of dividing its noise by nothing
        sharpness = float(laplacian_std[0, 0]) ** 2 / (contrast**2 + 1.0)
        band = cv2.subtract(
            cv2.GaussianBlur(small, (_FINE_KSIZE, _FINE_KSIZE), _FINE_SIGMA),
            cv2.GaussianBlur(small, (_COARSE_KSIZE, _COARSE_KSIZE), _COARSE_SIGMA),
        )
        edges = np.empty((2 * small_h, small_w), np.float32)
        cv2.Sobel(band, cv2.CV_32F, 1, 0, dst=edges[:small_h])
        cv2.Sobel(band, cv2.CV_32F, 0, 1, dst=edges[small_h:])
        detail = cv2.norm(edges, cv2.NORM_L2) / math.sqrt(small_h * small_w)
        return _Measures(contrast=contrast, detail=detail, sharpness=sharpness, edges=edges)

    def _learn(self, m: _Measures) -> None:
        if self._edges_sum is None:
            self._edges_sum = np.zeros_like(m.edges)
        self._edges_sum += m.edges
        self._details.append(m.detail)
        self._sharpnesses.append(m.sharpness)

    def _finish_learning(self) -> None:
        if self._edges_sum is None:
            raise RuntimeError("the tamper reference cannot be learned from no frames")
        frames = len(self._details)
        # the mean edge map blurs passers-by away; the medians of the figures ignore odd frames
        self._reference = self._edges_sum / np.float32(frames)
        self._reference_detail = statistics.median(self._details)
        self._reference_sharpness = statistics.median(self._sharpnesses)
        self._edges_sum, self._details, self._sharpnesses = None, [], []
        reference_energy = self._tile_means(np.square(self._reference), maps=2)
        textured = [int(_textured(e).sum()) for e in reference_energy]
        logger.info(
            "tamper reference learned from %d frames: detail %.2f, sharpness %.4f, textured tiles %s of %d",
            frames,
            self._reference_detail,
            self._reference_sharpness,
            textured,
            GRID * GRID,
        )
        if max(textured) < _MIN_TEXTURED_TILES:
            logger.warning(
                "the reference view has too little structure (textured tiles %s) to tell whether the camera moved; "
                "covering and defocus are still watched",
                textured,
            )

    def _judge(self, m: _Measures, at: datetime, dt: float) -> list[TamperEvent]:
        cfg = self.config
        similarity = self._similarity(m)
        seen = {
            TamperKind.COVERED: m.contrast < cfg.covered_contrast
            and m.detail < cfg.covered_detail_ratio * self._reference_detail,
            # NaN (a view too plain to judge) compares False: never moved
            TamperKind.MOVED: similarity < cfg.moved_min_similarity,
            TamperKind.DEFOCUSED: m.sharpness < cfg.defocus_ratio * self._reference_sharpness,
        }
        events: list[TamperEvent] = []
        # a covered lens also looks moved and soft, and a moved camera's sharpness is another
        # scene's: while a stronger condition is seen or reported, weaker ones neither start nor clear
        blocked = False
        for kind in (TamperKind.COVERED, TamperKind.MOVED, TamperKind.DEFOCUSED):
            if blocked:
                self._pending[kind] = None
                continue
            since = self._step(kind, seen[kind], at)
            if since is not None:
                detail = self._describe(kind, m, similarity)
                state = "started" if seen[kind] else "cleared"
                logger.info("camera %s %s at %s: %s", kind.value, state, since.isoformat(), detail)
                events.append(TamperEvent(kind=kind, active=seen[kind], at=since, detail=detail))
            blocked = seen[kind] or kind in self._active
        if not (any(seen.values()) or self._active):
            self._adapt(m, dt)
        return events

    def _similarity(self, m: _Measures) -> float:
        """The lower, over vertical and horizontal edges, of the median over the reference's
        textured tiles of the correlation between the frame's edges and the reference's; NaN
        when neither edge map has enough textured tiles to judge."""
        reference = self._reference
        if reference is None:
            raise RuntimeError("the tamper reference must be learned before frames are compared with it")
        rows = reference.shape[0]
        products = self._products
        np.multiply(m.edges, m.edges, out=products[:rows])
        np.multiply(m.edges, reference, out=products[rows : 2 * rows])
        np.multiply(reference, reference, out=products[2 * rows :])
        energy, cross, reference_energy = self._tile_means(products, maps=6).reshape(3, 2, GRID, GRID)
        medians = []
        for k in range(2):
            textured = _textured(reference_energy[k])
            if int(textured.sum()) < _MIN_TEXTURED_TILES:
                continue
            correlation = cross[k][textured] / np.sqrt(energy[k][textured] * reference_energy[k][textured] + 1e-6)
            medians.append(statistics.median(correlation.tolist()))
        return min(medians, default=math.nan)

    def _tile_means(self, stacked: np.ndarray, maps: int) -> np.ndarray:
        """Means over each tile of the grid of `maps` maps stacked vertically as one
        (maps·h, w) array, as (maps, GRID, GRID) float64: one whole-factor area resize."""
        means = cv2.resize(stacked, (GRID, maps * GRID), interpolation=cv2.INTER_AREA)
        return means.reshape(maps, GRID, GRID).astype(np.float64)

    def _step(self, kind: TamperKind, seen: bool, at: datetime) -> datetime | None:
        """Move one condition on by a frame; it flips once frames have disagreed with it for
        `hold_s`, and then the time of the first of them is returned."""
        if seen == (kind in self._active):
            self._pending[kind] = None
            return None
        since = self._pending[kind]
        if since is None:
            since = self._pending[kind] = at
        if (at - since).total_seconds() < self.config.hold_s:
            return None
        self._pending[kind] = None
        if seen:
            self._active.add(kind)
        else:
            self._active.discard(kind)
        return since

    def _describe(self, kind: TamperKind, m: _Measures, similarity: float) -> str:
        cfg = self.config
        if kind is TamperKind.COVERED:
            return (
                f"contrast {m.contrast:.1f} (covered below {cfg.covered_contrast:g}), "
                f"detail {m.detail:.2f} vs reference {self._reference_detail:.2f}"
            )
        if kind is TamperKind.MOVED:
            return f"scene similarity {similarity:.2f} (moved below {cfg.moved_min_similarity:g})"
        return f"sharpness {m.sharpness:.4f} vs reference {self._reference_sharpness:.4f}"

    def _adapt(self, m: _Measures, dt: float) -> None:
        """Move the reference towards this frame by the share of `adapt_s` that passed since the last one."""
        if self._reference is None:
            return
        alpha = 1.0 - math.exp(-dt / self.config.adapt_s)
        if alpha <= 0.0:
            return
        cv2.accumulateWeighted(m.edges, self._reference, alpha)
        self._reference_detail += alpha * (m.detail - self._reference_detail)
        self._reference_sharpness += alpha * (m.sharpness - self._reference_sharpness)


def _textured(energy: np.ndarray) -> np.ndarray:
    """Which tiles of one edge map's (GRID, GRID) reference energy hold enough structure to compare."""
    return (energy >= _TEXTURED_SHARE * float(energy.mean())) & (energy >= _MIN_TILE_ENERGY)

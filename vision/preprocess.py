"""Turning a BGR frame into a model's input tensor in one pass.

`letterbox_into` resizes (bilinear, OpenCV's `INTER_LINEAR` sampling), pads, swaps BGR to
RGB, scales to [0, 1] and writes CHW float32 straight into a caller-owned tensor, so a
detector reuses one input buffer for every frame. The geometry follows ultralytics'
`LetterBox` (same rounding of the resized size and the padding), so boxes map back
exactly as ultralytics maps them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np

from vision._jit import FAST, PARALLEL, njit

#: ultralytics' grey padding value
PAD_VALUE = 114


@dataclass(frozen=True, slots=True)
class LetterboxGeometry:
    """Where a source image lands inside the model input: resized size and offsets."""

    src_h: int
    src_w: int
    dst_h: int
    dst_w: int
    new_h: int
    new_w: int
    top: int
    left: int

    @classmethod
    def letterbox(
        cls, src_hw: tuple[int, int], dst_hw: tuple[int, int], *, scaleup: bool = True, stride: int | None = None
    ) -> LetterboxGeometry:
        """Keep the aspect ratio, centre the image, pad the rest (ultralytics' rounding).

        With `stride`, the image is scaled to fit `dst_hw` but padded only up to the next
        multiple of `stride` on each side: the smallest input a dynamic-size model accepts.
        """
        (src_h, src_w), (dst_h, dst_w) = src_hw, dst_hw
        _check_sizes(src_hw, dst_hw)
        r = min(dst_h / src_h, dst_w / src_w)
        if not scaleup:
            r = min(r, 1.0)
        new_w, new_h = max(round(src_w * r), 1), max(round(src_h * r), 1)
        if stride is not None:
            if stride < 1:
                raise ValueError(f"stride must be >= 1, but got {stride}")
            dst_h = new_h + (dst_h - new_h) % stride
            dst_w = new_w + (dst_w - new_w) % stride
        top = round((dst_h - new_h) / 2 - 0.1)
        left = round((dst_w - new_w) / 2 - 0.1)
        return cls(src_h, src_w, dst_h, dst_w, new_h, new_w, top, left)

    @classmethod
    def stretch(cls, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> LetterboxGeometry:
        """Fill the whole input, ignoring the aspect ratio (models trained that way)."""
        _check_sizes(src_hw, dst_hw)
        (src_h, src_w), (dst_h, dst_w) = src_hw, dst_hw
        return cls(src_h, src_w, dst_h, dst_w, dst_h, dst_w, 0, 0)

    @property
    def scale_x(self) -> float:
        return self.new_w / self.src_w

    @property
    def scale_y(self) -> float:
        return self.new_h / self.src_h


def _check_sizes(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> None:
    if min(src_hw) < 1 or min(dst_hw) < 1:
        raise ValueError(f"sizes must be positive (height, width), but got source {src_hw} and input {dst_hw}")


@lru_cache(maxsize=64)
def _sampling_table(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of OpenCV's INTER_LINEAR along one axis."""
    scale = src / dst
    f = (np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5
    i0 = np.floor(f)
    w = f - i0
    i0 = i0.astype(np.int64)
    low = i0 < 0
    i0[low], w[low] = 0, 0.0
    high = i0 >= src - 1
    i0[high], w[high] = src - 1, 0.0
    i1 = np.minimum(i0 + 1, src - 1)
    for table in (i0, i1, w):
        table.flags.writeable = False
    return i0, i1, w.astype(np.float32)


@njit(**FAST)
def _letterbox_row(
    src: np.ndarray,
    out: np.ndarray,
    y: int,
    top: int,
    left: int,
    x0: np.ndarray,
    x1: np.ndarray,
    wx: np.ndarray,
    y0: np.ndarray,
    y1: np.ndarray,
    wy: np.ndarray,
    pad: float,
    rgb: bool,
) -> None:
    dst_w = out.shape[2]
    new_h, new_w = y0.shape[0], x0.shape[0]
    inv = np.float32(1.0 / 255.0)
    padv = np.float32(pad)
    # output plane of each BGR input channel
    p0, p1, p2 = (2, 1, 0) if rgb else (0, 1, 2)
    yy = y - top
    if yy < 0 or yy >= new_h:
        for c in range(3):
            for x in range(dst_w):
                out[c, y, x] = padv
        return
    for c in range(3):
        for x in range(left):
            out[c, y, x] = padv
        for x in range(left + new_w, dst_w):
            out[c, y, x] = padv
    r0 = src[y0[yy]]
    b = wy[yy]
    if b == 0.0:
        for xx in range(new_w):
            a = wx[xx]
            i, j = x0[xx], x1[xx]
            x = left + xx
            out[p0, y, x] = (r0[i, 0] + a * (np.float32(r0[j, 0]) - r0[i, 0])) * inv
            out[p1, y, x] = (r0[i, 1] + a * (np.float32(r0[j, 1]) - r0[i, 1])) * inv
            out[p2, y, x] = (r0[i, 2] + a * (np.float32(r0[j, 2]) - r0[i, 2])) * inv
    else:
        r1 = src[y1[yy]]
        for xx in range(new_w):
            a = wx[xx]
            i, j = x0[xx], x1[xx]
            x = left + xx
            for c in range(3):
                top_v = r0[i, c] + a * (np.float32(r0[j, c]) - r0[i, c])
                bot_v = r1[i, c] + a * (np.float32(r1[j, c]) - r1[i, c])
                plane = p0 if c == 0 else (p1 if c == 1 else p2)
                out[plane, y, x] = (top_v + b * (bot_v - top_v)) * inv


@njit(**FAST)
def _letterbox_kernel(
    src: np.ndarray,
    out: np.ndarray,
    top: int,
    left: int,
    x0: np.ndarray,
    x1: np.ndarray,
    wx: np.ndarray,
    y0: np.ndarray,
    y1: np.ndarray,
    wy: np.ndarray,
    pad: float,
    rgb: bool,
) -> None:
    for y in range(out.shape[1]):
        _letterbox_row(src, out, y, top, left, x0, x1, wx, y0, y1, wy, pad, rgb)


@njit(**PARALLEL)
def _letterbox_kernel_parallel(
    src: np.ndarray,
    out: np.ndarray,
    top: int,
    left: int,
    x0: np.ndarray,
    x1: np.ndarray,
    wx: np.ndarray,
    y0: np.ndarray,
    y1: np.ndarray,
    wy: np.ndarray,
    pad: float,
    rgb: bool,
) -> None:
    for y in numba.prange(out.shape[1]):
        _letterbox_row(src, out, y, top, left, x0, x1, wx, y0, y1, wy, pad, rgb)


# numba's default threading layer must not be entered from two threads at once; a caller
# that finds it busy does its rows alone instead of waiting
_parallel_gate = threading.Lock()


def letterbox_into(
    image: np.ndarray,
    out: np.ndarray,
    geometry: LetterboxGeometry | None = None,
    *,
    rgb: bool = True,
    threads: int = 1,
) -> LetterboxGeometry:
    """Write `image` (H×W×3 uint8 BGR) into `out` (3×h×w float32 in [0, 1], RGB unless `rgb=False`).

    `out` is usually one slot of a detector's preallocated batch tensor. Without a
    `geometry` the image is letterboxed to `out`'s size; pass `LetterboxGeometry.stretch`
    for models trained on stretched inputs. Returns the geometry used, which maps boxes
    back to the source (`vision.postprocess.boxes_to_source`). `threads` > 1 splits the rows
    over numba's thread pool, for a detector that has the cores to itself between runs.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image must be an (H, W, 3) uint8 BGR array, but got {got}")
    if not isinstance(out, np.ndarray) or out.ndim != 3 or out.shape[0] != 3 or out.dtype != np.float32:
        got = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(f"out must be a (3, h, w) float32 array, but got {got}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be C-contiguous and writeable (a slot of the input tensor, not a strided view)")
    src_hw = (int(image.shape[0]), int(image.shape[1]))
    dst_hw = (int(out.shape[1]), int(out.shape[2]))
    if geometry is None:
        geometry = LetterboxGeometry.letterbox(src_hw, dst_hw)
    elif (geometry.src_h, geometry.src_w) != src_hw or (geometry.dst_h, geometry.dst_w) != dst_hw:
        raise ValueError(
            f"geometry is for {geometry.src_h}x{geometry.src_w} -> {geometry.dst_h}x{geometry.dst_w}, "
            f"but got image {src_hw[0]}x{src_hw[1]} and out {dst_hw[0]}x{dst_hw[1]}"
        )
    if not image.flags.c_contiguous:
        image = np.ascontiguousarray(image)
    x0, x1, wx = _sampling_table(geometry.src_w, geometry.new_w)
    y0, y1, wy = _sampling_table(geometry.src_h, geometry.new_h)
    args = (image, out, geometry.top, geometry.left, x0, x1, wx, y0, y1, wy, PAD_VALUE / 255.0, rgb)
    if threads < 1:
        raise ValueError(f"threads must be >= 1, but got {threads}")
    if threads > 1 and _parallel_gate.acquire(blocking=False):
        try:
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
            _letterbox_kernel_parallel(*args)
        finally:
            _parallel_gate.release()
    else:
        _letterbox_kernel(*args)
    return geometry

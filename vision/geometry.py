"""Box geometry: intersection over union, as a matrix between two sets of boxes."""

from __future__ import annotations

import numpy as np

from vision._jit import EXACT, njit


@njit(**EXACT)
def _iou_pair(a: np.ndarray, i: int, b: np.ndarray, j: int) -> float:
    iw = min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0])
    ih = min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1])
    if iw <= 0.0 or ih <= 0.0:
        return 0.0
    inter = iw * ih
    union = (a[i, 2] - a[i, 0]) * (a[i, 3] - a[i, 1]) + (b[j, 2] - b[j, 0]) * (b[j, 3] - b[j, 1]) - inter
    return inter / union if union > 0.0 else 0.0


@njit(**EXACT)
def _iou_matrix_kernel(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            out[i, j] = _iou_pair(a, i, b, j)


def _as_boxes(name: str, boxes: np.ndarray) -> np.ndarray:
    arr = np.asarray(boxes)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must have shape (_, 4) as x1, y1, x2, y2, but got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, but holds NaN or inf")
    if np.any(arr[:, 2:] < arr[:, :2]):
        raise ValueError(f"{name} must have x2 >= x1 and y2 >= y1 in every row")
    return arr


def box_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` (N×4 xyxy) with every box in `b` (M×4): an N×M float32 matrix.

    Boxes of zero area have IoU 0 with everything, themselves included.
    """
    a, b = _as_boxes("a", a), _as_boxes("b", b)
    out = np.empty((a.shape[0], b.shape[0]), np.float32)
    _iou_matrix_kernel(a, b, out)
    return out

"""From a model's raw output to `Detections` in source pixels.

Three decoders cover the heads nonsite runs: the anchor-free ultralytics head
`(4 + nc, N)` (YOLOv8/YOLO11), end-to-end heads `(N, 6)` that already ran NMS (YOLO26,
`nms=True` exports), and anchor-grid heads such as Yolo-FastestV2's. Then class-aware
non-maximum suppression and the map back through the letterbox.
"""

from __future__ import annotations

import numpy as np

from vision._jit import EXACT, njit
from vision.geometry import _as_boxes, _iou_pair
from vision.preprocess import LetterboxGeometry
from vision.types import Detections

# --- ultralytics anchor-free head -------------------------------------------------------


@njit(**EXACT)
def _decode_yolo_kernel(pred: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = pred.shape[1]
    nc = pred.shape[0] - 4
    best = pred[4].copy()
    arg = np.zeros(n, np.int32)
    # four class rows per pass: a quarter of the reads and writes of the running best and argmax
    c = 1
    while c + 3 < nc:
        r0, r1, r2, r3 = pred[4 + c], pred[5 + c], pred[6 + c], pred[7 + c]
        for i in range(n):
            v, a = best[i], arg[i]
            if r0[i] > v:
                v, a = r0[i], c
            if r1[i] > v:
                v, a = r1[i], c + 1
            if r2[i] > v:
                v, a = r2[i], c + 2
            if r3[i] > v:
                v, a = r3[i], c + 3
            best[i], arg[i] = v, a
        c += 4
    for rest in range(c, nc):
        row = pred[4 + rest]
        for i in range(n):
            if row[i] > best[i]:
                best[i], arg[i] = row[i], rest
    count = 0
    for i in range(n):
        if best[i] > conf:
            count += 1
    xyxy = np.empty((count, 4), np.float32)
    score = np.empty(count, np.float32)
    cls = np.empty(count, np.int32)
    k = 0
    for i in range(n):
        if best[i] > conf:
            hw, hh = pred[2, i] / 2, pred[3, i] / 2
            xyxy[k, 0] = pred[0, i] - hw
            xyxy[k, 1] = pred[1, i] - hh
            xyxy[k, 2] = pred[0, i] + hw
            xyxy[k, 3] = pred[1, i] + hh
            score[k] = best[i]
            cls[k] = arg[i]
            k += 1
    return xyxy, score, cls


def decode_yolo(pred: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates from one image's ultralytics head output `(4 + nc, N)`, xywh then class scores.

    Keeps anchors whose best class score is above `conf` (strictly, as ultralytics does)
    and returns `(xyxy, score, class_id)` in model-input pixels, best class only.
    """
    if pred.ndim != 2 or pred.shape[0] < 5:
        raise ValueError(f"pred must have shape (4 + nc, N) with nc >= 1, but got shape {pred.shape}")
    _check_threshold("conf", conf)
    return _decode_yolo_kernel(np.ascontiguousarray(pred, dtype=np.float32), float(conf))


def decode_end2end(pred: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of an end-to-end head `(N, 6)`: x1, y1, x2, y2, score, class; NMS already done."""
    if pred.ndim != 2 or pred.shape[1] != 6:
        raise ValueError(f"pred must have shape (N, 6), but got shape {pred.shape}")
    _check_threshold("conf", conf)
    keep = pred[:, 4] > conf
    rows = pred[keep]
    return (
        np.ascontiguousarray(rows[:, :4], dtype=np.float32),
        rows[:, 4].astype(np.float32),
        rows[:, 5].astype(np.int32),
    )


# --- anchor-grid head (Yolo-FastestV2) -------------------------------------------------


@njit(**EXACT)
def _decode_anchor_grid_kernel(
    pred: np.ndarray, strides: np.ndarray, anchors: np.ndarray, input_h: int, input_w: int, conf: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    na = anchors.shape[1]
    nc = pred.shape[1] - 5 * na
    cap = pred.shape[0] * na
    xyxy = np.empty((cap, 4), np.float32)
    score = np.empty(cap, np.float32)
    cls = np.empty(cap, np.int32)
    k = 0
    row = 0
    for s in range(strides.shape[0]):
        stride = strides[s]
        gh, gw = input_h // stride, input_w // stride
        for gy in range(gh):
            for gx in range(gw):
                best, arg = pred[row, 5 * na], 0
                for c in range(1, nc):
                    v = pred[row, 5 * na + c]
                    if v > best:
                        best, arg = v, c
                for a in range(na):
                    sc = pred[row, 4 * na + a] * best
                    if sc > conf:
                        cx = (pred[row, 4 * a] * 2.0 - 0.5 + gx) * stride
                        cy = (pred[row, 4 * a + 1] * 2.0 - 0.5 + gy) * stride
                        w = (pred[row, 4 * a + 2] * 2.0) ** 2 * anchors[s, a, 0]
                        h = (pred[row, 4 * a + 3] * 2.0) ** 2 * anchors[s, a, 1]
                        xyxy[k, 0] = cx - w / 2
                        xyxy[k, 1] = cy - h / 2
                        xyxy[k, 2] = cx + w / 2
                        xyxy[k, 3] = cy + h / 2
                        score[k] = sc
                        cls[k] = arg
                        k += 1
                row += 1
    return xyxy[:k].copy(), score[:k].copy(), cls[:k].copy()


def decode_anchor_grid(
    pred: np.ndarray,
    *,
    strides: np.ndarray,
    anchors: np.ndarray,
    input_hw: tuple[int, int],
    conf: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates from a YOLOv5-style anchor-grid head flattened over grid cells.

    `pred` is `(cells, 5 * na + nc)`: per cell, `na` boxes (sigmoided x, y, w, h), `na`
    objectness scores, then `nc` class scores shared by the cell's anchors. Cells run
    over each stride's grid in row-major order. Score is objectness × best class score.
    """
    strides = np.asarray(strides, dtype=np.int64)
    anchors = np.asarray(anchors, dtype=np.float32)
    if anchors.ndim != 3 or anchors.shape[0] != strides.shape[0] or anchors.shape[2] != 2:
        raise ValueError(f"anchors must have shape ({strides.shape[0]}, na, 2), but got shape {anchors.shape}")
    cells = sum((input_hw[0] // s) * (input_hw[1] // s) for s in strides.tolist())
    na = anchors.shape[1]
    if pred.ndim != 2 or pred.shape[0] != cells or pred.shape[1] <= 5 * na:
        raise ValueError(
            f"pred must have shape ({cells}, {5 * na} + nc) for input {input_hw} and strides "
            f"{strides.tolist()}, but got shape {pred.shape}"
        )
    _check_threshold("conf", conf)
    return _decode_anchor_grid_kernel(
        np.ascontiguousarray(pred, dtype=np.float32), strides, anchors, input_hw[0], input_hw[1], float(conf)
    )


# --- non-maximum suppression -----------------------------------------------------------


@njit(**EXACT)
def _nms_kernel(xyxy: np.ndarray, score: np.ndarray, class_id: np.ndarray, iou: float, max_det: int) -> np.ndarray:
    n = score.shape[0]
    order = np.argsort(-score, kind="mergesort")
    # bucket the score order by class (a stable counting sort) so boxes meet only their own class
    lo = class_id.min() if n else 0
    n_buckets = (class_id.max() - lo + 1) if n else 0
    start = np.zeros(n_buckets + 1, np.int64)
    for i in range(n):
        start[class_id[i] - lo + 1] += 1
    for b in range(n_buckets):
        start[b + 1] += start[b]
    fill = start[:-1].copy()
    bucketed = np.empty(n, np.int64)
    for i in order:
        b = class_id[i] - lo
        bucketed[fill[b]] = i
        fill[b] += 1
    kept = np.zeros(n, np.bool_)
    suppressed = np.zeros(n, np.bool_)
    for b in range(n_buckets):
        for p in range(start[b], start[b + 1]):
            i = bucketed[p]
            if suppressed[i]:
                continue
            kept[i] = True
            for q in range(p + 1, start[b + 1]):
                j = bucketed[q]
                if not suppressed[j] and _iou_pair(xyxy, i, xyxy, j) > iou:
                    suppressed[j] = True
    out = np.empty(min(n, max_det), np.int64)
    k = 0
    for i in order:
        if k == out.shape[0]:
            break
        if kept[i]:
            out[k] = i
            k += 1
    return out[:k]


def nms(xyxy: np.ndarray, score: np.ndarray, class_id: np.ndarray, *, iou: float, max_det: int = 300) -> np.ndarray:
    """Class-aware greedy NMS: indices of the kept boxes, best score first, at most `max_det`.

    A box is suppressed by a higher-scoring box of the same class whose IoU with it
    exceeds `iou` (torchvision's `batched_nms` rule). Equal scores keep input order.
    """
    boxes = _as_boxes("xyxy", xyxy)
    n = boxes.shape[0]
    score = np.asarray(score)
    class_id = np.asarray(class_id)
    if score.shape != (n,) or class_id.shape != (n,):
        raise ValueError(f"score and class_id must have shape ({n},), but got {score.shape} and {class_id.shape}")
    _check_threshold("iou", iou)
    if max_det < 1:
        raise ValueError(f"max_det must be >= 1, but got {max_det}")
    return _nms_kernel(
        boxes, np.ascontiguousarray(score, np.float32), np.ascontiguousarray(class_id, np.int32), float(iou), max_det
    )


# --- back to the source image ----------------------------------------------------------


@njit(**EXACT)
def _to_source_kernel(
    xyxy: np.ndarray, left: float, top: float, sx: float, sy: float, w: float, h: float, out: np.ndarray
) -> None:
    for i in range(xyxy.shape[0]):
        out[i, 0] = min(max((xyxy[i, 0] - left) / sx, 0.0), w)
        out[i, 1] = min(max((xyxy[i, 1] - top) / sy, 0.0), h)
        out[i, 2] = min(max((xyxy[i, 2] - left) / sx, 0.0), w)
        out[i, 3] = min(max((xyxy[i, 3] - top) / sy, 0.0), h)


def boxes_to_source(xyxy: np.ndarray, geometry: LetterboxGeometry) -> np.ndarray:
    """Map boxes from model-input pixels back to source pixels, clipped to the image."""
    boxes = np.ascontiguousarray(xyxy, dtype=np.float32)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"xyxy must have shape (_, 4), but got shape {boxes.shape}")
    return _map_to_source(boxes, geometry)


def _map_to_source(boxes: np.ndarray, geometry: LetterboxGeometry) -> np.ndarray:
    out = np.empty_like(boxes)
    g = geometry
    _to_source_kernel(boxes, float(g.left), float(g.top), g.scale_x, g.scale_y, float(g.src_w), float(g.src_h), out)
    return out


def finish(
    xyxy: np.ndarray,
    score: np.ndarray,
    class_id: np.ndarray,
    geometry: LetterboxGeometry,
    *,
    iou: float | None,
    max_det: int,
) -> Detections:
    """NMS (unless `iou` is None: the head already did it), then map to source pixels.

    For the output of this module's decoders (contiguous float32 boxes, float32 scores,
    int32 classes), so it skips the checks the public `nms` makes.
    """
    if iou is not None:
        keep = _nms_kernel(xyxy, score, class_id, iou, max_det)
    else:
        keep = np.argsort(-score, kind="stable")[:max_det]
    return Detections(xyxy=_map_to_source(xyxy[keep], geometry), score=score[keep], class_id=class_id[keep])


def _check_threshold(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], but got {value}")

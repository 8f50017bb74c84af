"""Slow, obviously-correct references that the fast kernels are tested against."""

from __future__ import annotations

import cv2
import numpy as np


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = float(ix) * float(iy)
    union = float((a[2] - a[0]) * (a[3] - a[1])) + float((b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0


def nms(xyxy: np.ndarray, score: np.ndarray, class_id: np.ndarray, iou_threshold: float, max_det: int) -> list[int]:
    """Greedy NMS over the whole set in score order (stable), comparing only boxes of one class."""
    order = sorted(range(len(score)), key=lambda i: -score[i])
    kept: list[int] = []
    for i in order:
        if all(class_id[k] != class_id[i] or iou(xyxy[k], xyxy[i]) <= iou_threshold for k in kept):
            kept.append(i)
    return kept[:max_det]


def letterbox(image: np.ndarray, new_hw: tuple[int, int], rgb: bool = True) -> np.ndarray:
    """OpenCV's resize and border, then CHW float in [0, 1] (ultralytics' geometry)."""
    h, w = image.shape[:2]
    r = min(new_hw[0] / h, new_hw[1] / w)
    nw, nh = max(round(w * r), 1), max(round(h * r), 1)
    top, left = round((new_hw[0] - nh) / 2 - 0.1), round((new_hw[1] - nw) / 2 - 0.1)
    resized = image if (nw, nh) == (w, h) else cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    padded = cv2.copyMakeBorder(
        resized, top, new_hw[0] - nh - top, left, new_hw[1] - nw - left, cv2.BORDER_CONSTANT, value=(114, 114, 114)
    )
    if rgb:
        padded = padded[..., ::-1]
    return padded.transpose(2, 0, 1).astype(np.float32) / 255.0


def decode_yolo(pred: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = pred[4:]
    cls = scores.argmax(0)
    best = scores.max(0)
    keep = best > conf
    cx, cy, w, h = pred[0, keep], pred[1, keep], pred[2, keep], pred[3, keep]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1).astype(np.float32)
    return xyxy, best[keep].astype(np.float32), cls[keep].astype(np.int32)


def decode_anchor_grid(
    pred: np.ndarray, strides: list[int], anchors: np.ndarray, input_hw: tuple[int, int], conf: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """hpc203's Yolo-FastestV2 decode, written with loops."""
    na = anchors.shape[1]
    boxes, scores, classes = [], [], []
    row = 0
    for s, stride in enumerate(strides):
        gh, gw = input_hw[0] // stride, input_hw[1] // stride
        for gy in range(gh):
            for gx in range(gw):
                cls_scores = pred[row, 5 * na :]
                c = int(np.argmax(cls_scores))
                for a in range(na):
                    score = pred[row, 4 * na + a] * cls_scores[c]
                    if score > conf:
                        cx = (pred[row, 4 * a] * 2 - 0.5 + gx) * stride
                        cy = (pred[row, 4 * a + 1] * 2 - 0.5 + gy) * stride
                        bw = (pred[row, 4 * a + 2] * 2) ** 2 * anchors[s, a, 0]
                        bh = (pred[row, 4 * a + 3] * 2) ** 2 * anchors[s, a, 1]
                        boxes.append([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
                        scores.append(score)
                        classes.append(c)
                row += 1
    return (
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(scores, np.float32),
        np.array(classes, np.int32),
    )


def best_partial_assignment(cost: np.ndarray, max_cost: float) -> float:
    """Least sum of (cost - max_cost) over every matching of pairs with cost <= max_cost, by enumeration."""
    n, m = cost.shape

    def best(row: int, used: frozenset[int]) -> float:
        if row == n:
            return 0.0
        options = [best(row + 1, used)]  # the row stays unmatched
        for j in range(m):
            if j not in used and cost[row, j] <= max_cost:
                options.append(float(cost[row, j]) - max_cost + best(row + 1, used | {j}))
        return min(options)

    return best(0, frozenset())


def _kalman_matrices(h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ByteTrack's constant-velocity model on (cx, cy, a, h): F, H, process noise Q and measurement noise R."""
    motion = np.eye(8)
    motion[:4, 4:] = np.eye(4)
    observe = np.eye(4, 8)
    q = np.diag(np.square([h / 20, h / 20, 1e-2, h / 20, h / 160, h / 160, 1e-5, h / 160]))
    r = np.diag(np.square([h / 20, h / 20, 1e-1, h / 20]))
    return motion, observe, q, r


def kalman_predict(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x' = F x, P' = F P F^T + Q, with Q from the height before the step."""
    motion, _, q, _ = _kalman_matrices(float(mean[3]))
    return motion @ mean, motion @ cov @ motion.T + q


def kalman_update(mean: np.ndarray, cov: np.ndarray, xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The textbook correction with an explicit inverse: K = P H^T S^-1, x += K (z - H x), P -= K S K^T."""
    _, observe, _, r = _kalman_matrices(float(mean[3]))
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    z = np.array([(x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / (y1 - y0), y1 - y0])
    s = observe @ cov @ observe.T + r
    gain = cov @ observe.T @ np.linalg.inv(s)
    return mean + gain @ (z - observe @ mean), cov - gain @ s @ gain.T

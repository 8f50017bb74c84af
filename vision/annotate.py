"""Drawing detections onto a copy of a frame for people to look at."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from vision.types import Detections

# a fixed palette so a class keeps its colour across frames and runs (BGR)
_PALETTE = np.array(
    [
        (56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
        (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0),
        (147, 69, 52), (255, 115, 100), (236, 24, 0), (255, 56, 132), (133, 0, 82), (255, 56, 203),
    ],
    np.uint8,
)  # fmt: skip


def class_colour(class_id: int) -> tuple[int, int, int]:
    b, g, r = _PALETTE[class_id % len(_PALETTE)]
    return int(b), int(g), int(r)


def annotate(
    image: np.ndarray, detections: Detections, names: Sequence[str], *, caption: str | None = None
) -> np.ndarray:
    """A copy of `image` with each box, its class name and score (and track id) drawn on it."""
    out = np.array(image, copy=True)
    thickness = max(1, round(min(out.shape[:2]) / 360))
    scale = max(0.4, min(out.shape[:2]) / 900)
    for i in range(len(detections)):
        x1, y1, x2, y2 = (round(float(v)) for v in detections.xyxy[i])
        cid = int(detections.class_id[i])
        colour = class_colour(cid)
        name = names[cid] if 0 <= cid < len(names) else str(cid)
        label = f"{name} {detections.score[i]:.2f}"
        if detections.track_id is not None:
            label = f"#{detections.track_id[i]} {label}"
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness, cv2.LINE_AA)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y1 - 2 if y1 - th - base - 2 >= 0 else y1 + th + base + 2
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw + 2, ty + 1), colour, -1)
        cv2.putText(
            out, label, (x1 + 1, ty - base + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
        )
    if caption:
        cv2.putText(
            out, caption, (8, 8 + round(24 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA
        )
        cv2.putText(
            out, caption, (8, 8 + round(24 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
        )
    return out

"""Comparing two detectors' outputs on the same image, order aside."""

from __future__ import annotations

import numpy as np

from vision.types import Detections


def unmatched(got: Detections, expected: Detections, *, box_tol: float, score_tol: float) -> list[int]:
    """Indices of `expected` detections with no detection in `got` of the same class whose
    corners lie within `box_tol` pixels and whose score lies within `score_tol`.

    Order is not compared: boxes whose scores tie to float precision may come in either order.
    """
    free = np.ones(len(got), bool)
    missing = []
    for i in range(len(expected)):
        close = (
            free
            & (got.class_id == expected.class_id[i])
            & (np.abs(got.xyxy - expected.xyxy[i]).max(axis=1, initial=0.0) <= box_tol)
            & (np.abs(got.score - expected.score[i]) <= score_tol)
        )
        if close.any():
            free[np.argmax(close)] = False
        else:
            missing.append(i)
    return missing

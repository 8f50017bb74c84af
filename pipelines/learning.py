"""Officers' review decisions as training data: the bridge from the case database and the
evidence store to `datasets.build`.

A reviewed keyframe is read from the sealed package it belongs to (the lossless PNG, checked
against its hash by the store); its boxes are the `detections` rows of that package and
frame, with officers' corrections applied; the decision is the case's latest confirm or
reject step, with its reason code.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Literal

import cv2
import numpy as np
from sqlalchemy import select

from cases.db import Database
from cases.models import Case, Detection, Transition
from datasets.build import ReviewedBox, ReviewedFrame
from datasets.errors import DatasetError
from evidence.store import ContentStore

logger = logging.getLogger(__name__)

DECISIONS = ("confirm", "reject")
#: a detection is drawn on a keyframe at most this many frames away (the engine coasted over it)
MAX_FRAME_GAP = 2


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _box(row: Detection) -> ReviewedBox:
    label = row.corrected_label or row.label
    if row.corrected_box:
        x1, y1, x2, y2 = (float(v) for v in row.corrected_box)
    else:
        x1, y1, x2, y2 = row.x1, row.y1, row.x2, row.y2
    return ReviewedBox(label, (x1, y1, x2, y2), corrected=bool(row.corrected_label or row.corrected_box))


class _Keyframe:
    """Loads one keyframe from the store when the dataset builder asks for its pixels."""

    def __init__(self, store: ContentStore, package_id: str, digest: str, frame: int) -> None:
        self.store, self.package_id, self.digest, self.frame = store, package_id, digest, frame

    def __call__(self) -> np.ndarray:
        try:
            data = self.store.get(self.digest)
        except Exception as e:
            raise DatasetError(f"cannot read keyframe {self.frame} of package {self.package_id[:12]}: {e}") from e
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise DatasetError(f"keyframe {self.frame} of package {self.package_id[:12]} is not a readable image")
        return image


def _keyframes(store: ContentStore, package_id: str) -> dict[int, str]:
    """Frame index -> digest of the package's lossless keyframes."""
    manifest = json.loads(store.get(package_id))
    out = {}
    for name, entry in manifest["files"].items():
        if name.startswith("keyframe-") and name.endswith(".png"):
            out[int(name[len("keyframe-") : -len(".png")])] = str(entry["sha256"])
    return out


def review_decisions(
    db: Database, store: ContentStore, *, max_frame_gap: int = MAX_FRAME_GAP
) -> Iterator[ReviewedFrame]:
    """Every reviewed keyframe of every decided case, oldest case first.

    A detection recorded at a frame the engine inferred on but that is not itself a keyframe
    (the engine coasted over the keyframe) is drawn on the nearest keyframe within
    `max_frame_gap` frames; farther ones are left out and counted in the log.
    """
    with db.session() as s:
        decisions: dict[int, tuple[str, str | None]] = {}
        for case_id, action, reason_code in s.execute(
            select(Transition.case_id, Transition.action, Transition.reason_code)
            .where(Transition.action.in_(DECISIONS))
            .order_by(Transition.case_id, Transition.seq)
        ):
            decisions[case_id] = (action, reason_code)  # the latest decision wins (a re-review)
        numbers = dict(s.execute(select(Case.id, Case.number)).all())
        frames: dict[tuple[int, str, int], list[Detection]] = defaultdict(list)
        for row in s.scalars(select(Detection).where(Detection.case_id.in_(list(decisions))).order_by(Detection.id)):
            frames[(row.case_id, row.package_id, row.frame)].append(row)
            s.expunge(row)
    missing: Counter[str] = Counter()
    keyframes: dict[str, dict[int, str]] = {}
    for (case_id, package_id, frame), rows in sorted(frames.items()):
        action, reason_code = decisions[case_id]
        if package_id not in store:
            missing["package not in this evidence store"] += 1
            continue
        if package_id not in keyframes:
            keyframes[package_id] = _keyframes(store, package_id)
        nearest = min(keyframes[package_id], key=lambda k: abs(k - frame), default=None)
        if nearest is None or abs(nearest - frame) > max_frame_gap:
            missing[f"no keyframe within {max_frame_gap} frames"] += 1
            continue
        outcome: Literal["confirmed", "rejected"] = "confirmed" if action == "confirm" else "rejected"
        yield ReviewedFrame(
            key=f"{package_id[:16]}-{nearest:06d}",
            load=_Keyframe(store, package_id, keyframes[package_id][nearest], nearest),
            camera_id=rows[0].camera_id or f"case-{case_id}",
            at=_aware(rows[0].at),
            outcome=outcome,
            boxes=tuple(_box(r) for r in rows),
            reason_code=reason_code,
            kind=rows[0].kind,
            case_number=numbers.get(case_id, ""),
        )
    for why, count in missing.items():
        logger.warning("%d reviewed detection frame(s) left out: %s", count, why)

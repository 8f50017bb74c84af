"""Shadow runs: a candidate model beside the deployed one on live cameras, filing nothing.

Each camera runs the candidate through an engine of its own (same zones, rules, tracker
and motion gate) on the frames the deployed engine sees. Where both looked, their tracked
boxes are matched class by class (IoU ≥ 0.5); boxes only one model found are the
disagreements, counted per class with the latest few kept as examples. Violations the
candidate's rules would have raised are counted by kind beside the deployed engine's, and
dropped: nothing is staged, sealed or filed. Each camera's report is a JSON file that the
registry sums up (`nonsite models shadow --report`, `GET /api/models/shadow`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from vision.camera import CameraConfig
from vision.detectors import Detector
from vision.engine import Engine, FrameResult
from vision.types import Detections, Frame

logger = logging.getLogger(__name__)

MATCH_IOU = 0.5
EXAMPLES_KEPT = 20


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def match_boxes(
    current: Detections, current_names: tuple[str, ...], candidate: Detections, candidate_names: tuple[str, ...]
) -> tuple[list[int], list[int], int]:
    """Indices of current boxes the candidate missed, candidate boxes the current model did not
    report, and the number matched (same class name, IoU ≥ 0.5, greedy by IoU)."""
    names_a = [current_names[c] for c in current.class_id]
    names_b = [candidate_names[c] for c in candidate.class_id]
    if len(current) == 0 or len(candidate) == 0:
        return list(range(len(current))), list(range(len(candidate))), 0
    iou = _iou(current.xyxy.astype(float), candidate.xyxy.astype(float))
    same = np.array([[a == b for b in names_b] for a in names_a])
    iou = np.where(same, iou, 0.0)
    used_a, used_b = set(), set()
    for flat in np.argsort(-iou, axis=None):
        i, j = divmod(int(flat), iou.shape[1])
        if iou[i, j] < MATCH_IOU:
            break
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
    return (
        [i for i in range(len(current)) if i not in used_a],
        [j for j in range(len(candidate)) if j not in used_b],
        len(used_a),
    )


@dataclass
class ShadowTally:
    frames: int = 0
    current_boxes: int = 0
    candidate_boxes: int = 0
    matched: int = 0
    only_current: Counter[str] = field(default_factory=Counter)
    only_candidate: Counter[str] = field(default_factory=Counter)
    current_events: Counter[str] = field(default_factory=Counter)
    candidate_events: Counter[str] = field(default_factory=Counter)
    examples: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=EXAMPLES_KEPT))

    def to_json(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "current_boxes": self.current_boxes,
            "candidate_boxes": self.candidate_boxes,
            "matched": self.matched,
            "only_current": sum(self.only_current.values()),
            "only_candidate": sum(self.only_candidate.values()),
            "only_current_by_class": dict(sorted(self.only_current.items())),
            "only_candidate_by_class": dict(sorted(self.only_candidate.items())),
            "events": {"current": dict(sorted(self.current_events.items())),
                       "candidate": dict(sorted(self.candidate_events.items()))},
            "examples": list(self.examples),
        }  # fmt: skip


class ShadowRun:
    """One camera's shadow engine and what it saw differently."""

    def __init__(self, camera: CameraConfig, candidate: Detector) -> None:
        self.camera = camera
        self.candidate = candidate
        self.engine = Engine(camera, candidate, fps=camera.fps)
        self.tally = ShadowTally()
        self._lock = threading.Lock()
        self.started_at: datetime | None = None

    def step(self, frame: Frame, deployed: FrameResult, deployed_names: tuple[str, ...]) -> None:
        """Run the candidate on `frame` and compare it with what the deployed engine found there."""
        result = self.engine.process(frame)
        with self._lock:
            self.started_at = self.started_at or frame.captured_at
            for violation in deployed.violations:
                if not violation.closed:
                    self.tally.current_events[str(violation.kind)] += 1
            for violation in result.violations:
                if not violation.closed:
                    self.tally.candidate_events[str(violation.kind)] += 1
            if not (deployed.inferred and result.inferred):
                return
            self.tally.frames += 1
            self.tally.current_boxes += len(deployed.detections)
            self.tally.candidate_boxes += len(result.detections)
            missed, extra, matched = match_boxes(
                deployed.detections, deployed_names, result.detections, self.candidate.names
            )
            self.tally.matched += matched
            for model, det, names, indices, counter in (
                ("current", deployed.detections, deployed_names, missed, self.tally.only_current),
                ("candidate", result.detections, self.candidate.names, extra, self.tally.only_candidate),
            ):
                for i in indices:
                    name = names[int(det.class_id[i])]
                    counter[name] += 1
                    self.tally.examples.append(
                        {"at": frame.captured_at.isoformat(), "frame": frame.index, "only": model, "class": name,
                         "box": [round(float(v), 1) for v in det.xyxy[i]], "score": round(float(det.score[i]), 3)}
                    )  # fmt: skip

    def report(self, candidate_sha256: str) -> dict[str, Any]:
        with self._lock:
            return {
                "camera_id": self.camera.id,
                "candidate_sha256": candidate_sha256,
                "since": self.started_at.isoformat() if self.started_at else None,
                **self.tally.to_json(),
            }


def write_report(folder: Path, report: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{report['camera_id']}.json"
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, target)

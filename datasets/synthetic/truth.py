"""Ground truth of a synthetic scene: objects per frame and violation events.

Boxes are xyxy in pixel-edge coordinates (floats): a box (x0, y0, x1, y1) covers the
pixels x0 <= x < x1, y0 <= y < y1, so 0 <= x0 < x1 <= width always holds. A box is the
extent of the pixels the object itself paints inside the frame (for smoke: where its
opacity is above `SMOKE_ALPHA_THRESHOLD`), whether or not something nearer hides part of
it; `visible_fraction` says how much is left unhidden.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vision.types import Detections

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ObjectTruth:
    """One object in one frame."""

    object_id: int  # stable over the scene: a track id
    class_name: str
    class_id: int  # index in SYNTHETIC_CLASSES
    xyxy: tuple[float, float, float, float]
    visible_fraction: float  # share of its in-frame pixels not hidden by nearer objects
    in_frame_fraction: float  # share of its pixels inside the frame

    def to_json(self) -> dict[str, Any]:
        return {
            "object_id": self.object_id,
            "class_name": self.class_name,
            "class_id": self.class_id,
            "xyxy": list(self.xyxy),
            "visible_fraction": round(self.visible_fraction, 4),
            "in_frame_fraction": round(self.in_frame_fraction, 4),
        }


@dataclass(frozen=True, slots=True)
class FrameTruth:
    """Every labelled object in one frame, ordered by object id."""

    index: int
    objects: tuple[ObjectTruth, ...] = ()

    def to_detections(self) -> Detections:
        """The truth as `vision.Detections` (score 1, track id = object id), for evaluation."""
        n = len(self.objects)
        return Detections(
            xyxy=np.array([o.xyxy for o in self.objects], np.float32).reshape(n, 4),
            score=np.ones(n, np.float32),
            class_id=np.array([o.class_id for o in self.objects], np.int32),
            track_id=np.array([o.object_id for o in self.objects], np.int64),
        )

    def by_id(self, object_id: int) -> ObjectTruth | None:
        return next((o for o in self.objects if o.object_id == object_id), None)

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "objects": [o.to_json() for o in self.objects]}


@dataclass(frozen=True, slots=True)
class EventTruth:
    """One violation event: which objects, from which frame to which (inclusive), where."""

    event_id: int
    kind: str  # fume | occupation | construction
    object_ids: tuple[int, ...]
    start_frame: int
    end_frame: int  # inclusive
    region: tuple[tuple[float, float], ...]  # convex polygon around every box of the event
    zone: str  # scene zone it happened in: facade, sidewalk, road or sky
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "kind": self.kind,
            "object_ids": list(self.object_ids),
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "region": [list(p) for p in self.region],
            "zone": self.zone,
            "attributes": dict(self.attributes),
        }


@dataclass(frozen=True, slots=True)
class SceneTruth:
    """The whole truth of a rendered scene, as written to `<stem>.truth.json`."""

    spec_json: dict[str, Any]
    width: int
    height: int
    fps: float
    classes: tuple[str, ...]
    objects: dict[int, str]  # object id -> class name, for every actor with truth
    zones: dict[str, list[list[float]]]
    frames: tuple[FrameTruth, ...]
    events: tuple[EventTruth, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": TRUTH_FORMAT,
            "spec": self.spec_json,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "frame_count": len(self.frames),
            "classes": list(self.classes),
            "objects": [{"object_id": k, "class_name": v} for k, v in sorted(self.objects.items())],
            "zones": self.zones,
            "frames": [f.to_json() for f in self.frames],
            "events": [e.to_json() for e in self.events],
        }


TRUTH_FORMAT = "nonsite.synthetic.truth/1"


def convex_region(boxes: Sequence[tuple[float, float, float, float]]) -> tuple[tuple[float, float], ...]:
    """The convex hull of every corner of `boxes`, counter-clockwise from the lowest-leftmost point."""
    pts = sorted({(x, y) for x0, y0, x1, y1 in boxes for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))})
    if len(pts) <= 2:
        return tuple(pts)

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return tuple(lower[:-1] + upper[:-1])

"""The detection core's data types: `Frame`, `GeoTag` and `Detections`.

They are immutable: arrays are held through read-only views, so a stage that wants to
change something returns a new object instead of editing the one it was given. The
caller's own arrays are never made read-only behind its back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt


def _frozen_view(array: npt.ArrayLike, dtype: npt.DTypeLike) -> np.ndarray:
    """A read-only view of `array` as `dtype`, copying only when the dtype differs."""
    view = np.asarray(array, dtype=dtype).view()
    view.flags.writeable = False
    return view


class ClockSource(StrEnum):
    """Where a frame's capture time came from; evidence records it beside the time."""

    CAMERA = "camera"  # the device's own clock (RTSP/ONVIF timestamps, EXIF)
    NTP = "ntp"  # the host clock, disciplined by NTP
    SYSTEM = "system"  # the host clock, discipline unknown
    FILE = "file"  # derived from a file: its modification time plus the stream offset


@dataclass(frozen=True, slots=True)
class GeoTag:
    """Where a drone (or a geolocated camera) was when it took a frame."""

    lat: float
    lon: float
    altitude_m: float | None = None
    yaw_deg: float | None = None
    pitch_deg: float | None = None

    def __post_init__(self) -> None:
        if not -90.0 <= self.lat <= 90.0:
            raise ValueError(f"lat must lie in [-90, 90], but got {self.lat}")
        if not -180.0 <= self.lon <= 180.0:
            raise ValueError(f"lon must lie in [-180, 180], but got {self.lon}")


@dataclass(frozen=True, slots=True)
class Frame:
    """One image from a source: H×W×3 uint8 BGR plus where and when it came from."""

    image: np.ndarray
    source_id: str
    index: int
    captured_at: datetime
    clock_source: ClockSource = ClockSource.SYSTEM
    geo: GeoTag | None = None

    def __post_init__(self) -> None:
        image = self.image
        if not isinstance(image, np.ndarray):
            raise TypeError(f"image must be a np.ndarray, but got {type(image).__name__}")
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must have shape (H, W, 3), but got shape {image.shape}")
        if image.dtype != np.uint8:
            raise ValueError(f"image must be uint8 BGR, but got dtype {image.dtype}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"image must not be empty, but got shape {image.shape}")
        if not self.source_id:
            raise ValueError("source_id must be a non-empty string")
        if self.index < 0:
            raise ValueError(f"index must be >= 0, but got {self.index}")
        offset = self.captured_at.utcoffset()
        if offset is None:
            raise ValueError(f"captured_at must be timezone-aware, but got naive {self.captured_at.isoformat()}")
        if offset != timedelta(0):
            raise ValueError(f"captured_at must be in UTC, but got offset {offset}")
        object.__setattr__(self, "image", _frozen_view(image, np.uint8))
        object.__setattr__(self, "clock_source", ClockSource(self.clock_source))

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass(frozen=True, slots=True, eq=False)
class Detections:
    """Detections in one image as a struct of aligned arrays (supervision's layout).

    `xyxy` is (N, 4) float32 in source pixels, `score` (N,) float32, `class_id` (N,)
    int32 and the optional `track_id` (N,) int64. Slicing with an int, a slice, an index
    array or a boolean mask returns new `Detections`.
    """

    xyxy: np.ndarray
    score: np.ndarray
    class_id: np.ndarray
    track_id: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must be a 2D array with shape (_, 4), but got shape {xyxy.shape}")
        if xyxy.dtype.kind == "f" and not np.all(np.isfinite(xyxy)):
            raise ValueError("xyxy must be finite, but holds NaN or inf")
        n = xyxy.shape[0]
        _check_vector("score", self.score, n)
        _check_vector("class_id", self.class_id, n)
        if self.track_id is not None:
            _check_vector("track_id", self.track_id, n)
        object.__setattr__(self, "xyxy", _frozen_view(xyxy, np.float32))
        object.__setattr__(self, "score", _frozen_view(self.score, np.float32))
        object.__setattr__(self, "class_id", _frozen_view(self.class_id, np.int32))
        if self.track_id is not None:
            object.__setattr__(self, "track_id", _frozen_view(self.track_id, np.int64))

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            xyxy=np.empty((0, 4), np.float32),
            score=np.empty(0, np.float32),
            class_id=np.empty(0, np.int32),
        )

    @classmethod
    def merge(cls, parts: Iterable[Detections]) -> Detections:
        """Concatenate detections; track ids survive only if every part has them."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        with_tracks = all(p.track_id is not None for p in parts)
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            score=np.concatenate([p.score for p in parts]),
            class_id=np.concatenate([p.class_id for p in parts]),
            track_id=np.concatenate([p.track_id for p in parts if p.track_id is not None]) if with_tracks else None,
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> Detections:
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            xyxy=self.xyxy[index],
            score=self.score[index],
            class_id=self.class_id[index],
            track_id=None if self.track_id is None else self.track_id[index],
        )

    def with_track_ids(self, track_id: npt.ArrayLike) -> Detections:
        """A copy carrying `track_id`; the receiver is left as it was."""
        return Detections(self.xyxy, self.score, self.class_id, np.asarray(track_id))

    @property
    def area(self) -> np.ndarray:
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0.0, None)
        return wh[:, 0] * wh[:, 1]

    def to_records(self, names: Sequence[str] | dict[int, str] | None = None) -> list[dict[str, Any]]:
        """Plain dicts for JSON: box rounded to 0.1 px, score to 1e-4, class name when known."""
        records = []
        for i in range(len(self)):
            cid = int(self.class_id[i])
            record: dict[str, Any] = {
                "xyxy": [round(float(v), 1) for v in self.xyxy[i]],
                "score": round(float(self.score[i]), 4),
                "class_id": cid,
            }
            if names is not None:
                record["class_name"] = _name_of(names, cid)
            if self.track_id is not None:
                record["track_id"] = int(self.track_id[i])
            records.append(record)
        return records

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Detections):
            return NotImplemented
        tracks_equal = (self.track_id is None and other.track_id is None) or (
            self.track_id is not None and other.track_id is not None and np.array_equal(self.track_id, other.track_id)
        )
        return (
            np.array_equal(self.xyxy, other.xyxy)
            and np.array_equal(self.score, other.score)
            and np.array_equal(self.class_id, other.class_id)
            and tracks_equal
        )

    __hash__ = None  # type: ignore[assignment]


def _name_of(names: Sequence[str] | dict[int, str], class_id: int) -> str:
    if isinstance(names, dict):
        return names.get(class_id, str(class_id))
    return names[class_id] if 0 <= class_id < len(names) else str(class_id)


def _check_vector(name: str, value: Any, n: int) -> None:
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must be a 1D array with shape ({n},) to match xyxy, but got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, but holds NaN or inf")


class ViolationKind(StrEnum):
    """What a violation is, as cases and evidence name it."""

    FUME = "fume"  # a plume from an exhaust outlet in a fume_watch zone
    OCCUPATION = "occupation"  # objects standing in a no_occupation zone past the dwell time
    CONSTRUCTION = "construction"  # equipment, materials or structural change in a construction_watch zone


@dataclass(frozen=True, slots=True)
class BoxSample:
    """Where a violation's object was in one frame."""

    frame_index: int
    at: datetime
    xyxy: tuple[float, float, float, float]
    score: float
    track_id: int | None = None


@dataclass(frozen=True, slots=True)
class Violation:
    """One violation found on one camera, ready to be sealed as evidence.

    `start_frame`/`end_frame` span the event itself; `confirmed_frame` is the frame at which
    the rule was sure (the time to detect runs from `start_frame` to it); `clip_span` adds the pre- and
    post-roll a clip should cover; `keyframes` are the frames that show it best. `model_id`
    and `rule` record what judged it: the model's sha256 and the rule's parameters in force.
    """

    kind: ViolationKind
    source_id: str
    zone: str
    started_at: datetime
    ended_at: datetime
    start_frame: int
    end_frame: int
    confirmed_frame: int
    track_ids: tuple[int, ...]
    boxes: tuple[BoxSample, ...]
    score: float
    keyframes: tuple[int, ...]
    clip_span: tuple[int, int]
    model_id: str
    rule: dict[str, Any]
    attributes: dict[str, Any] = field(default_factory=dict)
    closed: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ViolationKind(self.kind))
        if self.end_frame < self.start_frame:
            raise ValueError(f"end_frame must be >= start_frame ({self.start_frame}), but got {self.end_frame}")
        if not self.start_frame <= self.confirmed_frame:
            raise ValueError(f"confirmed_frame must be >= start_frame ({self.start_frame}), got {self.confirmed_frame}")
        if self.ended_at < self.started_at:
            raise ValueError(
                f"ended_at must not precede started_at ({self.started_at.isoformat()}), "
                f"but got {self.ended_at.isoformat()}"
            )
        if not self.clip_span[0] <= self.start_frame <= self.end_frame <= self.clip_span[1]:
            raise ValueError(
                f"clip_span must cover frames {self.start_frame}..{self.end_frame}, but got {self.clip_span}"
            )
        outside = [k for k in self.keyframes if not self.clip_span[0] <= k <= self.clip_span[1]]
        if outside:
            raise ValueError(f"keyframes must lie in clip_span {self.clip_span}, but {outside} do not")
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score must lie in [0, 1], but got {self.score}")

    @property
    def duration_s(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """The box around every sampled box of the event."""
        if not self.boxes:
            return (0.0, 0.0, 0.0, 0.0)
        xyxy = np.array([b.xyxy for b in self.boxes], np.float64)
        return (
            float(xyxy[:, 0].min()),
            float(xyxy[:, 1].min()),
            float(xyxy[:, 2].max()),
            float(xyxy[:, 3].max()),
        )

    def to_record(self) -> dict[str, Any]:
        """A plain dict for JSON lines (the event evaluation and the evidence issue read it)."""
        return {
            "kind": self.kind.value,
            "source": self.source_id,
            "zone": self.zone,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "confirmed_frame": self.confirmed_frame,
            "track_ids": list(self.track_ids),
            "bbox": [round(v, 1) for v in self.bbox],
            "score": round(self.score, 4),
            "keyframes": list(self.keyframes),
            "clip_span": list(self.clip_span),
            "model_id": self.model_id,
            "rule": self.rule,
            "attributes": self.attributes,
            "closed": self.closed,
            "boxes": [
                {"frame": b.frame_index, "xyxy": [round(v, 1) for v in b.xyxy], "score": round(b.score, 4)}
                for b in self.boxes
            ],
        }

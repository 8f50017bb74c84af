"""Zones: polygons in a camera's pixels that carry a rule, its classes, dwell and schedule.

A `ZoneConfig` is what a camera's YAML says about one zone (Frigate's zone settings plus
the rule nonsite enforces there). A `ZoneTracker` follows tracked detections through one
zone frame by frame: how many frames each track has been inside (inertia), since when
(dwell, which survives short gaps in tracking) and whether it currently counts for the
zone's rule. Rules read its `ZoneUpdate`s and close their events on `Departure`s.

`points_in_polygon` is the even-odd test behind it, a Numba kernel over many anchors.
"""

from __future__ import annotations

import logging
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from functools import lru_cache
from typing import Annotated

import numpy as np
import numpy.typing as npt
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from vision._jit import EXACT, njit
from vision.types import Detections

logger = logging.getLogger(__name__)

#: Largest pixel coordinate a zone may name (a 16K frame's width with room to spare).
MAX_COORD = 100_000.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(StrEnum):
    """What a zone enforces."""

    NO_OCCUPATION = "no_occupation"  # stalls, goods or vehicles occupying a sidewalk or lane
    FUME_WATCH = "fume_watch"  # cooking fumes, smoke plumes
    CONSTRUCTION_WATCH = "construction_watch"  # illegal construction, spoil heaps, machinery


class Anchor(StrEnum):
    """Which point of a detection's box decides whether it is inside a zone."""

    BOTTOM_CENTER = "bottom_center"  # where an object stands on the ground (Frigate's default)
    CENTER = "center"
    ANY_CORNER = "any_corner"  # any of the box's four corners: catches objects overhanging a zone


# --- geometry -------------------------------------------------------------------------


@njit(**EXACT)
def _points_in_polygon_kernel(points: np.ndarray, polygon: np.ndarray, out: np.ndarray) -> None:
    # even-odd rule: count crossings of a ray towards +x with the polygon's edges
    m = polygon.shape[0]
    for i in range(points.shape[0]):
        x, y = points[i, 0], points[i, 1]
        inside = False
        j = m - 1
        for k in range(m):
            xk, yk = polygon[k, 0], polygon[k, 1]
            xj, yj = polygon[j, 0], polygon[j, 1]
            if (yk > y) != (yj > y):
                x_cross = xk + (y - yk) * (xj - xk) / (yj - yk)
                if x < x_cross:
                    inside = not inside
            j = k
        out[i] = inside


def points_in_polygon(points: npt.ArrayLike, polygon: npt.ArrayLike) -> np.ndarray:
    """Which of `points` (N, 2) lie inside `polygon` (M, 2), by the even-odd rule: bool (N,).

    Points exactly on an edge may fall either way; anchors of real boxes almost never do.
    """
    pts = np.ascontiguousarray(points, dtype=np.float64)
    poly = np.ascontiguousarray(polygon, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), but got shape {pts.shape}")
    if poly.ndim != 2 or poly.shape[1] != 2 or poly.shape[0] < 3:
        raise ValueError(f"polygon must have shape (M, 2) with M >= 3, but got shape {poly.shape}")
    if not (np.all(np.isfinite(pts)) and np.all(np.isfinite(poly))):
        raise ValueError("points and polygon must be finite, but hold NaN or inf")
    out = np.empty(pts.shape[0], dtype=np.bool_)
    _points_in_polygon_kernel(pts, poly, out)
    return out


def _orientation(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _within_box(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> bool:
    """Whether `c`, known to be collinear with segment ab, lies on it."""
    return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])


def _segments_meet(
    p1: tuple[float, float], p2: tuple[float, float], q1: tuple[float, float], q2: tuple[float, float]
) -> bool:
    """Whether closed segments p1p2 and q1q2 share at least one point."""
    d1, d2 = _orientation(q1, q2, p1), _orientation(q1, q2, p2)
    d3, d4 = _orientation(p1, p2, q1), _orientation(p1, p2, q2)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return (
        (d1 == 0 and _within_box(q1, q2, p1))
        or (d2 == 0 and _within_box(q1, q2, p2))
        or (d3 == 0 and _within_box(p1, p2, q1))
        or (d4 == 0 and _within_box(p1, p2, q2))
    )


def polygon_problem(points: Sequence[tuple[float, float]]) -> str | None:
    """Why `points` is not a simple polygon (fewer than 3 points, repeated points, zero
    area, edges that cross or touch), or None when it is one. Edges are checked pairwise,
    which is plenty for zones of a few dozen points."""
    m = len(points)
    if m < 3:
        return f"at least 3 points, got {m}"
    for i in range(m):
        if points[i] == points[(i + 1) % m]:
            hint = " (do not repeat the first point at the end)" if i == m - 1 else ""
            return f"point {(i + 1) % m} repeats point {i}{hint}"
    edges = [(points[i], points[(i + 1) % m]) for i in range(m)]
    for i in range(m):
        for j in range(i + 1, m):
            (a, b), (c, d) = edges[i], edges[j]
            if j == i + 1 or (i == 0 and j == m - 1):
                # neighbours share a vertex; they may not fold back along each other
                prev, shared, nxt = (a, b, d) if j == i + 1 else (c, a, b)
                folds = (shared[0] - prev[0]) * (nxt[0] - shared[0]) + (shared[1] - prev[1]) * (nxt[1] - shared[1])
                if _orientation(prev, shared, nxt) == 0 and folds < 0:
                    return f"edges {i} and {j} fold back on each other"
                continue
            if _segments_meet(a, b, c, d):
                return f"edges {i} and {j} cross or touch: the polygon must not intersect itself"
    twice_area = sum(points[i][0] * points[(i + 1) % m][1] - points[(i + 1) % m][0] * points[i][1] for i in range(m))
    if twice_area == 0:
        return "the polygon has zero area"
    return None


def _check_polygon(points: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
    problem = polygon_problem(points)
    if problem is not None:
        raise ValueError(problem)
    return points


Coordinate = Annotated[float, Field(ge=0.0, le=MAX_COORD, allow_inf_nan=False)]
Point = tuple[Coordinate, Coordinate]
#: A simple polygon as [x, y] pixel points, in order, the first not repeated at the end.
Polygon = Annotated[tuple[Point, ...], AfterValidator(_check_polygon)]


# --- schedules ------------------------------------------------------------------------

_CLOCK = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


@lru_cache(maxsize=64)
def load_timezone(name: str) -> tzinfo:
    """The IANA time zone `name`, with an error that says whether the name is wrong or the
    system has no time zone database at all (a bare container without tzdata)."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
        if not zoneinfo.available_timezones():
            raise ValueError(
                f"time zone {name!r} is missing: this system has no time zone database; "
                "install one (pip install tzdata, or the OS package tzdata)"
            ) from e
        raise ValueError(f"unknown time zone {name!r}; expected an IANA name such as 'Asia/Shanghai'") from e


class Window(_Strict):
    """A weekly window: on each of `days`, from `start` to `end` local time.

    A window whose end is not after its start crosses midnight: 22:00-06:00 on Friday runs
    from Friday 22:00 to Saturday 06:00. "24:00" ends a window at midnight.
    """

    days: tuple[Annotated[int, Field(ge=0, le=6)], ...] = Field(
        default=(0, 1, 2, 3, 4, 5, 6),
        title="Days",
        min_length=1,
        max_length=7,
        description="Days of the week the window starts on, 0 = Monday ... 6 = Sunday; all days by default.",
    )
    start: str = Field(title="Start", pattern=_CLOCK.pattern, description="Local start time, HH:MM (00:00-23:59).")
    end: str = Field(
        title="End",
        pattern=_CLOCK.pattern,
        description="Local end time, HH:MM (00:00-24:00); at or before the start, the window ends the next day.",
    )

    @field_validator("days")
    @classmethod
    def _unique_days(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(days)) != len(days):
            raise ValueError(f"days must not repeat, but got {list(days)}")
        return days

    @model_validator(mode="after")
    def _proper_bounds(self) -> Window:
        if self.start == "24:00":
            raise ValueError("start must be 00:00-23:59; 24:00 may only end a window")
        if self.start == self.end:
            raise ValueError(f"window {self.start}-{self.end} is empty; use 00:00-24:00 for a whole day")
        return self

    def contains(self, weekday: int, minute: int) -> bool:
        """Whether local `weekday` (0 = Monday) and `minute` of the day fall inside."""
        start, end = _minutes(self.start), _minutes(self.end)
        if start < end:
            return weekday in self.days and start <= minute < end
        return (weekday in self.days and minute >= start) or ((weekday - 1) % 7 in self.days and minute < end)


class Schedule(_Strict):
    """When a zone's rule is enforced: a set of weekly windows in a local time zone."""

    windows: tuple[Window, ...] = Field(
        default=(),
        title="Windows",
        max_length=64,
        description="Weekly windows during which the rule is enforced; none means always.",
    )
    timezone: str = Field(
        default="Asia/Shanghai",
        validate_default=True,
        title="Time zone",
        min_length=1,
        max_length=64,
        description="IANA time zone the windows' clock times are in.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        load_timezone(name)
        return name

    def active_at(self, t: datetime) -> bool:
        """Whether the rule is enforced at instant `t` (timezone-aware, normally UTC)."""
        if t.utcoffset() is None:
            raise ValueError(f"t must be timezone-aware, but got naive {t.isoformat()}")
        if not self.windows:
            return True
        local = t.astimezone(load_timezone(self.timezone))
        weekday, minute = local.weekday(), local.hour * 60 + local.minute
        return any(w.contains(weekday, minute) for w in self.windows)


# --- zone configuration ---------------------------------------------------------------


class ZoneConfig(_Strict):
    """One zone of a camera: where it is, the rule it carries and that rule's parameters."""

    name: str = Field(
        title="Name",
        min_length=1,
        max_length=64,
        pattern=r"^[\w][\w .-]*$",
        description="Name of the zone, unique within its camera (letters, digits, _ . - and spaces).",
    )
    polygon: Polygon = Field(
        title="Polygon",
        max_length=256,
        description="The zone as [x, y] points in the camera's detect pixels, in order; at least 3, "
        "not crossing itself, the first point not repeated at the end.",
    )
    rule: Rule = Field(title="Rule", description="What the zone enforces.")
    classes: tuple[Annotated[str, Field(min_length=1, max_length=64)], ...] = Field(
        title="Classes",
        min_length=1,
        max_length=256,
        description="Class names the rule applies to; detections of other classes never count here.",
    )
    anchor: Anchor = Field(
        default=Anchor.BOTTOM_CENTER,
        title="Anchor",
        description="Point of a box that must be inside: bottom_center (where it stands), center, or "
        "any_corner (any of the four corners).",
    )
    inertia: int = Field(
        default=3,
        title="Inertia",
        ge=1,
        le=1000,
        description="Number of frames an object must be in the zone before it counts.",
    )
    min_dwell_s: float = Field(
        default=0.0,
        title="Minimum dwell",
        ge=0.0,
        le=7 * 86400.0,
        description="Seconds an object must stay in the zone before the rule may act on it.",
    )
    max_gap_s: float = Field(
        default=2.0,
        title="Maximum gap",
        ge=0.0,
        le=3600.0,
        description="Seconds a track may vanish from the zone (missed detections, occlusion, a step outside) "
        "and keep its dwell; after a longer gap it has left and a return starts afresh.",
    )
    min_area_px: float = Field(
        default=0.0,
        title="Minimum area",
        ge=0.0,
        le=MAX_COORD * MAX_COORD,
        description="Smallest box area in pixels that counts; smaller boxes are far away or spurious.",
    )
    exclusions: tuple[Polygon, ...] = Field(
        default=(),
        title="Exclusions",
        max_length=64,
        description="Polygons carved out of the zone: an anchor inside any of them is not in the zone.",
    )
    schedule: Schedule | None = Field(
        default=None, title="Schedule", description="When the rule is enforced; always when omitted."
    )

    @field_validator("classes")
    @classmethod
    def _unique_classes(cls, classes: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for c in classes:
            if c in seen:
                raise ValueError(f"classes must not repeat, but {c!r} appears twice")
            seen.add(c)
        return classes

    def active_at(self, t: datetime) -> bool:
        """Whether the zone's schedule enforces its rule at `t`."""
        return self.schedule is None or self.schedule.active_at(t)


# --- following tracks through a zone --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Presence:
    """A track's standing in one zone after one frame."""

    track_id: int
    class_name: str
    #: the track's anchor is in the zone (outside every exclusion) in this frame
    inside: bool
    #: inside for at least `inertia` frames, of the zone's classes, big enough, schedule active
    counted: bool
    #: counted, and has stayed at least `min_dwell_s`
    dwell_met: bool
    #: seconds from `entered_at` to the last frame it was seen inside
    dwell_s: float
    #: when this stay began (gaps shorter than `max_gap_s` do not end a stay)
    entered_at: datetime
    #: frames of this stay in which it was seen inside
    frames_inside: int


@dataclass(frozen=True, slots=True)
class Departure:
    """A track whose stay in a zone ended: not seen inside for longer than `max_gap_s`."""

    track_id: int
    class_name: str
    entered_at: datetime
    last_inside_at: datetime
    dwell_s: float
    #: whether it counted in at least one frame of the stay
    was_counted: bool


@dataclass(frozen=True, slots=True)
class ZoneUpdate:
    """What one frame changed in one zone."""

    zone: str
    at: datetime
    #: whether the zone's schedule is enforcing its rule at `at`
    active: bool
    #: tracks in this frame that are inside, or whose stay is still open, by track id
    presences: tuple[Presence, ...]
    #: stays that ended at this frame
    left: tuple[Departure, ...]

    @property
    def counted(self) -> tuple[Presence, ...]:
        return tuple(p for p in self.presences if p.counted)


@dataclass(slots=True)
class _Stay:
    class_name: str
    entered_at: datetime
    last_inside_at: datetime
    frames_inside: int
    was_counted: bool

    def departure(self, track_id: int) -> Departure:
        return Departure(
            track_id=track_id,
            class_name=self.class_name,
            entered_at=self.entered_at,
            last_inside_at=self.last_inside_at,
            dwell_s=(self.last_inside_at - self.entered_at).total_seconds(),
            was_counted=self.was_counted,
        )


def anchors_of(xyxy: np.ndarray, anchor: Anchor) -> np.ndarray:
    """The anchor points of boxes (N, 4) as (N, K, 2): K = 1, or 4 for `any_corner`."""
    x1, y1, x2, y2 = (xyxy[:, i].astype(np.float64) for i in range(4))
    if anchor is Anchor.BOTTOM_CENTER:
        return np.stack([(x1 + x2) / 2, y2], axis=1)[:, None, :]
    if anchor is Anchor.CENTER:
        return np.stack([(x1 + x2) / 2, (y1 + y2) / 2], axis=1)[:, None, :]
    corners = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    return np.stack([np.stack(c, axis=1) for c in corners], axis=1)


class ZoneTracker:
    """Follows tracked detections through one zone, frame by frame.

    Feed it every frame that was run through the detector and tracker, in time order.
    A track's stay begins the first frame its anchor is inside and lasts while it is seen
    inside again within `max_gap_s`; it counts once it has been inside for `inertia`
    frames of the stay, if its class is one of the zone's, its box is at least
    `min_area_px` and the schedule is active.
    """

    def __init__(self, zone: ZoneConfig) -> None:
        self.zone = zone
        self._polygon = np.asarray(zone.polygon, dtype=np.float64)
        self._exclusions = [np.asarray(p, dtype=np.float64) for p in zone.exclusions]
        self._classes = frozenset(zone.classes)
        self._stays: dict[int, _Stay] = {}
        self._last_at: datetime | None = None

    def inside(self, xyxy: npt.ArrayLike) -> np.ndarray:
        """Which boxes (N, 4) have their anchor in the zone and outside every exclusion."""
        boxes = np.asarray(xyxy, dtype=np.float64)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (N, 4), but got shape {boxes.shape}")
        anchors = anchors_of(boxes, self.zone.anchor)
        n, k = anchors.shape[:2]
        flat = anchors.reshape(n * k, 2)
        hit = points_in_polygon(flat, self._polygon)
        for exclusion in self._exclusions:
            hit &= ~points_in_polygon(flat, exclusion)
        return np.asarray(hit.reshape(n, k).any(axis=1), dtype=np.bool_)

    def update(self, detections: Detections, names: Sequence[str], at: datetime) -> ZoneUpdate:
        """Take one frame's tracked detections, taken at `at`; say who is in the zone.

        `names` maps class ids to class names. Neither argument is modified.
        """
        if detections.track_id is None:
            raise ValueError("detections must carry track ids: run them through a tracker first")
        track_ids = detections.track_id
        if len(np.unique(track_ids)) != len(track_ids):
            raise ValueError(f"track ids must be unique within a frame, but got {track_ids.tolist()}")
        class_ids = detections.class_id
        if len(class_ids) and (class_ids.min() < 0 or class_ids.max() >= len(names)):
            raise ValueError(
                f"class ids must index names (0..{len(names) - 1}), but got {sorted(set(class_ids.tolist()))}"
            )
        inside = self.inside(detections.xyxy)
        # a track back after a longer gap than max_gap_s leaves first, then starts a new stay
        left = self.expire(at)
        area = detections.area
        active = self.zone.active_at(at)
        presences = []
        for i in range(len(detections)):
            track_id, class_name = int(track_ids[i]), names[int(class_ids[i])]
            stay = self._stays.get(track_id)
            if inside[i]:
                if stay is None:
                    stay = self._stays[track_id] = _Stay(class_name, at, at, 0, False)
                stay.class_name, stay.last_inside_at = class_name, at
                stay.frames_inside += 1
            elif stay is None:
                continue
            counted = bool(
                inside[i]
                and active
                and stay.frames_inside >= self.zone.inertia
                and class_name in self._classes
                and area[i] >= self.zone.min_area_px
            )
            stay.was_counted |= counted
            dwell_s = (stay.last_inside_at - stay.entered_at).total_seconds()
            presences.append(
                Presence(
                    track_id=track_id,
                    class_name=class_name,
                    inside=bool(inside[i]),
                    counted=counted,
                    dwell_met=counted and dwell_s >= self.zone.min_dwell_s,
                    dwell_s=dwell_s,
                    entered_at=stay.entered_at,
                    frames_inside=stay.frames_inside,
                )
            )
        presences.sort(key=lambda p: p.track_id)
        return ZoneUpdate(zone=self.zone.name, at=at, active=active, presences=tuple(presences), left=left)

    def expire(self, at: datetime) -> tuple[Departure, ...]:
        """End the stays of tracks not seen inside for longer than `max_gap_s` by `at`.

        `update` calls it; call it directly on frames the detector skipped, so that rules
        can close events while nothing is being detected.
        """
        if at.utcoffset() is None:
            raise ValueError(f"at must be timezone-aware, but got naive {at.isoformat()}")
        if self._last_at is not None and at < self._last_at:
            raise ValueError(
                f"frames must come in time order, but {at.isoformat()} is before {self._last_at.isoformat()}"
            )
        self._last_at = at
        max_gap = timedelta(seconds=self.zone.max_gap_s)
        gone = [tid for tid, stay in self._stays.items() if at - stay.last_inside_at > max_gap]
        departures = tuple(self._stays.pop(tid).departure(tid) for tid in sorted(gone))
        for d in departures:
            logger.debug("track %d left zone %s after %.1f s", d.track_id, self.zone.name, d.dwell_s)
        return departures

    @property
    def open_tracks(self) -> frozenset[int]:
        """Track ids whose stay in the zone has not ended."""
        return frozenset(self._stays)

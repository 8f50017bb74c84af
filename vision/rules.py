"""Violation rules: from tracked detections in zones to `Violation`s.

Each zone carries one rule. A rule sees every frame (the engine's `FrameContext`) and
returns the violations that opened at that frame (`closed=False`: confirmed, still going
on) or closed (`closed=True`: over, with its whole span). A closed violation supersedes
the open one of the same event.

- `no_occupation`: an object of the zone's classes whose anchor stays in the zone,
  standing still, past `min_dwell_s`. One event per object; people walking through never
  stay long enough.
- `construction_watch`: equipment, materials or scaffolding of the zone's classes present
  past `min_dwell_s`; they need not stand still (an excavator swings its arm). Also (on by
  default, `ConstructionParams.structural_change`) lasting structural change against a
  reference view that the detector does not explain (`StructuralChangeRule`).
- `fume_watch`: smoke boxes in the zone that look like smoke (grey, moving, translucent:
  `vision.smoke`) in most frames of a sliding window; hysteresis keeps one event through
  a plume that thins for a moment, as Pyronear does.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vision.smoke import smoke_appearance
from vision.types import BoxSample, Detections, Frame, Violation, ViolationKind
from vision.zones import Rule, ZoneConfig, ZoneTracker, ZoneUpdate

logger = logging.getLogger(__name__)

#: most box samples a violation carries (evenly thinned beyond that)
MAX_BOX_SAMPLES = 64


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OccupationParams(_Strict):
    stationary_window_s: float = Field(
        3.0, ge=0.0, le=600.0, description="Seconds over which an object must have stood still to count as standing."
    )
    max_drift: float = Field(
        0.5,
        ge=0.0,
        le=10.0,
        description="Most the anchor may move over the stationary window, in box heights, for a standing object.",
    )


class FumeParams(_Strict):
    window_s: float = Field(
        3.0, gt=0.0, le=600.0, description="Length of the sliding window over which a plume must persist."
    )
    on_fraction: float = Field(
        0.6, gt=0.0, le=1.0, description="Share of the window's frames with smoke that opens a fume event."
    )
    off_fraction: float = Field(
        0.2, ge=0.0, lt=1.0, description="Share at or below which an open fume event closes (hysteresis)."
    )
    min_score: float = Field(0.25, ge=0.0, le=1.0, description="Lowest detector score of a smoke box that counts.")
    max_saturation: float = Field(0.35, ge=0.0, le=1.0, description="Most colour saturation a plume may show (0-1).")
    min_motion: float = Field(
        0.01, ge=0.0, le=1.0, description="Least share of the box that must have changed over motion_lag_s."
    )
    motion_lag_s: float = Field(
        0.5, gt=0.0, le=60.0, description="How far back (up to twice this) a plume's movement is judged against."
    )
    max_contrast_ratio: float = Field(
        4.0,
        gt=0.0,
        le=100.0,
        description="Most local contrast a plume may show over the background's. Thin smoke hides detail, "
        "dense black smoke adds its own edges; a strongly textured opaque object (a sign, a patterned "
        "awning) adds far more.",
    )
    background_rate: float = Field(
        0.05, gt=0.0, le=1.0, description="How fast the background of the zone's region follows frames without smoke."
    )

    @model_validator(mode="after")
    def _hysteresis(self) -> FumeParams:
        if self.off_fraction >= self.on_fraction:
            raise ValueError(
                f"off_fraction must be below on_fraction ({self.on_fraction}), but got {self.off_fraction}"
            )
        return self


class ConstructionParams(_Strict):
    structural_change: bool = Field(
        True,
        description="In construction_watch zones, also report lasting structural change against a reference view "
        "that the detector does not explain (a wall, a hoarding or a rooftop shed going up).",
    )
    reference_s: float = Field(
        2.0, gt=0.0, le=3600.0, description="Seconds of frames averaged into the first reference (nothing is judged)."
    )
    scale: int = Field(4, ge=1, le=32, description="Downscale factor of the change map.")
    band_rows: int = Field(
        8,
        ge=1,
        le=256,
        description="Rows of the change map per band over which brightness and contrast against the reference are "
        "fitted (fog thickens towards the sky, so one fit for the whole view is not enough).",
    )
    change_threshold: float = Field(
        28.0,
        gt=0.0,
        le=255.0,
        description="Grey levels (at the reference's contrast) by which a cell must differ from the reference, "
        "after the band's brightness and contrast are fitted, to count as changed.",
    )
    still_threshold: float = Field(
        8.0, gt=0.0, le=255.0, description="Most a changed cell may differ from the last half second to count as still."
    )
    min_change_fraction: float = Field(
        0.012, gt=0.0, le=1.0, description="Least share of the zone one connected changed region must cover."
    )
    min_fill: float = Field(
        0.4, gt=0.0, le=1.0, description="Least share of its bounding box a changed region must fill (compact)."
    )
    max_change_fraction: float = Field(
        0.25,
        gt=0.0,
        le=1.0,
        description="Share of the zone beyond which a change is scene-wide (fog, dusk, a light switched): the "
        "reference is taken afresh instead of reporting.",
    )
    max_gain_change: float = Field(
        0.3,
        gt=0.0,
        le=5.0,
        description="Most the fitted contrast may move from the reference's (as |ln gain|) before the change counts "
        "as scene-wide.",
    )
    persist_s: float = Field(
        2.0,
        ge=0.0,
        le=3600.0,
        description="Seconds a cell must stay changed and still before it counts: rain, clouds, steam and a "
        "waving flag move on.",
    )
    explain_s: float = Field(
        1.5,
        ge=0.0,
        le=3600.0,
        description="Seconds a cell stays explained after a detected object's box covered it (a stall the "
        "detector misses for a moment, a passer-by's trail).",
    )
    adapt_s: float = Field(
        60.0,
        gt=0.0,
        le=86400.0,
        description="Time constant of the reference following slow change in cells that did not change.",
    )
    absorb_s: float = Field(
        900.0,
        gt=0.0,
        le=7 * 86400.0,
        description="Seconds after which a lasting change becomes part of the reference (its event then ends).",
    )


class RulesConfig(_Strict):
    """Parameters of each rule beyond what a zone says (dwell, classes, schedule)."""

    occupation: OccupationParams = Field(default_factory=OccupationParams, description="no_occupation zones.")
    fume: FumeParams = Field(default_factory=FumeParams, description="fume_watch zones.")
    construction: ConstructionParams = Field(
        default_factory=ConstructionParams, description="construction_watch zones."
    )
    pre_roll_s: float = Field(5.0, ge=0.0, le=600.0, description="Seconds of clip before an event starts.")
    post_roll_s: float = Field(5.0, ge=0.0, le=600.0, description="Seconds of clip after an event ends.")


@dataclass(frozen=True)
class FrameContext:
    """What the engine knows after one frame."""

    frame: Frame
    #: tracked detections of this frame; on a frame the motion gate skipped, the last ones
    detections: Detections
    inferred: bool
    names: tuple[str, ...]
    fps: float
    model_id: str


@dataclass
class _Event:
    """An event being followed: enough to build its `Violation` at any moment."""

    start_frame: int
    started_at: datetime
    track_ids: set[int]
    boxes: list[BoxSample] = field(default_factory=list)
    confirmed_frame: int | None = None
    last_frame: int = 0
    last_at: datetime | None = None
    best_score: float = 0.0
    best_frame: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)

    def add(self, sample: BoxSample) -> None:
        self.boxes.append(sample)
        self.last_frame, self.last_at = sample.frame_index, sample.at
        if sample.score > self.best_score:
            self.best_score, self.best_frame = sample.score, sample.frame_index


class ViolationRule(ABC):
    """One zone's rule. Subclasses decide when an event starts, is confirmed, and ends."""

    kind: ViolationKind

    def __init__(self, zone: ZoneConfig, params: RulesConfig) -> None:
        self.zone = zone
        self.params = params
        self.zone_tracker = ZoneTracker(zone)

    @abstractmethod
    def step(self, ctx: FrameContext) -> list[Violation]:
        """Take one frame; return the violations it opened or closed."""

    @abstractmethod
    def finish(self, ctx: FrameContext) -> list[Violation]:
        """The stream ended at `ctx.frame`: close every open event."""

    @property
    def needs_every_frame(self) -> bool:
        """Whether the rule follows an open event that the motion gate must not hide from it."""
        return False

    def rule_parameters(self) -> dict[str, Any]:
        return {"zone": self.zone.model_dump(mode="json")}

    def _violation(self, event: _Event, ctx: FrameContext, *, closed: bool) -> Violation:
        fps = ctx.fps
        end_frame = event.last_frame if closed else ctx.frame.index
        ended_at = (event.last_at or event.started_at) if closed else ctx.frame.captured_at
        confirmed = event.confirmed_frame if event.confirmed_frame is not None else end_frame
        pre = round(self.params.pre_roll_s * fps)
        post = round(self.params.post_roll_s * fps)
        clip = (max(0, event.start_frame - pre), end_frame + post)
        keyframes = sorted({max(event.start_frame, min(confirmed, end_frame)), event.best_frame})
        samples = event.boxes
        if len(samples) > MAX_BOX_SAMPLES:
            picks = np.linspace(0, len(samples) - 1, MAX_BOX_SAMPLES).round().astype(int)
            samples = [samples[i] for i in picks]
        return Violation(
            kind=self.kind,
            source_id=ctx.frame.source_id,
            zone=self.zone.name,
            started_at=event.started_at,
            ended_at=max(ended_at, event.started_at),
            start_frame=event.start_frame,
            end_frame=max(end_frame, event.start_frame),
            confirmed_frame=min(max(confirmed, event.start_frame), max(end_frame, event.start_frame)),
            track_ids=tuple(sorted(event.track_ids)),
            boxes=tuple(samples),
            score=float(min(1.0, event.best_score)),
            keyframes=tuple(keyframes),
            clip_span=clip,
            model_id=ctx.model_id,
            rule=self.rule_parameters(),
            attributes={**event.attributes, "duration_s": round((ended_at - event.started_at).total_seconds(), 2)},
            closed=closed,
        )


class DwellRule(ViolationRule):
    """Objects of the zone's classes that stay past `min_dwell_s`, one event per track."""

    def __init__(self, zone: ZoneConfig, params: RulesConfig, *, kind: ViolationKind, stationary: bool) -> None:
        super().__init__(zone, params)
        self.kind = kind
        self.stationary = stationary
        self._events: dict[int, _Event] = {}
        self._history: dict[int, deque[tuple[datetime, float, float, float]]] = {}

    def rule_parameters(self) -> dict[str, Any]:
        extra = {"occupation": self.params.occupation.model_dump()} if self.stationary else {}
        return {**super().rule_parameters(), **extra}

    def _standing(self, track_id: int, at: datetime) -> bool:
        if not self.stationary:
            return True
        history = self._history.get(track_id)
        window = timedelta(seconds=self.params.occupation.stationary_window_s)
        if not history or at - history[0][0] < window * 0.5:
            return False
        xs = np.array([h[1] for h in history])
        ys = np.array([h[2] for h in history])
        height = float(np.median([h[3] for h in history]))
        drift = float(np.hypot(xs.max() - xs.min(), ys.max() - ys.min()))
        return drift <= self.params.occupation.max_drift * max(height, 1.0)

    def _remember(self, detections: Detections, at: datetime, inside: set[int]) -> None:
        window = timedelta(seconds=self.params.occupation.stationary_window_s)
        if detections.track_id is None:
            return
        for i, tid in enumerate(detections.track_id.tolist()):
            if tid not in inside:
                continue
            x1, y1, x2, y2 = (float(v) for v in detections.xyxy[i])
            history = self._history.setdefault(tid, deque())
            history.append((at, (x1 + x2) / 2, y2, y2 - y1))
            while history and at - history[0][0] > window:
                history.popleft()

    def step(self, ctx: FrameContext) -> list[Violation]:
        frame, detections = ctx.frame, ctx.detections
        update: ZoneUpdate = self.zone_tracker.update(detections, ctx.names, frame.captured_at)
        out: list[Violation] = []
        by_track = {}
        if detections.track_id is not None:
            by_track = {int(t): i for i, t in enumerate(detections.track_id.tolist())}
        self._remember(detections, frame.captured_at, {p.track_id for p in update.presences if p.inside})
        for presence in update.presences:
            tid = presence.track_id
            i = by_track.get(tid)
            event = self._events.get(tid)
            if presence.counted and event is None and i is not None:
                # the event starts when the object entered, not when it was confirmed
                # (never before the first frame: a camera that fell behind saw fewer frames than fps says)
                start = max(0, frame.index - max(0, round(presence.dwell_s * ctx.fps)))
                event = self._events[tid] = _Event(start, presence.entered_at, {tid})
                event.attributes["class_name"] = presence.class_name
            if event is None or i is None or not presence.inside:
                continue
            event.add(
                BoxSample(
                    frame.index,
                    frame.captured_at,
                    tuple(float(v) for v in detections.xyxy[i]),  # type: ignore[arg-type]
                    float(detections.score[i]),
                    tid,
                )
            )
            if event.confirmed_frame is None and presence.dwell_met and self._standing(tid, frame.captured_at):
                event.confirmed_frame = frame.index
                event.attributes["dwell_s_at_confirmation"] = round(presence.dwell_s, 2)
                out.append(self._violation(event, ctx, closed=False))
        for departure in update.left:
            out.extend(self._close(departure.track_id, ctx))
        return out

    def _close(self, track_id: int, ctx: FrameContext) -> list[Violation]:
        self._history.pop(track_id, None)
        event = self._events.pop(track_id, None)
        if event is None or event.confirmed_frame is None:
            return []  # it never stayed long enough, or never stood still: nothing to report
        return [self._violation(event, ctx, closed=True)]

    def finish(self, ctx: FrameContext) -> list[Violation]:
        out = []
        for tid in sorted(self._events):
            out.extend(self._close(tid, ctx))
        return out


class _SingleEventRule(ViolationRule):
    """A rule that follows at most one event of its zone at a time."""

    def __init__(self, zone: ZoneConfig, params: RulesConfig) -> None:
        super().__init__(zone, params)
        self._event: _Event | None = None

    def _close(self, ctx: FrameContext) -> list[Violation]:
        if self._event is None:
            return []
        violation = self._violation(self._event, ctx, closed=True)
        self._event = None
        return [violation]

    def finish(self, ctx: FrameContext) -> list[Violation]:
        return self._close(ctx)


class FumeRule(_SingleEventRule):
    """Plumes that persist in a sliding window, with hysteresis."""

    kind = ViolationKind.FUME

    def __init__(self, zone: ZoneConfig, params: RulesConfig) -> None:
        super().__init__(zone, params)
        self._window: deque[tuple[datetime, bool]] = deque()
        self._pending: list[BoxSample] = []  # smoke frames of the window before confirmation
        self._background: np.ndarray | None = None
        # a frame between motion_lag_s and twice that old: slow plumes barely change between
        # consecutive frames, but they do over half a second
        self._earlier: np.ndarray | None = None
        self._earlier_at: datetime | None = None
        self._levels: list[int] = []

    def rule_parameters(self) -> dict[str, Any]:
        return {**super().rule_parameters(), "fume": self.params.fume.model_dump()}

    @property
    def needs_every_frame(self) -> bool:
        # once a plume is confirmed, a thin stretch of it drifting under the gate's threshold
        # must not end the event; a new event still needs frames the gate let through
        return self._event is not None

    def _smoke_boxes(self, ctx: FrameContext) -> list[tuple[tuple[float, float, float, float], float, int]]:
        """This frame's smoke boxes in the zone that look like smoke: (box, score, Ringelmann)."""
        d = ctx.detections
        p = self.params.fume
        # a frame the motion gate skipped counts as one without smoke: plumes move
        if not ctx.inferred or len(d) == 0:
            return []
        classes = set(self.zone.classes)
        names = np.array([ctx.names[c] in classes for c in d.class_id.tolist()], bool)
        keep = names & (d.score >= p.min_score)
        if not keep.any():
            return []
        inside = self.zone_tracker.inside(d.xyxy[keep])
        image = ctx.frame.image
        found = []
        for j, i in enumerate(np.flatnonzero(keep)):
            if not inside[j] or self._background is None or self._earlier is None:
                continue
            look = smoke_appearance(image, self._earlier, self._background, d.xyxy[i])
            if look is None or not look.looks_like_smoke(
                max_saturation=p.max_saturation, min_motion=p.min_motion, max_contrast_ratio=p.max_contrast_ratio
            ):
                logger.debug("zone %s: smoke box %s rejected: %s", self.zone.name, d.xyxy[i].round().tolist(), look)
                continue
            box = tuple(float(v) for v in d.xyxy[i])
            found.append((box, float(d.score[i]), look.ringelmann))
        return found  # type: ignore[return-value]

    def _learn_background(self, image: np.ndarray, at: datetime, smoke: bool) -> None:
        """Follow the zone's background on frames without smoke; keep the frame motion is judged against."""
        if self._background is None:
            self._background = image.astype(np.float32)
        elif not smoke:
            cv2.accumulateWeighted(image, self._background, self.params.fume.background_rate)
        lag = timedelta(seconds=self.params.fume.motion_lag_s)
        if self._earlier_at is None or at - self._earlier_at >= lag:
            self._earlier, self._earlier_at = image, at

    def step(self, ctx: FrameContext) -> list[Violation]:
        p = self.params.fume
        frame = ctx.frame
        at = frame.captured_at
        active = self.zone.active_at(at)
        smoke = self._smoke_boxes(ctx) if active else []
        self._learn_background(frame.image, at, bool(smoke))
        self._window.append((at, bool(smoke)))
        window = timedelta(seconds=p.window_s)
        while at - self._window[0][0] > window:
            self._window.popleft()
        share = sum(present for _, present in self._window) / len(self._window)
        filled = at - self._window[0][0] >= window * 0.9
        samples = [BoxSample(frame.index, at, box, score) for box, score, _ in smoke]
        out: list[Violation] = []
        if self._event is None:
            self._pending = [s for s in self._pending if at - s.at <= window] + samples
            self._levels = self._levels[-len(self._window) :] + [level for _, _, level in smoke]
            if filled and share >= p.on_fraction and self._pending:
                first = self._pending[0]
                self._event = _Event(first.frame_index, first.at, set())
                for sample in self._pending:
                    self._event.add(sample)
                self._event.confirmed_frame = frame.index
                self._set_level()
                out.append(self._violation(self._event, ctx, closed=False))
        else:
            for sample in samples:
                self._event.add(sample)
            self._levels += [level for _, _, level in smoke]
            self._set_level()
            if share <= p.off_fraction:
                out.extend(self._close(ctx))
                self._pending, self._levels = [], []
        return out

    def _set_level(self) -> None:
        if self._event is not None and self._levels:
            self._event.attributes["ringelmann"] = int(np.median(self._levels))
            self._event.attributes["ringelmann_max"] = int(max(self._levels))


def _shrink(image: np.ndarray, scale: int) -> np.ndarray:
    """`image` averaged over `scale` x `scale` blocks (halving steps for powers of two: same mean, faster)."""
    h, w = image.shape[0] // scale, image.shape[1] // scale
    if scale & (scale - 1) == 0 and image.shape[0] == h * scale and image.shape[1] == w * scale:
        while image.shape[1] > w:  # bilinear at exactly half size averages each 2 x 2 block
            image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_LINEAR)
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


class StructuralChangeRule(_SingleEventRule):
    """Lasting change of a construction zone's structure against its reference view.

    Each frame is shrunk by `scale` into a map of cells. Per band of rows, the frame's
    brightness and contrast are fitted against the reference's (fog thickens towards the
    sky, a light switch scales everything), and a cell is changed when it differs from
    the fitted reference by `change_threshold`. A changed cell counts once it has also held
    still for `persist_s`: rain, clouds, steam and a flag never hold still. Cells under a
    detected object's box, or under one in the last `explain_s`, are left out: passers-by,
    parked cars and the equipment the detector reports are not structure. One compact
    connected region of counted cells covering `min_change_fraction` of the zone for
    `min_dwell_s` opens an event, which holds while the region covers half that and closes
    when it has been gone `max_gap_s`.

    A scene-wide change (contrast off by more than `max_gain_change`, or more than
    `max_change_fraction` of the zone changed) takes the reference afresh; otherwise the
    reference follows unchanged, unexplained cells with time constant `adapt_s`.
    """

    kind = ViolationKind.CONSTRUCTION

    def __init__(self, zone: ZoneConfig, params: RulesConfig) -> None:
        super().__init__(zone, params)
        self._reference: np.ndarray | None = None  # (h, w, 3) float32, settled once the first reference_s is over
        self._reference_sum: np.ndarray | None = None
        self._reference_count: np.ndarray | None = None
        self._started_at: datetime | None = None
        self._origin: datetime | None = None
        self._anchor: np.ndarray | None = None  # (h, w) normalised grey each cell held when it began to persist
        self._persist: np.ndarray | None = None  # seconds each cell has been changed and still
        self._covered_at: np.ndarray | None = None  # seconds (since start) a detected box last covered each cell
        self._mask: np.ndarray | None = None
        self._changed_since: tuple[int, datetime] | None = None
        self._last_change_at: datetime | None = None
        self._previous_now: float | None = None

    def rule_parameters(self) -> dict[str, Any]:
        return {**super().rule_parameters(), "construction": self.params.construction.model_dump()}

    def _zone_mask(self, shape: tuple[int, ...]) -> np.ndarray:
        if self._mask is None or self._mask.shape != shape[:2]:
            scale = self.params.construction.scale
            polygon = (np.asarray(self.zone.polygon, np.float64) / scale).round().astype(np.int32)
            mask = np.zeros(shape[:2], np.uint8)
            cv2.fillPoly(mask, [polygon], 1)
            self._mask = mask.astype(bool)
        return self._mask

    def _explained(self, detections: Detections, now: float, shape: tuple[int, ...]) -> np.ndarray:
        """Cells a detected box covers now or covered in the last `explain_s` (boxes grown by a cell)."""
        p = self.params.construction
        if self._covered_at is None or self._covered_at.shape != shape[:2]:
            self._covered_at = np.full(shape[:2], -np.inf, np.float32)
        for bx1, by1, bx2, by2 in (detections.xyxy / p.scale).tolist():
            x1, y1 = max(0, int(bx1) - 1), max(0, int(by1) - 1)
            self._covered_at[y1 : int(by2) + 2, x1 : int(bx2) + 2] = now
        return (now - self._covered_at) <= p.explain_s

    def _reset(self, at: datetime) -> None:
        self._reference = self._reference_sum = self._reference_count = None
        self._started_at, self._persist, self._anchor = at, None, None
        self._changed_since = self._last_change_at = None

    def _build_reference(self, small: np.ndarray, explained: np.ndarray, at: datetime) -> None:
        """Average the first `reference_s` of frames, each cell over the frames no detected box covered it."""
        if self._reference_sum is None or self._reference_count is None:
            self._reference_sum = np.zeros(small.shape, np.float32)
            self._reference_count = np.zeros(small.shape[:2], np.float32)
        free = ~explained
        self._reference_sum[free] += small[free]
        self._reference_count[free] += 1.0
        assert self._started_at is not None
        if (at - self._started_at).total_seconds() >= self.params.construction.reference_s:
            count = self._reference_count[..., None]
            # a cell covered all along takes the frame as it is; it stays explained while covered
            self._reference = np.where(count > 0, self._reference_sum / np.maximum(count, 1.0), small)
            self._reference_sum = self._reference_count = None

    def _fit(self, grey: np.ndarray, ref_grey: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Per band of rows, gain and offset taking the reference's grey to the frame's; and the overall gain."""
        p = self.params.construction
        starts = np.arange(0, grey.shape[0], p.band_rows)
        sums = [
            np.add.reduceat(v.sum(axis=1, dtype=np.float64), starts)
            for v in (weight, weight * ref_grey, weight * grey, weight * ref_grey * ref_grey, weight * ref_grey * grey)
        ]
        n, sr, sc, srr, src = sums
        total = [float(v.sum()) for v in sums]
        gain_all = 1.0
        offset_all = 0.0
        if total[0] > 0:
            var_all = total[3] - total[1] ** 2 / total[0]
            if var_all > 1.0 * total[0]:
                gain_all = (total[4] - total[1] * total[2] / total[0]) / var_all
            offset_all = (total[2] - gain_all * total[1]) / total[0]
        safe = np.maximum(n, 1.0)
        var = srr - sr * sr / safe
        good = (n >= 0.25 * grey.shape[1] * p.band_rows) & (var > 25.0 * safe)  # enough cells with some contrast
        gain = np.where(good, (src - sr * sc / safe) / np.where(good, var, 1.0), gain_all)
        gain = np.clip(gain, 0.2, 5.0)
        offset = np.where(n > 0, (sc - gain * sr) / safe, offset_all)
        rows = np.minimum(np.arange(grey.shape[0]) // p.band_rows, len(starts) - 1)
        return gain[rows].astype(np.float32)[:, None], offset[rows].astype(np.float32)[:, None], gain_all

    def step(self, ctx: FrameContext) -> list[Violation]:
        p = self.params.construction
        frame = ctx.frame
        at = frame.captured_at
        if self._origin is None:
            self._origin = at
        if self._started_at is None:
            self._started_at = at
        now = (at - self._origin).total_seconds()
        image = frame.image
        small = _shrink(image, p.scale).astype(np.float32)
        channels = cv2.split(small)  # reductions over a 3-long last axis are slow in numpy
        grey = (channels[0] + channels[1] + channels[2]) * np.float32(1.0 / 3.0)
        explained = self._explained(ctx.detections, now, small.shape)
        # the time since the frame before: the engine may look at fewer frames than the camera decodes
        previous, self._previous_now = self._previous_now, now
        dt = now - previous if previous is not None and 0.0 < now - previous <= 5.0 else 1.0 / ctx.fps
        if self._reference is None:
            self._build_reference(small, explained, at)
            return []
        zone = self._zone_mask(small.shape)
        free = zone & ~explained
        reference = self._reference
        ref_channels = cv2.split(reference)
        ref_grey = (ref_channels[0] + ref_channels[1] + ref_channels[2]) * np.float32(1.0 / 3.0)
        # clipped cells (a bright sky once the lights go up) say nothing about gain and offset
        brightest = np.maximum(np.maximum(channels[0], channels[1]), channels[2])
        darkest = np.minimum(np.minimum(channels[0], channels[1]), channels[2])
        weight = (free & (brightest < 250.0) & (darkest > 5.0)).astype(np.float32)
        gain, offset, gain_all = self._fit(grey, ref_grey, weight)
        # once more without the cells that changed, so that a big new structure does not bend the fit
        weight[np.abs(grey - (ref_grey * gain + offset)) > p.change_threshold * np.maximum(gain, 0.4)] = 0.0
        gain, offset, gain_all = self._fit(grey, ref_grey, weight)
        residual = np.zeros_like(grey)
        for channel, ref_channel in zip(channels, ref_channels, strict=True):
            predicted = np.clip(ref_channel * gain + offset, 0.0, 255.0)
            np.maximum(residual, np.abs(channel - predicted), out=residual)
        residual = cv2.blur(residual / np.maximum(gain, 0.4), (3, 3))
        # a clipped cell (blown out by light, or black) cannot be judged: its change is not measurable
        differs = (residual > p.change_threshold) & (brightest < 250.0) & (brightest > 8.0)
        zone_area = max(1, int(zone.sum()))
        share = float(np.count_nonzero(differs & free)) / max(1, int(np.count_nonzero(free)))
        if abs(np.log(max(gain_all, 1e-3))) > p.max_gain_change or share > p.max_change_fraction:
            # the whole view changed: not a structure; look again from here
            logger.info("zone %s: scene-wide change (gain %.2f, %.0f%% changed), new reference", self.zone.name,
                        gain_all, 100 * share)  # fmt: skip
            self._reset(at)
            self._build_reference(small, explained, at)
            return self._close(ctx)
        # the frame in the reference's brightness and contrast: a cell is still while this holds
        normal = (grey - offset) / np.maximum(gain, 0.2)
        if self._persist is None or self._anchor is None or self._persist.shape != differs.shape:
            self._persist = np.zeros(differs.shape, np.float32)
            self._anchor = normal.copy()
        persist, anchor = self._persist, self._anchor
        moved = np.abs(normal - anchor) > p.still_threshold
        restart = moved | ~differs
        np.copyto(anchor, normal, where=restart)
        np.copyto(persist, np.float32(0.0), where=restart & ~explained)
        persist += (differs & ~moved & free) * np.float32(dt)
        # the reference follows slow change where nothing changed and nothing is in front of it
        follow = (~differs & ~explained).astype(np.uint8)
        cv2.accumulateWeighted(small, reference, min(1.0, dt / p.adapt_s), mask=follow)
        absorbed = persist >= p.absorb_s
        if absorbed.any():
            reference[absorbed] = small[absorbed]
            persist[absorbed] = 0.0
        # a cell that had lasted keeps counting while someone walks in front of it
        changed = (persist >= p.persist_s) & zone
        return self._judge(ctx, changed, zone_area)

    def _judge(self, ctx: FrameContext, changed: np.ndarray, zone_area: int) -> list[Violation]:
        """Open, extend or close the event from this frame's lasting change."""
        p = self.params.construction
        frame = ctx.frame
        at = frame.captured_at
        # a structure is one compact region; rain, noise and flicker scatter
        _, _, stats, _ = cv2.connectedComponentsWithStats(changed.astype(np.uint8), connectivity=8)
        area = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
        fill = area / np.maximum(stats[1:, cv2.CC_STAT_WIDTH] * stats[1:, cv2.CC_STAT_HEIGHT], 1)
        area[fill < p.min_fill] = 0.0
        best = int(np.argmax(area)) + 1 if len(area) else 0
        fraction = float(area[best - 1]) / zone_area if best else 0.0
        out: list[Violation] = []
        # hysteresis: an open event holds while the region keeps half the area that opened it
        needed = p.min_change_fraction / 2 if self._event is not None else p.min_change_fraction
        if fraction >= needed and self.zone.active_at(at):
            self._last_change_at = at
            if self._changed_since is None:
                self._changed_since = (frame.index, at)
            x, y, w, h = (int(v) for v in stats[best, :4])
            box = (float(x * p.scale), float(y * p.scale), float((x + w) * p.scale), float((y + h) * p.scale))
            sample = BoxSample(frame.index, at, box, min(1.0, fraction / (2 * p.min_change_fraction)))
            if self._event is None and (at - self._changed_since[1]).total_seconds() >= self.zone.min_dwell_s:
                self._event = _Event(self._changed_since[0], self._changed_since[1], set())
                self._event.attributes["structural_change"] = True
                self._event.confirmed_frame = frame.index
                self._event.add(sample)
                self._event.attributes["changed_fraction"] = round(fraction, 4)
                out.append(self._violation(self._event, ctx, closed=False))
            elif self._event is not None:
                self._event.add(sample)
                self._event.attributes["changed_fraction"] = round(fraction, 4)
        elif self._last_change_at is not None and (at - self._last_change_at).total_seconds() > self.zone.max_gap_s:
            self._changed_since = self._last_change_at = None
            out.extend(self._close(ctx))
        return out


def build_rules(zone: ZoneConfig, params: RulesConfig) -> list[ViolationRule]:
    """The rule objects a zone's `rule` names (a construction zone may watch for structural change too)."""
    if zone.rule is Rule.FUME_WATCH:
        return [FumeRule(zone, params)]
    if zone.rule is Rule.NO_OCCUPATION:
        return [DwellRule(zone, params, kind=ViolationKind.OCCUPATION, stationary=True)]
    rules: list[ViolationRule] = [DwellRule(zone, params, kind=ViolationKind.CONSTRUCTION, stationary=False)]
    if params.construction.structural_change:
        rules.append(StructuralChangeRule(zone, params))
    return rules

"""Reproducible figures for the structural-change rule (`vision.rules.StructuralChangeRule`).

Two sets of rendered footage, each fed to the rule frame by frame as the engine would:

- `SceneSpec.structure_going_up` scenes (seeds from `STRUCTURE_SEED`, at the preset's
  frame rate): a shed, a hoarding or a wall goes up and stays while people and a car
  pass. The labelled objects' truth boxes stand in for a good detector, so what is left
  unexplained is the structure, which no detector class covers.
- `SceneSpec.distractor_only` footage (seeds from `DISTRACTOR_SEED`, at most
  `DISTRACTOR_SCENE_S` per scene, at a camera-like decode rate): steam, fog, clouds,
  rain, lighting changes and a flag with no detections at all, so nothing hides anything.

The zone is the site zone `nonsite.analyze.synthetic_camera` draws (the whole view, dwell
`SUITE_DWELL_S`). Events are matched to truth by `models.evaluate_events` (kind
construction, overlapping frame span and box against the structure's region).

This lives in `nonsite/` because it needs the scene generator (`datasets`), which
`models` may not import.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from datasets.synthetic import SYNTHETIC_CLASSES, EventKind, SceneSpec, SyntheticScene
from models.evaluate_events import Event, KindScore, Scene, evaluate
from nonsite.analyze import synthetic_camera
from vision.rules import FrameContext, RulesConfig, StructuralChangeRule
from vision.types import Detections, Frame, Violation
from vision.zones import ZoneConfig

logger = logging.getLogger(__name__)

#: first seed of the structure scenes (seeds 0-11 by default)
STRUCTURE_SEED = 0
#: first seed of the distractor-only scenes (seeds 100-109 for an hour)
DISTRACTOR_SEED = 100
#: longest distractor-only scene; longer footage is split into equal scenes of at most this
DISTRACTOR_SCENE_S = 360.0
#: the clock of frame 0 of every scene (the zone has no schedule, so only spacing matters)
CLOCK_ORIGIN = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)

_KIND = EventKind.CONSTRUCTION.value


@dataclass(frozen=True)
class StructureReport:
    """What the rule found on the structure scenes and raised on the distractor footage."""

    structure_scenes: int
    distractor_scenes: int
    distractor_minutes: float
    frames: int
    score: KindScore
    #: events raised on distractor-only footage (all false)
    distractor_events: int

    @property
    def found(self) -> int:
        return self.score.true_positives

    @property
    def truth_events(self) -> int:
        return self.score.true_positives + self.score.false_negatives

    @property
    def predicted_events(self) -> int:
        return self.score.true_positives + self.score.false_positives

    @property
    def recall(self) -> float:
        return self.score.recall

    @property
    def precision(self) -> float:
        return self.score.precision

    @property
    def false_per_distractor_hour(self) -> float:
        hours = self.distractor_minutes / 60.0
        return self.distractor_events / hours if hours else math.nan

    @property
    def median_confirm_s(self) -> float | None:
        """Median seconds from the start of building to the frame the rule confirmed the event."""
        return self.score.median_delay_s

    @property
    def confirm_range_s(self) -> tuple[float, float] | None:
        delays = self.score.detect_delays_s
        return (min(delays), max(delays)) if delays else None


def distractor_specs(minutes: float, fps: float, *, seed: int = DISTRACTOR_SEED) -> list[SceneSpec]:
    """`minutes` of distractor-only footage at `fps`, as equal scenes of at most `DISTRACTOR_SCENE_S`."""
    if minutes < 0 or not math.isfinite(minutes):
        raise ValueError(f"minutes must be a finite number >= 0, but got {minutes}")
    if minutes == 0:
        return []
    total_s = 60.0 * minutes
    count = math.ceil(total_s / DISTRACTOR_SCENE_S - 1e-9)
    return [SceneSpec.distractor_only(seed=seed + i, duration_s=total_s / count, fps=fps) for i in range(count)]


def structure_specs(count: int, *, seed: int = STRUCTURE_SEED) -> list[SceneSpec]:
    """`count` structure_going_up scenes at the preset's length and frame rate."""
    if count < 0:
        raise ValueError(f"count must be >= 0, but got {count}")
    return [SceneSpec.structure_going_up(seed=seed + i) for i in range(count)]


def site_zone(scene: SyntheticScene) -> ZoneConfig:
    """The construction_watch zone the synthetic suite's camera draws over `scene` (the whole view)."""
    camera = synthetic_camera(scene.spec.name, scene.scene_truth(frames=()), "synthetic")
    return next(z for z in camera.zones if z.name == "site")


def run_rule(scene: SyntheticScene, *, with_truth_boxes: bool, params: RulesConfig | None = None) -> Scene:
    """Render every frame of `scene`, feed the structural-change rule, and pair its closed events with the truth.

    With `with_truth_boxes`, the labelled objects' truth boxes are the frame's detections
    (a detector that never misses); without, the rule sees no detections at all.
    """
    spec = scene.spec
    rule = StructuralChangeRule(site_zone(scene), params or RulesConfig())
    source = f"{spec.name}-{spec.seed}"
    frame_truths = []
    violations: list[Violation] = []
    context: FrameContext | None = None
    no_detections = Detections.empty()
    for index in range(scene.frame_count):
        image, frame_truth = scene.render(index)
        frame_truths.append(frame_truth)
        at = CLOCK_ORIGIN + timedelta(seconds=index / spec.fps)
        detections = frame_truth.to_detections() if with_truth_boxes else no_detections
        context = FrameContext(Frame(image, source, index, at), detections, True, SYNTHETIC_CLASSES, spec.fps, "truth")
        violations.extend(rule.step(context))
    if context is not None:
        violations.extend(rule.finish(context))
    truth = [
        Event(e.kind, e.start_frame, e.end_frame, _box_of(e.region))
        for e in scene.events(frame_truths)
        if e.kind == _KIND
    ]
    predicted = [
        Event(v.kind.value, v.start_frame, v.end_frame, v.bbox, v.confirmed_frame) for v in violations if v.closed
    ]
    return Scene(source, spec.fps, scene.frame_count, tuple(truth), tuple(predicted))


def _box_of(points: tuple[tuple[float, float], ...]) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return (min(xs), min(ys), max(xs), max(ys))


def evaluate_structures(
    *,
    structure_scenes: int = 12,
    distractor_minutes: float = 60.0,
    distractor_fps: float = 5.0,
    params: RulesConfig | None = None,
) -> StructureReport:
    """Run the rule over the structure scenes and the distractor footage and score its events.

    Deterministic: the same arguments render the same frames and give the same figures.
    """
    if distractor_fps <= 0 or not math.isfinite(distractor_fps):
        raise ValueError(f"distractor_fps must be a finite number > 0, but got {distractor_fps}")
    scored: list[Scene] = []
    distractor_events = 0
    frames = 0
    specs = [(spec, True) for spec in structure_specs(structure_scenes)]
    specs += [(spec, False) for spec in distractor_specs(distractor_minutes, distractor_fps)]
    for spec, with_truth_boxes in specs:
        scene = run_rule(SyntheticScene(spec), with_truth_boxes=with_truth_boxes, params=params)
        if not with_truth_boxes:
            distractor_events += len(scene.predicted)
        frames += scene.frame_count
        scored.append(scene)
        logger.info(
            "%s: %d frames, %d true, %d raised", scene.name, scene.frame_count, len(scene.truth), len(scene.predicted)
        )
    report = evaluate(scored)
    return StructureReport(
        structure_scenes=structure_scenes,
        distractor_scenes=len(specs) - structure_scenes,
        distractor_minutes=distractor_minutes,
        frames=frames,
        score=report.by_kind[_KIND],
        distractor_events=distractor_events,
    )


def format_report(report: StructureReport) -> list[str]:
    """The report as the lines `nonsite eval structures` prints."""
    confirm = "-" if report.median_confirm_s is None else f"{report.median_confirm_s:.1f} s"
    spread = report.confirm_range_s
    if spread is not None:
        confirm += f" (range {spread[0]:.1f}-{spread[1]:.1f} s)"
    precision = (
        f"{report.precision:.3f} ({report.found}/{report.predicted_events})" if report.predicted_events else "- (0/0)"
    )
    return [
        "structural change rule, all footage synthetic (no real footage in these figures)",
        f"structure scenes:        {report.structure_scenes} (structure_going_up seeds "
        f"{STRUCTURE_SEED}-{STRUCTURE_SEED + report.structure_scenes - 1}, truth boxes as detections)",
        f"distractor-only footage: {report.distractor_minutes:.1f} min in {report.distractor_scenes} scenes "
        f"(seeds from {DISTRACTOR_SEED}, no detections)",
        f"frames:                  {report.frames}",
        f"recall:                  {report.recall:.3f} ({report.found}/{report.truth_events})",
        f"precision:               {precision}",
        f"false events:            {report.distractor_events} on distractors, "
        f"{report.false_per_distractor_hour:.2f} per distractor hour",
        f"time to confirm:         median {confirm} from the start of building",
    ]

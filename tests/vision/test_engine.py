"""The engine end to end on rendered scenes, with a detector that sees exactly the truth."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from datasets.synthetic import SYNTHETIC_CLASSES, SceneSpec, SyntheticScene
from nonsite.analyze import synthetic_camera
from vision.detectors.base import Detector, ModelInfo
from vision.engine import Engine
from vision.types import Detections, Frame, ViolationKind

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


class TruthDetector(Detector):
    """Returns the scene's truth for the frame it is shown (looked up by the image's bytes)."""

    def __init__(self, truths: dict[bytes, Detections]) -> None:
        self._truths = truths
        self.calls = 0
        self.info = ModelInfo(Path("truth"), "truth-sha", tuple(SYNTHETIC_CLASSES), (640, 640), "truth", True, (), {})

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        self.calls += len(images)
        out = []
        for image in images:
            truth = self._truths[image.tobytes()]
            out.append(Detections(truth.xyxy, np.full(len(truth), 0.9, np.float32), truth.class_id))
        return out


def scene_frames(spec: SceneSpec):
    scene = SyntheticScene(spec)
    truth = scene.scene_truth()
    frames, truths = [], {}
    for index in range(len(truth.frames)):
        image, frame_truth = scene.render(index)
        frames.append(Frame(image, spec.name, index, T0 + timedelta(seconds=index / spec.fps)))
        truths[image.tobytes()] = frame_truth.to_detections()
    return truth, frames, TruthDetector(truths)


def run_engine(spec: SceneSpec, *, motion_gate: bool):
    truth, frames, detector = scene_frames(spec)
    camera = synthetic_camera(spec.name, truth, "synthetic")
    engine = Engine(camera, detector, fps=spec.fps, motion_gate=motion_gate)
    violations = [v for f in frames for v in engine.process(f).violations] + engine.finish()
    return truth, engine, detector, [v for v in violations if v.closed]


def test_a_stall_scene_gives_one_occupation_violation_per_stall():
    truth, _, _, closed = run_engine(SceneSpec.sidewalk_stall(seed=4), motion_gate=False)
    expected = [e for e in truth.events if e.kind == "occupation"]
    got = [v for v in closed if v.kind is ViolationKind.OCCUPATION]
    assert len(got) == len(expected) >= 1
    assert not [v for v in closed if v.kind is not ViolationKind.OCCUPATION]


def test_the_motion_gate_skips_frames_without_losing_the_stall():
    truth, engine, detector, closed = run_engine(SceneSpec.sidewalk_stall(seed=4), motion_gate=True)
    assert detector.calls == engine.stats.inferred <= engine.stats.frames
    assert len([v for v in closed if v.kind is ViolationKind.OCCUPATION]) == len(
        [e for e in truth.events if e.kind == "occupation"]
    )


def test_distractor_only_footage_gives_nothing_and_is_mostly_gated():
    _, engine, _, closed = run_engine(SceneSpec.distractor_only(seed=2, duration_s=20.0, fps=5.0), motion_gate=True)
    assert closed == []
    assert engine.stats.gated_fraction > 0.2


def test_construction_site_reports_construction():
    truth, _, _, closed = run_engine(SceneSpec.construction_site(seed=1), motion_gate=True)
    assert {v.kind for v in closed} == {ViolationKind.CONSTRUCTION}
    assert len(closed) == len([e for e in truth.events if e.kind == "construction"])

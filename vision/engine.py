"""The per-camera engine: frames in, violations out.

Per frame: the motion gate decides whether the detector runs; the tracker follows what
it found (and coasts through frames the gate skipped, when the last tracked boxes stand
in for the scene, which did not move); each zone's rule turns tracks into violations.
The engine holds no frames beyond what its rules need and never modifies a frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from vision.camera import CameraConfig
from vision.detectors import Detector
from vision.motion import MotionGate
from vision.rules import FrameContext, ViolationRule, build_rules
from vision.tracking import ByteTracker
from vision.types import Detections, Frame, Violation

logger = logging.getLogger(__name__)


@dataclass
class EngineStats:
    frames: int = 0
    inferred: int = 0
    violations_opened: int = 0
    violations_closed: int = 0

    @property
    def gated_fraction(self) -> float:
        return 1.0 - self.inferred / self.frames if self.frames else 0.0


@dataclass
class FrameResult:
    """What one frame produced: the tracked detections it stands on and any violations."""

    frame_index: int
    inferred: bool
    detections: Detections
    violations: list[Violation] = field(default_factory=list)


class Engine:
    """One camera's detection-to-violation pipeline."""

    def __init__(
        self,
        camera: CameraConfig,
        detector: Detector,
        *,
        fps: float,
        motion_gate: bool = True,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, but got {fps}")
        self.camera = camera
        self.detector = detector
        self.fps = fps
        self.tracker = ByteTracker(camera.tracker)
        self.rules: list[ViolationRule] = [rule for zone in camera.zones for rule in build_rules(zone, camera.rules)]
        self._use_gate = motion_gate
        self._gate: MotionGate | None = None
        self._last = Detections.empty().with_track_ids([])
        self._last_ctx: FrameContext | None = None
        self.stats = EngineStats()

    def _gate_for(self, frame: Frame) -> MotionGate:
        if self._gate is None or self._gate.frame_hw != (frame.height, frame.width):
            zones = {zone.name: zone.polygon for zone in self.camera.zones}
            self._gate = MotionGate(self.camera.motion, (frame.height, frame.width), zones or None)
        return self._gate

    def process(self, frame: Frame) -> FrameResult:
        """Run one frame through gate, detector, tracker and rules."""
        infer = True
        if self._use_gate:
            gate = self._gate_for(frame)
            infer = gate.update(frame.image, frame.captured_at).should_infer
            if not infer and any(rule.needs_every_frame for rule in self.rules):
                infer = True
                gate.note_inference(frame.captured_at)
        if infer:
            tracked = self.tracker.update(self.detector.detect_one(frame.image))
            self._last = tracked
            self.stats.inferred += 1
        else:
            self.tracker.coast()
            tracked = self._last
        self.stats.frames += 1
        ctx = FrameContext(
            frame=frame,
            detections=tracked,
            inferred=infer,
            names=self.detector.names,
            fps=self.fps,
            model_id=self.detector.info.sha256,
        )
        self._last_ctx = ctx
        violations = [v for rule in self.rules for v in rule.step(ctx)]
        self._count(violations)
        return FrameResult(frame.index, infer, tracked, violations)

    def finish(self) -> list[Violation]:
        """The stream ended: close every open event at the last frame seen."""
        if self._last_ctx is None:
            return []
        violations = [v for rule in self.rules for v in rule.finish(self._last_ctx)]
        self._count(violations)
        return violations

    def _count(self, violations: list[Violation]) -> None:
        for v in violations:
            if v.closed:
                self.stats.violations_closed += 1
            else:
                self.stats.violations_opened += 1

"""Running the engine over recorded footage, and the synthetic event-evaluation suite.

`analyze_source` plays a video or image folder through one camera's engine and writes
`violations.jsonl` (one `Violation.to_record()` a line: open records as events are
confirmed, closed records when they end). `run_synthetic_suite` renders a fixed set of
synthetic scenes (a third of them distractor-only), analyses each with a camera
configured from the scene's layout, and scores the events against exact truth.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from datasets.synthetic import SceneSpec, SceneTruth, sample_scene_spec, write_video
from evidence.vault import Vault
from models.evaluate_events import EventReport, evaluate_files
from pipelines.sealing import seal_recorded_violation
from pipelines.sources import FileSource
from vision.camera import CameraConfig
from vision.detectors import Detector
from vision.engine import Engine, EngineStats
from vision.types import Frame
from vision.zones import ZoneConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisReport:
    violations_path: Path
    stats: EngineStats
    closed: int
    packages: tuple[str, ...] = ()


def analyze_frames(frames: Iterator[Frame], engine: Engine, out_dir: Path) -> AnalysisReport:
    """Feed `frames` to `engine`; write every violation record to `out_dir/violations.jsonl`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "violations.jsonl"
    closed = 0
    with path.open("w", encoding="utf-8") as out:
        for frame in frames:
            for violation in engine.process(frame).violations:
                out.write(json.dumps(violation.to_record(), ensure_ascii=False) + "\n")
                closed += violation.closed
        for violation in engine.finish():
            out.write(json.dumps(violation.to_record(), ensure_ascii=False) + "\n")
            closed += violation.closed
    return AnalysisReport(path, engine.stats, closed)


def analyze_source(
    source: FileSource,
    camera: CameraConfig,
    detector: Detector,
    out_dir: Path,
    *,
    motion_gate: bool = True,
    vault: Vault | None = None,
) -> AnalysisReport:
    """Run the camera's engine over a recorded source; with a `vault`, seal every closed violation."""
    fps = source.fps if source.kind == "video" else camera.fps
    engine = Engine(camera, detector, fps=fps, motion_gate=motion_gate)
    report = analyze_frames(iter(source), engine, out_dir)
    if vault is None or source.kind != "video":
        return report
    packages = []
    for line in report.violations_path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["closed"]:
            logged = seal_recorded_violation(vault, record, source.path, camera, fps)
            packages.append(logged.package.package_id)
    return AnalysisReport(report.violations_path, report.stats, report.closed, tuple(packages))


# --- the synthetic suite ---------------------------------------------------------------

#: scene seeds of the suite; fixed so that a fresh clone reproduces the figures
SUITE_SEED = 20261127
#: dwell before a stall or a scaffold counts, shortened to fit 8-second scenes
SUITE_DWELL_S = 2.0


def suite_specs(
    count: int, *, distractor_s: float = 8.0, distractor_fps: float = 15.0, seed: int = SUITE_SEED
) -> list[SceneSpec]:
    """`count` scenes: a third distractor-only, the rest the three event presets and sampled mixes.

    Distractor scenes can be made longer (at a camera-like decode rate) so that false
    events per hour rest on enough footage.
    """
    specs: list[SceneSpec] = []
    presets = ("restaurant_street", "sidewalk_stall", "construction_site")
    for i in range(count):
        scene_seed = seed + i
        if i % 3 == 2:
            specs.append(SceneSpec.distractor_only(seed=scene_seed, duration_s=distractor_s, fps=distractor_fps))
        elif i % 3 == 0:
            specs.append(getattr(SceneSpec, presets[(i // 3) % 3])(seed=scene_seed))
        else:
            specs.append(sample_scene_spec(scene_seed))
    return specs


def synthetic_camera(name: str, truth: SceneTruth, source: str) -> CameraConfig:
    """A camera configured as an officer would for this street: where the sidewalk and
    road are, where exhausts may vent (the building fronts and the sky above them), and
    where a site is watched (the whole view)."""
    facade, sky = truth.zones["facade"], truth.zones["sky"]
    sidewalk, road = truth.zones["sidewalk"], truth.zones["road"]
    xs = [p[0] for p in facade + sky]
    top = min(p[1] for p in sky)
    bottom = max(p[1] for p in facade)
    street_top = min(p[1] for p in sidewalk)
    street_bottom = max(p[1] for p in road)
    left, right = min(xs), max(xs)
    zones = [
        ZoneConfig(
            name="exhausts",
            polygon=((left, top), (right, top), (right, bottom), (left, bottom)),
            rule="fume_watch",
            classes=("smoke",),
            anchor="center",
            inertia=1,
        ),
        ZoneConfig(
            name="street",
            polygon=((left, street_top), (right, street_top), (right, street_bottom), (left, street_bottom)),
            rule="no_occupation",
            classes=("stall", "umbrella", "goods"),
            min_dwell_s=SUITE_DWELL_S,
        ),
        ZoneConfig(
            name="site",
            polygon=((left, top), (right, top), (right, street_bottom), (left, street_bottom)),
            rule="construction_watch",
            classes=("scaffolding", "machinery"),
            min_dwell_s=SUITE_DWELL_S,
        ),
    ]
    return CameraConfig(id=name, name=name, source=source, fps=truth.fps, zones=tuple(zones))


def run_synthetic_suite(
    detector: Detector,
    out_dir: Path,
    *,
    scenes: int = 30,
    distractor_s: float = 8.0,
    distractor_fps: float = 15.0,
    seed: int = SUITE_SEED,
) -> EventReport:
    """Render, analyse and score the suite; files land under `out_dir` (truth/ and pred/)."""
    truth_dir, pred_dir = out_dir / "truth", out_dir / "pred"
    truth_dir.mkdir(parents=True, exist_ok=True)
    for i, spec in enumerate(suite_specs(scenes, distractor_s=distractor_s, distractor_fps=distractor_fps, seed=seed)):
        name = f"{i:03d}-{spec.name}-{spec.seed}"
        video = truth_dir / f"{name}.mp4"
        truth = write_video(spec, video)
        camera = synthetic_camera(name, truth, str(video))
        report = analyze_source(FileSource(video, source_id=name), camera, detector, pred_dir / name)
        logger.info(
            "%s: %d frames, %.0f%% gated, %d events", name, report.stats.frames, 100 * report.stats.gated_fraction,
            report.closed,
        )  # fmt: skip
    return evaluate_files(truth_dir, pred_dir)

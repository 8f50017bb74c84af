"""Whole camera step (issue 3): frames per second per core with and without the motion gate.

One camera's engine (motion gate, starter detector, tracker, zone rules) over rendered
synthetic street scenes at a camera's decode rate, once with the motion gate and once
running the detector on every frame (the baseline), in the same run. ONNX Runtime and
numba are pinned to one thread, so frames per second is per core. Reports the fraction of
frames the gate skipped and the violations each run found (the gate must not change them).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

from datasets.synthetic import SceneSpec, SyntheticScene
from nonsite.analyze import synthetic_camera
from nonsite.starter import starter_model_path
from vision.detectors import create_detector
from vision.engine import Engine
from vision.types import Frame

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def scenes(fps: float, seconds: float) -> list[SceneSpec]:
    """A typical street: a stall scene, a plume scene, a site, and a quiet street with distractors."""
    return [
        SceneSpec.sidewalk_stall(seed=11, fps=fps, duration_s=seconds),
        SceneSpec.restaurant_street(seed=12, fps=fps, duration_s=seconds),
        SceneSpec.construction_site(seed=13, fps=fps, duration_s=seconds),
        SceneSpec.distractor_only(seed=14, fps=fps, duration_s=seconds),
    ]


def render(spec: SceneSpec) -> tuple[list[Frame], object]:
    scene = SyntheticScene(spec)
    truth = scene.scene_truth()
    frames = [
        Frame(scene.render(i)[0], spec.name, i, T0 + timedelta(seconds=i / spec.fps)) for i in range(spec.frame_count)
    ]
    return frames, truth


def run(frames: Sequence[Frame], camera, detector, fps: float, gate: bool) -> tuple[float, float, int]:
    engine = Engine(camera, detector, fps=fps, motion_gate=gate)
    started = time.perf_counter()
    found = sum(v.closed for f in frames for v in engine.process(f).violations)
    found += sum(v.closed for v in engine.finish())
    return time.perf_counter() - started, engine.stats.gated_fraction, found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fps", type=float, default=5.0, help="camera decode rate of the scenes (default 5)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each scene (default 60)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each mode per scene (default 3)")
    args = parser.parse_args(argv)
    detector = create_detector(
        {"type": "onnx_yolo", "path": starter_model_path(), "intra_op_threads": 1, "max_batch": 1}
    )
    print(f"camera step benchmark, {datetime.now(UTC).isoformat(timespec='seconds')}")
    print(f"machine   {platform.processor() or platform.machine()}, {os.cpu_count()} cores; one thread per run")
    print(f"model     {starter_model_path().name} (640x360 frames run as 640x384)")
    print(f"scenes    {args.seconds:.0f} s at {args.fps:g} fps each, {args.repeats} runs per mode, median\n")
    print(f"{'scene':20} {'gated':>6} {'fps gated':>10} {'fps every frame':>16} {'speed-up':>9} {'violations':>11}")
    totals = {True: 0.0, False: 0.0}
    frames_total = 0
    for spec in scenes(args.fps, args.seconds):
        frames, truth = render(spec)
        camera = synthetic_camera(spec.name, truth, "synthetic")  # type: ignore[arg-type]
        times: dict[bool, list[float]] = {True: [], False: []}
        gated, found = 0.0, {}
        for _ in range(args.repeats):
            for gate in (True, False):
                seconds, fraction, count = run(frames, camera, detector, args.fps, gate)
                times[gate].append(seconds)
                found[gate] = count
                if gate:
                    gated = fraction
        median = {g: statistics.median(t) for g, t in times.items()}
        for g in totals:
            totals[g] += median[g]
        frames_total += len(frames)
        print(
            f"{spec.name:20} {gated:6.0%} {len(frames) / median[True]:10.1f} {len(frames) / median[False]:16.1f} "
            f"{median[False] / median[True]:8.2f}x {found[True]:5d} / {found[False]:<5d}"
        )
    print(
        f"{'all':20} {'':6} {frames_total / totals[True]:10.1f} {frames_total / totals[False]:16.1f} "
        f"{totals[False] / totals[True]:8.2f}x"
    )
    print("\nviolations: closed events with the gate / without it (the gate must not lose any)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Structural-change rule benchmark: what `StructuralChangeRule.step` adds per frame.

The rule runs on every frame of a construction_watch zone (on by default), so its cost
is paid by every such camera whether or not the detector runs. The baseline is the other
cheap per-frame stage, measured side by side on the same frames in the same run: the
motion gate (`vision.motion.MotionGate.update`, default `MotionConfig`, the same zone),
which also shrinks every frame and compares it with a background. The ratio rule / gate
says how much the rule adds over that.

Frames: `SceneSpec.structure_going_up` (seed 2: a hoarding goes up while people and a car
pass) rendered at 640x360 and 1280x720, 5 fps, 24 s; the labelled objects' truth boxes are
the detections, as in `nonsite eval structures`. Each round feeds a fresh rule and a fresh
gate the whole scene in order (the order of the two calls alternates frame by frame);
only frames after the rule's 2 s reference are timed (`time.perf_counter_ns`), after one
untimed warm-up round. One thread (OpenCV and numba pinned). Medians and p90 in ms.

    .venv/bin/python benchmarks/bench_structural.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import platform
import time
from pathlib import Path

import cv2
import numba
import numpy as np

from datasets.synthetic import SYNTHETIC_CLASSES, SceneSpec, SyntheticScene
from nonsite.structures import CLOCK_ORIGIN, site_zone
from vision.motion import MotionConfig, MotionGate
from vision.rules import FrameContext, RulesConfig, StructuralChangeRule
from vision.types import Frame

SIZES = ((640, 360), (1280, 720))
SEED = 2
FPS = 5.0


def render(width: int, height: int, duration_s: float) -> tuple[SyntheticScene, list[FrameContext]]:
    """The scene's frames as rule contexts (truth boxes as detections), rendered once, outside the timing."""
    scene = SyntheticScene(SceneSpec.structure_going_up(seed=SEED, width=width, height=height, fps=FPS,
                                                        duration_s=duration_s))  # fmt: skip
    contexts = []
    for i in range(scene.frame_count):
        image, truth = scene.render(i)
        at = CLOCK_ORIGIN + dt.timedelta(seconds=i / FPS)
        frame = Frame(image, "bench", i, at)
        contexts.append(FrameContext(frame, truth.to_detections(), True, SYNTHETIC_CLASSES, FPS, "truth"))
    return scene, contexts


def one_round(scene: SyntheticScene, contexts: list[FrameContext], skip: int) -> tuple[list[float], list[float], int]:
    """Feed a fresh rule and gate every frame; (rule ms, gate ms) for frames from `skip` on, and events closed."""
    zone = site_zone(scene)
    params = RulesConfig()
    rule = StructuralChangeRule(zone, params)
    h, w = contexts[0].frame.image.shape[:2]
    gate = MotionGate(MotionConfig(), (h, w), {zone.name: zone.polygon})
    rule_ms, gate_ms = [], []
    events = 0
    for i, ctx in enumerate(contexts):
        image, at = ctx.frame.image, ctx.frame.captured_at
        if i % 2:
            t0 = time.perf_counter_ns()
            gate.update(image, at)
            t1 = time.perf_counter_ns()
            events += sum(v.closed for v in rule.step(ctx))
            t2 = time.perf_counter_ns()
            g, r = t1 - t0, t2 - t1
        else:
            t0 = time.perf_counter_ns()
            events += sum(v.closed for v in rule.step(ctx))
            t1 = time.perf_counter_ns()
            gate.update(image, at)
            t2 = time.perf_counter_ns()
            r, g = t1 - t0, t2 - t1
        if i >= skip:
            rule_ms.append(r / 1e6)
            gate_ms.append(g / 1e6)
    events += sum(v.closed for v in rule.finish(contexts[-1]))
    return rule_ms, gate_ms, events


def stats(samples: list[float]) -> tuple[float, float]:
    a = np.asarray(samples)
    return float(np.median(a)), float(np.percentile(a, 90))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: a shorter scene and fewer rounds")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    numba.set_num_threads(1)
    duration_s, rounds = (6.0, 2) if args.quick else (24.0, 10)
    skip = round(RulesConfig().construction.reference_s * FPS) + 1

    print(f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    print(f"machine: {cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.machine()}")
    versions = ", ".join(f"{p} {importlib.metadata.version(p)}" for p in ("numpy", "numba", "opencv-python-headless"))
    print(f"versions: Python {platform.python_version()}, {versions}")
    print(
        f"frames: structure_going_up seed {SEED}, {duration_s:g} s at {FPS:g} fps, frames {skip}+ timed, "
        f"{rounds} rounds after 1 warm-up; one thread\n"
    )
    print(
        "| frame | frames timed | `StructuralChangeRule.step` median (p90) | `MotionGate.update` median (p90) "
        "| rule / gate | events |"
    )
    print("|---|---|---|---|---|---|")
    for width, height in SIZES:
        scene, contexts = render(width, height, duration_s)
        one_round(scene, contexts, skip)  # warm-up: numba compiles the gate's kernels
        rule_all: list[float] = []
        gate_all: list[float] = []
        events = 0
        for _ in range(rounds):
            rule_ms, gate_ms, events = one_round(scene, contexts, skip)
            rule_all += rule_ms
            gate_all += gate_ms
        (rm, rp), (gm, gp) = stats(rule_all), stats(gate_all)
        print(
            f"| {width}x{height} | {len(rule_all)} | {rm:.3f} ({rp:.3f}) | {gm:.3f} ({gp:.3f}) | {rm / gm:.2f}× "
            f"| {events} per round |"
        )


if __name__ == "__main__":
    main()

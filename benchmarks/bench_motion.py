"""Motion-gate benchmark (issue 3): nonsite's fused kernel against the OpenCV calls it replaces.

Issue 3's floor: "the motion gate (≤ 0.1 ms per 1080p frame once downscaled)". A 1080p
frame's cost is split in two:

(a) downscaling: `MotionGate.downscale` (grey at full resolution, INTER_AREA resize by the
    whole factor 9 to 213×120, 3×3 Gaussian blur), beside the straightforward
    `cv2.resize(frame, (213, 120), INTER_AREA)` of the BGR frame, then grey and blur;
(b) everything per pixel once downscaled: the fused Numba pass (difference, threshold,
    background update, changed-pixel counts per zone) against Frigate's OpenCV sequence on
    the same downscaled frames and the same zones: `cv2.convertScaleAbs` of the float
    background, `cv2.absdiff`, `cv2.threshold`, `cv2.accumulateWeighted`, then
    `cv2.countNonZero` of the mask and of `cv2.bitwise_and(mask, zone_mask)` per zone.
    The floor applies to nonsite's figure here.

(b+) the whole gate once downscaled: `MotionGate.update_downscaled` (the kernel, the lighting
    check, blob labelling and boxes when anything changed, the decision), against the OpenCV
    sequence followed by `cv2.connectedComponentsWithStats` when anything changed. The floor
    is checked against this figure, the stricter reading of "the motion gate".

Whole `MotionGate.update` calls (a + b+) are timed too.
Frames are synthetic 1920×1080 street-like scenes with sensor noise and, in the "moving"
set, a few objects moving through them (about 1-3% of pixels change per frame). Everything
runs on one thread (OpenCV and numba pinned), timed with `time.perf_counter_ns` after
untimed warm-ups, the competitors interleaved call by call; medians and p90 are in ms.

    .venv/bin/python benchmarks/bench_motion.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import platform
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numba
import numpy as np

from vision.motion import MotionConfig, MotionGate, _motion_kernel

SRC_HW = (1080, 1920)
FLOOR_MS = 0.1
#: zone layouts: a sidewalk pair, and a busier camera with eight zones
ZONE_SETS: dict[str, dict[str, list[list[int]]]] = {
    "2 zones": {
        "sidewalk_north": [[0, 500], [1920, 420], [1920, 620], [0, 700]],
        "sidewalk_south": [[0, 850], [1920, 760], [1920, 1080], [0, 1080]],
    },
    "8 zones": {
        f"zone_{i}": [[i * 240, 300 + 40 * (i % 3)], [i * 240 + 230, 300], [i * 240 + 230, 1000], [i * 240, 1060]]
        for i in range(8)
    },
}


def make_frames(n: int, moving: bool, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = SRC_HW
    yy, xx = np.mgrid[0:h, 0:w]
    base = (50 + 0.05 * xx + 0.08 * yy).astype(np.float32)
    scene = np.repeat(base[..., None], 3, axis=2)
    for _ in range(40):
        x, y = rng.integers(0, w - 200), rng.integers(0, h - 150)
        scene[y : y + 150, x : x + 200] = rng.integers(20, 230, 3)
    frames = []
    for i in range(n):
        frame = scene.copy()
        if moving:
            for k in range(3):
                left = (200 + 25 * i + 500 * k) % (w - 160)
                top = 450 + 200 * k
                frame[top : top + 180, left : left + 120] = (230, 200 - 50 * k, 40 + 60 * k)
        frame += rng.normal(0, 3.0, frame.shape).astype(np.float32)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t) / 1e6


def stats(samples: list[float]) -> tuple[float, float]:
    a = np.asarray(samples)
    return float(np.median(a)), float(np.percentile(a, 90))


def downscale_plain(image: np.ndarray, small_hw: tuple[int, int]) -> np.ndarray:
    """Resize the colour frame straight to the motion size (a fractional factor), then grey."""
    small = cv2.resize(image, (small_hw[1], small_hw[0]), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (3, 3), 0)


class OpenCvMotion:
    """Frigate's per-frame OpenCV sequence, with a mask per zone for the counts."""

    def __init__(self, first: np.ndarray, zone_masks: list[np.ndarray], threshold: int, alpha: float) -> None:
        self.avg = first.astype(np.float32)
        self.zone_masks = zone_masks
        self.threshold, self.alpha = threshold, alpha

    def step(self, grey: np.ndarray) -> tuple[int, list[int]]:
        delta = cv2.absdiff(grey, cv2.convertScaleAbs(self.avg))
        mask = cv2.threshold(delta, self.threshold, 255, cv2.THRESH_BINARY)[1]
        cv2.accumulateWeighted(grey, self.avg, self.alpha)
        counts = [cv2.countNonZero(cv2.bitwise_and(mask, z)) for z in self.zone_masks]
        return cv2.countNonZero(mask), counts

    def step_with_blobs(self, grey: np.ndarray) -> list[tuple[int, int, int, int]]:
        """The same, plus what the gate adds when anything changed: blobs and their boxes."""
        delta = cv2.absdiff(grey, cv2.convertScaleAbs(self.avg))
        mask = cv2.threshold(delta, self.threshold, 1, cv2.THRESH_BINARY)[1]
        cv2.accumulateWeighted(grey, self.avg, self.alpha)
        [cv2.countNonZero(cv2.bitwise_and(mask, z)) for z in self.zone_masks]
        if not cv2.countNonZero(mask):
            return []
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        return [(x, y, x + w, y + h) for x, y, w, h, area in stats[1:n].tolist() if area >= 4]


def bench_set(zones: dict[str, list[list[int]]], frames: list[np.ndarray], rounds: int) -> dict[str, list[float]]:
    config = MotionConfig()
    gate = MotionGate(config, SRC_HW, zones)
    greys = [gate.downscale(f) for f in frames]
    bits = gate._zone_bits
    zone_masks = [(((bits >> np.uint64(k)) & np.uint64(1)) * 255).astype(np.uint8) for k in range(len(zones))]
    background = greys[0].astype(np.float32)
    changed = np.zeros(gate.small_hw, np.uint8)
    counts = np.zeros(len(zones), np.int64)
    opencv = OpenCvMotion(greys[0], zone_masks, config.threshold, config.alpha)
    opencv_gate = OpenCvMotion(greys[0], zone_masks, config.threshold, config.alpha)

    def kernel(g: np.ndarray) -> int:
        return int(_motion_kernel(g, background, bits, config.threshold, config.alpha, changed, counts))

    # the two agree on what changed (up to the uint8 rounding of OpenCV's background)
    total_nb, total_cv = kernel(greys[1]), opencv.step(greys[1])[0]
    assert abs(total_nb - total_cv) <= max(10, 0.05 * total_cv), (total_nb, total_cv)

    names = ("downscale", "plain", "kernel", "opencv", "after", "opencv_gate", "update")
    times: dict[str, list[float]] = {k: [] for k in names}
    update_gate, after_gate = MotionGate(config, SRC_HW, zones), MotionGate(config, SRC_HW, zones)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for r in range(rounds):
        for i, (frame, grey) in enumerate(zip(frames, greys, strict=True)):
            order = [
                ("downscale", lambda f=frame: gate.downscale(f)),
                ("plain", lambda f=frame: downscale_plain(f, gate.small_hw)),
                ("kernel", lambda g=grey: kernel(g)),
                ("opencv", lambda g=grey: opencv.step(g)),
            ]
            k = (r * len(frames) + i) % len(order)
            for name, fn in order[k:] + order[:k]:
                times[name].append(timed(fn))
            # the gates keep state from frame to frame, so they run in sequence, not rotated
            at = start + dt.timedelta(seconds=(r * len(frames) + i) / 5)
            times["after"].append(timed(partial(after_gate.update_downscaled, grey, at)))
            times["opencv_gate"].append(timed(partial(opencv_gate.step_with_blobs, grey)))
            times["update"].append(timed(partial(update_gate.update, frame, at)))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer frames and rounds")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    numba.set_num_threads(1)
    n_frames, rounds, warm = (8, 3, 1) if args.quick else (24, 20, 2)

    print(f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    print(f"machine: {cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.machine()}")
    versions = ", ".join(f"{p} {importlib.metadata.version(p)}" for p in ("numpy", "numba", "opencv-python-headless"))
    print(f"versions: Python {platform.python_version()}, {versions}")
    print(f"frames: {n_frames} synthetic {SRC_HW[1]}x{SRC_HW[0]} per set, {rounds} rounds; one thread\n")

    print(
        "| frames | zones | (a) nonsite downscale | plain BGR `cv2.resize` + grey | (b) nonsite kernel "
        "| OpenCV baseline | × | (b+) nonsite `update_downscaled` | OpenCV + `connectedComponentsWithStats` | × "
        "| whole `update` | floor ≤ 0.1 ms after downscale |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    verdicts = []
    for moving in (False, True):
        frames = make_frames(n_frames, moving, seed=int(moving))
        for label, zones in ZONE_SETS.items():
            bench_set(zones, frames, warm)  # compile, fill caches
            t = {k: stats(v) for k, v in bench_set(zones, frames, rounds).items()}
            kernel_ms, after_ms = t["kernel"][0], t["after"][0]
            ok = after_ms <= FLOOR_MS
            verdicts.append(ok)

            def cell(name: str, t: dict[str, tuple[float, float]] = t, bold: bool = False) -> str:
                m, p90 = t[name]
                return f"**{m:.4f}** ({p90:.4f})" if bold else f"{m:.4f} ({p90:.4f})"

            print(
                f"| {'moving' if moving else 'static'} | {label} | {cell('downscale')} | {cell('plain')} | "
                f"{cell('kernel', bold=True)} | {cell('opencv')} | {t['opencv'][0] / kernel_ms:.2f}× | "
                f"{cell('after', bold=True)} | {cell('opencv_gate')} | {t['opencv_gate'][0] / after_ms:.2f}× | "
                f"{cell('update')} | {'PASS' if ok else 'FAIL'} |"
            )
    gate = MotionGate(MotionConfig(), SRC_HW, ZONE_SETS["2 zones"])
    print(f"\nmotion image: {gate.small_hw[1]}x{gate.small_hw[0]} px")
    print(f"floor: whole gate after downscaling (b+) ≤ {FLOOR_MS} ms: {'PASS' if all(verdicts) else 'FAIL'}")


if __name__ == "__main__":
    main()

"""Tracker benchmark (issue 3): nonsite's `ByteTracker` against supervision's `sv.ByteTrack`.

Issue 3 asks for a tracker at least 3× faster per frame than supervision's ByteTrack at 50
objects, with as few or fewer id switches. Both trackers get identical synthetic detection
streams with 5, 50 and 200 objects in a 1920×1080 frame:

- objects move at constant velocity (up to 8 px a frame), bounce off the frame's edges,
  and wobble by Gaussian noise (1 px on each coordinate);
- a detection goes missing with probability 0.08, and each object now and then
  disappears for 3 to 12 frames in a row (an occlusion);
- scores are drawn from 0.3 to 1.0, so a good share falls below the 0.5 high threshold and
  only ByteTrack's second association can keep those tracks;
- a few clutter boxes per frame with low scores.

Both trackers run with the same settings: high threshold 0.5, tracks start at 0.6, first
association at a cost of at most 0.8, 30 frames of patience, a track reported from its
second hit. nonsite runs three ways: its defaults (class-aware: the stream has 3 classes),
class-blind, and class-blind with IoU weighted by score (`fuse_score`), which is how
supervision's ByteTrack matches (it ignores classes and fuses scores into the first and
third associations). The floor is judged on nonsite's defaults; the other rows show what
the class information is worth.

Per-frame `update` time is measured with `time.perf_counter` after a warm-up pass over
the same stream (numba compiles there), the trackers interleaved stream by stream;
medians and p90 are shown. Id switches count, for every truth object, each time the track
id reported with its detection differs from the one it had last time it was reported.
"Reported" is the share of the stream's detections that come back with a track id.

boxmot's ByteTrack is not run: boxmot 25.0.0 requires opencv-python < 5 (the project uses
opencv-python-headless 5), pandas, pyarrow, scikit-learn, timm and huggingface-hub.

    .venv/bin/python benchmarks/bench_tracker.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.metadata
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vision.tracking import ByteTracker, TrackerConfig
from vision.types import Detections

FRAME_W, FRAME_H = 1920, 1080
OBJECT_COUNTS = (5, 50, 200)
SPEEDUP_FLOOR = 3.0
FLOOR_OBJECTS = 50
CLASSES = 3


@dataclass(frozen=True, slots=True)
class Stream:
    """A synthetic detection stream: per frame, the boxes, scores, classes and truth ids (-1: clutter)."""

    xyxy: list[np.ndarray]
    score: list[np.ndarray]
    class_id: list[np.ndarray]
    truth: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.xyxy)

    @property
    def detections(self) -> int:
        return int(sum(int((t >= 0).sum()) for t in self.truth))


def make_stream(objects: int, frames: int, seed: int) -> Stream:
    rng = np.random.default_rng(seed)
    wh = np.column_stack([rng.uniform(24, 90, objects), rng.uniform(40, 180, objects)])
    xy = rng.uniform([0, 0], [FRAME_W, FRAME_H], (objects, 2)) - wh / 2
    xy = np.clip(xy, 0, [FRAME_W, FRAME_H] - wh)
    speed, heading = rng.uniform(0, 8, objects), rng.uniform(0, 2 * np.pi, objects)
    velocity = np.column_stack([speed * np.cos(heading), speed * np.sin(heading)])
    classes = rng.integers(0, CLASSES, objects)
    hidden_until = np.zeros(objects, np.int64)
    stream = Stream([], [], [], [])
    for t in range(frames):
        xy = xy + velocity
        low, high = xy < 0, xy > [FRAME_W, FRAME_H] - wh
        velocity = np.where(low | high, -velocity, velocity)
        xy = np.clip(xy, 0, [FRAME_W, FRAME_H] - wh)
        start_hiding = (rng.random(objects) < 0.01) & (hidden_until <= t)
        hidden_until[start_hiding] = t + rng.integers(3, 13, int(start_hiding.sum()))
        seen = (rng.random(objects) > 0.08) & (hidden_until <= t)
        k = int(seen.sum())
        boxes = np.hstack([xy[seen], xy[seen] + wh[seen]]) + rng.normal(0, 1.0, (k, 4))
        clutter = int(rng.integers(0, 1 + max(1, objects // 20)))
        corner = rng.uniform([0, 0], [FRAME_W - 60, FRAME_H - 60], (clutter, 2))
        clutter_boxes = np.hstack([corner, corner + rng.uniform(10, 60, (clutter, 2))])
        order = rng.permutation(k + clutter)
        stream.xyxy.append(np.vstack([boxes, clutter_boxes]).astype(np.float32)[order])
        stream.score.append(
            np.concatenate([rng.uniform(0.3, 1.0, k), rng.uniform(0.1, 0.55, clutter)]).astype(np.float32)[order]
        )
        stream.class_id.append(
            np.concatenate([classes[seen], rng.integers(0, CLASSES, clutter)]).astype(np.int32)[order]
        )
        stream.truth.append(np.concatenate([np.flatnonzero(seen), np.full(clutter, -1)])[order])
    return stream


# --- the trackers, behind one interface: a frame in, (truth id, track id) pairs out ------


class Runner:
    name: str

    def reset(self) -> None:
        raise NotImplementedError

    def prepare(self, stream: Stream) -> list[object]:
        """Each frame as the tracker's own input type, built before timing."""
        raise NotImplementedError

    def step(self, frame: object) -> object:
        raise NotImplementedError

    def pairs(self, stream: Stream, t: int, out: object) -> list[tuple[int, int]]:
        raise NotImplementedError


class NonsiteRunner(Runner):
    def __init__(self, label: str, **settings: bool) -> None:
        self.name = f"nonsite `ByteTracker`, {label}"
        self.config = TrackerConfig(**settings)  # the defaults are the settings described above
        self.tracker = ByteTracker(self.config)

    def reset(self) -> None:
        self.tracker.reset()

    def prepare(self, stream: Stream) -> list[object]:
        return [Detections(b, s, c) for b, s, c in zip(stream.xyxy, stream.score, stream.class_id, strict=True)]

    def step(self, frame: object) -> object:
        assert isinstance(frame, Detections)
        return self.tracker.update(frame)

    def pairs(self, stream: Stream, t: int, out: object) -> list[tuple[int, int]]:
        assert isinstance(out, Detections) and out.track_id is not None
        row_of = {b: k for k, b in enumerate(map(tuple, stream.xyxy[t].tolist()))}
        rows = [row_of[b] for b in map(tuple, out.xyxy.tolist())]
        return list(zip(stream.truth[t][rows].tolist(), out.track_id.tolist(), strict=True))


class SupervisionRunner(Runner):
    def __init__(self) -> None:
        import supervision as sv

        self.sv = sv
        self.name = f"supervision {sv.__version__} `sv.ByteTrack`"
        self.tracker = self._make()

    def _make(self) -> object:
        with warnings.catch_warnings():  # deprecated in 0.28 for the `trackers` package; still ByteTrack
            warnings.simplefilter("ignore")
            return self.sv.ByteTrack(
                track_activation_threshold=0.5,
                lost_track_buffer=30,
                minimum_matching_threshold=0.8,
                frame_rate=30,
                minimum_consecutive_frames=1,  # its own rule: reported from the second hit
            )

    def reset(self) -> None:
        self.tracker = self._make()

    def prepare(self, stream: Stream) -> list[object]:
        return [
            self.sv.Detections(xyxy=b.copy(), confidence=s.copy(), class_id=c.copy(), data={"truth": tr.copy()})
            for b, s, c, tr in zip(stream.xyxy, stream.score, stream.class_id, stream.truth, strict=True)
        ]

    def step(self, frame: object) -> object:
        return self.tracker.update_with_detections(frame)  # type: ignore[attr-defined]

    def pairs(self, stream: Stream, t: int, out: object) -> list[tuple[int, int]]:
        truth = out.data.get("truth", np.empty(0, np.int64))  # type: ignore[attr-defined]
        return list(zip(np.asarray(truth).tolist(), np.asarray(out.tracker_id).tolist(), strict=True))  # type: ignore[attr-defined]


@dataclass(slots=True)
class Outcome:
    times_ms: list[float]
    switches: int
    reported: int


def run_once(runner: Runner, stream: Stream, frames: list[object], timed: bool) -> Outcome:
    runner.reset()
    times: list[float] = []
    last: dict[int, int] = {}
    switches = reported = 0
    clock: Callable[[], float] = time.perf_counter
    gc.collect()
    gc.disable()
    try:
        for t, frame in enumerate(frames):
            start = clock()
            out = runner.step(frame)
            if timed:
                times.append((clock() - start) * 1e3)
            for obj, track_id in runner.pairs(stream, t, out):
                if obj < 0:
                    continue
                reported += 1
                switches += obj in last and last[obj] != track_id
                last[obj] = track_id
    finally:
        gc.enable()
    return Outcome(times, switches, reported)


def versions() -> str:
    names = ("numpy", "numba", "scipy", "supervision", "pydantic")
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (absent)")
    return f"Python {platform.python_version()}, " + ", ".join(found)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f'"{cpu}", {os.cpu_count()} logical CPUs, {platform.system()} {platform.machine()}'


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short streams and one round: a smoke run")
    parser.add_argument("--frames", type=int, default=None, help="frames per stream (default 600, 60 with --quick)")
    parser.add_argument("--rounds", type=int, default=None, help="timed passes per stream (default 3, 1 with --quick)")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    frames = args.frames or (60 if args.quick else 600)
    rounds = args.rounds or (1 if args.quick else 3)

    print(f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}")
    print(f"versions: {versions()}")
    print(f"streams: {frames} frames each, seed {args.seed}; {rounds} timed round(s) after one warm-up pass\n")

    runners: list[Runner] = [
        NonsiteRunner("defaults (class-aware)"),
        NonsiteRunner("class_aware=False", class_aware=False),
        NonsiteRunner("class_aware=False, fuse_score=True", class_aware=False, fuse_score=True),
        SupervisionRunner(),
    ]
    print("| objects | tracker | median ms/frame (p90) | × vs nonsite | id switches | reported |")
    print("|---|---|---|---|---|---|")
    verdicts = []
    for objects in OBJECT_COUNTS:
        stream = make_stream(objects, frames, args.seed + objects)
        inputs = {r.name: r.prepare(stream) for r in runners}
        for r in runners:
            run_once(r, stream, inputs[r.name], timed=False)
        results: dict[str, Outcome] = {r.name: Outcome([], 0, 0) for r in runners}
        for round_ in range(rounds):
            order = runners[round_ % len(runners) :] + runners[: round_ % len(runners)]
            for r in order:
                outcome = run_once(r, stream, inputs[r.name], timed=True)
                results[r.name].times_ms.extend(outcome.times_ms)
                results[r.name].switches, results[r.name].reported = outcome.switches, outcome.reported
        base = float(np.median(results[runners[0].name].times_ms))
        for r in runners:
            res = results[r.name]
            median, p90 = float(np.median(res.times_ms)), float(np.percentile(res.times_ms, 90))
            share = res.reported / stream.detections
            print(
                f"| {objects} | {r.name} | {median:.3f} ({p90:.3f}) | {median / base:.2f}× | {res.switches} "
                f"| {share:.1%} |"
            )
        if objects == FLOOR_OBJECTS:
            ours, theirs = results[runners[0].name], results[runners[-1].name]
            speedup = float(np.median(theirs.times_ms)) / base
            verdicts.append(
                f"floor at {objects} objects: {speedup:.1f}× faster (need ≥ {SPEEDUP_FLOOR:.0f}×) "
                f"{'PASS' if speedup >= SPEEDUP_FLOOR else 'FAIL'}; id switches {ours.switches} vs "
                f"{theirs.switches} {'PASS' if ours.switches <= theirs.switches else 'FAIL'}"
            )
    print()
    for line in verdicts:
        print(line)


if __name__ == "__main__":
    main()

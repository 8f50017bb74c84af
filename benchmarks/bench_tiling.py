"""Sliced detection on a 20-megapixel drone photo (issue 8): images per minute, and what each way finds.

One nadir survey image (5472×3648, a Phantom 4 Pro's full frame, 100 m up: 2.7 cm per
pixel) rendered by `datasets.synthetic.survey` with street stalls and umbrellas whose
positions are known exactly, run through the shipped starter model (`models/zoo/
starter.onnx`, the `onnx_yolo` backend) three ways in the same process:

1. `detect_tiled`: 640-pixel tiles with 20% overlap, 8 tiles per ONNX Runtime run,
   merged by `merge_tiles` (the numba kernel).
2. whole image: the detector on the full frame, letterboxed down to 640 (what a camera
   pipeline does): one run, but a 2 m umbrella shrinks to about 8 pixels.
3. naive tiling: the same tiles, one at a time (batch of 1), boxes shifted and merged by a
   plain-Python greedy NMS: what a first implementation looks like.

Each call's time is also split into time inside the detector (letterbox, ONNX Runtime,
decode, NMS) and outside it (cropping, shifting, merging); and merging one image's tile
detections is timed on its own, `merge_tiles` against the shift + Python NMS, 50 times,
and again on about 500 and 3,000 random boxes over the same tiles (a busy market, or a
model with a low threshold), 20 times.

Timing is wall time per image with `time.perf_counter` after one untimed warm-up of each;
rounds interleave the three in a rotating order so drift on a shared machine falls on
all alike. ONNX Runtime picks its own thread count (all cores). Reports medians, p90,
images per minute, the ratios, the detections per class, and how many of the truth's
stalls and umbrellas in the frame each way found (a detection with IoU >= 0.3 against
the object's box; of its own class, and of any class).

    .venv/bin/python benchmarks/bench_tiling.py --out var/bench/tiling.json [--repeats 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from datasets.synthetic.survey import SurveyTruth, read_survey_truth, write_two_flight_survey
from nonsite.starter import starter_model_path
from vision.detectors import Detector, create_detector
from vision.geo import GroundProjector
from vision.geometry import box_iou_matrix
from vision.tiling import detect_tiled, merge_tiles, tile_grid
from vision.types import Detections

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "var" / "bench"
TILE, OVERLAP, BATCH, MERGE_IOU = 640, 0.2, 8, 0.5
SURVEY: dict[str, Any] = {"seed": 1, "altitude_m": 100.0, "area_m": (80.0, 60.0), "n_structures": 0, "n_stalls": 14}


def survey_image(cache: Path) -> tuple[np.ndarray, list[dict[str, Any]], str]:
    """The survey image with the most stalls in frame, and those stalls' boxes in its pixels."""
    folder = cache / "tiling-survey"
    truth: SurveyTruth = (
        read_survey_truth(folder) if (folder / "truth.json").is_file() else write_two_flight_survey(folder, **SURVEY)
    )
    best: tuple[int, Path, list[dict[str, Any]]] | None = None
    for path, shot in zip(truth.survey.images, truth.survey.shots, strict=True):
        projector = GroundProjector(shot)
        k = shot.intrinsics
        in_frame = []
        for stall in truth.stalls:
            ring = np.array([(lat, lon) for lon, lat in stall.polygon_lonlat])
            px = projector.latlons_to_pixels(ring)
            x1, y1 = px.min(axis=0)
            x2, y2 = px.max(axis=0)
            if x1 >= 0 and y1 >= 0 and x2 <= k.width_px and y2 <= k.height_px:
                in_frame.append(
                    {"id": stall.id, "kind": stall.kind, "xyxy": [float(x1), float(y1), float(x2), float(y2)]}
                )
        if best is None or len(in_frame) > best[0]:
            best = (len(in_frame), path, in_frame)
    if best is None:
        raise SystemExit(f"the survey in {folder} has no images")
    image = cv2.imread(str(best[1]))
    if image is None:
        raise SystemExit(f"cannot read {best[1]}")
    return image, best[2], str(best[1].relative_to(REPO) if best[1].is_relative_to(REPO) else best[1])


def python_nms(
    xyxy: Sequence[Sequence[float]], score: Sequence[float], class_id: Sequence[int], iou: float
) -> list[int]:
    """Greedy class-wise NMS in plain Python, best score first."""
    order = sorted(range(len(score)), key=lambda i: -score[i])
    kept: list[int] = []
    for i in order:
        a = xyxy[i]
        suppressed = False
        for k in kept:
            if class_id[k] != class_id[i]:
                continue
            b = xyxy[k]
            iw = min(a[2], b[2]) - max(a[0], b[0])
            ih = min(a[3], b[3]) - max(a[1], b[1])
            if iw > 0 and ih > 0:
                inter = iw * ih
                union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
                if inter / union > iou:
                    suppressed = True
                    break
        if not suppressed:
            kept.append(i)
    return kept


def shift_and_nms(tiles: Sequence[tuple[int, int, int, int]], per_tile: Sequence[Detections]) -> Detections:
    """The naive merge: boxes shifted to the image, then Python NMS over all of them."""
    boxes, scores, classes = [], [], []
    for (x0, y0, _, _), found in zip(tiles, per_tile, strict=True):
        for box, score, cls in zip(found.xyxy.tolist(), found.score.tolist(), found.class_id.tolist(), strict=True):
            boxes.append([box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0])
            scores.append(score)
            classes.append(cls)
    keep = python_nms(boxes, scores, classes, MERGE_IOU)
    if not keep:
        return Detections.empty()
    return Detections(np.array(boxes)[keep], np.array(scores)[keep], np.array(classes)[keep])


def naive_tiled(detector: Detector, image: np.ndarray) -> Detections:
    """One tile at a time, then `shift_and_nms`."""
    tiles = tile_grid(image.shape[0], image.shape[1], TILE, OVERLAP)
    per_tile = [detector.detect([image[y0:y1, x0:x1]])[0] for x0, y0, x1, y1 in tiles]
    return shift_and_nms(tiles, per_tile)


class TimedDetector(Detector):
    """Wraps a detector to add up the time spent inside it (letterbox, ONNX Runtime, decode, NMS)."""

    def __init__(self, inner: Detector) -> None:
        self.inner = inner
        self.info = inner.info
        self.inside_ms = 0.0
        self.last: list[Detections] = []

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        start = time.perf_counter()
        found = self.inner.detect(images)
        self.inside_ms += (time.perf_counter() - start) * 1e3
        self.last.extend(found)
        return found


def time_rounds(
    cases: dict[str, Callable[[], Detections]], repeats: int, detector: TimedDetector
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, Detections]]:
    """Wall time and time inside the detector per call, `repeats` rounds in a rotating order."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    inside: dict[str, list[float]] = {name: [] for name in cases}
    last: dict[str, Detections] = {}
    names = list(cases)
    for name in names:  # untimed warm-up
        last[name] = cases[name]()
    gc.collect()
    gc.disable()
    try:
        for r in range(repeats):
            for j in range(len(names)):
                name = names[(r + j) % len(names)]
                detector.inside_ms = 0.0
                start = time.perf_counter()
                last[name] = cases[name]()
                samples[name].append((time.perf_counter() - start) * 1e3)
                inside[name].append(detector.inside_ms)
    finally:
        gc.enable()
    return samples, inside, last


def time_merges(
    tiles: Sequence[tuple[int, int, int, int]], per_tile: Sequence[Detections], hw: tuple[int, int], reps: int
) -> dict[str, float]:
    """Median ms of merging one image's tile detections: the numba kernel against shift + Python NMS."""
    cases: dict[str, Callable[[], Detections]] = {
        "merge_tiles": lambda: merge_tiles(tiles, per_tile, hw, merge_iou=MERGE_IOU),
        "shift_and_python_nms": lambda: shift_and_nms(tiles, per_tile),
    }
    for run in cases.values():
        run()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(reps):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            samples[name].append((time.perf_counter() - start) * 1e3)
    return {name: round(float(np.median(ms)), 3) for name, ms in samples.items()}


def truth_found(found: Detections, truth: list[dict[str, Any]], names: tuple[str, ...]) -> tuple[int, int, dict]:
    """Truth objects matched by a detection of their own class, by one of any class (IoU >= 0.3), and by what."""
    if not truth or not len(found):
        return 0, 0, {}
    boxes = np.array([t["xyxy"] for t in truth], np.float32)
    iou = box_iou_matrix(boxes, found.xyxy)
    right = np.array([[names[c] == t["kind"] for c in found.class_id] for t in truth])
    matched_as = {
        t["id"]: sorted({names[int(c)] for c in found.class_id[iou[i] >= 0.3]})
        for i, t in enumerate(truth)
        if (iou[i] >= 0.3).any()
    }
    return int(((iou >= 0.3) & right).any(axis=1).sum()), int((iou >= 0.3).any(axis=1).sum()), matched_as


def random_tile_detections(tiles: Sequence[tuple[int, int, int, int]], n: int, seed: int) -> list[Detections]:
    """About `n` random boxes (5-60 px, 8 classes) spread over the tiles: merge cost as detections grow."""
    rng = np.random.default_rng(seed)
    per_tile = []
    for x0, y0, x1, y1 in tiles:
        k = int(rng.poisson(n / len(tiles)))
        xy = rng.uniform(0, [x1 - x0 - 5, y1 - y0 - 5], (k, 2))
        wh = rng.uniform(5, 60, (k, 2))
        box = np.c_[xy, np.minimum(xy + wh, [x1 - x0, y1 - y0])]
        per_tile.append(Detections(box, rng.uniform(0.25, 1.0, k), rng.integers(0, 8, k)))
    return per_tile


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON results")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per method (default 5)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the rendered survey is kept")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    image, truth, image_name = survey_image(args.cache)
    detector = TimedDetector(create_detector({"type": "onnx_yolo", "path": starter_model_path(), "max_batch": BATCH}))
    names = detector.names
    cases: dict[str, Callable[[], Detections]] = {
        "detect_tiled": lambda: detect_tiled(
            detector, image, tile=TILE, overlap=OVERLAP, batch=BATCH, merge_iou=MERGE_IOU
        ),
        "whole_image": lambda: detector.detect([image])[0],
        "naive_tiled": lambda: naive_tiled(detector, image),
    }
    n_tiles = len(tile_grid(image.shape[0], image.shape[1], TILE, OVERLAP))
    print(
        f"image     {image_name}: {image.shape[1]}x{image.shape[0]}, {n_tiles} tiles of {TILE} at {OVERLAP:.0%} overlap"
    )
    print(f"model     {starter_model_path().name} ({', '.join(names)}); {len(truth)} stalls/umbrellas in frame")
    samples, inside, last = time_rounds(cases, args.repeats, detector)
    tiles = tile_grid(image.shape[0], image.shape[1], TILE, OVERLAP)
    detector.last = []
    detect_tiled(detector, image, tile=TILE, overlap=OVERLAP, batch=BATCH)
    merges = time_merges(tiles, detector.last[: len(tiles)], (image.shape[0], image.shape[1]), reps=50)
    n_raw = sum(len(d) for d in detector.last[: len(tiles)])
    hw = (image.shape[0], image.shape[1])
    scaling = {str(n): time_merges(tiles, random_tile_detections(tiles, n, seed=n), hw, reps=20) for n in (500, 3000)}

    results: dict[str, Any] = {}
    for name, ms in samples.items():
        found = last[name]
        right, any_class, matched_as = truth_found(found, truth, names)
        median = float(np.median(ms))
        outside = [total - det for total, det in zip(ms, inside[name], strict=True)]
        results[name] = {
            "median_ms": round(median, 1),
            "p90_ms": round(float(np.percentile(ms, 90)), 1),
            "samples_ms": [round(v, 1) for v in ms],
            "inside_detector_median_ms": round(float(np.median(inside[name])), 1),
            "outside_detector_median_ms": round(float(np.median(outside)), 2),
            "images_per_min": round(60_000.0 / median, 2),
            "detections": len(found),
            "by_class": {
                names[c]: int(n) for c, n in enumerate(np.bincount(found.class_id, minlength=len(names))) if n
            },
            "truth_found_own_class": right,
            "truth_found_any_class": any_class,
            "truth_matched_as": matched_as,
        }
    tiled, naive, whole = (results[k]["median_ms"] for k in ("detect_tiled", "naive_tiled", "whole_image"))
    report = {
        "benchmark": "bench_tiling",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "image": {"file": image_name, "width": image.shape[1], "height": image.shape[0], "tiles": n_tiles},
        "settings": {"tile": TILE, "overlap": OVERLAP, "batch": BATCH, "merge_iou": MERGE_IOU, "repeats": args.repeats},
        "truth_in_frame": len(truth),
        "truth_kinds": {k: sum(t["kind"] == k for t in truth) for k in ("stall", "umbrella")},
        "methods": results,
        "merge_one_image": {"tile_detections": n_raw, **merges},
        "merge_random_boxes": scaling,
        "ratios": {
            "naive_over_tiled_time": round(naive / tiled, 3),
            "tiled_over_whole_time": round(tiled / whole, 3),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(
        f"{'method':14} {'median ms':>10} {'p90 ms':>9} {'outside':>8} {'img/min':>8} {'dets':>5} {'truth own/any':>14}"
    )
    for name, r in results.items():
        print(
            f"{name:14} {r['median_ms']:10.0f} {r['p90_ms']:9.0f} {r['outside_detector_median_ms']:8.1f} "
            f"{r['images_per_min']:8.2f} {r['detections']:5d} "
            f"{r['truth_found_own_class']:>6}/{r['truth_found_any_class']:<3} of {len(truth)}"
        )
    print(f"merging {n_raw} tile detections: {merges}; random boxes: {scaling}")
    print(f"naive/tiled time {naive / tiled:.2f}x, tiled/whole time {tiled / whole:.1f}x; wrote {args.out}")


if __name__ == "__main__":
    main()

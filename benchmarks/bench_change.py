"""Change-detection benchmark (issue 8): seconds per drone image pair, with baselines in the same run.

One synthetic drone-sized pair (5472×3648, a 20 MP survey camera): rooftops drawn at a
quarter of the size and enlarged, fine texture added at full size; the after survey is
the same canvas under other light (gamma 0.85, gain 1.15, bluer white balance, noise),
rotated 3° and shifted and zoomed by a known homography, with three new sheds
(about 80-300 m² at the assumed 2.5 cm/px). Timed per round, after an untimed warm-up
(Numba compiles):

- the method: `register_pair` (SIFT on images shrunk to 1600 px), `warp_to` at full
  size, `change_mask` (compares at 2048 px), `change_regions` on the full-size mask
  with both images; their sum is the seconds per pair;
- registration baselines on the same pair: SIFT on the full-size images (what the
  shrinking saves, and what it costs in accuracy) and ORB at 1600 px (the faster
  detector); each with the homography's worst corner error against the truth;
- a change-mask baseline: change vector analysis + Otsu (the Euclidean BGR distance,
  `models.evaluate_change.cva_otsu_mask`) on the same warped pair at full size; with
  each mask's IoU per shed and false-positive share of the image.

One thread (OpenCV and Numba pinned) unless --threads says otherwise; medians over the
rounds; the full-size SIFT baseline runs once (it is slow).

    .venv/bin/python benchmarks/bench_change.py --out var/bench/change.json [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numba
import numpy as np

from models.evaluate_change import cva_otsu_mask
from vision.change import Registration, change_mask, change_regions, register_pair, warp_to

SIZE = (5472, 3648)  # width, height
GSD_M = 0.025
#: new sheds in before-image pixels at full size: x, y, w, h, BGR
SHEDS: tuple[tuple[int, int, int, int, tuple[int, int, int]], ...] = (
    (1200, 900, 560, 400, (40, 120, 200)),
    (3900, 2500, 700, 700, (235, 235, 235)),
    (2800, 1300, 800, 380, (160, 80, 70)),
)


def synthesize(width: int, height: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """(before, after, truth homography after → before, shed masks)."""
    rng = np.random.default_rng(seed)
    margin = width // 8
    quarter = ((height + 2 * margin) // 4, (width + 2 * margin) // 4)
    canvas: np.ndarray = np.empty((*quarter, 3), np.float32)
    canvas[:] = (118, 122, 128)
    for _ in range(int(quarter[0] * quarter[1] / 3400)):
        x, y = int(rng.integers(-20, quarter[1])), int(rng.integers(-20, quarter[0]))
        bw, bh = int(rng.integers(25, 110)), int(rng.integers(25, 110))
        colour = rng.uniform(60, 210, 3)
        colour[1] = min(colour[1], (colour[0] + colour[2]) / 2 + 10)
        cv2.rectangle(canvas, (x, y), (x + bw, y + bh), colour.tolist(), -1)
        cv2.line(canvas, (x, y + bh // 2), (x + bw, y + bh // 2), (colour * 0.7).tolist(), 2)
        for _ in range(int(rng.integers(1, 4))):
            ux, uy = x + int(rng.integers(0, max(1, bw - 8))), y + int(rng.integers(0, max(1, bh - 8)))
            cv2.rectangle(canvas, (ux, uy), (ux + 6, uy + 6), rng.uniform(40, 240, 3).tolist(), -1)
    full = (width + 2 * margin, height + 2 * margin)
    canvas = cv2.resize(canvas, full, interpolation=cv2.INTER_CUBIC)
    canvas += rng.normal(0, 5, (*canvas.shape[:2], 1)).astype(np.float32)  # roofing grain at full size
    canvas = np.clip(canvas, 0, 255).astype(np.uint8)
    before = canvas[margin : margin + height, margin : margin + width].copy()
    later = canvas
    scale = width / SIZE[0]
    masks = []
    for *box, shed_colour in SHEDS:
        x, y, w, h = (round(v * scale) for v in box)
        cv2.rectangle(later, (x + margin, y + margin), (x + margin + w - 1, y + margin + h - 1), shed_colour, -1)
        m = np.zeros((height, width), bool)
        m[y : y + h, x : x + w] = True
        masks.append(m)
    f = (later.astype(np.float32) / 255) ** 0.85 * 1.15 * np.array([1.08, 1.0, 0.92], np.float32) + 12 / 255
    later = np.clip(f * 255 + rng.normal(0, 3, f.shape), 0, 255).astype(np.uint8)
    a = np.radians(3.0)
    c, s = np.cos(a) * 1.02, np.sin(a) * 1.02
    cx, cy = width / 2, height / 2
    truth = np.array(
        [
            [c, -s, cx - c * cx + s * cy + 60 * scale],
            [s, c, cy - s * cx - c * cy - 35 * scale],
            [1e-6 / scale, -8e-7 / scale, 1],
        ]
    )
    to_canvas = np.array([[1, 0, margin], [0, 1, margin], [0, 0, 1.0]]) @ truth
    after = cv2.warpPerspective(later, np.linalg.inv(to_canvas), (width, height), flags=cv2.INTER_LINEAR)
    return before, after, truth, masks


def corner_error(registration: Registration, truth: np.ndarray, width: int, height: int) -> float:
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
    expected = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), truth).reshape(-1, 2)
    return float(np.abs(registration.map_points(corners) - expected).max())


def mask_quality(mask: np.ndarray, sheds: list[np.ndarray], valid: np.ndarray) -> dict[str, Any]:
    ious = []
    for shed in sheds:
        ys, xs = np.nonzero(shed)
        pad = 20
        window = (slice(max(0, ys.min() - pad), ys.max() + pad), slice(max(0, xs.min() - pad), xs.max() + pad))
        found, truth = mask[window], shed[window]
        ious.append(round(float((found & truth).sum() / (found | truth).sum()), 3))
    anywhere = np.any(sheds, axis=0)
    return {"iou_per_shed": ious, "false_positive_share": round(float((mask & ~anywhere).sum() / valid.sum()), 5)}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of the method (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="OpenCV and Numba threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="a quarter-size pair, one round, no full-size SIFT")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    numba.set_num_threads(min(args.threads, numba.get_num_threads()))
    width, height = (SIZE[0] // 4, SIZE[1] // 4) if args.quick else SIZE
    rounds = 1 if args.quick else args.rounds

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    versions = ", ".join(f"{p} {importlib.metadata.version(p)}" for p in ("numpy", "numba", "opencv-python-headless"))
    header = {
        "date": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "machine": f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.machine()}",
        "versions": f"Python {platform.python_version()}, {versions}",
        "pair": f"{width}x{height} synthetic, gsd {GSD_M * SIZE[0] / width:g} m",
        "threads": args.threads,
        "rounds": rounds,
    }
    for k, v in header.items():
        print(f"{k}: {v}")
    (before, after, truth, sheds), synth_s = timed(lambda: synthesize(width, height))
    print(f"synthesized in {synth_s:.1f} s\n")
    gsd = GSD_M * SIZE[0] / width

    # warm-up: compile the kernels on a small crop, untimed
    small_b, small_a = before[:256, :256], after[:256, :256]
    change_regions(change_mask(small_b, small_a), gsd_m=gsd, before=small_b, after=small_a)

    stages: dict[str, list[float]] = {"register": [], "warp": [], "change_mask": [], "change_regions": []}
    registration = None
    mask = valid = None
    regions: list = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        registration = register_pair(before, after)
        t1 = time.perf_counter()
        warped, valid = warp_to(before.shape, after, registration)
        t2 = time.perf_counter()
        mask = change_mask(before, warped, valid=valid)
        t3 = time.perf_counter()
        regions = change_regions(mask, gsd_m=gsd, before=before, after=warped)
        t4 = time.perf_counter()
        for stage, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stages[stage].append(seconds)
    assert registration is not None and mask is not None and valid is not None
    medians = {k: statistics.median(v) for k, v in stages.items()}
    total = sum(medians.values())

    results: dict[str, Any] = {**header, "method": {}, "baselines": {}}
    results["method"] = {
        "seconds_median": {k: round(v, 3) for k, v in medians.items()},
        "seconds_per_pair": round(total, 3),
        "registration": {
            "inliers": registration.inliers,
            "matches": registration.matches,
            "corner_error_px": round(corner_error(registration, truth, width, height), 3),
        },
        "mask": mask_quality(mask, sheds, valid),
        "regions": len(regions),
        "structures": sum(r.looks_like_structure for r in regions),
    }

    baselines = results["baselines"]
    orb_times = []
    orb = None
    for _ in range(rounds):
        try:
            orb, t = timed(lambda: register_pair(before, after, detector="orb"))
        except Exception as e:  # a failed registration is a result here, not a crash
            baselines["orb_1600"] = {"error": str(e)}
            break
        orb_times.append(t)
    if orb is not None and orb_times:
        baselines["orb_1600"] = {
            "seconds_median": round(statistics.median(orb_times), 3),
            "inliers": orb.inliers,
            "corner_error_px": round(corner_error(orb, truth, width, height), 3),
        }
    if not args.quick:
        full, t = timed(lambda: register_pair(before, after, work_side=max(width, height), ransac_px=4.0))
        baselines["sift_full_size"] = {
            "seconds": round(t, 3),
            "inliers": full.inliers,
            "corner_error_px": round(corner_error(full, truth, width, height), 3),
        }
    warped, valid = warp_to(before.shape, after, registration)
    cva_times = []
    cva = None
    for _ in range(rounds):
        cva, t = timed(lambda: cva_otsu_mask(before, warped) & valid)
        cva_times.append(t)
    assert cva is not None
    baselines["cva_otsu_mask"] = {
        "seconds_median": round(statistics.median(cva_times), 3),
        "mask": mask_quality(cva, sheds, valid),
    }

    m = results["method"]
    print("| stage | method (median s) | baseline | baseline s | method / baseline |")
    print("|---|---|---|---|---|")
    reg_line = f"| register_pair (SIFT, 1600 px) | {medians['register']:.2f} "
    if "sift_full_size" in baselines:
        b = baselines["sift_full_size"]
        print(reg_line + f"| SIFT at full size | {b['seconds']:.2f} | {medians['register'] / b['seconds']:.2f}× |")
    if "seconds_median" in baselines.get("orb_1600", {}):
        b = baselines["orb_1600"]
        print(
            reg_line
            + f"| ORB at 1600 px | {b['seconds_median']:.2f} | {medians['register'] / b['seconds_median']:.2f}× |"
        )
    print(f"| warp_to (full size) | {medians['warp']:.2f} | | | |")
    b = baselines["cva_otsu_mask"]
    ratio = medians["change_mask"] / b["seconds_median"]
    cva_s = b["seconds_median"]
    print(
        f"| change_mask (2048 px) | {medians['change_mask']:.2f} | CVA + Otsu (full size) | {cva_s:.2f} "
        f"| {ratio:.2f}× |"
    )
    print(f"| change_regions (full size) | {medians['change_regions']:.2f} | | | |")
    print(f"| **per pair** | **{total:.2f}** | | | |\n")
    print("| | corner error px | inliers |")
    print("|---|---|---|")
    print(f"| SIFT 1600 px (method) | {m['registration']['corner_error_px']} | {m['registration']['inliers']} |")
    for name in ("sift_full_size", "orb_1600"):
        if name in baselines and "corner_error_px" in baselines[name]:
            print(f"| {name} | {baselines[name]['corner_error_px']} | {baselines[name]['inliers']} |")
        elif name in baselines:
            print(f"| {name} | refused: {baselines[name]['error']} | |")
    print("\n| mask | IoU per shed | false-positive share of the image |")
    print("|---|---|---|")
    print(f"| change_mask | {m['mask']['iou_per_shed']} | {m['mask']['false_positive_share']} |")
    print(f"| CVA + Otsu | {b['mask']['iou_per_shed']} | {b['mask']['false_positive_share']} |")
    print(f"\nregions: {m['regions']}, of which look like structures: {m['structures']}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

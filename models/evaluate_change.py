"""Pixel-level evaluation of change detection on a LEVIR-CD-style folder.

The folder holds `A/` (before), `B/` (after) and `label/` (change masks, nonzero =
change) with one file name per pair. The pairs are co-registered, so `vision.change`'s
mask runs on them directly, with no registration. Three masks are scored per pair,
pixel by pixel against the label:

- `change`: `change_mask(A, B)`, every change the method sees;
- `structures`: the regions of that mask that `change_regions` (with both images, at
  the folder's ground sample distance) says look like structures, as filled polygons;
- `baseline`: change vector analysis with Otsu's threshold (the Euclidean distance of
  the RGB vectors), the classical unsupervised reference, measured in the same run.

Overall figures sum the pixel counts over all pairs (a large pair weighs more), as
change-detection papers do. Pairs without a label, or whose images differ in size, are
listed as skipped with the reason. Timings are per pair, after one untimed warm-up
(which compiles the Numba kernels).

    python -m models.evaluate_change [ROOT] [--gsd-m 0.5] [--json OUT]

LEVIR-CD labels only buildings (0.5 m/px satellite pairs, mostly new buildings on land
that otherwise changed too: roads, lawns, clearings), so an unsupervised method that
sees every change pays for all the rest in precision. On the 11 labelled sample pairs
in `../shared/data/change/levir_cd` (2026-12-07, parameters fixed as in `vision.change`;
one more pair, test_113_0256, has no label and is skipped):

| mask | F1 | IoU | precision | recall |
|---|---|---|---|---|
| `change` | 0.338 | 0.204 | 0.317 | 0.362 |
| `structures` | 0.323 | 0.192 | 0.529 | 0.232 |
| `structures` with `shadow_cue >= 0.2` (not the default rule) | 0.315 | | 0.673 | 0.205 |
| `baseline` (CVA + Otsu) | 0.231 | 0.131 | 0.176 | 0.339 |
| everything marked changed | 0.267 | 0.154 | 0.154 | 1.000 |

Published supervised models trained on LEVIR-CD's 445 training pairs reach F1 about
0.90; training-free methods (e.g. AnyChange, 2024, built on segment-anything) report far
lower figures. The baseline row is this run's classical reference, not a published one.
The figures move by about ±0.03 with small implementation details (the order of equal
edges in the segmentation, the texture threshold of the lighting normalisation), which
is the noise of 11 pairs; `tests/models/test_evaluate_change.py` guards them with that
margin. Per pair the method ranges from F1 0.71 (a large new white roof; new houses on
cleared woodland) to 0.03 (a whole estate built at once, where the grey roofs differ
from the dry ground they replaced mostly in lightness).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.errors import ModelsError
from vision.change import change_mask, change_regions, otsu_threshold, regions_mask

logger = logging.getLogger(__name__)

#: LEVIR-CD's ground sample distance
LEVIR_GSD_M = 0.5
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


@dataclass(frozen=True, slots=True)
class PixelCounts:
    """Confusion counts of a predicted change mask against a label."""

    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    @classmethod
    def from_masks(cls, predicted: np.ndarray, truth: np.ndarray) -> PixelCounts:
        if predicted.shape != truth.shape or predicted.dtype != np.bool_ or truth.dtype != np.bool_:
            raise ValueError(
                f"predicted and truth must be bool masks of one shape, but got {predicted.dtype} {predicted.shape} "
                f"and {truth.dtype} {truth.shape}"
            )
        tp = int(np.count_nonzero(predicted & truth))
        fp = int(np.count_nonzero(predicted & ~truth))
        fn = int(np.count_nonzero(~predicted & truth))
        return cls(tp, fp, fn, predicted.size - tp - fp - fn)

    def __add__(self, other: PixelCounts) -> PixelCounts:
        return PixelCounts(
            self.true_positives + other.true_positives,
            self.false_positives + other.false_positives,
            self.false_negatives + other.false_negatives,
            self.true_negatives + other.true_negatives,
        )

    @property
    def precision(self) -> float:
        """Share of the marked pixels that changed; 1.0 when nothing was marked."""
        marked = self.true_positives + self.false_positives
        return self.true_positives / marked if marked else 1.0

    @property
    def recall(self) -> float:
        """Share of the changed pixels that were marked; 1.0 when nothing changed."""
        changed = self.true_positives + self.false_negatives
        return self.true_positives / changed if changed else 1.0

    @property
    def f1(self) -> float:
        """2·TP / (2·TP + FP + FN); 1.0 when nothing changed and nothing was marked."""
        wrong = self.false_positives + self.false_negatives
        return 2 * self.true_positives / (2 * self.true_positives + wrong) if self.true_positives or wrong else 1.0

    @property
    def iou(self) -> float:
        """TP / (TP + FP + FN); 1.0 when nothing changed and nothing was marked."""
        union = self.true_positives + self.false_positives + self.false_negatives
        return self.true_positives / union if union else 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
            "true_negatives": self.true_negatives,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "iou": round(self.iou, 4),
        }


ZERO = PixelCounts(0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class PairScore:
    """One image pair's scores and timings."""

    name: str
    change: PixelCounts  # change_mask
    structures: PixelCounts  # change_regions that look like structures, filled
    baseline: PixelCounts  # change vector analysis + Otsu
    mask_seconds: float  # change_mask
    regions_seconds: float  # change_regions + regions_mask


@dataclass(frozen=True, slots=True)
class ChangeReport:
    root: Path
    gsd_m: float
    pairs: tuple[PairScore, ...]
    skipped: tuple[tuple[str, str], ...]  # (name, why)

    @property
    def change(self) -> PixelCounts:
        """`change_mask` over all pairs, pixel counts summed."""
        return sum((p.change for p in self.pairs), ZERO)

    @property
    def structures(self) -> PixelCounts:
        return sum((p.structures for p in self.pairs), ZERO)

    @property
    def baseline(self) -> PixelCounts:
        return sum((p.baseline for p in self.pairs), ZERO)

    def to_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "gsd_m": self.gsd_m,
            "overall": {
                "change": self.change.to_json(),
                "structures": self.structures.to_json(),
                "baseline": self.baseline.to_json(),
            },
            "pairs": [
                {
                    "name": p.name,
                    "change": p.change.to_json(),
                    "structures": p.structures.to_json(),
                    "baseline": p.baseline.to_json(),
                    "mask_seconds": round(p.mask_seconds, 4),
                    "regions_seconds": round(p.regions_seconds, 4),
                }
                for p in self.pairs
            ],
            "skipped": [{"name": n, "why": why} for n, why in self.skipped],
        }

    def table(self) -> str:
        """A Markdown table: per pair and overall F1 / IoU / precision / recall of each mask, and timings."""

        def cells(c: PixelCounts) -> str:
            return f"{c.f1:.3f} | {c.iou:.3f} | {c.precision:.3f} | {c.recall:.3f}"

        lines = [
            "| pair | change F1 | IoU | P | R | structures F1 | IoU | P | R | CVA+Otsu F1 | IoU | P | R "
            "| mask s | regions s |",
            "|---" * 15 + "|",
        ]
        for p in self.pairs:
            lines.append(
                f"| {p.name} | {cells(p.change)} | {cells(p.structures)} | {cells(p.baseline)} "
                f"| {p.mask_seconds:.3f} | {p.regions_seconds:.3f} |"
            )
        if self.pairs:
            mask_s = float(np.median([p.mask_seconds for p in self.pairs]))
            regions_s = float(np.median([p.regions_seconds for p in self.pairs]))
            lines.append(
                f"| **overall ({len(self.pairs)} pairs, pixels summed; median s)** | {cells(self.change)} "
                f"| {cells(self.structures)} | {cells(self.baseline)} | {mask_s:.3f} | {regions_s:.3f} |"
            )
        lines.extend(f"\nskipped {name}: {why}" for name, why in self.skipped)
        return "\n".join(lines)


def cva_otsu_mask(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Change vector analysis: the Euclidean distance of the BGR vectors, cut at Otsu's threshold."""
    distance = np.linalg.norm(before.astype(np.float32) - after.astype(np.float32), axis=2)
    return distance > otsu_threshold(distance)


def _read(path: Path, flags: int) -> np.ndarray:
    image = cv2.imread(str(path), flags)
    if image is None:
        raise ModelsError(f"{path}: cannot read the image")
    return image


def _image_names(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise ModelsError(f"{folder} is not a folder: a change dataset holds A/, B/ and label/")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def evaluate_change_dataset(root: Path, *, gsd_m: float = LEVIR_GSD_M) -> ChangeReport:
    """Score `vision.change` on every pair of a LEVIR-CD-style folder (see the module's docstring)."""
    root = Path(root)
    before_files, after_files = _image_names(root / "A"), _image_names(root / "B")
    label_files = _image_names(root / "label") if (root / "label").is_dir() else {}
    names = sorted(set(before_files) | set(after_files))
    if not names:
        raise ModelsError(f"{root}: no images in A/ or B/")
    work: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
    skipped: list[tuple[str, str]] = []
    for name in names:
        if name not in before_files or name not in after_files:
            skipped.append((name, f"no {'before image in A/' if name not in before_files else 'after image in B/'}"))
            continue
        if name not in label_files:
            skipped.append((name, "no label in label/"))
            continue
        before = _read(before_files[name], cv2.IMREAD_COLOR)
        after = _read(after_files[name], cv2.IMREAD_COLOR)
        label = _read(label_files[name], cv2.IMREAD_GRAYSCALE) > 0
        if before.shape != after.shape:
            skipped.append((name, f"before is {before.shape[1]}x{before.shape[0]} but after {after.shape[1]}x"
                                  f"{after.shape[0]}: not co-registered"))  # fmt: skip
            continue
        if label.shape != before.shape[:2]:
            skipped.append((name, f"label is {label.shape[1]}x{label.shape[0]} but the images "
                                  f"{before.shape[1]}x{before.shape[0]}"))  # fmt: skip
            continue
        work.append((name, before, after, label))
    if work:  # compile the kernels outside the timings
        _, before, after, _ = work[0]
        warm = change_mask(before[:64, :64], after[:64, :64])
        change_regions(warm, gsd_m=gsd_m, before=before[:64, :64], after=after[:64, :64])
    pairs = []
    for name, before, after, label in work:
        t0 = time.perf_counter()
        mask = change_mask(before, after)
        t1 = time.perf_counter()
        regions = change_regions(mask, gsd_m=gsd_m, before=before, after=after)
        structures = regions_mask(mask.shape, regions)
        t2 = time.perf_counter()
        pairs.append(
            PairScore(
                name,
                PixelCounts.from_masks(mask, label),
                PixelCounts.from_masks(structures, label),
                PixelCounts.from_masks(cva_otsu_mask(before, after), label),
                t1 - t0,
                t2 - t1,
            )
        )
        logger.info("%s: change F1 %.3f, structures F1 %.3f", name, pairs[-1].change.f1, pairs[-1].structures.f1)
    return ChangeReport(root, gsd_m, tuple(pairs), tuple(skipped))


def default_root() -> Path:
    shared = os.environ.get("NONSITE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
    return Path(shared) / "change" / "levir_cd"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score vision.change on a LEVIR-CD-style folder (A/, B/, label/).")
    parser.add_argument("root", nargs="?", type=Path, default=None, help="the folder (default: LEVIR-CD samples)")
    parser.add_argument("--gsd-m", type=float, default=LEVIR_GSD_M, help="metres per pixel (default 0.5)")
    parser.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = evaluate_change_dataset(args.root or default_root(), gsd_m=args.gsd_m)
    except ModelsError as e:
        parser.exit(2, f"error: {e}\n")
    print(report.table())
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""YOLO datasets built from officers' review decisions, merged with external and synthetic sets.

Every reviewed keyframe is a labelled image:

- **confirmed** findings give their boxes as labels, with the officer's corrected label and
  box where there is one (the engine's original is never the label when an officer fixed it);
- findings **rejected as model errors** (`MODEL_ERROR_REASONS`: a false detection, steam,
  fog, a shadow, a reflection) give hard negatives: the frame with no labels, counted by reason
  code, so the mix can be controlled (`negative_ratio`, `reasons`);
- findings rejected **for legal reasons** (permitted activity, a duplicate, out of
  jurisdiction) showed a real object: their boxes are labels as well;
- other rejections (insufficient evidence, other) say nothing about the pixels and are left out.

Near-duplicate frames (a parked stall seen every few seconds) are collapsed by a 64-bit
difference hash, per camera. The split keeps whole cameras (or sites) apart when there are
enough of them, and otherwise cuts each camera's footage in time with a guard interval, so
neither a place nor a moment leaks between train and val; a test checks no near-duplicate
crosses it. External YOLO sets and synthetic scenes join the training split only, in the
stated share; the manifest records every source, its licence and share, counts per class
and reason, and the sha256 of every file, whose digest is the dataset's version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from datasets.errors import DatasetError
from datasets.yolo import write_data_yaml

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = "nonsite.dataset/1"
#: rejections that say the model saw something that was not there: hard negatives
MODEL_ERROR_REASONS = frozenset({"false_detection", "steam", "fog", "shadow", "reflection"})
#: rejections for legal reasons: the object was real, its boxes are labels
REAL_OBJECT_REASONS = frozenset({"permitted", "duplicate", "out_of_jurisdiction"})
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class ReviewedBox:
    """A box as training should see it: the officer's correction where there is one."""

    label: str
    xyxy: tuple[float, float, float, float]
    corrected: bool = False


@dataclass(frozen=True)
class ReviewedFrame:
    """One reviewed keyframe: its pixels (loaded on demand), place, time and the decision on it."""

    key: str  # unique, e.g. "<package id>:<frame>"
    load: Callable[[], np.ndarray]  # BGR uint8
    camera_id: str
    at: datetime
    outcome: Literal["confirmed", "rejected"]
    boxes: tuple[ReviewedBox, ...]
    reason_code: str | None = None
    kind: str = ""
    case_number: str = ""


@dataclass(frozen=True)
class ExternalSet:
    """A labelled YOLO set merged into training, e.g. a CC BY 4.0 set from `../shared/data`.

    `label_map` maps its label ids (as strings) to this dataset's class names; ids it does
    not name are dropped. `share` caps its images at that fraction of the decision images
    (None: all of them).
    """

    name: str
    path: Path
    license: str
    label_map: dict[str, str]
    share: float | None = None
    val_fraction: float = 0.0  # held out for validation, near-duplicates (rotations, flips too) kept together


@dataclass(frozen=True)
class SyntheticMix:
    """Synthetic scenes rendered by the project's generator, joining training."""

    images: int
    seed: int = 0


@dataclass
class _Item:
    name: str  # file stem in the dataset
    source: str
    load: Callable[[], np.ndarray]
    labels: list[tuple[int, tuple[float, float, float, float]]]  # class id, xyxy pixels
    group: str  # what must not straddle the split
    at: datetime = field(default=datetime.min.replace(tzinfo=UTC))  # external and synthetic images have no time
    reason: str | None = None
    hash: int | None = None


@dataclass(frozen=True)
class DatasetManifest:
    path: Path
    document: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.document["version"])

    @property
    def data_yaml(self) -> Path:
        return self.path / "data.yaml"


# -- perceptual hashing ------------------------------------------------------------------


def difference_hash(image: np.ndarray) -> int:
    """The 64-bit dHash of a BGR or grey image: signs of horizontal gradients on a 9×8 thumbnail."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int(np.packbits(bits).view(">u8")[0])


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def dihedral_hashes(image: np.ndarray) -> tuple[int, ...]:
    """dHashes of the image in its 8 rotations and mirror images: a rotated or flipped copy of a
    picture (common in scraped sets) is near one of them."""
    out = []
    for flipped in (image, image[:, ::-1]):
        for k in range(4):
            out.append(difference_hash(np.ascontiguousarray(np.rot90(flipped, k))))
    return tuple(out)


def hold_out(items: Sequence[_Item], fraction: float, max_distance: int, seed: int) -> list[_Item]:
    """About `fraction` of `items` for validation, taken by whole groups of near-duplicates (any
    rotation or flip), so that no copy of a validation picture is trained on."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), but got {fraction}")
    hashes = [dihedral_hashes(i.load()) for i in items]
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(items)):
        for j in range(i):
            if min(hamming(hashes[i][0], h) for h in hashes[j]) <= max_distance:
                parent[root(i)] = root(j)
    groups: dict[int, list[_Item]] = defaultdict(list)
    for i, item in enumerate(items):
        groups[root(i)].append(item)
    order = sorted(groups.values(), key=lambda g: g[0].name)
    random.Random(seed).shuffle(order)
    held: list[_Item] = []
    for group in order:
        if len(held) >= fraction * len(items):
            break
        held.extend(group)
    return held


def _collapse(items: list[_Item], max_distance: int) -> tuple[list[_Item], int]:
    """Keep one item of every run of near-duplicates within a group (the one with most labels)."""
    kept: list[_Item] = []
    dropped = 0
    by_group: dict[str, list[_Item]] = defaultdict(list)
    for item in items:
        by_group[item.group].append(item)
    for group_items in by_group.values():
        group_items.sort(key=lambda i: (-len(i.labels), i.name))
        hashes = np.array([i.hash for i in group_items], dtype=np.uint64)
        representatives: list[int] = []
        for idx, item in enumerate(group_items):
            if representatives:
                xor = np.bitwise_xor(hashes[representatives], np.uint64(item.hash or 0))
                distances = np.array([int(v).bit_count() for v in xor])
                if (distances <= max_distance).any():
                    dropped += 1
                    continue
            representatives.append(idx)
            kept.append(item)
    return kept, dropped


# -- splits -----------------------------------------------------------------------------


def split_items(
    items: Sequence[_Item],
    *,
    val_fraction: float,
    method: Literal["auto", "camera", "time"],
    guard: timedelta,
    seed: int,
) -> tuple[list[_Item], list[_Item], str, int]:
    """Train and val lists, the method used, and how many items the time guard dropped."""
    cameras = sorted({i.group for i in items})
    if method == "auto":
        method = "camera" if len(cameras) >= 5 else "time"
    if method == "camera":
        rng = random.Random(seed)
        order = cameras[:]
        rng.shuffle(order)
        n_val = max(1, round(len(order) * val_fraction)) if len(order) > 1 else 0
        val_groups = set(order[:n_val])
        return [i for i in items if i.group not in val_groups], [i for i in items if i.group in val_groups], method, 0
    train, val = [], []
    guarded = 0
    for camera in cameras:
        mine = sorted((i for i in items if i.group == camera), key=lambda i: (i.at, i.name))
        if len(mine) < 2:
            train += mine
            continue
        cut = mine[min(len(mine) - 1, max(1, round(len(mine) * (1 - val_fraction))))].at
        for item in mine:
            if item.at >= cut:
                val.append(item)
            elif item.at > cut - guard:
                guarded += 1  # too close in time to val: the same scene, a moment earlier
            else:
                train.append(item)
    return train, val, "time", guarded


# -- sources ----------------------------------------------------------------------------


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:80]


def _decision_items(
    frames: Iterable[ReviewedFrame], classes: Sequence[str], reasons: frozenset[str], skipped: Counter[str]
) -> list[_Item]:
    index = {c: i for i, c in enumerate(classes)}
    items = []
    for frame in frames:
        if frame.outcome == "confirmed" or (frame.outcome == "rejected" and frame.reason_code in REAL_OBJECT_REASONS):
            labels = []
            for box in frame.boxes:
                if box.label not in index:
                    skipped[f"label '{box.label}' not in the dataset's classes"] += 1
                    continue
                labels.append((index[box.label], box.xyxy))
            if not labels:
                continue
            reason = None
            source = "decisions:confirmed" if frame.outcome == "confirmed" else f"decisions:real:{frame.reason_code}"
        elif frame.reason_code in MODEL_ERROR_REASONS and frame.reason_code in reasons:
            labels, reason, source = [], frame.reason_code, f"decisions:negative:{frame.reason_code}"
        else:
            skipped[f"rejected ({frame.reason_code or 'no reason code'}): says nothing of the pixels"] += 1
            continue
        items.append(_Item(_safe(frame.key), source, frame.load, labels, frame.camera_id, frame.at, reason))
    return items


def _yolo_items(
    root: Path, *, name: str, label_map: Mapping[str, str], classes: Sequence[str], split: str | None = None
) -> list[_Item]:
    """Images and labels of a YOLO folder (a data.yaml's split, or images/ + labels/)."""
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(label_map.values()) - set(index))
    if unknown:
        raise DatasetError(
            f"{name}: the label map names classes {unknown} that the dataset does not have ({list(classes)})"
        )
    images_dir, labels_dir = root / "images", root / "labels"
    if split and (images_dir / split).is_dir():
        images_dir, labels_dir = images_dir / split, labels_dir / split
    if not images_dir.is_dir():
        raise DatasetError(f"{root} has no images/ folder")
    items = []
    for path in sorted(p for p in images_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        relative = path.relative_to(images_dir)
        label_path = labels_dir / relative.with_suffix(".txt")
        normalised: list[tuple[int, tuple[float, float, float, float]]] = []  # cx cy w h until written
        if label_path.is_file():
            for number, line in enumerate(label_path.read_text(encoding="utf-8").splitlines(), 1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 5:
                    raise DatasetError(f"{label_path}:{number}: expected 'class cx cy w h', got {line!r}")
                if fields[0] in label_map:
                    cx, cy, bw, bh = (float(v) for v in fields[1:])
                    normalised.append((index[label_map[fields[0]]], (cx, cy, bw, bh)))

        def load(path: Path = path) -> np.ndarray:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise DatasetError(f"{path} is not a readable image")
            return image

        items.append(
            _Item(f"{_safe(name)}-{_safe(str(relative.with_suffix('')))}", f"external:{name}", load, normalised, name)
        )
    return items


# -- writing ----------------------------------------------------------------------------


def _write_item(item: _Item, split: str, out: Path, normalised: bool) -> tuple[str, str]:
    image = item.load()
    h, w = image.shape[:2]
    image_path = out / "images" / split / f"{item.name}.jpg"
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise DatasetError(f"cannot encode {item.name} as JPEG")
    image_path.write_bytes(encoded.tobytes())
    lines = []
    for class_id, box in item.labels:
        if normalised:
            cx, cy, bw, bh = box
        else:
            x1, y1, x2, y2 = (max(0.0, min(v, lim)) for v, lim in zip(box, (w, h, w, h), strict=True))
            if x2 <= x1 or y2 <= y1:
                continue
            cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
        lines.append(f"{class_id} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
    label_path = out / "labels" / split / f"{item.name}.txt"
    label_path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    return hashlib.sha256(encoded.tobytes()).hexdigest(), hashlib.sha256(label_path.read_bytes()).hexdigest()


@dataclass
class _Tally:
    images: Counter[str] = field(default_factory=Counter)
    boxes: Counter[str] = field(default_factory=Counter)
    per_class: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    negatives: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    sources: Counter[str] = field(default_factory=Counter)


def build_dataset(
    frames: Iterable[ReviewedFrame],
    out_dir: Path,
    *,
    classes: Sequence[str],
    negative_ratio: float = 0.5,
    reasons: Iterable[str] = MODEL_ERROR_REASONS,
    dedupe_distance: int = 4,
    val_fraction: float = 0.2,
    split: Literal["auto", "camera", "time"] = "auto",
    guard: timedelta = timedelta(minutes=10),
    external: Sequence[ExternalSet] = (),
    synthetic: SyntheticMix | None = None,
    seed: int = 0,
    command: str = "",
) -> DatasetManifest:
    """Write a YOLO dataset of `frames` (plus external and synthetic sets) to the new folder `out_dir`.

    `negative_ratio` caps hard negatives at that fraction of the labelled decision images,
    taken evenly across reason codes; `reasons` names the reason codes kept as negatives.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DatasetError(f"{out_dir} already holds files: a dataset version is never overwritten")
    if not classes:
        raise ValueError("classes must name at least one class")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), but got {val_fraction}")
    if negative_ratio < 0:
        raise ValueError(f"negative_ratio must be >= 0, but got {negative_ratio}")
    unknown = sorted(set(reasons) - MODEL_ERROR_REASONS)
    if unknown:
        raise ValueError(f"only model-error reasons can be negatives ({sorted(MODEL_ERROR_REASONS)}), not {unknown}")
    skipped: Counter[str] = Counter()
    items = _decision_items(frames, classes, frozenset(reasons), skipped)
    for item in items:
        item.hash = difference_hash(item.load())
    items, collapsed = _collapse(items, dedupe_distance)
    positives = [i for i in items if i.labels]
    negatives = _cap_negatives([i for i in items if not i.labels], int(negative_ratio * len(positives)), seed)
    items = positives + negatives
    held_out_externals = any(ext.val_fraction > 0 for ext in external)
    if not positives and not held_out_externals:
        raise DatasetError("no confirmed detection of the dataset's classes to learn from")
    train, val, method, guarded = (
        split_items(items, val_fraction=val_fraction, method=split, guard=guard, seed=seed)
        if items
        else ([], [], "none (no decisions)", 0)
    )
    if not val and not held_out_externals:
        raise DatasetError(
            f"the decisions span too few cameras or moments to hold any out for validation ({len(items)} images)"
        )

    for sub in ("images/train", "images/val", "labels/train", "labels/val"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    tally = _Tally()
    file_hashes: dict[str, str] = {}

    def write(item: _Item, split_name: str, normalised: bool = False) -> None:
        image_sha, label_sha = _write_item(item, split_name, out_dir, normalised)
        file_hashes[f"images/{split_name}/{item.name}.jpg"] = image_sha
        file_hashes[f"labels/{split_name}/{item.name}.txt"] = label_sha
        tally.images[split_name] += 1
        tally.sources[f"{item.source.split(':')[0]}:{split_name}"] += 1
        tally.boxes[split_name] += len(item.labels)
        for class_id, _ in item.labels:
            tally.per_class[split_name][classes[class_id]] += 1
        if item.reason:
            tally.negatives[split_name][item.reason] += 1

    for item in train:
        write(item, "train")
    for item in val:
        write(item, "val")
    source_docs = [_decisions_source(train, val, skipped, collapsed, guarded)]
    decision_images = len(train) + len(val)
    for ext in external:
        ext_items = _yolo_items(ext.path, name=ext.name, label_map=ext.label_map, classes=classes)
        if ext.share is not None:
            cap = int(ext.share * decision_images)
            random.Random(seed).shuffle(ext_items)
            ext_items = sorted(ext_items[:cap], key=lambda i: i.name)
        ext_val = hold_out(ext_items, ext.val_fraction, dedupe_distance, seed) if ext.val_fraction else []
        held = {id(i) for i in ext_val}
        for item in ext_items:
            write(item, "val" if id(item) in held else "train", normalised=True)
        source_docs.append(
            {"kind": "external", "name": ext.name, "path": str(ext.path), "license": ext.license,
             "label_map": ext.label_map, "images": len(ext_items), "train_images": len(ext_items) - len(ext_val),
             "val_images": len(ext_val), "split": "train and val" if ext_val else "train"}
        )  # fmt: skip
    if synthetic is not None and synthetic.images > 0:
        source_docs.append(_merge_synthetic(synthetic, out_dir, classes, write))
    train_total = tally.images["train"]
    for doc in source_docs:
        doc["share_of_train"] = round(doc.get("train_images", doc.get("images", 0)) / max(1, train_total), 4)

    write_data_yaml(out_dir, classes)
    digest = hashlib.sha256("".join(f"{k}\0{v}\n" for k, v in sorted(file_hashes.items())).encode()).hexdigest()
    document = {
        "format": MANIFEST_FORMAT,
        "version": digest[:16],
        "sha256": digest,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "classes": list(classes),
        "split": {
            "method": method,
            "val_fraction": val_fraction,
            "guard_minutes": guard.total_seconds() / 60,
            "seed": seed,
        },
        "negatives": {"ratio": negative_ratio, "reasons": sorted(reasons)},
        "dedupe": {"hash": "dhash64", "max_hamming": dedupe_distance, "collapsed": collapsed},
        "sources": source_docs,
        "counts": {
            split_name: {
                "images": tally.images[split_name],
                "boxes": tally.boxes[split_name],
                "per_class": dict(sorted(tally.per_class[split_name].items())),
                "negatives_by_reason": dict(sorted(tally.negatives[split_name].items())),
            }
            for split_name in ("train", "val")
        },
        "files": dict(sorted(file_hashes.items())),
    }
    (out_dir / "manifest.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    logger.info("dataset %s: %d train, %d val images", digest[:16], tally.images["train"], tally.images["val"])
    return DatasetManifest(out_dir, document)


def _cap_negatives(negatives: list[_Item], cap: int, seed: int) -> list[_Item]:
    """At most `cap` negatives, taken round-robin over reason codes so no one reason crowds out the rest."""
    by_reason: dict[str, list[_Item]] = defaultdict(list)
    for item in sorted(negatives, key=lambda i: i.name):
        by_reason[item.reason or ""].append(item)
    rng = random.Random(seed)
    for group in by_reason.values():
        rng.shuffle(group)
    out: list[_Item] = []
    while len(out) < cap and any(by_reason.values()):
        for reason in sorted(by_reason):
            if by_reason[reason] and len(out) < cap:
                out.append(by_reason[reason].pop())
    return out


def _decisions_source(
    train: list[_Item], val: list[_Item], skipped: Counter[str], collapsed: int, guarded: int
) -> dict[str, Any]:
    return {
        "kind": "decisions",
        "name": "officers' review decisions",
        "license": "the deployment's own footage",
        "images": len(train) + len(val),
        "train_images": len(train),
        "val_images": len(val),
        "cameras": sorted({i.group for i in train + val}),
        "near_duplicates_collapsed": collapsed,
        "dropped_by_time_guard": guarded,
        "left_out": dict(sorted(skipped.items())),
    }


def _merge_synthetic(
    mix: SyntheticMix, out_dir: Path, classes: Sequence[str], write: Callable[[_Item, str, bool], None]
) -> dict[str, Any]:
    from datasets.synthetic import SYNTHETIC_CLASSES, write_yolo_dataset

    scratch = out_dir / ".synthetic"
    write_yolo_dataset(scratch, mix.images, mix.seed)
    label_map = {str(i): name for i, name in enumerate(SYNTHETIC_CLASSES) if name in classes}
    count = 0
    for split_name in ("train", "val"):  # synthetic images all train: val stays real decisions
        root = scratch
        items = _yolo_items(root, name="synthetic", label_map=label_map, classes=classes, split=split_name)
        for item in items:
            item.name = f"synthetic-{split_name}-{item.name.removeprefix('synthetic-')}"
            write(item, "train", True)
            count += 1
    shutil.rmtree(scratch)
    return {
        "kind": "synthetic", "name": "nonsite synthetic street scenes",
        "generator": "datasets.synthetic.write_yolo_dataset", "seed": mix.seed, "images": count,
        "license": "generated by the project; no third-party imagery",
        "classes_mapped": sorted(set(label_map.values())), "split": "train",
    }  # fmt: skip


def read_manifest(path: Path) -> DatasetManifest:
    """The manifest of the dataset folder `path` (or of the folder a data.yaml is in)."""
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    manifest = folder / "manifest.json"
    try:
        document = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DatasetError(
            f"{folder} has no readable manifest.json (build it with `nonsite dataset build`): {e}"
        ) from e
    if document.get("format") != MANIFEST_FORMAT:
        raise DatasetError(f"{manifest} is not a nonsite dataset manifest ({MANIFEST_FORMAT})")
    return DatasetManifest(folder, document)

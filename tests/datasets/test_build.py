"""Datasets from review decisions: labels, hard negatives, near-duplicates, leakage-free splits, manifest."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from datasets.build import (
    ExternalSet,
    ReviewedBox,
    ReviewedFrame,
    build_dataset,
    difference_hash,
    hamming,
    read_manifest,
)
from datasets.errors import DatasetError

CLASSES = ["smoke", "stall", "umbrella"]
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def scene(seed: int, noise: int = 0) -> np.ndarray:
    """A distinct picture per seed; `noise` adds a faint per-pixel jitter (a near-duplicate)."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8), (160, 120), interpolation=cv2.INTER_LINEAR)
    if noise:
        jitter = np.random.default_rng(seed + 1000 + noise).integers(-3, 4, base.shape)
        base = np.clip(base.astype(int) + jitter, 0, 255).astype(np.uint8)
    return base


def frame(
    key: str, seed: int, camera: str, minutes: float, outcome: str = "confirmed", reason: str | None = None,
    boxes: tuple[ReviewedBox, ...] = (ReviewedBox("stall", (10, 20, 50, 60)),), noise: int = 0,
) -> ReviewedFrame:  # fmt: skip
    image = scene(seed, noise)
    return ReviewedFrame(
        key=key,
        load=lambda: image,
        camera_id=camera,
        at=T0 + timedelta(minutes=minutes),
        outcome=outcome,  # type: ignore[arg-type]
        boxes=boxes,
        reason_code=reason,
    )


def labels_of(root: Path, split: str, stem: str) -> list[list[float]]:
    text = (root / "labels" / split / f"{stem}.txt").read_text()
    return [[float(v) for v in line.split()] for line in text.splitlines()]


def where(root: Path, stem: str) -> str:
    return next(split for split in ("train", "val") if (root / "images" / split / f"{stem}.jpg").is_file())


def test_confirmed_boxes_become_labels_with_the_officers_corrections(tmp_path: Path) -> None:
    corrected = ReviewedBox("umbrella", (20, 30, 100, 90), corrected=True)
    frames = [frame("a", 1, "cam-1", 0, boxes=(corrected,)), frame("b", 2, "cam-1", 60)]
    out = build_dataset(frames, tmp_path / "ds", classes=CLASSES, split="time", guard=timedelta(0))
    stem_split = where(out.path, "a")
    [[cls, cx, cy, w, h]] = labels_of(out.path, stem_split, "a")
    assert cls == CLASSES.index("umbrella")
    assert (cx, cy, w, h) == pytest.approx((60 / 160, 60 / 120, 80 / 160, 60 / 120), abs=1e-5)


def test_rejections_are_sorted_by_what_they_say_about_the_pixels(tmp_path: Path) -> None:
    frames = [frame(f"pos{i}", i, "cam-1", i * 30) for i in range(6)]
    frames += [
        frame("steam", 100, "cam-1", 5, "rejected", "steam"),
        frame("fog", 101, "cam-1", 35, "rejected", "fog"),
        frame("permitted", 102, "cam-1", 65, "rejected", "permitted"),  # a real stall, legally there
        frame("unsure", 103, "cam-1", 95, "rejected", "insufficient_evidence"),
    ]
    out = build_dataset(frames, tmp_path / "ds", classes=CLASSES, negative_ratio=1.0, split="time", guard=timedelta(0))
    doc = out.document
    negatives = negatives_total(doc["counts"], "negatives_by_reason")
    assert negatives == {"steam": 1, "fog": 1}
    assert labels_of(out.path, where(out.path, "steam"), "steam") == []
    assert len(labels_of(out.path, where(out.path, "permitted"), "permitted")) == 1
    assert not any((out.path / "images" / s / "unsure.jpg").exists() for s in ("train", "val"))
    left_out = doc["sources"][0]["left_out"]
    assert left_out == {"rejected (insufficient_evidence): says nothing of the pixels": 1}


def negatives_total(counts: dict, key: str) -> dict[str, int]:
    total: dict[str, int] = {}
    for split in ("train", "val"):
        for reason, n in counts[split][key].items():
            total[reason] = total.get(reason, 0) + n
    return total


def test_negatives_are_capped_and_shared_across_reasons(tmp_path: Path) -> None:
    frames = [frame(f"pos{i}", i, "cam-1", i * 30) for i in range(8)]
    frames += [frame(f"steam{i}", 200 + i, "cam-1", i * 30 + 7, "rejected", "steam") for i in range(10)]
    frames += [frame(f"shadow{i}", 300 + i, "cam-1", i * 30 + 9, "rejected", "shadow") for i in range(2)]
    out = build_dataset(frames, tmp_path / "ds", classes=CLASSES, negative_ratio=0.5, split="time", guard=timedelta(0))
    negatives = negatives_total(out.document["counts"], "negatives_by_reason")
    assert negatives == {"steam": 2, "shadow": 2}  # 4 = 0.5 × 8, the rarer reason not crowded out
    only_steam = build_dataset(
        frames, tmp_path / "ds2", classes=CLASSES, negative_ratio=0.5, reasons=["steam"], split="time",
        guard=timedelta(0),
    )  # fmt: skip
    assert negatives_total(only_steam.document["counts"], "negatives_by_reason") == {"steam": 4}
    with pytest.raises(ValueError, match="model-error reasons"):
        build_dataset(frames, tmp_path / "ds3", classes=CLASSES, reasons=["permitted"])


def test_near_duplicate_frames_are_collapsed_per_camera(tmp_path: Path) -> None:
    assert hamming(difference_hash(scene(1)), difference_hash(scene(1, noise=1))) <= 4
    assert hamming(difference_hash(scene(1)), difference_hash(scene(2))) > 10
    frames = [frame(f"same{i}", 1, "cam-1", i, noise=i) for i in range(5)]  # a stall seen every minute
    frames += [frame(f"other{i}", 10 + i, "cam-1", 100 + 30 * i) for i in range(4)]
    frames += [frame("same-elsewhere", 1, "cam-2", 0), frame("cam2-b", 50, "cam-2", 90)]
    out = build_dataset(frames, tmp_path / "ds", classes=CLASSES, split="time", guard=timedelta(0))
    source = out.document["sources"][0]
    assert source["near_duplicates_collapsed"] == 4
    assert source["images"] == 1 + 4 + 2  # another camera's identical view is its own image


def test_camera_split_keeps_every_camera_on_one_side(tmp_path: Path) -> None:
    frames = [frame(f"c{c}-{i}", 10 * c + i, f"cam-{c}", 30 * i) for c in range(6) for i in range(4)]
    out = build_dataset(frames, tmp_path / "ds", classes=CLASSES, split="auto", val_fraction=0.34)
    assert out.document["split"]["method"] == "camera"
    sides: dict[str, set[str]] = {}
    for c in range(6):
        sides[f"cam-{c}"] = {where(out.path, f"c{c}-{i}") for i in range(4)}
    assert all(len(s) == 1 for s in sides.values())
    assert sum(s == {"val"} for s in sides.values()) == 2


def test_time_split_keeps_val_after_train_with_a_guard(tmp_path: Path) -> None:
    frames = [frame(f"c{c}-{i:02d}", 100 * c + i, f"cam-{c}", 5 * i) for c in range(2) for i in range(20)]
    out = build_dataset(frames, tmp_path / "ds", classes=CLASSES, val_fraction=0.25, guard=timedelta(minutes=12))
    assert out.document["split"]["method"] == "time"
    for c in range(2):
        train = [i for i in range(20) if (out.path / "images/train" / f"c{c}-{i:02d}.jpg").exists()]
        val = [i for i in range(20) if (out.path / "images/val" / f"c{c}-{i:02d}.jpg").exists()]
        assert val == list(range(15, 20))
        assert max(train) * 5 <= 15 * 5 - 12  # nothing within the guard before the cut
    assert out.document["sources"][0]["dropped_by_time_guard"] == 2 * 2


def test_no_near_duplicate_crosses_the_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = []
    for c in range(3):
        for i in range(30):  # each camera revisits a few views through the day
            view = int(rng.integers(0, 4))
            frames.append(frame(f"c{c}-{i:02d}", 1000 * c + view, f"cam-{c}", 20 * i, noise=i + 1))
    out = build_dataset(frames, tmp_path / "ds", classes=CLASSES, dedupe_distance=6)
    hashes = {
        split: [difference_hash(cv2.imread(str(p))) for p in sorted((out.path / "images" / split).glob("*.jpg"))]
        for split in ("train", "val")
    }
    assert hashes["train"] and hashes["val"]
    assert min(hamming(a, b) for a in hashes["train"] for b in hashes["val"]) > 6


def test_the_manifest_names_every_file_and_its_hash_and_the_version_follows_the_content(tmp_path: Path) -> None:
    frames = [frame(f"f{i}", i, f"cam-{i % 2}", 30 * i) for i in range(8)]
    first = build_dataset(frames, tmp_path / "a", classes=CLASSES, command="nonsite dataset build ...")
    again = build_dataset(frames, tmp_path / "b", classes=CLASSES)
    assert first.version == again.version
    for name, digest in first.document["files"].items():
        assert hashlib.sha256((first.path / name).read_bytes()).hexdigest() == digest
    data = yaml.safe_load(first.data_yaml.read_text())
    assert data["names"] == dict(enumerate(CLASSES))
    assert read_manifest(first.data_yaml).version == first.version
    assert json.loads((first.path / "manifest.json").read_text())["command"] == "nonsite dataset build ..."
    changed = build_dataset(frames[:-1], tmp_path / "c", classes=CLASSES)
    assert changed.version != first.version
    with pytest.raises(DatasetError, match="never overwritten"):
        build_dataset(frames, tmp_path / "a", classes=CLASSES)


def test_external_sets_join_training_in_the_stated_share(tmp_path: Path) -> None:
    ext = tmp_path / "vendors"
    (ext / "images").mkdir(parents=True)
    (ext / "labels").mkdir()
    for i in range(10):
        cv2.imwrite(str(ext / "images" / f"v{i}.jpg"), scene(500 + i))
        (ext / "labels" / f"v{i}.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.05 0.05\n")
    frames = [frame(f"f{i}", i, "cam-1", 30 * i) for i in range(8)]
    vendors = ExternalSet("vendors", ext, "CC BY 4.0", {"0": "stall"}, share=0.5)
    out = build_dataset(frames, tmp_path / "ds", classes=CLASSES, external=[vendors], split="time", guard=timedelta(0))
    source = out.document["sources"][1]
    assert (source["kind"], source["license"], source["images"]) == ("external", "CC BY 4.0", 4)  # 0.5 × 8
    written = sorted((out.path / "labels" / "train").glob("vendors-*.txt"))
    assert len(written) == 4
    assert all(t.read_text().splitlines() == ["1 0.500000 0.500000 0.200000 0.200000"] for t in written)
    assert not list((out.path / "images" / "val").glob("vendors-*"))  # val stays the deployment's own footage
    bad = ExternalSet("vendors", ext, "CC BY 4.0", {"0": "vendor"})
    with pytest.raises(DatasetError, match="does not have"):
        build_dataset(frames, tmp_path / "ds2", classes=CLASSES, external=[bad])


def test_too_little_to_split_is_an_error_that_says_so(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no confirmed detection"):
        build_dataset([frame("n", 1, "cam-1", 0, "rejected", "steam")], tmp_path / "a", classes=CLASSES)
    with pytest.raises(DatasetError, match="too few cameras or moments"):
        build_dataset([frame("p", 1, "cam-1", 0)], tmp_path / "b", classes=CLASSES)


def test_an_external_set_can_hold_out_validation_with_rotated_copies_kept_together(tmp_path: Path) -> None:
    ext = tmp_path / "smoke"
    (ext / "images").mkdir(parents=True)
    (ext / "labels").mkdir()
    for i in range(12):
        picture = scene(700 + i)
        cv2.imwrite(str(ext / "images" / f"s{i:02d}.jpg"), picture)
        (ext / "labels" / f"s{i:02d}.txt").write_text("1 0.5 0.5 0.2 0.2\n")
        if i < 4:  # scraped sets repeat pictures rotated and mirrored
            cv2.imwrite(str(ext / "images" / f"s{i:02d}-rot.jpg"), np.ascontiguousarray(np.rot90(picture)[:, ::-1]))
            (ext / "labels" / f"s{i:02d}-rot.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    smoke = ExternalSet("smoke", ext, "research only", {"0": "smoke", "1": "smoke"}, val_fraction=0.25)
    out = build_dataset([], tmp_path / "ds", classes=CLASSES, external=[smoke])
    val = {p.stem for p in (out.path / "images" / "val").glob("*.jpg")}
    train = {p.stem for p in (out.path / "images" / "train").glob("*.jpg")}
    assert len(val) >= 4 and len(train) + len(val) == 16
    for i in range(4):
        pair = {f"smoke-s{i:02d}", f"smoke-s{i:02d}-rot"}
        assert pair <= val or pair <= train, f"copies of picture {i} straddle the split"
    assert out.document["sources"][1]["val_images"] == len(val)
    assert out.document["split"]["method"] == "none (no decisions)"

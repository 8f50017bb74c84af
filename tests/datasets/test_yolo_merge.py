"""Datasets merged by class name: labels renamed, other classes dropped, images kept."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from datasets.errors import DatasetError
from datasets.yolo import merge_yolo_datasets


def source(root: Path, names: list[str], labels: dict[str, dict[str, list[str]]]) -> Path:
    for split, files in labels.items():
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for stem, lines in files.items():
            cv2.imwrite(str(root / "images" / split / f"{stem}.jpg"), np.zeros((8, 8, 3), np.uint8))
            (root / "labels" / split / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text(yaml.safe_dump({"names": dict(enumerate(names))}))
    return root


def test_labels_are_renamed_by_class_name_and_others_dropped(tmp_path: Path) -> None:
    ground = source(tmp_path / "ground", ["smoke", "stall", "person"], {
        "train": {"a": ["0 0.5 0.5 0.1 0.1", "1 0.2 0.2 0.1 0.1"], "b": ["2 0.5 0.5 0.2 0.2"]},
        "val": {"c": ["1 0.3 0.3 0.1 0.1"]},
    })  # fmt: skip
    aerial = source(tmp_path / "aerial", ["umbrella", "stall"], {"train": {"a": ["1 0.4 0.4 0.1 0.1"]}, "val": {}})
    merged = merge_yolo_datasets([ground, aerial], tmp_path / "street", ["stall", "umbrella"])
    assert merged.images == {"train": 3, "val": 1}
    assert merged.boxes == {"train": {"stall": 2}, "val": {"stall": 1}}
    out = tmp_path / "street"
    assert (out / "labels/train/ground-a.txt").read_text() == "0 0.2 0.2 0.1 0.1\n"
    assert (out / "labels/train/ground-b.txt").read_text() == ""  # a person only: background now
    assert (out / "labels/train/aerial-a.txt").read_text() == "0 0.4 0.4 0.1 0.1\n"
    assert yaml.safe_load(merged.data_yaml.read_text())["names"] == {0: "stall", 1: "umbrella"}
    with pytest.raises(DatasetError, match="has none of the classes"):
        merge_yolo_datasets([ground], tmp_path / "other", ["scaffolding"])
    with pytest.raises(DatasetError, match="already holds files"):
        merge_yolo_datasets([ground], out, ["stall"])

"""write_video and write_yolo_dataset: well-formed files, leakage-free splits."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import pytest
import yaml

from datasets.synthetic import SYNTHETIC_CLASSES, SceneSpec, truth_path_for, write_video, write_yolo_dataset


def test_write_video_reads_back_with_the_right_frame_count_and_size(tmp_path: Path) -> None:
    spec = SceneSpec.sidewalk_stall(1, width=320, height=180, fps=10.0, duration_s=2.0)
    path = tmp_path / "clip.mp4"
    truth = write_video(spec, path)
    cap = cv2.VideoCapture(str(path))
    try:
        assert cap.isOpened()
        n = 0
        while True:
            ok, image = cap.read()
            if not ok:
                break
            assert image.shape == (180, 320, 3)
            n += 1
    finally:
        cap.release()
    assert n == spec.frame_count == len(truth.frames)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "clip.truth.json"]


def test_truth_json_is_plain_and_matches_the_returned_truth(tmp_path: Path) -> None:
    spec = SceneSpec.restaurant_street(2, width=320, height=180, fps=10.0, duration_s=2.0)
    truth = write_video(spec, tmp_path / "street.mp4")
    data = json.loads(truth_path_for(tmp_path / "street.mp4").read_text())
    assert data["format"] == "nonsite.synthetic.truth/1"
    assert data["frame_count"] == 20 and len(data["frames"]) == 20
    assert data["classes"] == list(SYNTHETIC_CLASSES)
    assert SceneSpec.model_validate(data["spec"]) == spec
    assert data["events"] == [e.to_json() for e in truth.events]
    assert data["events"][0]["kind"] == "fume"
    assert set(data["zones"]) == {"facade", "sidewalk", "road", "sky"}


@pytest.mark.parametrize(
    ("name", "message"), [("clip.txt", "must end in .mp4"), ("no/such/dir/clip.mp4", "must exist")]
)
def test_write_video_rejects_bad_paths(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_video(SceneSpec(width=320, height=180, duration_s=0.2), tmp_path / name)


@pytest.fixture(scope="module")
def yolo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("yolo") / "ds"
    summary = write_yolo_dataset(root, n_images=30, seed=5, val_fraction=0.25, width=320, height=180)
    assert summary.n_train + summary.n_val == 30
    assert summary.n_val > 0 and summary.n_train > 0
    return root


def test_yolo_dataset_has_the_standard_layout(yolo_dir: Path) -> None:
    data = yaml.safe_load((yolo_dir / "data.yaml").read_text())
    assert data["path"] == str(yolo_dir.resolve())
    assert (data["train"], data["val"]) == ("images/train", "images/val")
    assert data["names"] == dict(enumerate(SYNTHETIC_CLASSES))
    for split in ("train", "val"):
        images = sorted(p.stem for p in (yolo_dir / "images" / split).iterdir())
        labels = sorted(p.stem for p in (yolo_dir / "labels" / split).iterdir())
        assert images == labels and images


def test_yolo_labels_are_five_normalized_numbers_with_known_classes(yolo_dir: Path) -> None:
    n_lines = 0
    for label in yolo_dir.glob("labels/*/*.txt"):
        for line in label.read_text().splitlines():
            parts = line.split()
            assert len(parts) == 5, line
            cls, *xywh = parts
            assert int(cls) in range(len(SYNTHETIC_CLASSES))
            assert all(0.0 <= float(v) <= 1.0 for v in xywh), line
            assert float(xywh[2]) > 0 and float(xywh[3]) > 0
            n_lines += 1
    assert n_lines > 10


def test_yolo_images_are_of_the_requested_size(yolo_dir: Path) -> None:
    image = cv2.imread(str(next(yolo_dir.glob("images/train/*.jpg"))))
    assert image is not None and image.shape == (180, 320, 3)


def test_yolo_split_is_by_scene_and_frames_are_sparse(yolo_dir: Path) -> None:
    manifest = json.loads((yolo_dir / "scenes.json").read_text())["images"]
    train = {m["scene_seed"] for m in manifest if m["split"] == "train"}
    val = {m["scene_seed"] for m in manifest if m["split"] == "val"}
    assert train and val and not train & val
    by_scene: dict[int, list[int]] = {}
    for m in manifest:
        by_scene.setdefault(m["scene_seed"], []).append(m["frame"])
    assert len(by_scene) >= 10
    for frames in by_scene.values():
        ordered = sorted(frames)
        assert all(b - a >= 2 for a, b in itertools.pairwise(ordered))


def test_yolo_dataset_is_deterministic_by_seed(tmp_path: Path) -> None:
    a = write_yolo_dataset(tmp_path / "a", n_images=4, seed=1, width=320, height=180)
    b = write_yolo_dataset(tmp_path / "b", n_images=4, seed=1, width=320, height=180)
    assert (a.train_seeds, a.val_seeds) == (b.train_seeds, b.val_seeds)
    for label in (tmp_path / "a").glob("labels/*/*.txt"):
        assert label.read_text() == (tmp_path / "b" / label.relative_to(tmp_path / "a")).read_text()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_images": 0}, "n_images must be >= 1"),
        ({"val_fraction": 1.0}, r"val_fraction must lie in \[0, 1\)"),
        ({"seed": -2}, "seed must be >= 0"),
        ({"image_ext": ".gif"}, "image_ext must be"),
    ],
)
def test_write_yolo_dataset_rejects_bad_arguments(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"n_images": 2, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=message):
        write_yolo_dataset(tmp_path / "x", **args)  # type: ignore[arg-type]


def test_write_yolo_dataset_refuses_a_folder_with_files(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(ValueError, match="must be empty or absent"):
        write_yolo_dataset(tmp_path, n_images=2, seed=0)

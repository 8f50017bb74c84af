import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from nonsite.cli import main
from tests.vision.onnx_models import constant_head_model, ultralytics_metadata

NAMES = ["stall", "umbrella"]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    raw = np.zeros((6, 8), np.float32)
    raw[:4] = 1.0
    raw[:, 0] = [32, 32, 16, 16, 0.9, 0.0]  # one stall in the middle of the 64×64 input
    return constant_head_model(tmp_path / "m.onnx", raw, metadata=ultralytics_metadata(NAMES))


def write_images(folder: Path, count: int) -> Path:
    folder.mkdir()
    for i in range(count):
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), np.full((64, 128, 3), 40 * i, np.uint8))
    return folder


def write_video(path: Path, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (128, 64))
    for i in range(frames):
        writer.write(np.full((64, 128, 3), 10 * i % 255, np.uint8))
    writer.release()
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_detect_on_a_folder_writes_annotated_images_and_jsonl(model, tmp_path, capsys):
    images = write_images(tmp_path / "images", 3)
    out = tmp_path / "out"
    assert main(["detect", str(images), "--model", str(model), "--out", str(out)]) == 0
    records = read_jsonl(out / "detections.jsonl")
    assert [r["frame"] for r in records] == [0, 1, 2]
    assert records[0]["source"] == "images/000.jpg"
    # the 64×64 input holds the 128×64 image at half scale with 16 rows of padding on top
    assert records[0]["detections"] == [
        {"xyxy": [48.0, 16.0, 80.0, 48.0], "score": 0.9, "class_id": 0, "class_name": "stall"}
    ]
    assert sorted(p.name for p in out.glob("*.jpg")) == ["000.jpg", "001.jpg", "002.jpg"]
    assert "3 frames" in capsys.readouterr().out


def test_detect_on_a_video_writes_an_annotated_video(model, tmp_path):
    video = write_video(tmp_path / "clip.mp4", 12)
    out = tmp_path / "out"
    assert main(["detect", str(video), "--model", str(model), "--out", str(out), "--batch", "5"]) == 0
    records = read_jsonl(out / "detections.jsonl")
    assert [r["frame"] for r in records] == list(range(12))
    times = [r["captured_at"] for r in records]
    assert times == sorted(times) and len(set(times)) == 12
    capture = cv2.VideoCapture(str(out / "clip.annotated.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    capture.release()


def test_an_unreadable_image_in_a_folder_is_skipped_and_counted(model, tmp_path, capsys):
    images = write_images(tmp_path / "images", 2)
    (images / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    assert main(["detect", str(images), "--model", str(model), "--out", str(tmp_path / "o"), "--no-annotate"]) == 0
    assert len(read_jsonl(tmp_path / "o" / "detections.jsonl")) == 2
    assert "skipped 1 unreadable" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("make_source", "message"),
    [
        (lambda d: d / "missing.mp4", "no such file or folder"),
        (lambda d: (d / "notes.txt").write_text("hi") and d / "notes.txt", "not an image or video file"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "folder holds no images"),
        (lambda d: (d / "bad.mp4").write_bytes(b"\x00" * 512) and d / "bad.mp4", "cannot open as a video"),
        (lambda d: (d / "bad.png").write_bytes(b"\x00" * 512) and d / "bad.png", "not a readable image"),
    ],
    ids=["missing", "not-media", "empty-folder", "corrupt-video", "corrupt-image"],
)
def test_an_unreadable_source_exits_non_zero_with_one_line(model, tmp_path, capsys, make_source, message):
    source = make_source(tmp_path)
    assert main(["detect", str(source), "--model", str(model), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if line.startswith("nonsite detect: error:")]) == 1
    assert message in err[-1]


def test_a_wrong_model_exits_non_zero_naming_the_file(tmp_path, capsys):
    images = write_images(tmp_path / "images", 1)
    bad = tmp_path / "weights.onnx"
    bad.write_text("not a model")
    assert main(["detect", str(images), "--model", str(bad)]) == 1
    assert "weights.onnx is not a loadable ONNX model" in capsys.readouterr().err


def test_bad_thresholds_are_usage_errors(model, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", str(tmp_path), "--model", str(model), "--conf", "1.5"])
    assert exit_info.value.code == 2

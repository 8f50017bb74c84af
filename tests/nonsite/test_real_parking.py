"""Real footage: Intel's sample video of a car park seen from above (../shared/data, CC BY 4.0).

Every car in it drives through; none stays. A no-parking zone with a 5-second dwell must
report nothing there, and must report the cars when the same footage holds still on
them for ten seconds (the held copy is made in the test's temporary folder).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from nonsite.cli import main

pytestmark = pytest.mark.shared_data

ROOT = Path(__file__).resolve().parents[2]


def analyze(video: Path, shared_data: Path, out: Path) -> list[dict]:
    model = shared_data / "weights/yolo_fastestv2_coco/model.onnx"
    args = ["analyze", str(video), "--cameras", str(ROOT / "examples/intel_parking.yaml")]
    args += ["--evidence", str(out / "evidence"), "--keys", str(out.parent / f"{out.name}-keys")]
    assert main([*args, "--model", str(model), "--conf", "0.15", "--out", str(out)]) == 0
    return [json.loads(line) for line in (out / "violations.jsonl").read_text().splitlines()]


def held_copy(source: Path, target: Path, *, at: int, frames: int) -> Path:
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS)
    writer = None
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if writer is None:
            size = (frame.shape[1], frame.shape[0])
            writer = cv2.VideoWriter(str(target), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
        for _ in range(1 + (frames if index == at else 0)):
            writer.write(frame)
        index += 1
    capture.release()
    assert writer is not None
    writer.release()
    return target


def test_cars_that_pass_are_not_reported(shared_data, tmp_path):
    assert analyze(shared_data / "video/intel_car-detection.mp4", shared_data, tmp_path / "out") == []


def test_cars_that_stay_are_reported(shared_data, tmp_path):
    # frame 212 shows two cars side by side; hold it for 10 s at the video's 12.5 fps
    video = held_copy(shared_data / "video/intel_car-detection.mp4", tmp_path / "held.mp4", at=212, frames=125)
    closed = [r for r in analyze(video, shared_data, tmp_path / "out") if r["closed"]]
    assert closed, "the held cars must be reported"
    centres = sorted((r["bbox"][0] + r["bbox"][2]) / 2 for r in closed)
    assert centres[0] < 300 and centres[-1] > 350  # the grey car on the left and the red car on the right
    for r in closed:
        assert r["kind"] == "occupation"
        assert r["confirmed_frame"] - r["start_frame"] >= 5 * 12.5 - 2  # not before the 5 s dwell
        assert 200 <= r["start_frame"] <= 230 and r["end_frame"] >= 330

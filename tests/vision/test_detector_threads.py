"""One detector shared by several camera threads gives each thread its own results."""

from __future__ import annotations

import threading

import numpy as np

from nonsite.starter import starter_model_path
from vision.detectors import create_detector
from vision.types import Detections


def test_threads_sharing_a_detector_get_the_results_of_their_own_frames() -> None:
    detector = create_detector({"type": "onnx_yolo", "path": starter_model_path(), "intra_op_threads": 1, "conf": 0.01})
    rng = np.random.default_rng(7)
    images = [rng.integers(0, 255, (360, 640, 3), dtype=np.uint8) for _ in range(2)]
    for image in images:  # a stall-like block so that the frames give different, non-empty results
        image[200:300, 100:260] = (30, 30, 200)
    expected = [detector.detect_one(image) for image in images]
    assert expected[0] != expected[1]
    mismatches: list[int] = []

    def run(k: int) -> None:
        for _ in range(25):
            got: Detections = detector.detect_one(images[k])
            if got != expected[k]:
                mismatches.append(k)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []

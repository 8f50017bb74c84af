"""The Yolo-FastestV2 COCO detector from ../shared/data against its reference pipeline.

The reference is the model author's deployment code (hpc203/yolo-fastestv2-opencv):
`cv2.dnn.blobFromImage` stretch to 352×352 without swapping channels, the anchor-grid
decode, then NMS; boxes scaled back by the stretch ratios. Here written with loops in
`tests.naive`, and NMS made class-aware like nonsite's.
"""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime
import pytest

from tests import naive
from tests.vision.matching import unmatched
from vision.detectors import create_detector
from vision.detectors.onnx import FASTESTV2_ANCHORS
from vision.preprocess import LetterboxGeometry, letterbox_into
from vision.types import Detections

pytestmark = pytest.mark.shared_data

CONF, IOU = 0.15, 0.4


@pytest.fixture(scope="module")
def model_path(shared_data):
    return shared_data / "weights/yolo_fastestv2_coco/model.onnx"


def reference_detect(session, image: np.ndarray, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    raw = session.run(None, {session.get_inputs()[0].name: blob})[0]
    xyxy, score, cls = naive.decode_anchor_grid(raw, [16, 32], FASTESTV2_ANCHORS, (352, 352), CONF)
    keep = naive.nms(xyxy, score, cls, IOU, 300)
    xyxy = xyxy[keep] * np.array([image.shape[1] / 352, image.shape[0] / 352] * 2, np.float32)
    xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, image.shape[1])
    xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, image.shape[0])
    return xyxy, score[keep], cls[keep]


def real_frames(shared_data) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(shared_data / "video/intel_car-detection.mp4"))
    frames = []
    for index in range(0, 377):
        ok, frame = capture.read()
        if not ok:
            break
        if index % 10 == 0:
            frames.append(frame)
    capture.release()
    for path in sorted((shared_data / "construction/excavators/images").iterdir()):
        frames.append(cv2.imread(str(path)))
    return frames


def nonsite_input(image: np.ndarray) -> np.ndarray:
    out = np.empty((1, 3, 352, 352), np.float32)
    letterbox_into(image, out[0], LetterboxGeometry.stretch(image.shape[:2], (352, 352)), rgb=False)
    return out


@pytest.fixture(scope="module")
def detector_and_session(model_path):
    detector = create_detector({"type": "yolo_fastestv2", "path": model_path, "conf": CONF, "iou": IOU})
    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return detector, session


def test_decode_nms_and_mapping_match_the_reference_exactly_on_real_footage(detector_and_session, shared_data):
    detector, session = detector_and_session
    assert detector.names[:3] == ("person", "bicycle", "car")
    total = 0
    for frame in real_frames(shared_data):
        got = detector.detect_one(frame)
        expected = Detections(*reference_detect(session, frame, nonsite_input(frame)))
        assert unmatched(got, expected, box_tol=0.01, score_tol=1e-5) == []
        assert len(got) == len(expected)
        total += len(got)
    assert total >= 50


def test_end_to_end_agrees_with_the_reference_preprocessing(detector_and_session, shared_data):
    detector, session = detector_and_session
    total = missing = 0
    for frame in real_frames(shared_data):
        got = detector.detect_one(frame)
        expected = Detections(*reference_detect(session, frame, cv2.dnn.blobFromImage(frame, 1 / 255.0, (352, 352))))
        # one pixel of the model's 352×352 input, in source pixels
        box_tol = max(frame.shape[0], frame.shape[1]) / 352
        missing += len(unmatched(got, expected, box_tol=box_tol, score_tol=0.02))
        total += len(expected)
    assert total >= 50
    # nonsite's resize computes in float where OpenCV rounds to whole levels (both within 1/255 of
    # the exact value); on this small model that moves some scores by a few thousandths, enough to
    # flip near-ties in NMS (two boxes of one object at 0.45 and 0.45, say), nothing more
    assert missing <= 0.1 * total


def test_a_batch_from_several_cameras_equals_frame_by_frame(detector_and_session, shared_data):
    detector, _ = detector_and_session
    frames = real_frames(shared_data)[:6]
    assert detector.detect(frames) == [detector.detect_one(f) for f in frames]

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto

from tests.vision.onnx_models import constant_head_model, ultralytics_metadata
from vision.detectors import create_detector
from vision.detectors.base import register_backend
from vision.errors import ModelLoadError, ProviderFallbackError

NAMES = ["stall", "umbrella", "smoke"]


def yolo_head(boxes_cxcywh: list[list[float]], class_scores: list[list[float]], n: int = 16) -> np.ndarray:
    """A (4 + nc, n) head output with the given anchors first and zero scores after."""
    raw = np.zeros((4 + len(NAMES), n), np.float32)
    raw[:4, :] = 1.0
    for i, (box, scores) in enumerate(zip(boxes_cxcywh, class_scores, strict=True)):
        raw[:4, i] = box
        raw[4:, i] = scores
    return raw


@pytest.fixture
def yolo_model(tmp_path: Path) -> Path:
    raw = yolo_head(
        [[32, 32, 16, 8], [33, 32, 16, 8], [10, 40, 4, 4]],
        [[0.9, 0.1, 0.0], [0.8, 0.0, 0.0], [0.0, 0.0, 0.6]],
    )
    return constant_head_model(tmp_path / "yolo.onnx", raw, metadata=ultralytics_metadata(NAMES))


def test_ultralytics_head_is_decoded_suppressed_and_mapped_to_source_pixels(yolo_model):
    detector = create_detector({"type": "onnx_yolo", "path": yolo_model, "conf": 0.25, "iou": 0.45})
    assert detector.info.head == "yolo"
    assert detector.names == tuple(NAMES)
    assert detector.info.input_hw == (64, 64)
    # a 128×256 image letterboxes into 64×64 at scale 1/4 with 16 rows of padding on top
    image = np.zeros((128, 256, 3), np.uint8)
    d = detector.detect_one(image)
    assert d.class_id.tolist() == [0, 2]  # the second stall box is suppressed by the first
    assert d.score == pytest.approx([0.9, 0.6])
    assert d.xyxy[0] == pytest.approx([(24) * 4, (28 - 16) * 4, (40) * 4, (36 - 16) * 4])
    assert d.xyxy[1] == pytest.approx([8 * 4, (38 - 16) * 4, 12 * 4, (42 - 16) * 4])


def test_a_batch_of_different_sizes_equals_one_by_one(yolo_model):
    detector = create_detector({"type": "onnx_yolo", "path": yolo_model, "max_batch": 2})
    images = [np.zeros((128, 256, 3), np.uint8), np.zeros((64, 64, 3), np.uint8), np.zeros((300, 100, 3), np.uint8)]
    together = detector.detect(images)
    alone = [detector.detect_one(image) for image in images]
    assert together == alone


def test_dynamic_size_models_get_the_smallest_stride_rectangle(tmp_path):
    raw = yolo_head([[32, 16, 16, 8]], [[0.9, 0.0, 0.0]])
    path = constant_head_model(
        tmp_path / "dyn.onnx", raw, metadata=ultralytics_metadata(NAMES, stride="32"), dynamic_hw=True
    )
    image = np.zeros((128, 256, 3), np.uint8)
    rect = create_detector({"type": "onnx_yolo", "path": path}).detect_one(image)
    # 128×256 scales by 1/4 to 32×64, which is already a multiple of 32: no padding at all
    assert rect.xyxy[0] == pytest.approx([24 * 4, 12 * 4, 40 * 4, 20 * 4])
    square = create_detector({"type": "onnx_yolo", "path": path, "rect": False}).detect_one(image)
    # the full 64×64 square puts 16 rows of padding on top
    assert square.xyxy[0] == pytest.approx([24 * 4, 0, 40 * 4, (20 - 16) * 4])


def test_end_to_end_head_skips_nms(tmp_path):
    raw = np.zeros((10, 6), np.float32)
    raw[0] = [10, 10, 20, 20, 0.9, 1]
    raw[1] = [11, 10, 21, 20, 0.8, 1]  # overlapping: an end-to-end head has already decided
    path = constant_head_model(tmp_path / "e2e.onnx", raw, metadata=ultralytics_metadata(NAMES, end2end="True"))
    detector = create_detector({"type": "onnx_yolo", "path": path})
    assert detector.info.head == "end2end"
    d = detector.detect_one(np.zeros((64, 64, 3), np.uint8))
    assert d.class_id.tolist() == [1, 1]


def test_names_can_be_given_for_a_model_without_metadata(tmp_path):
    path = constant_head_model(tmp_path / "bare.onnx", yolo_head([], []))
    with pytest.raises(ModelLoadError, match="carries no class names in its metadata and none were given"):
        create_detector({"type": "onnx_yolo", "path": path})
    detector = create_detector({"type": "onnx_yolo", "path": path, "names": NAMES})
    assert detector.names == tuple(NAMES)
    assert detector.info.input_hw == (64, 64)  # read from the input shape


def test_fixed_batch_one_model_runs_frame_by_frame(tmp_path):
    raw = yolo_head([[32, 32, 16, 8]], [[0.9, 0.0, 0.0]])
    path = constant_head_model(tmp_path / "b1.onnx", raw, metadata=ultralytics_metadata(NAMES), dynamic_batch=False)
    detector = create_detector({"type": "onnx_yolo", "path": path})
    assert not detector.info.dynamic_batch
    results = detector.detect([np.zeros((64, 64, 3), np.uint8)] * 3)
    assert [len(r) for r in results] == [1, 1, 1]


def test_half_precision_input_is_fed_as_float16(tmp_path):
    raw = yolo_head([[32, 32, 16, 8]], [[0.9, 0.0, 0.0]])
    path = constant_head_model(
        tmp_path / "fp16.onnx", raw, metadata=ultralytics_metadata(NAMES), input_type=TensorProto.FLOAT16
    )
    assert len(create_detector({"type": "onnx_yolo", "path": path}).detect_one(np.zeros((64, 64, 3), np.uint8))) == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"this is not onnx"), "is not a loadable ONNX model"),
        (lambda p: None, "does not exist"),
        (
            lambda p: constant_head_model(p, np.zeros((5, 16), np.float32), metadata=ultralytics_metadata(NAMES)),
            r"output shape \(1, 5, 16\): expected a detection head \(B, 4 \+ 3, N\)",
        ),
        (
            lambda p: constant_head_model(
                p, np.zeros((7, 16), np.float32), metadata={**ultralytics_metadata(NAMES), "task": "segment"}
            ),
            "is a 'segment' model",
        ),
        (
            lambda p: constant_head_model(
                p, np.zeros((7, 16), np.float32), metadata=ultralytics_metadata(NAMES), dynamic_batch=False, batch_dim=4
            ),
            "fixed batch of 4",
        ),
    ],
    ids=["not-onnx", "missing", "wrong-head", "not-detect", "fixed-batch-4"],
)
def test_a_wrong_model_file_is_refused_at_load_with_the_reason(tmp_path, make, message):
    path = tmp_path / "model.onnx"
    make(path)
    with pytest.raises(ModelLoadError, match=message):
        create_detector({"type": "onnx_yolo", "path": path})


def test_unknown_configuration_keys_are_errors(yolo_model):
    with pytest.raises(ModelLoadError, match="confidence"):
        create_detector({"type": "onnx_yolo", "path": yolo_model, "confidence": 0.3})
    with pytest.raises(ModelLoadError, match="type"):
        create_detector({"type": "darknet", "path": yolo_model})


def test_a_missing_execution_provider_is_reported_not_silently_replaced(yolo_model):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA; the fallback cannot be provoked")
    with pytest.raises(ProviderFallbackError, match="CUDAExecutionProvider"):
        create_detector({"type": "onnx_yolo", "path": yolo_model, "providers": ["CUDAExecutionProvider"]})
    lenient = create_detector(
        {"type": "onnx_yolo", "path": yolo_model, "providers": ["CUDAExecutionProvider"], "strict_providers": False}
    )
    assert lenient.info.providers == ("CPUExecutionProvider",)


def test_backends_register_once():
    with pytest.raises(ValueError, match="registered twice"):
        register_backend("onnx_yolo")(object)  # type: ignore[arg-type]


def test_imgsz_runs_a_dynamic_model_at_another_input_size(tmp_path):
    raw = yolo_head([[32, 16, 16, 8]], [[0.9, 0.0, 0.0]])
    dynamic = constant_head_model(
        tmp_path / "dyn.onnx", raw, metadata=ultralytics_metadata(NAMES, stride="32"), dynamic_hw=True
    )
    detector = create_detector({"type": "onnx_yolo", "path": dynamic, "imgsz": 128})
    assert detector.info.input_hw == (128, 128)
    image = np.zeros((128, 256, 3), np.uint8)
    # 128×256 now scales by 1/2 to 64×128: the head's box in model pixels maps back at twice its size
    assert detector.detect_one(image).xyxy[0] == pytest.approx([24 * 2, 12 * 2, 40 * 2, 20 * 2])
    with pytest.raises(ModelLoadError, match="multiple of the model's stride 32"):
        create_detector({"type": "onnx_yolo", "path": dynamic, "imgsz": 100})
    fixed = constant_head_model(tmp_path / "fixed.onnx", raw, metadata=ultralytics_metadata(NAMES))
    with pytest.raises(ModelLoadError, match="fixed 64x64 input"):
        create_detector({"type": "onnx_yolo", "path": fixed, "imgsz": 128})

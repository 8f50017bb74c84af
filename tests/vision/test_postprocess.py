import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import naive
from vision.detectors.onnx import FASTESTV2_ANCHORS, FASTESTV2_STRIDES
from vision.postprocess import (
    boxes_to_source,
    decode_anchor_grid,
    decode_end2end,
    decode_yolo,
    finish,
    nms,
)
from vision.preprocess import LetterboxGeometry


@st.composite
def candidate_sets(draw, max_n: int = 60, max_classes: int = 4):
    """Clustered boxes (as a detector produces around objects) with distinct scores."""
    n = draw(st.integers(0, max_n))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 600, (max(1, n // 5), 2))
    pick = rng.integers(0, len(centres), n)
    xy = centres[pick] + rng.normal(0, 15, (n, 2))
    wh = rng.uniform(5, 120, (n, 2))
    xyxy = np.hstack([xy - wh / 2, xy + wh / 2]).astype(np.float32)
    score = rng.permutation(np.linspace(0.05, 0.99, n)).astype(np.float32) if n else np.empty(0, np.float32)
    class_id = rng.integers(0, draw(st.integers(1, max_classes)), n).astype(np.int32)
    return xyxy, score, class_id


@settings(max_examples=200, deadline=None)
@given(candidate_sets(), st.floats(0.05, 0.95), st.integers(1, 300))
def test_nms_matches_the_naive_reference(candidates, iou, max_det):
    xyxy, score, class_id = candidates
    keep = nms(xyxy, score, class_id, iou=iou, max_det=max_det)
    assert keep.tolist() == naive.nms(xyxy, score, class_id, iou, max_det)


@pytest.mark.train
@settings(max_examples=200, deadline=None)
@given(candidate_sets(max_n=120), st.floats(0.05, 0.95))
def test_nms_keeps_the_same_set_as_torchvision_batched_nms(candidates, iou):
    import torch
    import torchvision

    xyxy, score, class_id = candidates
    expected = torchvision.ops.batched_nms(
        torch.from_numpy(xyxy), torch.from_numpy(score), torch.from_numpy(class_id.astype(np.int64)), iou
    )
    keep = nms(xyxy, score, class_id, iou=iou, max_det=10_000)
    assert keep.tolist() == expected.tolist()


def test_nms_equal_scores_keep_input_order():
    xyxy = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    keep = nms(xyxy, np.array([0.5, 0.5, 0.5], np.float32), np.zeros(3, np.int32), iou=0.5)
    assert keep.tolist() == [0, 2]


def test_nms_never_suppresses_across_classes():
    xyxy = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    keep = nms(xyxy, np.array([0.9, 0.8], np.float32), np.array([0, 1], np.int32), iou=0.1)
    assert keep.tolist() == [0, 1]


def test_nms_of_nothing_is_nothing():
    assert nms(np.empty((0, 4), np.float32), np.empty(0), np.empty(0), iou=0.5).shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"iou": 1.5}, r"iou must lie in \[0, 1\]"),
        ({"iou": 0.5, "max_det": 0}, "max_det must be >= 1"),
    ],
)
def test_nms_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nms(np.zeros((1, 4), np.float32), np.zeros(1), np.zeros(1), **kwargs)


def test_nms_rejects_misaligned_scores():
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        nms(np.zeros((2, 4), np.float32), np.zeros(3), np.zeros(2), iou=0.5)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 12), st.integers(1, 500), st.floats(0.0, 0.9))
def test_decode_yolo_matches_the_naive_reference(seed, nc, n, conf):
    rng = np.random.default_rng(seed)
    pred = np.vstack([rng.uniform(0, 640, (2, n)), rng.uniform(1, 200, (2, n)), rng.uniform(0, 1, (nc, n))])
    pred = pred.astype(np.float32)
    got, expected = decode_yolo(pred, conf), naive.decode_yolo(pred, conf)
    for g, e in zip(got, expected, strict=True):
        assert np.allclose(g, e, atol=1e-4)


def test_decode_yolo_threshold_is_strict():
    pred = np.array([[10], [10], [4], [4], [0.25], [0.1]], np.float32)
    assert len(decode_yolo(pred, 0.25)[0]) == 0
    xyxy, score, cls = decode_yolo(pred, 0.2)
    assert xyxy.tolist() == [[8, 8, 12, 12]] and cls.tolist() == [0]
    assert score == pytest.approx([0.25])


def test_decode_yolo_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"shape \(4 \+ nc, N\)"):
        decode_yolo(np.zeros((4, 10), np.float32), 0.5)


def test_decode_end2end_filters_by_score():
    pred = np.array([[0, 0, 5, 5, 0.9, 2], [1, 1, 4, 4, 0.1, 0]], np.float32)
    xyxy, score, cls = decode_end2end(pred, 0.25)
    assert xyxy.tolist() == [[0, 0, 5, 5]] and cls.tolist() == [2]
    assert score == pytest.approx([0.9])
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        decode_end2end(np.zeros((3, 5), np.float32), 0.25)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31), st.floats(0.0, 0.5))
def test_decode_anchor_grid_matches_the_reference_decode(seed, conf):
    rng = np.random.default_rng(seed)
    pred = rng.uniform(0, 1, (605, 95)).astype(np.float32) ** 3
    got = decode_anchor_grid(pred, strides=FASTESTV2_STRIDES, anchors=FASTESTV2_ANCHORS, input_hw=(352, 352), conf=conf)
    expected = naive.decode_anchor_grid(pred, [16, 32], FASTESTV2_ANCHORS, (352, 352), conf)
    for g, e in zip(got, expected, strict=True):
        assert np.allclose(g, e, atol=1e-3)


def test_decode_anchor_grid_checks_the_cell_count():
    with pytest.raises(ValueError, match=r"pred must have shape \(605, 15 \+ nc\)"):
        decode_anchor_grid(
            np.zeros((600, 95), np.float32),
            strides=FASTESTV2_STRIDES,
            anchors=FASTESTV2_ANCHORS,
            input_hw=(352, 352),
            conf=0.2,
        )


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 3000), st.integers(1, 3000), st.integers(0, 2**31))
def test_boxes_round_trip_through_the_letterbox(h, w, seed):
    g = LetterboxGeometry.letterbox((h, w), (640, 640))
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1, (8, 2)) * [w, h]
    wh = rng.uniform(0, 1, (8, 2)) * [w, h]
    src = np.hstack([xy, np.minimum(xy + wh, [w, h])]).astype(np.float32)
    into = np.column_stack(
        [src[:, 0] * g.scale_x + g.left, src[:, 1] * g.scale_y + g.top, src[:, 2] * g.scale_x + g.left,
         src[:, 3] * g.scale_y + g.top]
    )  # fmt: skip
    back = boxes_to_source(into, g)
    assert np.allclose(back, src, atol=max(w, h) * 1e-5 + 1e-3)


def test_boxes_are_clipped_to_the_source_image():
    g = LetterboxGeometry.letterbox((360, 640), (640, 640))
    back = boxes_to_source(np.array([[-50, 100, 700, 600]], np.float32), g)
    assert back.tolist() == [[0, 0, 640, 360]]


def test_finish_without_iou_keeps_the_best_max_det():
    xyxy = np.array([[0, 0, 1, 1]] * 3, np.float32)
    d = finish(
        xyxy,
        np.array([0.1, 0.9, 0.5], np.float32),
        np.zeros(3, np.int32),
        LetterboxGeometry.letterbox((10, 10), (10, 10)),
        iou=None,
        max_det=2,
    )
    assert d.score.tolist() == pytest.approx([0.9, 0.5])

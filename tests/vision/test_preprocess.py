import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import naive
from vision.preprocess import LetterboxGeometry, letterbox_into

sizes = st.tuples(st.integers(1, 700), st.integers(1, 700))
targets = st.sampled_from([(64, 64), (320, 320), (352, 352), (384, 640), (640, 640)])


@settings(max_examples=60, deadline=None)
@given(src=sizes, dst=targets, seed=st.integers(0, 2**16), rgb=st.booleans())
def test_letterbox_matches_opencv_within_one_level(src, dst, seed, rgb):
    image = np.random.default_rng(seed).integers(0, 256, (*src, 3), dtype=np.uint8)
    out = np.full((3, *dst), -1.0, np.float32)
    letterbox_into(image, out, rgb=rgb)
    reference = naive.letterbox(image, dst, rgb=rgb)
    assert np.abs(out - reference).max() <= 1.0 / 255.0 + 1e-6


@pytest.mark.parametrize(
    ("src", "dst", "expected"),
    [
        ((1080, 1920), (640, 640), (360, 640, 140, 0)),
        ((432, 768), (640, 640), (360, 640, 140, 0)),
        ((640, 480), (640, 640), (640, 480, 0, 80)),
        ((100, 37), (640, 640), (640, 237, 0, 201)),
        ((1, 3000), (640, 640), (1, 640, 319, 0)),  # thin images keep at least one row
    ],
)
def test_letterbox_geometry_follows_ultralytics_rounding(src, dst, expected):
    g = LetterboxGeometry.letterbox(src, dst)
    assert (g.new_h, g.new_w, g.top, g.left) == expected


def test_stretch_fills_the_input():
    g = LetterboxGeometry.stretch((432, 768), (352, 352))
    assert (g.new_h, g.new_w, g.top, g.left) == (352, 352, 0, 0)
    assert (g.scale_x, g.scale_y) == (352 / 768, 352 / 432)


def test_letterbox_with_stretch_geometry_matches_plain_resize():
    import cv2

    image = np.random.default_rng(1).integers(0, 256, (432, 768, 3), dtype=np.uint8)
    out = np.empty((3, 352, 352), np.float32)
    letterbox_into(image, out, LetterboxGeometry.stretch((432, 768), (352, 352)), rgb=False)
    reference = cv2.resize(image, (352, 352), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1) / 255.0
    assert np.abs(out - reference).max() <= 1.0 / 255.0 + 1e-6


def test_scaleup_false_only_shrinks():
    g = LetterboxGeometry.letterbox((100, 200), (640, 640), scaleup=False)
    assert (g.new_h, g.new_w) == (100, 200)


def test_writes_into_a_slot_of_a_batch_tensor():
    batch = np.zeros((2, 3, 64, 64), np.float32)
    image = np.full((32, 64, 3), 255, np.uint8)
    letterbox_into(image, batch[1])
    assert batch[0].max() == 0.0
    assert batch[1, :, 16:48].min() == pytest.approx(1.0)
    assert batch[1, :, :16].max() == pytest.approx(114 / 255)


@pytest.mark.parametrize(
    ("image", "out", "message"),
    [
        (np.zeros((4, 4), np.uint8), np.zeros((3, 8, 8), np.float32), r"image must be an \(H, W, 3\) uint8"),
        (np.zeros((4, 4, 3), np.float32), np.zeros((3, 8, 8), np.float32), "uint8"),
        (np.zeros((4, 4, 3), np.uint8), np.zeros((8, 8, 3), np.float32), r"out must be a \(3, h, w\) float32"),
        (np.zeros((4, 4, 3), np.uint8), np.zeros((3, 8, 8), np.float64), "float32"),
        (np.zeros((4, 4, 3), np.uint8), np.zeros((3, 8, 16), np.float32)[:, :, ::2], "C-contiguous"),
    ],
)
def test_rejects_bad_arguments(image, out, message):
    with pytest.raises(ValueError, match=message):
        letterbox_into(image, out)


def test_rejects_a_geometry_for_another_size():
    g = LetterboxGeometry.letterbox((10, 10), (8, 8))
    with pytest.raises(ValueError, match="geometry is for 10x10"):
        letterbox_into(np.zeros((4, 4, 3), np.uint8), np.zeros((3, 8, 8), np.float32), g)


def test_accepts_non_contiguous_images():
    image = np.random.default_rng(2).integers(0, 256, (40, 80, 3), dtype=np.uint8)
    out_a, out_b = np.empty((3, 64, 64), np.float32), np.empty((3, 64, 64), np.float32)
    letterbox_into(image[:, ::2], out_a)
    letterbox_into(np.ascontiguousarray(image[:, ::2]), out_b)
    assert np.array_equal(out_a, out_b)


@pytest.mark.train
@pytest.mark.parametrize("src", [(1080, 1920), (432, 768), (533, 800), (100, 37), (640, 640), (1, 3000)])
def test_stride_letterbox_matches_ultralytics_minimum_rectangle(src):
    from ultralytics.data.augment import LetterBox

    expected = LetterBox(640, auto=True, stride=32)(image=np.full((*src, 3), 255, np.uint8))
    content = np.argwhere(expected[..., 0] == 255)
    g = LetterboxGeometry.letterbox(src, (640, 640), stride=32)
    assert (g.dst_h, g.dst_w) == expected.shape[:2]
    assert (g.top, g.left) == tuple(content.min(axis=0))
    assert (g.new_h, g.new_w) == tuple(content.max(axis=0) - content.min(axis=0) + 1)


def test_threaded_letterbox_writes_the_same_tensor():
    image = np.random.default_rng(3).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    serial, threaded = np.empty((3, 384, 640), np.float32), np.empty((3, 384, 640), np.float32)
    g = LetterboxGeometry.letterbox((1080, 1920), (640, 640), stride=32)
    letterbox_into(image, serial, g)
    letterbox_into(image, threaded, g, threads=2)
    assert np.array_equal(serial, threaded)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        letterbox_into(image, serial, g, threads=0)

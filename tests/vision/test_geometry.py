import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import naive
from vision.geometry import box_iou_matrix

coord = st.floats(-500, 1500, allow_nan=False, width=32)
# pixel boxes: empty, or at least 1/64 px a side (float32 areas of far smaller boxes underflow)
size = st.one_of(st.just(0.0), st.floats(1 / 64, 800, width=32))
box = st.tuples(coord, coord, size, size).map(lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])
boxes = st.lists(box, min_size=0, max_size=12).map(lambda b: np.array(b, np.float32).reshape(-1, 4))


def shapely_iou(a: np.ndarray, b: np.ndarray) -> float:
    pa, pb = shapely.box(*a.astype(np.float64)), shapely.box(*b.astype(np.float64))
    union = pa.union(pb).area
    return pa.intersection(pb).area / union if union > 0 else 0.0


@settings(max_examples=300, deadline=None)
@given(boxes, boxes)
def test_iou_matches_shapely(a, b):
    got = box_iou_matrix(a, b)
    assert got.shape == (len(a), len(b))
    for i in range(len(a)):
        for j in range(len(b)):
            assert got[i, j] == pytest.approx(shapely_iou(a[i], b[j]), abs=1e-4)
            assert got[i, j] == pytest.approx(naive.iou(a[i], b[j]), abs=1e-5)


def test_iou_of_a_box_with_itself_is_one_and_disjoint_is_zero():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [5, 5, 5, 5]], np.float32)
    m = box_iou_matrix(a, a)
    assert m[0, 0] == pytest.approx(1.0)
    assert m[0, 1] == 0.0
    assert m[2, 2] == 0.0  # zero area


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((2, 3)), r"shape \(_, 4\)"),
        (np.array([[0, 0, np.nan, 1]]), "finite"),
        (np.array([[5, 0, 1, 1]]), "x2 >= x1"),
    ],
)
def test_rejects_bad_boxes(bad, message):
    with pytest.raises(ValueError, match=message):
        box_iou_matrix(bad, np.zeros((1, 4)))

import itertools
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vision.detectors.base import Detector, ModelInfo
from vision.errors import InferenceError
from vision.tiling import detect_tiled, merge_tiles, tile_grid
from vision.types import Detections

# --- the slow, obviously-correct reference for merge_tiles ---------------------------------


def naive_merge(tiles, detections, image_hw, merge_iou, seam_px, full_image=None) -> list[tuple]:
    """merge_tiles written out plainly: (box, score, class) per merged object, best score first."""
    h, w = image_hw
    items = []  # box, score, class, cut sides, tile
    for k, (tile, found) in enumerate(zip(tiles, detections, strict=True)):
        x0, y0, x1, y1 = tile
        for local, score, cls in zip(found.xyxy.tolist(), found.score.tolist(), found.class_id.tolist(), strict=True):
            box = [local[0] + x0, local[1] + y0, local[2] + x0, local[3] + y0]
            cut = {
                "left": x0 > 0 and box[0] <= x0 + seam_px,
                "top": y0 > 0 and box[1] <= y0 + seam_px,
                "right": x1 < w and box[2] >= x1 - seam_px,
                "bottom": y1 < h and box[3] >= y1 - seam_px,
            }
            items.append((box, score, cls, cut, k))
    if full_image is not None:
        for box, score, cls in zip(
            full_image.xyxy.tolist(), full_image.score.tolist(), full_image.class_id.tolist(), strict=True
        ):
            items.append((box, score, cls, dict.fromkeys(("left", "top", "right", "bottom"), False), len(tiles)))

    sides = {"left": 0, "top": 1, "right": 2, "bottom": 3}

    regions = [*tiles, (0, 0, w, h)]  # where each box was seen; the full-image pass saw everything

    def continues(a, a_cut, b, b_seen):
        for side, k in sides.items():
            if not a_cut[side]:
                continue
            if side == "left":
                across = b[0] < a[0] - seam_px and b[2] >= min(a[2], b_seen[2]) - seam_px
            elif side == "right":
                across = b[2] > a[2] + seam_px and b[0] <= max(a[0], b_seen[0]) + seam_px
            elif side == "top":
                across = b[1] < a[1] - seam_px and b[3] >= min(a[3], b_seen[3]) - seam_px
            else:
                across = b[3] > a[3] + seam_px and b[1] <= max(a[1], b_seen[1]) + seam_px
            lo, hi = (1, 3) if k % 2 == 0 else (0, 2)
            shared = min(a[hi], b[hi]) - max(a[lo], b[lo])
            shorter = min(a[hi] - a[lo], b[hi] - b[lo])
            if across and shorter > 0 and shared >= merge_iou * shorter:
                return True
        return False

    def same(a, a_cut, a_tile, a_seen, b, b_cut, b_tile):
        iw = min(a[2], b[2]) - max(a[0], b[0])
        ih = min(a[3], b[3]) - max(a[1], b[1])
        if iw > 0 and ih > 0:
            inter = iw * ih
            area_a = (a[2] - a[0]) * (a[3] - a[1])
            area_b = (b[2] - b[0]) * (b[3] - b[1])
            if inter >= merge_iou * (area_a + area_b - inter):
                return True
            partial = a_tile != b_tile or any(a_cut.values()) or any(b_cut.values())
            if partial and inter >= merge_iou * min(area_a, area_b):
                return True
        return continues(a, a_cut, b, regions[b_tile]) or continues(b, b_cut, a, a_seen)

    order = sorted(range(len(items)), key=lambda i: -items[i][1])
    absorbed: set[int] = set()
    merged = []
    for i in order:
        if i in absorbed:
            continue
        absorbed.add(i)
        box, score, cls, cut, tile = items[i]
        cur, cur_cut, seen = list(box), dict(cut), list(regions[tile])
        changed = True
        while changed:
            changed = False
            for j in order:
                other, _, other_cls, other_cut, other_tile = items[j]
                if j in absorbed or other_cls != cls:
                    continue
                if not same(cur, cur_cut, tile, seen, other, other_cut, other_tile):
                    continue
                o_seen = regions[other_tile]
                seen = [
                    min(seen[0], o_seen[0]),
                    min(seen[1], o_seen[1]),
                    max(seen[2], o_seen[2]),
                    max(seen[3], o_seen[3]),
                ]
                for side, k in sides.items():
                    low = k < 2
                    if abs(cur[k] - other[k]) <= seam_px:
                        cur_cut[side] = cur_cut[side] and other_cut[side]
                    elif (cur[k] < other[k]) != low:
                        cur_cut[side] = other_cut[side]
                    cur[k] = min(cur[k], other[k]) if low else max(cur[k], other[k])
                absorbed.add(j)
                changed = True
        merged.append((cur, score, cls))
    return merged


def as_list(found: Detections) -> list[tuple]:
    return list(zip(found.xyxy.tolist(), found.score.tolist(), found.class_id.tolist(), strict=True))


# --- a detector that really finds what is drawn ------------------------------------------------

CLASS_COLORS = {0: (0, 0, 255), 1: (0, 255, 0)}


class PaintedRectDetector(Detector):
    """Finds the solid rectangles painted into an image: each connected blob of a class colour is one box.

    It sees only the tile it is given, so an object cut by a tile edge comes back cut.
    """

    def __init__(self) -> None:
        self.info = ModelInfo(
            path=Path("painted.onnx"),
            sha256="0" * 64,
            names=("red", "green"),
            input_hw=(640, 640),
            head="test",
            dynamic_batch=True,
            providers=(),
            metadata={},
        )
        self.calls: list[int] = []
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        self.calls.append(len(images))
        out = []
        for image in images:
            self.shapes.append(image.shape)
            boxes, classes = [], []
            for cls, color in CLASS_COLORS.items():
                mask = np.all(image == color, axis=2).astype(np.uint8)
                n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
                for x, y, w, h, _area in stats[1:n]:
                    boxes.append([x, y, x + w, y + h])
                    classes.append(cls)
            out.append(
                Detections(
                    xyxy=np.array(boxes, np.float32).reshape(-1, 4),
                    score=np.linspace(0.9, 0.5, len(boxes), dtype=np.float32),
                    class_id=np.array(classes, np.int32),
                )
            )
        return out


def painted(shape_hw: tuple[int, int], rects: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    image = np.zeros((*shape_hw, 3), np.uint8)
    for x1, y1, x2, y2, cls in rects:
        image[y1:y2, x1:x2] = CLASS_COLORS[cls]
    return image


def boxes_of(found: Detections) -> list[tuple]:
    return sorted((*[round(v) for v in box], int(c)) for box, c in zip(found.xyxy, found.class_id, strict=True))


# --- the grid ----------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    height=st.integers(1, 3000),
    width=st.integers(1, 3000),
    tile=st.integers(16, 800),
    overlap=st.sampled_from([0.0, 0.1, 0.2, 0.25, 0.5, 0.75]),
)
def test_the_grid_covers_the_image_with_the_overlap_asked_for(height, width, tile, overlap):
    tiles = tile_grid(height, width, tile, overlap)
    covered = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in tiles:
        assert (x1 - x0, y1 - y0) == (min(tile, width), min(tile, height))
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    xs = sorted({t[0] for t in tiles})
    ys = sorted({t[1] for t in tiles})
    assert xs[0] == 0 and ys[0] == 0
    assert max(t[2] for t in tiles) == width and max(t[3] for t in tiles) == height  # flush with the edges
    for starts, size in ((xs, min(tile, width)), (ys, min(tile, height))):
        for a, b in itertools.pairwise(starts):
            assert size - (b - a) >= overlap * tile - 1e-9


def test_a_20_megapixel_photo_needs_a_dozen_tiles_a_side():
    tiles = tile_grid(3648, 5472, 640, 0.2)
    assert len({t[0] for t in tiles}) == 11 and len({t[1] for t in tiles}) == 7
    assert tiles[0] == (0, 0, 640, 640) and tiles[-1] == (4832, 3008, 5472, 3648)


def test_an_image_smaller_than_a_tile_is_one_tile():
    assert tile_grid(300, 500, 640, 0.2) == [(0, 0, 500, 300)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 10, 640, 0.2), "image size"),
        ((10, 10, 0, 0.2), "tile"),
        ((10, 10, 64, 1.0), "overlap"),
        ((1000, 1000, 4, 0.9), "no room"),
    ],
)
def test_the_grid_rejects_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        tile_grid(*args)


# --- detect_tiled with a detector that finds painted rectangles ----------------------------------


def test_an_object_inside_one_tile_is_found_once():
    image = painted((1000, 1500), [(100, 120, 160, 170, 0)])
    found = detect_tiled(PaintedRectDetector(), image, tile=400, overlap=0.25)
    assert boxes_of(found) == [(100, 120, 160, 170, 0)]


def test_an_object_in_the_overlap_of_two_tiles_is_found_once():
    # tiles start at 0 and 300: x 320..380 lies in both
    image = painted((400, 700), [(320, 50, 380, 90, 1)])
    found = detect_tiled(PaintedRectDetector(), image, tile=400, overlap=0.25)
    assert boxes_of(found) == [(320, 50, 380, 90, 1)]


def test_an_object_straddling_a_seam_comes_back_whole():
    # wider than the overlap: no tile sees all of it
    image = painted((400, 700), [(250, 100, 560, 180, 0)])
    detector = PaintedRectDetector()
    assert all(len(d) == 1 for d in detector.detect([image[:, 0:400], image[:, 300:700]]))
    found = detect_tiled(PaintedRectDetector(), image, tile=400, overlap=0.25)
    assert boxes_of(found) == [(250, 100, 560, 180, 0)]


def test_an_object_on_the_corner_of_four_tiles_comes_back_whole():
    image = painted((700, 700), [(200, 220, 560, 540, 1)])
    found = detect_tiled(PaintedRectDetector(), image, tile=400, overlap=0.25)
    assert boxes_of(found) == [(200, 220, 560, 540, 1)]


def test_an_object_larger_than_a_tile_is_joined_across_several_seams():
    image = painted((600, 1800), [(150, 200, 1500, 260, 0)])
    found = detect_tiled(PaintedRectDetector(), image, tile=400, overlap=0.2)
    assert boxes_of(found) == [(150, 200, 1500, 260, 0)]


def test_tiles_that_only_touch_still_join_a_cut_object():
    image = painted((400, 800), [(350, 100, 470, 200, 0)])
    found = detect_tiled(PaintedRectDetector(), image, tile=400, overlap=0.0)
    assert boxes_of(found) == [(350, 100, 470, 200, 0)]


@pytest.mark.parametrize(
    "rects",
    [
        [(100, 100, 140, 140, 0), (143, 100, 183, 140, 0)],  # side by side in one tile
        [(280, 100, 298, 140, 0), (302, 100, 340, 140, 0)],  # either side of a tile's start
        [(360, 100, 395, 140, 0), (400, 100, 440, 140, 0)],  # either side of a tile's end
        [(250, 100, 360, 140, 0), (365, 100, 600, 140, 0)],  # one cut, its neighbour across the seam
        [(250, 100, 560, 140, 0), (250, 145, 560, 180, 0)],  # two cut objects, one above the other
        [(250, 100, 560, 140, 0), (250, 141, 560, 180, 1)],  # touching, different classes
    ],
    ids=["one-tile", "near-start", "near-end", "cut-and-neighbour", "stacked-across-seam", "two-classes"],
)
def test_two_distinct_nearby_objects_are_not_merged(rects):
    found = detect_tiled(PaintedRectDetector(), painted((400, 700), rects), tile=400, overlap=0.25)
    assert boxes_of(found) == sorted(rects)


def test_the_tiles_go_to_the_detector_in_batches_of_the_size_asked_for():
    image = painted((1000, 1500), [(100, 120, 160, 170, 0)])
    detector = PaintedRectDetector()
    detect_tiled(detector, image, tile=400, overlap=0.25, batch=4)
    n_tiles = len(tile_grid(1000, 1500, 400, 0.25))
    assert n_tiles == 15
    assert detector.calls == [4, 4, 4, 3]
    assert set(detector.shapes) == {(400, 400, 3)}


def test_the_tiles_are_views_of_the_image_not_copies():
    image = painted((800, 800), [])
    seen = []

    class Spy(PaintedRectDetector):
        def detect(self, images):
            seen.extend(images)
            return super().detect(images)

    detect_tiled(Spy(), image, tile=400, overlap=0.2)
    assert seen and all(np.shares_memory(t, image) for t in seen)


def test_the_full_image_pass_is_added_when_asked_for():
    image = painted((800, 800), [(100, 100, 200, 200, 0)])
    detector = PaintedRectDetector()
    found = detect_tiled(detector, image, tile=400, overlap=0.25, batch=8, include_full_image=True)
    assert detector.calls == [8, 1, 1]  # 9 tiles, then the whole image
    assert boxes_of(found) == [(100, 100, 200, 200, 0)]


def test_a_detector_that_loses_results_is_an_error():
    class Lossy(PaintedRectDetector):
        def detect(self, images):
            return super().detect(images)[:-1]

    with pytest.raises(InferenceError, match="returned 3 results for a batch of 4"):
        detect_tiled(Lossy(), painted((800, 800), []), tile=400, overlap=0.25, batch=4)


@pytest.mark.parametrize(
    ("image", "kwargs", "message"),
    [
        (np.zeros((100, 100), np.uint8), {}, "image must be"),
        (np.zeros((100, 100, 3), np.uint8), {"batch": 0}, "batch"),
        (np.zeros((100, 100, 3), np.uint8), {"merge_iou": 0.0}, "merge_iou"),
    ],
)
def test_detect_tiled_rejects_bad_arguments(image, kwargs, message):
    with pytest.raises(ValueError, match=message):
        detect_tiled(PaintedRectDetector(), image, **kwargs)


# --- merge rules, directly -------------------------------------------------------------------------


def dets(*rows) -> Detections:
    arr = np.array(rows, np.float64).reshape(-1, 6)
    return Detections(arr[:, :4], arr[:, 4], arr[:, 5].astype(np.int32))


def test_overlapping_boxes_from_one_tile_stay_apart_but_merge_across_tiles():
    big, small = (20, 20, 120, 120, 0.9, 0), (70, 70, 130, 130, 0.8, 0)  # IoS 0.69, IoU 0.23
    one_tile = merge_tiles([(0, 0, 400, 400)], [dets(big, small)], (1000, 1000))
    assert len(one_tile) == 2
    two_tiles = merge_tiles([(0, 0, 400, 400), (0, 0, 400, 400)], [dets(big), dets(small)], (1000, 1000))
    assert two_tiles.xyxy.tolist() == [[20, 20, 130, 130]]


def test_a_merged_box_keeps_the_best_score():
    merged = merge_tiles(
        [(0, 0, 400, 400), (300, 0, 700, 400)],
        [dets((350, 10, 390, 50, 0.4, 0)), dets((50, 10, 90, 50, 0.8, 0))],
        (400, 700),
    )
    assert merged.score.tolist() == pytest.approx([0.8]) and merged.xyxy.tolist() == [[350, 10, 390, 50]]


def test_merge_tiles_checks_its_inputs():
    with pytest.raises(ValueError, match="pair up"):
        merge_tiles([(0, 0, 10, 10)], [], (10, 10))
    with pytest.raises(ValueError, match="does not lie inside"):
        merge_tiles([(0, 0, 20, 10)], [Detections.empty()], (10, 10))
    assert len(merge_tiles([], [], (10, 10))) == 0


objects = st.lists(
    st.tuples(st.integers(0, 1150), st.integers(0, 750), st.integers(4, 500), st.integers(4, 300), st.integers(0, 1)),
    min_size=0,
    max_size=14,
)


@settings(max_examples=300, deadline=None)
@given(
    objs=objects,
    jitter=st.integers(0, 2**31 - 1),
    tile=st.sampled_from([256, 320, 400]),
    overlap=st.sampled_from([0.0, 0.2, 0.3]),
    merge_iou=st.sampled_from([0.3, 0.5, 0.7]),
    with_full=st.booleans(),
)
def test_merge_tiles_matches_the_reference(objs, jitter, tile, overlap, merge_iou, with_full):
    """Per-tile detections made by clipping objects to tiles (with noise), merged both ways."""
    h, w = 800, 1200
    rng = np.random.default_rng(jitter)
    tiles = tile_grid(h, w, tile, overlap)
    per_tile = []
    for x0, y0, x1, y1 in tiles:
        rows = []
        for ox, oy, ow, oh, cls in objs:
            bx1, by1 = max(ox, x0), max(oy, y0)
            bx2, by2 = min(ox + ow, x1, w), min(oy + oh, y1, h)
            if bx2 - bx1 < 2 or by2 - by1 < 2 or rng.random() < 0.1:
                continue
            noise = rng.normal(0, 1.5, 4) * (rng.random() < 0.5)
            box = np.clip(np.array([bx1, by1, bx2, by2], float) + noise - [x0, y0, x0, y0], 0, [x1 - x0, y1 - y0] * 2)
            if box[2] > box[0] and box[3] > box[1]:
                rows.append((*box, round(rng.uniform(0.3, 1.0), 3), cls))
        per_tile.append(dets(*rows) if rows else Detections.empty())
    full = None
    if with_full:
        rows = [(ox, oy, min(ox + ow, w), min(oy + oh, h), 0.35, cls) for ox, oy, ow, oh, cls in objs]
        full = dets(*rows) if rows else Detections.empty()
    got = merge_tiles(tiles, per_tile, (h, w), merge_iou=merge_iou, full_image=full)
    want = naive_merge(tiles, per_tile, (h, w), merge_iou, 4.0, full)
    assert len(got) == len(want)
    for (box, score, cls), (want_box, want_score, want_cls) in zip(as_list(got), want, strict=True):
        assert box == pytest.approx(want_box, abs=1e-3)
        assert (score, cls) == (pytest.approx(want_score), want_cls)


def test_objects_clipped_to_tiles_come_back_as_the_objects():
    """With exact clipped boxes and objects far apart, merging restores every object exactly."""
    h, w = 800, 1200
    objs = [(50, 60, 300, 120, 0), (500, 300, 980, 420, 1), (700, 600, 760, 790, 0), (1000, 40, 1190, 700, 1)]
    tiles = tile_grid(h, w, 320, 0.2)
    per_tile = []
    for x0, y0, x1, y1 in tiles:
        rows = []
        for ox1, oy1, ox2, oy2, cls in objs:
            bx1, by1, bx2, by2 = max(ox1, x0), max(oy1, y0), min(ox2, x1), min(oy2, y1)
            if bx2 > bx1 and by2 > by1:
                rows.append((bx1 - x0, by1 - y0, bx2 - x0, by2 - y0, 0.9, cls))
        per_tile.append(dets(*rows) if rows else Detections.empty())
    merged = merge_tiles(tiles, per_tile, (h, w))
    assert boxes_of(merged) == sorted(objs)

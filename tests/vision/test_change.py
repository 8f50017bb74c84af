"""Change detection between surveys: registration, the change mask, regions, and the kernels.

Synthetic rooftop scenes give exact truth: the after survey is the same canvas seen
through a known homography, under other light (gain, gamma, white balance, noise),
with new sheds on the roofs.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vision.change import (
    ChangeRegion,
    Registration,
    _automatic_threshold,
    _disc,
    _pieces,
    _segment_kernel,
    _tolerant_colour_difference,
    change_evidence,
    change_mask,
    change_regions,
    otsu_threshold,
    regions_mask,
    register_pair,
    warp_to,
)
from vision.errors import RegistrationError, VisionError

H, W = 480, 640
MARGIN = 80  # the canvas is larger than the image, so the warped after image has no empty border


@dataclass(frozen=True)
class Shed:
    x: int
    y: int
    w: int
    h: int
    colour: tuple[int, int, int]  # BGR

    def mask(self) -> np.ndarray:
        m = np.zeros((H, W), bool)
        m[self.y : self.y + self.h, self.x : self.x + self.w] = True
        return m


#: rust-brown steel, white, and blue colour-steel sheds, in before-image pixels
SHEDS = (
    Shed(120, 90, 60, 40, (40, 120, 200)),
    Shed(400, 300, 50, 50, (235, 235, 235)),
    Shed(300, 150, 70, 30, (160, 80, 70)),
)


def rooftops(seed: int) -> np.ndarray:
    """A canvas of roofs (ridges, rooftop units) over asphalt; no vegetation, which is left out on purpose."""
    rng = np.random.default_rng(seed)
    h, w = H + 2 * MARGIN, W + 2 * MARGIN
    canvas = np.empty((h, w, 3), np.float32)
    canvas[:] = (118, 122, 128)
    canvas += rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    for _ in range(90):
        x, y = int(rng.integers(-20, w)), int(rng.integers(-20, h))
        bw, bh = int(rng.integers(25, 110)), int(rng.integers(25, 110))
        colour = rng.uniform(60, 210, 3)
        colour[1] = min(colour[1], (colour[0] + colour[2]) / 2 + 10)
        cv2.rectangle(canvas, (x, y), (x + bw, y + bh), colour.tolist(), -1)
        cv2.line(canvas, (x, y + bh // 2), (x + bw, y + bh // 2), (colour * 0.7).tolist(), 2)
        for _ in range(int(rng.integers(1, 4))):
            ux, uy = x + int(rng.integers(0, max(1, bw - 8))), y + int(rng.integers(0, max(1, bh - 8)))
            cv2.rectangle(canvas, (ux, uy), (ux + 6, uy + 6), rng.uniform(40, 240, 3).tolist(), -1)
    canvas += rng.normal(0, 3, canvas.shape).astype(np.float32)
    return np.clip(canvas, 0, 255).astype(np.uint8)


def relight(image: np.ndarray, seed: int) -> np.ndarray:
    """Another day's light: gamma 0.85, gain 1.15, +12 offset, a bluer white balance, sensor noise."""
    f = (image.astype(np.float32) / 255) ** 0.85 * 1.15 * np.float32([1.08, 1.0, 0.92]) + 12 / 255
    f = f * 255 + np.random.default_rng(seed + 1000).normal(0, 3, f.shape)
    return np.clip(f, 0, 255).astype(np.uint8)


def survey_homography(angle_deg: float = 3.0, shift=(7.5, -4.0), scale: float = 1.02) -> np.ndarray:
    """After pixel → before pixel: a rotation about the centre, a zoom, a shift and a little perspective."""
    a = np.radians(angle_deg)
    c, s = np.cos(a) * scale, np.sin(a) * scale
    cx, cy = W / 2, H / 2
    return np.array(
        [[c, -s, cx - c * cx + s * cy + shift[0]], [s, c, cy - s * cx - c * cy + shift[1]], [1e-5, -8e-6, 1.0]]
    )


def survey_pair(seed: int, sheds=SHEDS, homography=None, light: bool = True):
    """(before, after, true homography after → before)."""
    canvas = rooftops(seed)
    before = canvas[MARGIN : MARGIN + H, MARGIN : MARGIN + W].copy()
    later = canvas.copy()
    for shed in sheds:
        cv2.rectangle(
            later,
            (shed.x + MARGIN, shed.y + MARGIN),
            (shed.x + MARGIN + shed.w - 1, shed.y + MARGIN + shed.h - 1),
            shed.colour,
            -1,
        )
    if light:
        later = relight(later, seed)
    h = survey_homography() if homography is None else homography
    to_canvas = np.array([[1, 0, MARGIN], [0, 1, MARGIN], [0, 0, 1.0]]) @ h
    # warpPerspective(src, M) samples src at M⁻¹ x: after(p) = later(to_canvas p)
    after = cv2.warpPerspective(later, np.linalg.inv(to_canvas), (W, H), flags=cv2.INTER_LINEAR)
    return before, after, h


def corner_error(registration: Registration, truth: np.ndarray, shape=(H, W)) -> float:
    corners = np.array([[0, 0], [shape[1], 0], [shape[1], shape[0]], [0, shape[0]]], np.float64)
    expected = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), truth).reshape(-1, 2)
    return float(np.abs(registration.map_points(corners) - expected).max())


@pytest.fixture(scope="module", params=[0, 1, 2])
def registered(request):
    """A registered survey pair: (before, warped after, valid, registration, truth)."""
    before, after, truth = survey_pair(request.param)
    registration = register_pair(before, after)
    warped, valid = warp_to(before.shape, after, registration)
    return before, warped, valid, registration, truth


# --------------------------------------------------------------------------- registration


def test_registration_recovers_the_homography_to_within_two_pixels_at_the_corners(registered):
    _, _, _, registration, truth = registered
    assert corner_error(registration, truth) < 2.0
    assert registration.inliers >= 100
    assert 0 < registration.inlier_ratio <= 1
    assert registration.reprojection_error_px < 1.5


def test_registration_on_shrunk_images_maps_back_to_full_resolution():
    before, after, truth = survey_pair(3)
    big_before = cv2.resize(before, (2 * W, 2 * H), interpolation=cv2.INTER_CUBIC)
    big_after = cv2.resize(after, (2 * W, 2 * H), interpolation=cv2.INTER_CUBIC)
    registration = register_pair(big_before, big_after, work_side=W)
    # pixel centres: full-resolution x maps to (x + 0.5) / 2 - 0.5 in the half-size image
    to_big = np.array([[2, 0, 0.5], [0, 2, 0.5], [0, 0, 1.0]])
    assert corner_error(registration, to_big @ truth @ np.linalg.inv(to_big), (2 * H, 2 * W)) < 3.0


def test_the_homography_is_read_only():
    registration = Registration(np.eye(3), 40, 30, 0.5)
    with pytest.raises(ValueError, match="read-only"):
        registration.homography[0, 0] = 2.0


def test_featureless_images_are_refused_naming_the_inlier_count():
    grey = np.full((H, W, 3), 128, np.uint8)
    with pytest.raises(RegistrationError, match=r"^0 inliers: sift found 0 keypoints"):
        register_pair(grey, grey)


def test_unrelated_scenes_are_refused_naming_inliers_and_matches():
    before, _, _ = survey_pair(0)
    other, _, _ = survey_pair(7)
    with pytest.raises(RegistrationError, match=r"^\d+ inliers( of \d+ matches|: only \d+ of \d+ matches)"):
        register_pair(before, other)


def test_a_registration_error_is_a_vision_error():
    assert issubclass(RegistrationError, VisionError)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ratio": 1.0}, "ratio must lie in"),
        ({"ransac_px": 0.0}, "ransac_px must be > 0"),
        ({"min_inliers": 3}, "min_inliers >= 4"),
        ({"detector": "surf"}, "detector must be 'sift' or 'orb'"),
    ],
)
def test_bad_registration_arguments_are_named(kwargs, message):
    before, after, _ = survey_pair(0, sheds=())
    with pytest.raises(ValueError, match=message):
        register_pair(before, after, **kwargs)


def test_warp_marks_only_covered_pixels_valid():
    image = np.full((100, 200, 3), 200, np.uint8)
    shift = Registration(np.array([[1.0, 0, 50], [0, 1, 0], [0, 0, 1]]), 30, 30, 0.1)  # after x → before x + 50
    warped, valid = warp_to((100, 200, 3), image, shift)
    assert warped.shape == (100, 200, 3) and valid.dtype == np.bool_
    assert not valid[:, :51].any()
    assert valid[1:-1, 52:-1].all()
    assert (warped[valid] == 200).all()


# --------------------------------------------------------------------------- change mask


def shed_iou(mask: np.ndarray, shed: Shed) -> float:
    """IoU of the shed with the mask in a window 10 px around it."""
    truth = shed.mask()
    near = cv2.dilate(truth.astype(np.uint8), np.ones((21, 21), np.uint8)) > 0
    found = mask & near
    return float((found & truth).sum() / (found | truth).sum())


def test_new_sheds_are_found_despite_the_change_of_light(registered):
    before, warped, valid, _, _ = registered
    mask = change_mask(before, warped, valid=valid)
    for shed in SHEDS:
        assert shed_iou(mask, shed) >= 0.6, shed


def test_little_but_the_new_sheds_is_flagged(registered):
    before, warped, valid, _, _ = registered
    mask = change_mask(before, warped, valid=valid)
    sheds = np.any([s.mask() for s in SHEDS], axis=0)
    near_sheds = cv2.dilate(sheds.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    assert (mask & ~near_sheds).sum() / valid.sum() < 0.005


@pytest.mark.parametrize("seed", [0, 4])
def test_a_change_of_light_alone_is_almost_no_change(seed):
    before, after, _ = survey_pair(seed, sheds=())
    registration = register_pair(before, after)
    warped, valid = warp_to(before.shape, after, registration)
    mask = change_mask(before, warped, valid=valid)
    assert mask.sum() / valid.sum() < 0.005
    assert not any(r.looks_like_structure for r in change_regions(mask, gsd_m=0.1, before=before, after=warped))


def test_without_normalisation_the_same_change_of_light_would_be_change(registered):
    # the check above means something: the raw colour difference is far above the floor
    before, warped, valid, _, _ = registered
    difference = np.linalg.norm(before.astype(np.float32) - warped.astype(np.float32), axis=2)
    assert np.median(difference[valid]) > 15


def test_a_registration_off_by_a_pixel_or_two_is_no_change():
    before, _, _ = survey_pair(5, sheds=())
    shifted = np.roll(np.roll(relight(before, 5), 2, axis=0), -1, axis=1)
    valid = np.zeros((H, W), bool)
    valid[4:-4, 4:-4] = True
    mask = change_mask(before, shifted, valid=valid)
    assert mask.sum() / valid.sum() < 0.005


def test_pixels_outside_valid_never_change(registered):
    before, warped, valid, _, _ = registered
    half = valid.copy()
    half[:, : W // 2] = False
    mask = change_mask(before, warped, valid=half)
    assert not (mask & ~half).any()
    assert mask[:, W // 2 :].any()


def test_new_vegetation_is_season_not_change_unless_asked():
    before, _, _ = survey_pair(6, sheds=())
    after = before.copy()
    cv2.rectangle(after, (200, 200), (279, 259), (40, 150, 60), -1)  # a lawn, BGR green
    grass = np.zeros((H, W), bool)
    grass[200:260, 200:280] = True
    assert (change_mask(before, after) & grass).sum() < 0.05 * grass.sum()
    assert (change_mask(before, after, exclude_vegetation=False) & grass).sum() > 0.8 * grass.sum()


def test_large_images_are_compared_shrunk_and_answered_at_full_size(registered):
    before, warped, valid, _, _ = registered
    evidence = change_evidence(before, warped, valid=valid, max_side=320)
    assert evidence.scale == 0.5 and evidence.mask.shape == (H // 2, W // 2)
    mask = change_mask(before, warped, valid=valid, max_side=320)
    assert mask.shape == (H, W)
    assert shed_iou(mask, SHEDS[0]) >= 0.6


def test_the_threshold_never_falls_below_the_floor(registered):
    before, warped, valid, _, _ = registered
    assert change_evidence(before, warped, valid=valid, min_score=1.5).threshold >= 1.5


@pytest.mark.parametrize(
    ("before", "after", "valid", "message"),
    [
        (np.zeros((40, 50, 3), np.uint8), np.zeros((40, 51, 3), np.uint8), None, r"one shape .* \(40, 51, 3\)"),
        (np.zeros((40, 50), np.uint8), np.zeros((40, 50), np.uint8), None, "before must be a uint8 BGR image"),
        (np.zeros((40, 50, 3), np.float32), np.zeros((40, 50, 3), np.uint8), None, "uint8 BGR"),
        (np.zeros((40, 50, 3), np.uint8), np.zeros((40, 50, 3), np.uint8), np.ones((40, 50), np.uint8), "valid must"),
    ],
)
def test_bad_images_are_named(before, after, valid, message):
    with pytest.raises(ValueError, match=message):
        change_mask(before, after, valid=valid)


def test_a_weak_change_beside_strong_ones_in_a_quiet_scene_stays_above_the_threshold():
    rng = np.random.default_rng(1)
    quiet, strong, weak = rng.normal(0.3, 0.05, 9700), rng.normal(3.5, 0.2, 200), rng.normal(1.3, 0.05, 100)
    scores = np.concatenate([quiet, strong, weak])
    assert otsu_threshold(np.minimum(scores, 4.0)) > weak.max()  # Otsu alone would lose the weak change
    assert _automatic_threshold(scores, 1.0) < weak.min()
    assert quiet.max() < max(1.0, _automatic_threshold(scores, 1.0))  # change_evidence's floor


def test_in_a_scene_where_most_pixels_moved_otsu_sets_the_threshold():
    rng = np.random.default_rng(2)
    scores = np.concatenate([rng.normal(1.1, 0.2, 5000), rng.normal(2.5, 0.2, 5000)])
    assert _automatic_threshold(scores, 1.0) == pytest.approx(otsu_threshold(np.minimum(scores, 4.0)))


def test_otsu_splits_two_modes():
    rng = np.random.default_rng(0)
    quiet, changed = rng.normal(0.3, 0.05, 5000), rng.normal(2.0, 0.1, 500)
    threshold = otsu_threshold(np.concatenate([quiet, changed]))
    assert (quiet < threshold).mean() > 0.99 and (changed > threshold).all()


# --------------------------------------------------------------------------- regions


def rectangle_mask(shape=(200, 300), x=50, y=40, w=60, h=40) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y : y + h, x : x + w] = True
    return m


@pytest.mark.parametrize("gsd_m", [0.05, 0.1, 0.5])
def test_region_areas_are_in_square_metres(gsd_m):
    (region,) = change_regions(rectangle_mask(), gsd_m=gsd_m, min_area_m2=0.5)
    assert region.area_px == 2400
    assert region.area_m2 == pytest.approx(2400 * gsd_m * gsd_m)
    assert region.bbox == (50, 40, 110, 80)
    assert region.rectangularity == pytest.approx(1.0, abs=0.01)
    assert region.solidity == pytest.approx(1.0, abs=0.02)
    assert region.elongation == pytest.approx(1.5, abs=0.05)
    assert region.shadow_cue is None


def test_a_rotated_rectangle_looks_like_a_structure():
    mask = np.zeros((200, 300), np.uint8)
    box = cv2.boxPoints(((150, 100), (80, 50), 30.0))
    cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 1)
    (region,) = change_regions(mask > 0, gsd_m=0.1)
    assert region.looks_like_structure
    assert region.rectangularity > 0.9


def test_structures_are_told_from_lines_and_blobs():
    mask = np.zeros((300, 400), np.uint8)
    mask[20:80, 20:100] = 1  # a shed
    mask[150:156, 20:380] = 1  # a trench or a fence line
    cv2.ellipse(mask, (300, 240), (50, 40), 0, 0, 360, 1, -1)  # a blob...
    cv2.ellipse(mask, (300, 240), (30, 25), 0, 0, 360, 0, -1)  # ...with a hole: a ring of spoil
    mask[200:280, 120:200] = 1
    mask[200:260, 140:180] = 0  # a U: a notch bitten out of a square
    regions = change_regions(mask > 0, gsd_m=0.1)
    by_place = {(r.bbox[0] // 50, r.bbox[1] // 50): r for r in regions}
    assert by_place[(0, 0)].looks_like_structure
    assert not by_place[(0, 3)].looks_like_structure and by_place[(0, 3)].elongation > 20
    assert not by_place[(5, 4)].looks_like_structure
    assert not by_place[(2, 4)].looks_like_structure
    assert [r.area_px for r in regions] == sorted((r.area_px for r in regions), reverse=True)


@pytest.mark.parametrize(
    ("area_m2", "kept", "structure"), [(20.0, True, True), (5.0, True, False), (1.0, False, False)]
)
def test_area_bounds_decide_structure_and_noise(area_m2, kept, structure):
    side = round(np.sqrt(area_m2) / 0.1)
    regions = change_regions(rectangle_mask(w=side, h=side), gsd_m=0.1, min_area_m2=8.0)
    assert bool(regions) == kept
    assert any(r.looks_like_structure for r in regions) == structure


def test_a_dark_band_on_one_side_is_a_shadow_cue_and_an_old_one_is_not():
    mask = rectangle_mask()
    after = np.full((200, 300, 3), 150, np.uint8)
    after[40:80, 50:110] = 220  # the new roof
    plain = change_regions(mask, gsd_m=0.1, after=after.copy())[0]
    after[40:80, 110:125] = 20  # its shadow to the east, 1.5 m wide
    shaded = change_regions(mask, gsd_m=0.1, after=after)[0]
    old = change_regions(mask, gsd_m=0.1, after=after, before=after)[0]  # the same shadow was there before
    assert plain.shadow_cue == pytest.approx(0.0)
    assert shaded.shadow_cue > 0.9
    assert old.shadow_cue == pytest.approx(0.0)


def test_regions_are_split_along_the_after_image_colours():
    mask = rectangle_mask(w=120, h=40)  # one component: a roof and the drive beside it
    after = np.full((200, 300, 3), 120, np.uint8)
    after[40:80, 50:110] = (60, 60, 200)
    after[40:80, 110:170] = (200, 200, 200)
    split = change_regions(mask, gsd_m=0.1, after=after)
    whole = change_regions(mask, gsd_m=0.1, after=after, split_scale=None)
    assert len(split) == 2
    for region, expected in zip(
        sorted(split, key=lambda r: r.bbox), [(50, 40, 110, 80), (110, 40, 170, 80)], strict=True
    ):
        assert np.abs(np.subtract(region.bbox, expected)).max() <= 2
    assert [r.bbox for r in whole] == [(50, 40, 170, 80)]


def test_regions_mask_fills_the_polygons_of_structures():
    mask = np.zeros((200, 300), bool)
    mask[20:60, 20:80] = True
    mask[100:104, 20:280] = True
    regions = change_regions(mask, gsd_m=0.1)
    filled = regions_mask(mask.shape, regions)
    assert (filled == (mask & (np.arange(200)[:, None] < 90))).mean() > 0.995
    assert regions_mask(mask.shape, regions, structures_only=False).sum() >= mask.sum() * 0.97


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gsd_m": 0.0}, "gsd_m must be a positive number"),
        ({"gsd_m": float("nan")}, "gsd_m must be a positive number"),
        ({"gsd_m": 0.1, "min_area_m2": 10.0, "max_area_m2": 5.0}, "min_area_m2 <= max_area_m2"),
        ({"gsd_m": 0.1, "after": np.zeros((10, 10, 3), np.uint8)}, r"after must be uint8 BGR of shape \(200, 300\)"),
        ({"gsd_m": 0.1, "before": np.zeros((200, 300, 3), np.uint8)}, "pass after too"),
    ],
)
def test_bad_region_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        change_regions(rectangle_mask(), **kwargs)


def test_a_region_polygon_is_checked_and_read_only():
    with pytest.raises(ValueError, match=r"polygon must be an \(N >= 3, 2\) array"):
        ChangeRegion((0, 0, 1, 1), np.zeros((2, 2)), 1, 1.0, 1.0, 1.0, 1.0, None, False)
    region = change_regions(rectangle_mask(), gsd_m=0.1)[0]
    with pytest.raises(ValueError, match="read-only"):
        region.polygon[0, 0] = 5


# --------------------------------------------------------------------------- kernels against slow references


def felzenszwalb_reference(image: np.ndarray, include: np.ndarray, k: float, min_size: int) -> np.ndarray:
    """Plain-Python Felzenszwalb-Huttenlocher with the kernel's order (1/1024 buckets, then edge order) and ties."""
    h, w, c = image.shape
    edges = []
    for y in range(h):
        for x in range(w):
            for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
                yy, xx = y + dy, x + dx
                if yy < h and 0 <= xx < w and include[y, x] and include[yy, xx]:
                    s = np.float32(0)
                    for ch in range(c):
                        d = np.float32(image[y, x, ch]) - np.float32(image[yy, xx, ch])
                        s = np.float32(s + d * d)
                    weight = np.float32(np.sqrt(s))
                    edges.append((int(weight / np.float32(1 / 1024)), len(edges), y * w + x, yy * w + xx, weight))
    edges.sort(key=lambda e: (e[0], e[1]))
    parent, size = list(range(h * w)), [1] * (h * w)
    threshold = [np.float32(k)] * (h * w)

    def find(a):
        while parent[a] != a:
            a = parent[a]
        return a

    def join(a, b):
        if size[a] < size[b] or (size[a] == size[b] and b < a):
            a, b = b, a
        parent[b] = a
        size[a] += size[b]
        return a

    for _, _, i, j, weight in edges:
        a, b = find(i), find(j)
        if a != b and weight <= threshold[a] and weight <= threshold[b]:
            root = join(a, b)
            threshold[root] = np.float32(weight + np.float32(k / size[root]))
    for _, _, i, j, _ in edges:
        a, b = find(i), find(j)
        if a != b and (size[a] < min_size or size[b] < min_size):
            join(a, b)
    labels = np.full((h, w), -1, np.int32)
    ids: dict[int, int] = {}
    for i in range(h * w):
        y, x = divmod(i, w)
        if include[y, x]:
            labels[y, x] = ids.setdefault(find(i), len(ids))
    return labels


@settings(max_examples=60, deadline=None)
@given(
    image=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=9).map(lambda s: (s[0], s[1], 3)),
        elements=st.integers(0, 6).map(float),
    ),
    data=st.data(),
    k=st.sampled_from([0.5, 3.0, 20.0, 300.0]),
    min_size=st.integers(1, 6),
    scale=st.sampled_from([0.7, 1.0, 9.0]),
)
def test_segmentation_kernel_matches_the_reference(image, data, k, min_size, scale):
    image = np.ascontiguousarray(image * np.float32(scale))
    include = data.draw(hnp.arrays(np.bool_, image.shape[:2], elements=st.booleans() | st.just(True)))
    labels = np.empty(image.shape[:2], np.int32)
    n = _segment_kernel(image, include, k, min_size, labels)
    expected = felzenszwalb_reference(image, include, k, min_size)
    np.testing.assert_array_equal(labels, expected)
    assert n == expected.max() + 1


def pieces_reference(ids: np.ndarray) -> np.ndarray:
    """Pieces from OpenCV, one id at a time, renumbered by first pixel."""
    raw = np.zeros(ids.shape, np.int64)
    count = 0
    for v in np.unique(ids[ids != 0]):
        n, labels = cv2.connectedComponents((ids == v).astype(np.uint8), connectivity=8)
        raw[labels > 0] = labels[labels > 0] + count
        count += n - 1
    order: dict[int, int] = {}
    out = np.zeros(ids.shape, np.int32)
    for (y, x), v in np.ndenumerate(raw):
        if v:
            out[y, x] = order.setdefault(int(v), len(order) + 1)
    return out


@settings(max_examples=80, deadline=None)
@given(ids=hnp.arrays(np.int32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=24), elements=st.integers(0, 3)))
def test_pieces_kernel_matches_opencv(ids):
    labels, stats = _pieces(ids)
    np.testing.assert_array_equal(labels, pieces_reference(ids))
    for i in range(1, len(stats)):
        ys, xs = np.nonzero(labels == i)
        assert tuple(stats[i]) == (xs.min(), ys.min(), xs.max(), ys.max(), xs.size)


def tolerant_reference(before: np.ndarray, after: np.ndarray, radius: int) -> np.ndarray:
    h, w = before.shape[:2]
    pad_after = cv2.copyMakeBorder(after, radius, radius, radius, radius, cv2.BORDER_REFLECT)
    pad_before = cv2.copyMakeBorder(before, radius, radius, radius, radius, cv2.BORDER_REFLECT)
    best_ab = np.full((h, w), np.inf)
    best_ba = np.full((h, w), np.inf)
    for dy, dx in _disc(radius):
        window = (slice(radius + dy, radius + dy + h), slice(radius + dx, radius + dx + w))
        best_ab = np.minimum(best_ab, np.linalg.norm(before - pad_after[window], axis=2))
        best_ba = np.minimum(best_ba, np.linalg.norm(after - pad_before[window], axis=2))
    return np.maximum(best_ab, best_ba)


@pytest.mark.parametrize(
    ("radius", "shape", "seed"), [(0, (7, 9), 0), (1, (12, 5), 1), (2, (16, 16), 2), (3, (6, 20), 3)]
)
def test_tolerant_difference_kernel_matches_the_reference(radius, shape, seed):
    rng = np.random.default_rng(seed)
    before = rng.uniform(-50, 100, (*shape, 3)).astype(np.float32)
    after = rng.uniform(-50, 100, (*shape, 3)).astype(np.float32)
    np.testing.assert_allclose(
        _tolerant_colour_difference(before, after, radius), tolerant_reference(before, after, radius), rtol=1e-5,
        atol=1e-4,
    )  # fmt: skip


def test_the_tolerant_difference_forgives_shifts_up_to_its_radius():
    rng = np.random.default_rng(0)
    before = rng.uniform(0, 100, (30, 30, 3)).astype(np.float32)
    after = np.roll(before, (2, -1), axis=(0, 1))
    inner = (slice(4, -4), slice(4, -4))
    assert _tolerant_colour_difference(before, after, 2)[inner].max() == pytest.approx(0.0, abs=1e-4)
    assert _tolerant_colour_difference(before, after, 1)[inner].mean() > 10


# --------------------------------------------------------------------------- real data


@pytest.mark.shared_data
def test_a_real_pair_from_two_dates_is_registered_as_a_near_translation_or_refused(shared_data):
    # LEVIR-CD test_113: two satellite dates, hazy against crisp, off by a few pixels
    root = shared_data / "change" / "levir_cd"
    before = cv2.imread(str(root / "A" / "test_113_0256.png"))
    after = cv2.imread(str(root / "B" / "test_113_0256.png"))
    try:
        registration = register_pair(before, after)
    except RegistrationError as e:
        assert "inliers" in str(e)
        return
    h = registration.homography
    assert np.abs(h[:2, :2] - np.eye(2)).max() < 0.05 and np.abs(h[:2, 2]).max() < 15

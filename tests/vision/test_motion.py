from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydantic import ValidationError

from vision.motion import InferReason, MotionConfig, MotionGate, find_blobs, motion_step

H, W = 360, 640
T0 = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)
LEFT = [[0, 0], [280, 0], [280, 360], [0, 360]]
RIGHT = [[360, 0], [640, 0], [640, 360], [360, 360]]  # x 280-360 is watched by neither


def scene(seed: int = 0) -> np.ndarray:
    """A textured street-like background: smooth gradients plus blocks of colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    base = (60 + 0.2 * xx + 0.15 * yy).astype(np.float32)
    image = np.repeat(base[..., None], 3, axis=2)
    for _ in range(12):
        x, y = rng.integers(0, W - 80), rng.integers(0, H - 60)
        image[y : y + 60, x : x + 80] = rng.integers(20, 230, 3)
    return np.clip(image, 0, 255).astype(np.uint8)


def noisy(image: np.ndarray, rng: np.random.Generator, sigma: float = 4.0) -> np.ndarray:
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def with_square(image: np.ndarray, x: int, y: int, size: int = 40, value: int = 250) -> np.ndarray:
    out = image.copy()
    out[y : y + size, x : x + size] = value
    return out


def gate(zones=None, **config) -> MotionGate:
    zones = {"left": LEFT, "right": RIGHT} if zones is None else zones
    return MotionGate(MotionConfig.model_validate(config), (H, W), zones)


def at(i: int, fps: float = 5.0) -> datetime:
    return T0 + timedelta(seconds=i / fps)


def warm_up(g: MotionGate, background: np.ndarray, rng: np.random.Generator, frames: int = 5) -> int:
    for i in range(frames):
        g.update(noisy(background, rng), at(i))
    return frames


def test_frames_shrink_by_a_whole_factor():
    g = MotionGate(MotionConfig(), (1080, 1920), {})
    assert (g.factor, g.small_hw) == (9, (120, 213))
    assert g.downscale(np.zeros((1080, 1920, 3), np.uint8)).shape == (120, 213)


def test_first_frame_asks_for_inference_without_motion():
    result = gate().update(scene(), T0)
    assert (result.should_infer, result.infer_reason, result.motion) == (True, InferReason.FIRST_FRAME, False)


def test_a_static_noisy_scene_shows_no_motion_after_warm_up():
    g, rng, background = gate(), np.random.default_rng(1), scene()
    n = warm_up(g, background, rng)
    results = [g.update(noisy(background, rng), at(n + i)) for i in range(20)]
    assert not any(r.motion or r.should_infer or r.zones_in_motion or r.boxes for r in results)
    assert max(r.changed_fraction for r in results) < 0.001


def test_a_moving_square_in_one_zone_is_motion_in_that_zone_only():
    g, rng, background = gate(), np.random.default_rng(2), scene()
    n = warm_up(g, background, rng)
    results = [g.update(noisy(with_square(background, 60 + 10 * i, 150), rng), at(n + i)) for i in range(5)]
    for r in results:
        assert r.motion and r.should_infer and r.infer_reason is InferReason.MOTION
        assert r.zones_in_motion == ("left",)
        assert r.zone_fractions["right"] == 0.0
    x1, y1, x2, y2 = results[0].boxes[0]
    assert len(results[0].boxes) == 1
    assert x1 <= 60 + 3 and y1 <= 150 + 3 and x2 >= 100 - 3 and y2 >= 190 - 3 and x2 - x1 < 60


def test_motion_outside_every_zone_does_not_ask_for_inference():
    g, rng, background = gate(), np.random.default_rng(3), scene()
    n = warm_up(g, background, rng)
    result = g.update(noisy(with_square(background, 300, 0, size=40), rng), at(n))
    assert result.motion and result.boxes
    assert (result.zones_in_motion, result.should_infer) == ((), False)


def test_without_zones_the_whole_frame_is_watched():
    g, rng, background = gate(zones={}), np.random.default_rng(3), scene()
    n = warm_up(g, background, rng)
    assert g.update(noisy(with_square(background, 300, 0), rng), at(n)).should_infer


def test_the_recheck_interval_forces_inference_on_a_static_scene():
    g, rng, background = gate(recheck_interval_s=2.0), np.random.default_rng(4), scene()
    results = [g.update(noisy(background, rng), at(i)) for i in range(21)]  # 4 s at 5 fps
    asked = [i for i, r in enumerate(results) if r.should_infer]
    assert asked == [0, 10, 20]
    assert {results[i].infer_reason for i in asked[1:]} == {InferReason.RECHECK}


def test_note_inference_restarts_the_recheck_interval():
    g, background = gate(recheck_interval_s=2.0), scene()
    g.update(background, at(0))
    g.note_inference(at(8))
    assert not g.update(background, at(10)).should_infer
    assert g.update(background, at(18)).infer_reason is InferReason.RECHECK


def test_skip_frames_max_forces_inference():
    g, background = gate(skip_frames_max=3), scene()
    asked = [i for i in range(9) if g.update(background, at(i)).should_infer]
    assert asked == [0, 4, 8]


def test_a_sudden_lighting_change_resets_the_background_instead_of_motion():
    g, rng, background = gate(), np.random.default_rng(5), scene()
    n = warm_up(g, background, rng)
    brighter = np.clip(background.astype(np.int16) + 70, 0, 255).astype(np.uint8)
    first = g.update(noisy(brighter, rng), at(n))
    assert (first.lighting_change, first.motion, first.should_infer, first.boxes) == (True, False, False, ())
    after = [g.update(noisy(brighter, rng), at(n + 1 + i)) for i in range(10)]
    assert not any(r.motion or r.lighting_change or r.should_infer for r in after)


def test_the_input_frame_is_not_modified():
    g, rng, background = gate(), np.random.default_rng(6), scene()
    frames = [noisy(background, rng), noisy(with_square(background, 50, 50), rng)]
    copies = [f.copy() for f in frames]
    for i, f in enumerate(frames):
        g.update(f, at(i))
    for f, c in zip(frames, copies, strict=True):
        np.testing.assert_array_equal(f, c)


def test_grey_frames_are_accepted():
    g, background = gate(), scene()[..., 1].copy()
    g.update(background, at(0))
    assert g.update(with_square(background, 60, 150), at(1)).zones_in_motion == ("left",)


@pytest.mark.parametrize(
    ("image", "when", "message"),
    [
        (np.zeros((H, W, 3), np.float32), T0, "uint8"),
        (np.zeros((H + 1, W, 3), np.uint8), T0, r"shape \(360, 640, 3\)"),
        (np.zeros((H, W, 4), np.uint8), T0, "3 channels"),
        (np.zeros((H, W, 3), np.uint8), datetime(2026, 5, 4), "timezone-aware"),
    ],
)
def test_update_rejects(image, when, message):
    with pytest.raises(ValueError, match=message):
        gate().update(image, when)


def test_update_refuses_time_going_backwards():
    g = gate()
    g.update(scene(), at(1))
    with pytest.raises(ValueError, match="time order"):
        g.update(scene(), at(0))


@pytest.mark.parametrize(
    ("zones", "message"),
    [
        ({"off_frame": [[700, 10], [800, 10], [800, 100]]}, "covers no pixel"),
        ({"line": [[0, 0], [10, 10]]}, "M >= 3"),
        ({f"z{i}": LEFT for i in range(65)}, "at most 64 zones"),
    ],
)
def test_gate_rejects_bad_zones(zones, message):
    with pytest.raises(ValueError, match=message):
        gate(zones=zones)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"blur_size": 4}, "odd or 0"),
        ({"threshold": 0}, "greater than or equal to 1"),
        ({"alpha": 0}, "greater than 0"),
        ({"recheck_interval": 5}, "Extra inputs are not permitted"),
    ],
)
def test_motion_config_rejects(config, message):
    with pytest.raises(ValidationError, match=message):
        MotionConfig.model_validate(config)


def test_every_motion_field_is_described():
    assert all(info.description for info in MotionConfig.model_fields.values())


# --- the fused kernel against numpy -------------------------------------------------


def reference_step(gray, background, zone_bits, threshold, alpha, n_zones):
    g = gray.astype(np.float32)
    d = g - background
    changed = (np.abs(d) > np.float32(threshold)).astype(np.uint8)
    counts = np.array([int(changed[(zone_bits >> np.uint64(k)) & np.uint64(1) == 1].sum()) for k in range(n_zones)])
    return changed, counts, background + np.float32(alpha) * d


shapes = st.tuples(st.integers(1, 24), st.integers(1, 24))


@st.composite
def kernel_inputs(draw):
    h, w = draw(shapes)
    n_zones = draw(st.integers(0, 64))
    gray = draw(hnp.arrays(np.uint8, (h, w)))
    background = draw(hnp.arrays(np.float32, (h, w), elements=st.floats(0, 255, width=32)))
    top = (1 << n_zones) - 1
    bits = draw(hnp.arrays(np.uint64, (h, w), elements=st.integers(0, top)))
    threshold = draw(st.integers(1, 255))
    alpha = draw(st.floats(0.0, 1.0))
    return gray, background, bits, threshold, alpha, n_zones


@settings(max_examples=200, deadline=None)
@given(kernel_inputs())
def test_motion_step_matches_numpy(inputs):
    gray, background, bits, threshold, alpha, n_zones = inputs
    expected_changed, expected_counts, expected_background = reference_step(
        gray, background, bits, threshold, alpha, n_zones
    )
    # thresholds that tie to rounding are the only place fused arithmetic could differ
    tie = np.isclose(np.abs(gray.astype(np.float32) - background), threshold, atol=1e-3)
    work, changed, counts = background.copy(), np.full(gray.shape, 7, np.uint8), np.full(n_zones, -1, np.int64)
    gray_before, bits_before = gray.copy(), bits.copy()
    total = motion_step(gray, work, bits, threshold, alpha, changed, counts)
    np.testing.assert_array_equal(changed[~tie], expected_changed[~tie])
    if not tie.any():
        assert total == expected_changed.sum()
        np.testing.assert_array_equal(counts, expected_counts)
    np.testing.assert_allclose(work, expected_background, rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(gray, gray_before)
    np.testing.assert_array_equal(bits, bits_before)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"background": np.zeros((4, 4), np.float64)}, "background must be float32"),
        ({"changed": np.zeros((4, 5), np.uint8)}, r"changed must be uint8 with shape \(4, 4\)"),
        ({"counts": np.zeros(2, np.int32)}, "int64"),
        ({"alpha": 2.0}, "alpha in"),
    ],
)
def test_motion_step_rejects(change, message):
    args = {
        "gray": np.zeros((4, 4), np.uint8),
        "background": np.zeros((4, 4), np.float32),
        "zone_bits": np.zeros((4, 4), np.uint64),
        "threshold": 25.0,
        "alpha": 0.1,
        "changed": np.zeros((4, 4), np.uint8),
        "counts": np.zeros(2, np.int64),
    }
    with pytest.raises(ValueError, match=message):
        motion_step(**{**args, **change})


@settings(max_examples=200, deadline=None)
@given(
    st.tuples(st.integers(1, 30), st.integers(1, 30)).flatmap(
        lambda hw: hnp.arrays(np.uint8, hw, elements=st.integers(0, 1))
    ),
    st.integers(1, 6),
)
def test_find_blobs_matches_opencv(mask, min_area):
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    expected = [(x, y, x + w, y + h, area) for x, y, w, h, area in stats[1:n].tolist() if area >= min_area]
    assert sorted(map(tuple, find_blobs(mask, min_area).tolist())) == sorted(expected)


def test_update_downscaled_takes_a_small_grey_frame():
    g = gate()
    small = g.downscale(scene())
    g.update_downscaled(small, at(0))
    result = g.update_downscaled(g.downscale(with_square(scene(), 60, 150)), at(1))
    assert result.zones_in_motion == ("left",)
    with pytest.raises(ValueError, match=r"gray must be uint8 with shape \(120, 213\)"):
        g.update_downscaled(scene(), at(2))


def test_specks_below_contour_area_count_nowhere():
    # one motion pixel per frame pixel (no shrinking, no blur), so specks stay specks
    g = MotionGate(MotionConfig(frame_height=H, blur_size=0, contour_area=4), (H, W), {"left": LEFT, "right": RIGHT})
    still = np.full((H, W), 100, np.uint8)
    g.update(still, at(0))
    frame = still.copy()
    frame[100:110, 100:103] = frame[100:110, 110:113] = frame[110:113, 100:113] = 250  # a U: two arms merge
    frame[50, 500] = frame[200, 600] = frame[201, 601] = 250  # specks of 1 and 2 pixels in "right"
    frame[10, 100] = 250  # and one in "left"
    result = g.update(frame, at(1))
    u_pixels = 3 * 10 * 2 + 3 * 13
    assert result.zone_fractions["right"] == 0.0
    assert result.zone_fractions["left"] == pytest.approx(u_pixels / (280 * 360), rel=0.01)
    assert result.boxes == ((100, 100, 113, 113),)

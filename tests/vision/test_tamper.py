import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from vision.tamper import TamperConfig, TamperDetector, TamperEvent, TamperKind

H, W = 360, 640
FPS = 5.0
T0 = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)
#: frames 0-50 teach the reference (learn_s 10 s at 5 fps); tampering in the scenarios starts at
LEARNED = 50
TAMPER_FROM = 55


def at(i: int) -> datetime:
    return T0 + timedelta(seconds=i / FPS)


def street_scene(seed: int) -> np.ndarray:
    """A street seen from a pole: sky over buildings with windows and textured walls, a kerb,
    a road with lane marks. The horizon and the marks move with the seed, so that two seeds
    are two different places."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    kerb = int(rng.integers(170, 230))
    image = np.empty((H, W, 3), np.float32)
    image[...] = (150 + 0.1 * xx - 0.2 * yy)[..., None]
    image[kerb:] = 90
    texture = cv2.GaussianBlur(rng.normal(0, 1, (H, W)).astype(np.float32), (0, 0), 1.5)
    texture *= 25 / texture.std()
    for _ in range(8):
        x, width, top = int(rng.integers(0, W - 60)), int(rng.integers(50, 140)), int(rng.integers(30, kerb - 50))
        image[top:kerb, x : x + width] = rng.integers(40, 220, 3)
        image[top:kerb, x : x + width] += texture[top:kerb, x : x + width, None]
        for wy in range(top + 10, kerb - 10, 22):
            for wx in range(x + 8, x + width - 12, 18):
                image[wy : wy + 10, wx : wx + 8] = rng.integers(10, 250)
    offset = int(rng.integers(0, 80))
    for x in range(offset - 80, W, 80):
        cv2.line(image, (x, kerb + 80), (x + 40, kerb + 80), (230, 230, 230), 3)
    cv2.line(image, (0, kerb), (W, kerb), (30, 30, 30), 2)
    image[kerb:] += 0.6 * texture[kerb:, :, None]
    return np.clip(image, 0, 255)


class Street:
    """Frames of one street: sensor noise, four people walking and a car driving through."""

    def __init__(self, seed: int = 0) -> None:
        base = street_scene(seed)
        rng = np.random.default_rng(seed + 100)
        # a few noisy copies made once, so that a frame costs a copy and some drawing
        self.noisy = [np.clip(base + rng.normal(0, 3.0, (H, W, 1)), 0, 255).astype(np.uint8) for _ in range(4)]

    def frame(self, i: int, *, gain: float = 1.0, parked_car: bool = False) -> np.ndarray:
        image = self.noisy[i % 4].copy()
        for k in range(4):
            x, y = (37 * k + 7 * i) % (W + 60) - 30, 250 + 25 * k
            cv2.ellipse(image, (x, y), (12, 30), 0, 0, 360, (40 + 50 * k, 80, 160), -1)
        x = (13 * i) % (W + 200) - 100
        cv2.rectangle(image, (x, 280), (x + 110, 330), (20, 20, 200), -1)
        if parked_car:
            cv2.rectangle(image, (420, 250), (560, 310), (200, 200, 200), -1)
        return image if gain == 1.0 else np.asarray(cv2.convertScaleAbs(image, alpha=gain))


STREET = Street(0)
ELSEWHERE = Street(7)

Tamper = Callable[[int, np.ndarray], np.ndarray]


def hand_over_lens(i: int, image: np.ndarray) -> np.ndarray:
    """Skin close to the lens: near-uniform, shaded, noisy."""
    rng = np.random.default_rng(i)
    shade = np.linspace(0, 25, W, dtype=np.float32)[None, :, None]
    return np.clip(115 + shade + rng.normal(0, 5, (H, W, 1)), 0, 255).astype(np.uint8).repeat(3, axis=2)


def blacked_out(i: int, image: np.ndarray) -> np.ndarray:
    return np.zeros_like(image)


def defocused(i: int, image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), 4)


def panned(i: int, image: np.ndarray) -> np.ndarray:
    shift = np.array([[1, 0, 0.3 * W], [0, 1, 0]], np.float32)
    return cv2.warpAffine(image, shift, (W, H), borderMode=cv2.BORDER_REFLECT)


def turned(i: int, image: np.ndarray) -> np.ndarray:
    rotation = cv2.getRotationMatrix2D((W / 2, H / 2), 15, 1.0)
    return cv2.warpAffine(image, rotation, (W, H), borderMode=cv2.BORDER_REFLECT)


def elsewhere(i: int, image: np.ndarray) -> np.ndarray:
    return ELSEWHERE.frame(i)


def play(detector: TamperDetector, frames: Iterable[tuple[int, np.ndarray]]) -> list[tuple[int, TamperEvent]]:
    """Feed frames; return each event with the index of the frame that returned it."""
    return [(i, event) for i, image in frames for event in detector.update(image, at(i))]


def scenario(
    tamper: Tamper, tamper_s: float = 10.0, after_s: float = 10.0, config: TamperConfig | None = None
) -> tuple[TamperDetector, list[tuple[int, TamperEvent]]]:
    """Learn the street, then tamper with it from frame TAMPER_FROM for `tamper_s`, then
    show the street again for `after_s`."""
    detector = TamperDetector(config or TamperConfig())
    end = TAMPER_FROM + round(tamper_s * FPS)
    last = end + round(after_s * FPS)
    frames = ((i, tamper(i, STREET.frame(i)) if TAMPER_FROM <= i < end else STREET.frame(i)) for i in range(last))
    return detector, play(detector, frames)


HOLD_FRAMES = round(TamperConfig().hold_s * FPS)


def test_a_street_with_passers_by_a_parked_car_and_dusk_reports_nothing():
    detector = TamperDetector(TamperConfig())
    frames = 70 * int(FPS)
    # after learning, 60 s of people and cars, a car that parks and stays, and the light falling by 45%
    events = play(
        detector,
        (
            (i, STREET.frame(i, gain=1.0 - 0.45 * max(0, i - LEARNED) / (frames - LEARNED), parked_car=i > 150))
            for i in range(frames)
        ),
    )
    assert events == []
    assert detector.active == frozenset()


@pytest.mark.parametrize("cover", [blacked_out, hand_over_lens], ids=["blacked_out", "hand_over_lens"])
def test_covering_the_lens_reports_covered_once_after_the_hold_and_clears_once_uncovered(cover):
    detector, events = scenario(cover)
    uncovered = TAMPER_FROM + 10 * int(FPS)
    assert [(i, e.kind, e.active, e.at) for i, e in events] == [
        (TAMPER_FROM + HOLD_FRAMES, TamperKind.COVERED, True, at(TAMPER_FROM)),
        (uncovered + HOLD_FRAMES, TamperKind.COVERED, False, at(uncovered)),
    ]
    assert detector.active == frozenset()


def test_a_covered_lens_is_reported_as_covered_only_while_covered():
    detector = TamperDetector(TamperConfig())
    covered_for = range(TAMPER_FROM, TAMPER_FROM + 10 * int(FPS))
    events = play(detector, ((i, STREET.frame(i)) for i in range(TAMPER_FROM)))
    events += play(detector, ((i, blacked_out(i, STREET.frame(i))) for i in covered_for))
    assert [e.kind for _, e in events] == [TamperKind.COVERED]
    assert detector.active == {TamperKind.COVERED}


def test_a_covered_view_never_becomes_the_reference():
    # the reference would take on a covered view within seconds if it adapted to it
    config = TamperConfig(adapt_s=2.0)
    detector, events = scenario(blacked_out, tamper_s=60.0, config=config)
    assert [(e.kind, e.active) for _, e in events] == [(TamperKind.COVERED, True), (TamperKind.COVERED, False)]
    assert detector.active == frozenset()


def test_a_defocused_lens_reports_defocused_and_clears_once_sharp_again():
    detector, events = scenario(defocused)
    sharp_again = TAMPER_FROM + 10 * int(FPS)
    assert [(i, e.kind, e.active, e.at) for i, e in events] == [
        (TAMPER_FROM + HOLD_FRAMES, TamperKind.DEFOCUSED, True, at(TAMPER_FROM)),
        (sharp_again + HOLD_FRAMES, TamperKind.DEFOCUSED, False, at(sharp_again)),
    ]
    assert "sharpness" in events[0][1].detail
    assert "vs reference" in events[0][1].detail
    assert detector.active == frozenset()


@pytest.mark.parametrize("move", [panned, turned, elsewhere], ids=["panned_30pct", "turned_15deg", "other_scene"])
def test_a_camera_moved_off_its_scene_reports_moved_and_clears_once_back(move):
    detector, events = scenario(move)
    back = TAMPER_FROM + 10 * int(FPS)
    assert [(i, e.kind, e.active, e.at) for i, e in events] == [
        (TAMPER_FROM + HOLD_FRAMES, TamperKind.MOVED, True, at(TAMPER_FROM)),
        (back + HOLD_FRAMES, TamperKind.MOVED, False, at(back)),
    ]
    assert "similarity" in events[0][1].detail
    assert detector.active == frozenset()


def test_a_moved_camera_stays_moved_while_covered_and_after():
    detector = TamperDetector(TamperConfig())
    moved_at, covered_at, uncovered_at, end = TAMPER_FROM, TAMPER_FROM + 50, TAMPER_FROM + 100, TAMPER_FROM + 150

    def view(i: int) -> np.ndarray:
        image = panned(i, STREET.frame(i)) if i >= moved_at else STREET.frame(i)
        return blacked_out(i, image) if covered_at <= i < uncovered_at else image

    events = play(detector, ((i, view(i)) for i in range(end)))
    assert [(e.kind, e.active, e.at) for _, e in events] == [
        (TamperKind.MOVED, True, at(moved_at)),
        (TamperKind.COVERED, True, at(covered_at)),
        (TamperKind.COVERED, False, at(uncovered_at)),
    ]
    assert detector.active == {TamperKind.MOVED}


@pytest.mark.parametrize("odd", [blacked_out, hand_over_lens, defocused, panned, elsewhere], ids=lambda f: f.__name__)
def test_a_single_odd_frame_reports_nothing(odd):
    detector, events = scenario(odd, tamper_s=1 / FPS)
    assert events == []
    assert detector.active == frozenset()


@pytest.mark.parametrize("tamper", [blacked_out, defocused, panned], ids=lambda f: f.__name__)
def test_a_condition_shorter_than_the_hold_reports_nothing(tamper):
    detector, events = scenario(tamper, tamper_s=TamperConfig().hold_s - 1.0)
    assert events == []
    assert detector.active == frozenset()


def test_an_interrupted_condition_never_reports_and_a_blip_does_not_clear_one():
    detector = TamperDetector(TamperConfig())
    hold = HOLD_FRAMES
    # covered in runs one frame shorter than the hold, broken by single clean frames
    flicker = {i for i in range(TAMPER_FROM, TAMPER_FROM + 60) if (i - TAMPER_FROM) % hold != hold - 1}
    events = play(
        detector, ((i, blacked_out(i, STREET.frame(i)) if i in flicker else STREET.frame(i)) for i in range(120))
    )
    assert events == []
    # covered for good, with single clean frames now and then: one start, no clear
    blips = {150, 160, 170}
    frames = range(120, 180)
    events = play(detector, ((i, STREET.frame(i) if i in blips else blacked_out(i, STREET.frame(i))) for i in frames))
    assert [(e.kind, e.active) for _, e in events] == [(TamperKind.COVERED, True)]


def test_nothing_is_judged_while_the_reference_is_learned():
    detector = TamperDetector(TamperConfig())
    events = play(detector, ((i, defocused(i, STREET.frame(i)) if i % 2 else STREET.frame(i)) for i in range(LEARNED)))
    assert events == []


@pytest.mark.parametrize("cover", [blacked_out, hand_over_lens], ids=["blacked_out", "hand_over_lens"])
def test_a_camera_covered_from_the_start_warns_that_it_cannot_judge_moves(cover, caplog):
    detector = TamperDetector(TamperConfig())
    with caplog.at_level(logging.WARNING, logger="vision.tamper"):
        events = play(detector, ((i, cover(i, STREET.frame(i))) for i in range(LEARNED + 20)))
    assert events == []
    assert "too little structure" in caplog.text


def test_a_disabled_detector_reports_nothing():
    detector, events = scenario(blacked_out, config=TamperConfig(enabled=False))
    assert events == []
    assert detector.active == frozenset()


def test_grey_frames_are_judged_like_colour_ones():
    detector = TamperDetector(TamperConfig())

    def grey(i: int) -> np.ndarray:
        image = STREET.frame(i)
        return cv2.cvtColor(defocused(i, image) if i >= TAMPER_FROM else image, cv2.COLOR_BGR2GRAY)

    events = play(detector, ((i, grey(i)) for i in range(TAMPER_FROM + 20)))
    assert [(e.kind, e.active) for _, e in events] == [(TamperKind.DEFOCUSED, True)]


@pytest.mark.parametrize(
    "field, value",
    [
        ("learn_s", 0.0),
        ("hold_s", -1.0),
        ("adapt_s", 0.0),
        ("analysis_width", 8),
        ("covered_contrast", 0.0),
        ("covered_detail_ratio", 1.0),
        ("defocus_ratio", 0.0),
        ("defocus_ratio", 1.5),
        ("moved_min_similarity", 1.0),
        ("moved_min_similarity", -0.2),
        ("hold", 3.0),
    ],
)
def test_config_refuses_bad_values(field, value):
    with pytest.raises(ValidationError):
        TamperConfig.model_validate({field: value})


def test_config_is_frozen():
    config = TamperConfig()
    with pytest.raises(ValidationError):
        config.hold_s = 1.0  # type: ignore[misc]


def test_every_config_field_has_a_title_and_a_description():
    for name, field in TamperConfig.model_fields.items():
        assert field.title and field.description, name


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((H, W, 3), np.float32), "uint8"),
        (np.zeros((H, W, 4), np.uint8), "uint8"),
        (np.zeros((8, 8, 3), np.uint8), "at least"),
    ],
    ids=["float", "four_channels", "too_small"],
)
def test_update_refuses_frames_it_cannot_judge(image, message):
    with pytest.raises(ValueError, match=message):
        TamperDetector(TamperConfig()).update(image, T0)


def test_update_refuses_a_frame_of_another_shape():
    detector = TamperDetector(TamperConfig())
    detector.update(STREET.frame(0), at(0))
    with pytest.raises(ValueError, match="new TamperDetector"):
        detector.update(np.zeros((H // 2, W // 2, 3), np.uint8), at(1))


def test_update_refuses_naive_and_out_of_order_times():
    detector = TamperDetector(TamperConfig())
    with pytest.raises(ValueError, match="timezone-aware"):
        detector.update(STREET.frame(0), at(0).replace(tzinfo=None))
    detector.update(STREET.frame(0), at(5))
    with pytest.raises(ValueError, match="time order"):
        detector.update(STREET.frame(1), at(4))


def test_update_leaves_the_frame_as_it_was():
    detector = TamperDetector(TamperConfig())
    image = STREET.frame(0)
    before = image.copy()
    for i in range(LEARNED + 5):
        detector.update(image, at(i))
    assert np.array_equal(image, before)

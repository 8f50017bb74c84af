import math
import zoneinfo
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import shapely
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from vision.types import Detections
from vision.zones import (
    Anchor,
    Rule,
    Schedule,
    ZoneConfig,
    ZoneTracker,
    load_timezone,
    points_in_polygon,
    polygon_problem,
)

SQUARE = [[100, 100], [300, 100], [300, 300], [100, 300]]
NAMES = ["person", "stall", "goods", "plume"]
T0 = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai


# --- point in polygon -----------------------------------------------------------------


@st.composite
def star_polygons(draw):
    """Simple polygons: vertices at increasing angles around a centre, random radii."""
    n = draw(st.integers(3, 12))
    cx, cy = draw(st.floats(100, 900)), draw(st.floats(100, 900))
    cuts = sorted(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n, unique=True)))
    assume(all(b - a > 1e-3 for a, b in zip(cuts, [*cuts[1:], cuts[0] + 1], strict=True)))
    radii = draw(st.lists(st.floats(5, 400), min_size=n, max_size=n))
    return np.array(
        [
            [cx + r * math.cos(2 * math.pi * c), cy + r * math.sin(2 * math.pi * c)]
            for c, r in zip(cuts, radii, strict=True)
        ]
    )


points = st.lists(st.tuples(st.floats(-100, 1500), st.floats(-100, 1500)), min_size=0, max_size=40).map(
    lambda p: np.array(p, np.float64).reshape(-1, 2)
)


@settings(max_examples=200, deadline=None)
@given(star_polygons(), points)
def test_points_in_polygon_matches_shapely(polygon, pts):
    shape = shapely.Polygon(polygon)
    got = points_in_polygon(pts, polygon)
    expected = shapely.contains_xy(shape, pts[:, 0], pts[:, 1])
    # points on (or within rounding of) an edge may fall either way
    near_edge = shapely.distance(shape.exterior, shapely.points(pts)) < 1e-6 if len(pts) else np.zeros(0, bool)
    np.testing.assert_array_equal(got[~near_edge], expected[~near_edge])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=3, max_size=7, unique=True))
def test_polygon_problem_agrees_with_shapely_validity(vertices):
    # small integer grids make crossings, touchings and folds common, and the arithmetic exact
    assert (polygon_problem(vertices) is None) == shapely.Polygon(vertices).is_valid


def test_points_in_polygon_of_a_square():
    pts = np.array([[200, 200], [50, 200], [299, 101], [400, 400]], np.float64)
    np.testing.assert_array_equal(points_in_polygon(pts, SQUARE), [True, False, True, False])
    assert points_in_polygon(np.empty((0, 2)), SQUARE).shape == (0,)


@pytest.mark.parametrize(
    ("pts", "polygon", "message"),
    [
        (np.zeros(3), SQUARE, r"points must have shape \(N, 2\)"),
        (np.zeros((2, 2)), [[0, 0], [1, 1]], r"M >= 3"),
        (np.array([[np.nan, 0.0]]), SQUARE, "finite"),
    ],
)
def test_points_in_polygon_rejects_bad_arguments(pts, polygon, message):
    with pytest.raises(ValueError, match=message):
        points_in_polygon(pts, polygon)


# --- zone configuration ---------------------------------------------------------------


def zone(**overrides):
    fields = {"name": "sidewalk", "polygon": SQUARE, "rule": "no_occupation", "classes": ["stall", "goods"]}
    return ZoneConfig.model_validate({**fields, **overrides})


def test_zone_defaults_follow_frigate():
    z = zone()
    assert (z.rule, z.anchor, z.inertia, z.min_dwell_s, z.max_gap_s) == (
        Rule.NO_OCCUPATION,
        Anchor.BOTTOM_CENTER,
        3,
        0,
        2.0,
    )


def test_every_zone_field_is_described():
    for model in (ZoneConfig, Schedule):
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"polygon": [[0, 0], [5, 5]]}, "at least 3 points, got 2"),
        ({"polygon": [[0, 0], [10, 10], [10, 0], [0, 10]]}, "cross or touch"),
        ({"polygon": [[0, 0], [10, 0], [10, 10], [0, 0]]}, "do not repeat the first point"),
        ({"polygon": [[0, 0], [5, 5], [10, 10]]}, "fold back"),
        ({"polygon": [[-1, 0], [5, 5], [10, 0]]}, "greater than or equal to 0"),
        ({"exclusions": [[[0, 0], [1, 1]]]}, "at least 3 points"),
        ({"inertia": 0}, "greater than or equal to 1"),
        ({"max_gap_s": -1}, "greater than or equal to 0"),
        ({"rule": "no_parking"}, "no_occupation"),
        ({"classes": []}, "at least 1 item"),
        ({"classes": ["stall", "stall"]}, "'stall' appears twice"),
        ({"inertai": 3}, "Extra inputs are not permitted"),
        ({"anchor": "top"}, "bottom_center"),
    ],
)
def test_zone_config_rejects(overrides, message):
    with pytest.raises(ValidationError, match=message):
        zone(**overrides)


# --- schedules ------------------------------------------------------------------------


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    """UTC instant of 2026-05-04 (a Monday) + `day` days, at hour:minute in Shanghai (UTC+8)."""
    return datetime(2026, 5, 4, hour, minute, tzinfo=UTC) + timedelta(days=day, hours=-8)


WEEKDAY_DAYTIME = {"windows": [{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "20:00"}]}
FRIDAY_NIGHT = {"windows": [{"days": [4], "start": "22:00", "end": "06:00"}]}


@pytest.mark.parametrize(
    ("schedule", "at", "active"),
    [
        ({}, shanghai(6, 3), True),
        (WEEKDAY_DAYTIME, shanghai(0, 8), True),
        (WEEKDAY_DAYTIME, shanghai(0, 7, 59), False),
        (WEEKDAY_DAYTIME, shanghai(0, 20), False),
        (WEEKDAY_DAYTIME, shanghai(5, 12), False),  # Saturday
        (FRIDAY_NIGHT, shanghai(4, 23), True),
        (FRIDAY_NIGHT, shanghai(5, 5, 59), True),  # Saturday morning, still Friday's window
        (FRIDAY_NIGHT, shanghai(5, 6), False),
        (FRIDAY_NIGHT, shanghai(4, 3), False),  # Friday morning belongs to Thursday's night
        ({"windows": [{"start": "00:00", "end": "24:00"}]}, shanghai(2, 23, 59), True),
        (
            {"windows": [{"start": "09:00", "end": "10:00"}], "timezone": "UTC"},
            datetime(2026, 5, 4, 9, 30, tzinfo=UTC),
            True,
        ),
    ],
)
def test_schedule_active_at(schedule, at, active):
    assert Schedule.model_validate(schedule).active_at(at) is active


def test_schedule_accepts_other_offsets_of_the_same_instant():
    at = shanghai(0, 9)
    s = Schedule.model_validate(WEEKDAY_DAYTIME)
    assert s.active_at(at.astimezone(zoneinfo.ZoneInfo("America/New_York"))) is True


def test_schedule_refuses_naive_times():
    with pytest.raises(ValueError, match="timezone-aware"):
        Schedule().active_at(datetime(2026, 5, 4, 9))


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"timezone": "Asia/Shangai"}, "unknown time zone 'Asia/Shangai'"),
        ({"windows": [{"start": "8:00", "end": "20:00"}]}, "should match pattern"),
        ({"windows": [{"start": "24:00", "end": "06:00"}]}, "24:00 may only end"),
        ({"windows": [{"start": "08:00", "end": "08:00"}]}, "empty"),
        ({"windows": [{"days": [7], "start": "08:00", "end": "09:00"}]}, "less than or equal to 6"),
        ({"windows": [{"days": [1, 1], "start": "08:00", "end": "09:00"}]}, "must not repeat"),
    ],
)
def test_schedule_rejects(schedule, message):
    with pytest.raises(ValidationError, match=message):
        Schedule.model_validate(schedule)


def test_missing_time_zone_database_is_named(monkeypatch):
    def no_database(name):
        raise zoneinfo.ZoneInfoNotFoundError(f"No time zone found with key {name}")

    monkeypatch.setattr(zoneinfo, "ZoneInfo", no_database)
    monkeypatch.setattr(zoneinfo, "available_timezones", set)
    load_timezone.cache_clear()
    try:
        with pytest.raises(ValidationError, match=r"'Asia/Shanghai' is missing.*install one \(pip install tzdata"):
            Schedule()
    finally:
        load_timezone.cache_clear()


# --- following tracks -----------------------------------------------------------------


def dets(*rows):
    """Detections from (track_id, class_name, x1, y1, x2, y2) rows."""
    if not rows:
        return Detections.empty().with_track_ids(np.empty(0, np.int64))
    return Detections(
        xyxy=np.array([r[2:] for r in rows], np.float32),
        score=np.full(len(rows), 0.9, np.float32),
        class_id=np.array([NAMES.index(r[1]) for r in rows], np.int32),
        track_id=np.array([r[0] for r in rows], np.int64),
    )


INSIDE = (150, 150, 250, 250)  # bottom centre (200, 250), in SQUARE
OUTSIDE = (400, 400, 500, 500)


def run(tracker, frames, start=T0, step_s=1.0):
    return [tracker.update(d, NAMES, start + timedelta(seconds=i * step_s)) for i, d in enumerate(frames)]


def test_a_track_counts_after_inertia_frames():
    updates = run(ZoneTracker(zone(inertia=3)), [dets((7, "stall", *INSIDE))] * 4)
    assert [u.presences[0].counted for u in updates] == [False, False, True, True]
    assert [u.presences[0].frames_inside for u in updates] == [1, 2, 3, 4]
    assert updates[-1].presences[0].dwell_s == 3.0
    assert updates[-1].presences[0].entered_at == T0


def test_tracks_never_inside_are_not_reported():
    (update,) = run(ZoneTracker(zone()), [dets((1, "stall", *OUTSIDE))])
    assert update.presences == ()


@pytest.mark.parametrize(
    ("row", "overrides", "counted"),
    [
        ((1, "stall", *INSIDE), {}, True),
        ((1, "person", *INSIDE), {}, False),  # not one of the zone's classes
        ((1, "stall", *INSIDE), {"min_area_px": 100 * 100 + 1}, False),
        ((1, "stall", *INSIDE), {"exclusions": [[[180, 230], [220, 230], [220, 270], [180, 270]]]}, False),
        ((1, "stall", 150, 250, 250, 350), {}, False),  # bottom centre below the zone
        ((1, "stall", 150, 250, 250, 350), {"anchor": "center"}, False),
        ((1, "stall", 150, 200, 250, 320), {"anchor": "center"}, True),
        ((1, "stall", 280, 280, 400, 400), {"anchor": "any_corner"}, True),
        ((1, "stall", 280, 280, 400, 400), {"anchor": "bottom_center"}, False),
    ],
)
def test_what_counts(row, overrides, counted):
    (update,) = run(ZoneTracker(zone(inertia=1, **overrides)), [dets(row)])
    assert bool(update.counted) is counted


def test_nothing_counts_outside_the_schedule():
    night = {"windows": [{"start": "22:00", "end": "06:00"}]}
    (update,) = run(ZoneTracker(zone(inertia=1, schedule=night)), [dets((1, "stall", *INSIDE))], start=shanghai(0, 10))
    assert update.active is False
    assert update.presences[0].inside and not update.presences[0].counted


def test_dwell_met_waits_for_min_dwell():
    updates = run(ZoneTracker(zone(inertia=1, min_dwell_s=2.0)), [dets((1, "stall", *INSIDE))] * 4)
    assert [u.presences[0].dwell_met for u in updates] == [False, False, True, True]


def test_dwell_survives_a_gap_shorter_than_max_gap():
    seen, gone = dets((1, "stall", *INSIDE)), dets()
    updates = run(ZoneTracker(zone(inertia=1, max_gap_s=2.0)), [seen, gone, seen, seen])
    assert updates[1].presences == () and updates[1].left == ()
    assert updates[3].presences[0].entered_at == T0
    assert updates[3].presences[0].dwell_s == 3.0


def test_a_step_outside_within_the_gap_keeps_the_stay_but_does_not_count():
    updates = run(
        ZoneTracker(zone(inertia=1)),
        [dets((1, "stall", *INSIDE)), dets((1, "stall", *OUTSIDE)), dets((1, "stall", *INSIDE))],
    )
    out = updates[1].presences[0]
    assert (out.inside, out.counted, out.entered_at) == (False, False, T0)
    assert updates[2].presences[0].entered_at == T0


def test_a_longer_gap_ends_the_stay_and_a_return_starts_afresh():
    seen, gone = dets((1, "stall", *INSIDE)), dets()
    updates = run(ZoneTracker(zone(inertia=1, max_gap_s=2.0)), [seen, seen, gone, gone, gone, seen])
    assert updates[3].left == ()  # 2 s since last seen inside: not yet gone
    (departure,) = updates[4].left  # 3 s
    assert (departure.track_id, departure.entered_at, departure.dwell_s, departure.was_counted) == (1, T0, 1.0, True)
    back = updates[5].presences[0]
    assert (back.entered_at, back.frames_inside) == (T0 + timedelta(seconds=5), 1)


def test_expire_reports_departures_on_frames_without_detection():
    tracker = ZoneTracker(zone(max_gap_s=1.0))
    tracker.update(dets((3, "goods", *INSIDE)), NAMES, T0)
    assert tracker.expire(T0 + timedelta(seconds=1)) == ()
    (departure,) = tracker.expire(T0 + timedelta(seconds=1.5))
    assert (departure.track_id, departure.class_name, departure.was_counted) == (3, "goods", False)
    assert tracker.open_tracks == frozenset()


def test_update_leaves_its_inputs_alone():
    d, names = dets((1, "stall", *INSIDE), (2, "goods", *OUTSIDE)), list(NAMES)
    before = (d.xyxy.copy(), d.class_id.copy(), d.track_id.copy())
    ZoneTracker(zone()).update(d, names, T0)
    assert names == NAMES
    for a, b in zip(before, (d.xyxy, d.class_id, d.track_id), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("detections", "names", "at", "message"),
    [
        (Detections.empty(), NAMES, T0, "track ids"),
        (dets((1, "stall", *INSIDE), (1, "goods", *INSIDE)), NAMES, T0, "unique"),
        (dets((1, "plume", *INSIDE)), NAMES[:2], T0, "class ids must index names"),
        (dets((1, "stall", *INSIDE)), NAMES, datetime(2026, 5, 4, 2), "timezone-aware"),
    ],
)
def test_update_rejects(detections, names, at, message):
    with pytest.raises(ValueError, match=message):
        ZoneTracker(zone()).update(detections, names, at)


def test_update_refuses_time_going_backwards():
    tracker = ZoneTracker(zone())
    tracker.update(dets(), NAMES, T0)
    with pytest.raises(ValueError, match="time order"):
        tracker.update(dets(), NAMES, T0 - timedelta(seconds=1))

"""Fume-monitor readings become exceedance and purifier-off episodes and a monitor status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from pipelines.monitors import (
    GB18483_THRESHOLD_MG_M3,
    EndReason,
    Episode,
    ExceedanceEpisode,
    IgnoredReason,
    MonitorBank,
    MonitorConfig,
    MonitorState,
    MonitorTracker,
    PurifierOffEpisode,
    Reading,
    UnknownMonitorError,
)

T0 = datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
#: purifier and fan states, for readability of the tables
ON, OFF = True, False


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def reading(
    seconds: float,
    concentration: float,
    purifier_on: bool | None = ON,
    fan_on: bool | None = ON,
    monitor_id: str = "m1",
) -> Reading:
    return Reading(
        monitor_id=monitor_id,
        at=at(seconds),
        concentration_mg_m3=concentration,
        purifier_on=purifier_on,
        fan_on=fan_on,
    )


def every_minute(
    concentrations: list[float], start_s: float = 0.0, purifier_on: bool | None = ON, fan_on: bool | None = ON
) -> list[Reading]:
    return [reading(start_s + 60 * i, c, purifier_on, fan_on) for i, c in enumerate(concentrations)]


def feed(tracker: MonitorTracker, readings: list[Reading]) -> list[Episode]:
    closed: list[Episode] = []
    for r in readings:
        closed += tracker.add(r)
    return closed


def summary(episodes: list[Episode]) -> list[tuple[str, float, float, int, EndReason | None]]:
    """(kind, start s, end s, readings, end reason) of each episode."""
    return [
        (
            e.kind,
            (e.started_at - T0).total_seconds(),
            (e.last_at - T0).total_seconds(),
            e.readings,
            e.end_reason,
        )
        for e in episodes
    ]


CONFIG = MonitorConfig(monitor_id="m1", premises_id="p1")


# -- exceedance episodes


@pytest.mark.parametrize(
    ("readings", "expected"),
    [
        pytest.param(every_minute([2.0] * 10 + [0.5]), [], id="exactly-at-threshold-is-not-above"),
        pytest.param(
            every_minute([2.01] * 6 + [0.5]),
            [("exceedance", 0, 300, 6, EndReason.CLEARED)],
            id="just-above-for-min-episode-is-an-episode",
        ),
        pytest.param(every_minute([9.0] * 5 + [0.5]), [], id="spike-shorter-than-min-episode"),
        pytest.param(every_minute([0.5, 50.0, 0.5]), [], id="single-spike"),
        pytest.param(
            every_minute([0.5, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 2.0, 0.1]),
            [("exceedance", 60, 420, 7, EndReason.CLEARED)],
            id="episode-ends-at-the-last-reading-above",
        ),
        pytest.param(
            every_minute([3.0] * 6) + every_minute([3.0] * 6 + [1.0], start_s=300 + 181),
            [("exceedance", 0, 300, 6, EndReason.GAP), ("exceedance", 481, 781, 6, EndReason.CLEARED)],
            id="gap-longer-than-max-gap-splits",
        ),
        pytest.param(
            every_minute([3.0] * 3) + every_minute([3.0] * 3 + [1.0], start_s=120 + 180),
            [("exceedance", 0, 420, 6, EndReason.CLEARED)],
            id="gap-of-exactly-max-gap-bridges",
        ),
        pytest.param(
            every_minute([3.0] * 4) + every_minute([3.0] * 4 + [1.0], start_s=180 + 600),
            [],
            id="gap-splits-into-two-spikes",
        ),
        pytest.param(
            every_minute([3.0] * 6 + [1.0] + [3.0] * 6 + [1.0]),
            [("exceedance", 0, 300, 6, EndReason.CLEARED), ("exceedance", 420, 720, 6, EndReason.CLEARED)],
            id="one-reading-below-separates-two-episodes",
        ),
    ],
)
def test_exceedance_episodes(readings: list[Reading], expected: list[tuple]) -> None:
    assert summary(feed(MonitorTracker(CONFIG), readings)) == expected


def test_episode_carries_peak_mean_premises_and_rule() -> None:
    [episode] = feed(MonitorTracker(CONFIG), every_minute([3.0, 5.0, 4.0, 3.0, 2.5, 6.5, 1.0]))
    assert isinstance(episode, ExceedanceEpisode)
    assert episode.premises_id == "p1"
    assert episode.peak_mg_m3 == 6.5
    assert episode.mean_mg_m3 == pytest.approx(4.0)
    assert episode.threshold_mg_m3 == GB18483_THRESHOLD_MG_M3 == 2.0
    assert episode.min_episode_s == 300
    assert episode.duration_s == 300
    assert episode.ended_at == episode.last_at == at(300)


def test_exceedance_counts_readings_with_the_purifier_off() -> None:
    readings = every_minute([3.0] * 3) + every_minute([3.0] * 3, start_s=180, purifier_on=OFF, fan_on=OFF)
    [episode] = feed(MonitorTracker(CONFIG), [*readings, reading(360, 0.5)])
    assert isinstance(episode, ExceedanceEpisode)
    assert episode.purifier_off_readings == 3


@pytest.mark.parametrize(
    ("threshold", "concentration", "episodes"),
    [(1.0, 1.5, 1), (2.0, 1.5, 0), (1.5, 1.5, 0), (0.8, 1.0, 1)],
)
def test_a_premises_threshold_overrides_the_national_standard(
    threshold: float, concentration: float, episodes: int
) -> None:
    config = MonitorConfig(monitor_id="m1", threshold_mg_m3=threshold, purifier_off_level_mg_m3=5.0)
    found = feed(MonitorTracker(config), every_minute([concentration] * 6 + [0.1]))
    assert len(found) == episodes
    assert all(isinstance(e, ExceedanceEpisode) and e.threshold_mg_m3 == threshold for e in found)


def test_min_episode_is_configurable() -> None:
    config = MonitorConfig(monitor_id="m1", min_episode_s=120)
    assert summary(feed(MonitorTracker(config), every_minute([3.0] * 3 + [0.1]))) == [
        ("exceedance", 0, 120, 3, EndReason.CLEARED)
    ]


# -- purifier-off episodes


@pytest.mark.parametrize(
    ("readings", "expected"),
    [
        pytest.param(
            [*every_minute([1.5] * 6, purifier_on=OFF, fan_on=ON), reading(360, 1.5)],
            [("purifier_off", 0, 300, 6, EndReason.CLEARED)],
            id="fan-on-purifier-off-with-fumes-below-threshold",
        ),
        pytest.param(
            [*every_minute([1.0] * 6, purifier_on=OFF, fan_on=ON), reading(360, 1.0)],
            [],
            id="concentration-at-the-level-is-not-cooking",
        ),
        pytest.param(
            [*every_minute([1.5] * 6, purifier_on=OFF, fan_on=OFF), reading(360, 1.5)],
            [],
            id="fan-off-is-not-a-bypass",
        ),
        pytest.param(
            every_minute([1.5] * 3, purifier_on=OFF, fan_on=ON)
            + every_minute([1.5], start_s=180, purifier_on=None, fan_on=ON)
            + every_minute([1.5] * 3, start_s=240, purifier_on=OFF, fan_on=ON)
            + [reading(420, 1.5)],
            [],
            id="unknown-purifier-state-breaks-the-run",
        ),
        pytest.param(
            [*every_minute([1.5] * 5, purifier_on=OFF, fan_on=ON), reading(300, 1.5)],
            [],
            id="shorter-than-min-episode",
        ),
    ],
)
def test_purifier_off_episodes(readings: list[Reading], expected: list[tuple]) -> None:
    assert summary(feed(MonitorTracker(CONFIG), readings)) == expected


def test_exceedance_with_the_purifier_bypassed_is_both_findings() -> None:
    readings = [*every_minute([4.0] * 6, purifier_on=OFF, fan_on=ON), reading(360, 0.5)]
    found = feed(MonitorTracker(CONFIG), readings)
    assert summary(found) == [
        ("exceedance", 0, 300, 6, EndReason.CLEARED),
        ("purifier_off", 0, 300, 6, EndReason.CLEARED),
    ]
    exceedance, purifier_off = found
    assert isinstance(exceedance, ExceedanceEpisode) and exceedance.purifier_off_readings == 6
    assert isinstance(purifier_off, PurifierOffEpisode) and purifier_off.level_mg_m3 == 1.0


# -- out of order, duplicates, clocks


def test_out_of_order_reading_is_counted_and_ignored() -> None:
    tracker = MonitorTracker(CONFIG)
    feed(tracker, every_minute([3.0] * 4))
    assert tracker.add(reading(30, 0.1)) == []
    found = feed(tracker, [*every_minute([3.0] * 2, start_s=240), reading(360, 0.1)])
    assert summary(found) == [("exceedance", 0, 300, 6, EndReason.CLEARED)]
    assert tracker.ignored == {IgnoredReason.OUT_OF_ORDER: 1}


@pytest.mark.parametrize(
    ("second", "reason"),
    [
        (reading(60, 3.0), IgnoredReason.DUPLICATE),
        (reading(60, 0.2), IgnoredReason.CONFLICTING_DUPLICATE),
        (reading(60, 3.0, purifier_on=OFF), IgnoredReason.CONFLICTING_DUPLICATE),
    ],
)
def test_a_second_reading_at_the_same_time_is_ignored_and_the_first_kept(
    second: Reading, reason: IgnoredReason
) -> None:
    tracker = MonitorTracker(CONFIG)
    feed(tracker, every_minute([3.0] * 2))
    assert tracker.add(second) == []
    assert tracker.ignored == {reason: 1}
    assert tracker.last_reading == reading(60, 3.0)
    found = feed(tracker, [*every_minute([3.0] * 4, start_s=120), reading(360, 0.1)])
    assert summary(found) == [("exceedance", 0, 300, 6, EndReason.CLEARED)]


def test_a_reading_from_a_clock_far_ahead_is_ignored() -> None:
    tracker = MonitorTracker(CONFIG)
    received = at(0)
    assert tracker.add(reading(301, 3.0), received_at=received) == []
    assert tracker.ignored == {IgnoredReason.FROM_THE_FUTURE: 1}
    tracker.add(reading(300, 3.0), received_at=received)
    assert tracker.last_reading == reading(300, 3.0)


def test_naive_reading_time_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValidationError, match=r"at must carry a UTC offset .* naive 2024-05-01T12:00:00"):
        Reading(monitor_id="m1", at=datetime(2024, 5, 1, 12, 0), concentration_mg_m3=1.0)


def test_reading_time_is_kept_in_utc() -> None:
    beijing = timezone(timedelta(hours=8))
    r = Reading.model_validate_json('{"monitor_id": "m1", "at": "2024-05-01T19:00:00+08:00", "concentration_mg_m3": 1}')
    assert r.at == datetime(2024, 5, 1, 19, tzinfo=beijing)
    assert r.at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"concentration_mg_m3": -0.1}, "greater than or equal to 0"),
        ({"concentration_mg_m3": 1000.5}, "less than or equal to 1000"),
        ({"concentration_mg_m3": float("nan")}, "finite number"),
        ({"monitor_id": "a/b"}, "should match pattern"),
        ({"monitor_id": "#"}, "should match pattern"),
        ({"temperature_c": 40}, "Extra inputs are not permitted"),
    ],
)
def test_reading_refuses_bad_fields(changes: dict, message: str) -> None:
    fields = {"monitor_id": "m1", "at": T0, "concentration_mg_m3": 1.0} | changes
    with pytest.raises(ValidationError, match=message):
        Reading(**fields)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_gap_s": 30}, "max_gap_s .* must be at least expected_interval_s"),
        ({"stale_after_s": 30}, "stale_after_s .* must be at least expected_interval_s"),
        ({"offline_after_s": 180}, "offline_after_s .* must be greater than stale_after_s"),
        ({"threshold_mg_m3": 0}, "greater than 0"),
        ({"min_episode_s": 0}, "greater than 0"),
        ({"threshold": 2.0}, "Extra inputs are not permitted"),
    ],
)
def test_monitor_config_refuses_inconsistent_settings(changes: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MonitorConfig(monitor_id="m1", **changes)


def test_tracker_refuses_another_monitors_reading() -> None:
    with pytest.raises(ValueError, match="reading of monitor 'm2' given to the tracker of monitor 'm1'"):
        MonitorTracker(CONFIG).add(reading(0, 1.0, monitor_id="m2"))


# -- silence, shutdown, open episodes


def test_open_episode_is_visible_once_long_enough() -> None:
    tracker = MonitorTracker(CONFIG)
    feed(tracker, every_minute([3.0] * 5))
    assert tracker.open_episodes() == []
    feed(tracker, every_minute([3.0], start_s=300))
    [episode] = tracker.open_episodes()
    assert episode.is_open and episode.ended_at is None and episode.end_reason is None
    assert episode.duration_s == 300


@pytest.mark.parametrize(
    ("silent_s", "expected"),
    [(180, []), (181, [("exceedance", 0, 300, 6, EndReason.SILENCE)])],
)
def test_expire_closes_the_episode_of_a_monitor_silent_beyond_max_gap(silent_s: float, expected: list) -> None:
    tracker = MonitorTracker(CONFIG)
    feed(tracker, every_minute([3.0] * 6))
    assert summary(tracker.expire(at(300 + silent_s))) == expected


def test_expire_measures_silence_from_receipt_when_known() -> None:
    tracker = MonitorTracker(CONFIG)
    lag = timedelta(minutes=30)  # the monitor's clock is half an hour behind
    for r in every_minute([3.0] * 6):
        tracker.add(r, received_at=r.at + lag)
    assert tracker.expire(at(300) + lag) == []
    assert summary(tracker.expire(at(300 + 181) + lag)) == [("exceedance", 0, 300, 6, EndReason.SILENCE)]


def test_a_reading_after_expiry_starts_afresh() -> None:
    tracker = MonitorTracker(CONFIG)
    feed(tracker, every_minute([3.0] * 6))
    assert len(tracker.expire(at(600))) == 1
    assert tracker.expire(at(900)) == []
    assert summary(feed(tracker, [*every_minute([3.0] * 6, start_s=1000), reading(1360, 0.1)])) == [
        ("exceedance", 1000, 1300, 6, EndReason.CLEARED)
    ]


def test_close_returns_open_episodes_closed_so_far() -> None:
    tracker = MonitorTracker(CONFIG)
    feed(tracker, every_minute([4.0] * 7, purifier_on=OFF, fan_on=ON))
    assert summary(tracker.close(at(400))) == [
        ("exceedance", 0, 360, 7, EndReason.SHUTDOWN),
        ("purifier_off", 0, 360, 7, EndReason.SHUTDOWN),
    ]
    assert tracker.open_episodes() == []


def test_close_drops_a_run_too_short_and_counts_it_as_a_spike() -> None:
    tracker = MonitorTracker(CONFIG)
    feed(tracker, every_minute([4.0] * 3))
    assert tracker.close(at(150)) == []
    assert tracker.check(at(150)).spikes == 1


# -- status


@pytest.mark.parametrize(
    ("silent_s", "state"),
    [
        (0, MonitorState.ONLINE),
        (180, MonitorState.ONLINE),
        (181, MonitorState.STALE),
        (3600, MonitorState.STALE),
        (3601, MonitorState.OFFLINE),
        (-30, MonitorState.ONLINE),
    ],
)
def test_status_by_silence(silent_s: float, state: MonitorState) -> None:
    tracker = MonitorTracker(CONFIG)
    tracker.add(reading(0, 0.3))
    status = tracker.check(at(silent_s))
    assert status.state is state
    assert status.last_seen == at(0)


def test_a_monitor_never_heard_from_is_offline() -> None:
    status = MonitorTracker(CONFIG).check(T0)
    assert status.state is MonitorState.OFFLINE
    assert status.last_seen is None
    assert status.readings_last_hour == 0


def test_status_counts_readings_in_the_last_hour() -> None:
    tracker = MonitorTracker(CONFIG)
    feed(tracker, every_minute([0.3] * 90))  # 11:00 to 12:29
    status = tracker.check(at(89 * 60))
    assert status.readings_last_hour == 60
    assert status.expected_per_hour == 60
    assert status.premises_id == "p1"


def test_status_reports_ignored_readings() -> None:
    tracker = MonitorTracker(CONFIG)
    feed(tracker, [reading(60, 0.3), reading(0, 0.3), reading(60, 0.3)])
    assert tracker.check(at(60)).ignored == {IgnoredReason.OUT_OF_ORDER: 1, IgnoredReason.DUPLICATE: 1}


def test_status_judges_silence_by_receipt_when_known() -> None:
    tracker = MonitorTracker(CONFIG)
    tracker.add(reading(0, 0.3), received_at=at(600))
    status = tracker.check(at(700))
    assert status.state is MonitorState.ONLINE
    assert (status.last_seen, status.last_received) == (at(0), at(600))


# -- the bank


def test_bank_refuses_a_reading_of_an_unknown_monitor_and_hands_it_back() -> None:
    bank = MonitorBank([CONFIG, MonitorConfig(monitor_id="m2")])
    stray = reading(0, 5.0, monitor_id="m9")
    with pytest.raises(UnknownMonitorError, match=r"unknown monitor 'm9'.*known: m1, m2") as caught:
        bank.add(stray)
    assert caught.value.reading == stray
    assert caught.value.monitor_id == "m9"
    assert isinstance(caught.value, LookupError)


def test_bank_refuses_a_monitor_configured_twice() -> None:
    with pytest.raises(ValueError, match="monitor 'm1' is configured twice"):
        MonitorBank([CONFIG, MonitorConfig(monitor_id="m1")])


def test_bank_keeps_monitors_apart() -> None:
    bank = MonitorBank([CONFIG, MonitorConfig(monitor_id="m2", threshold_mg_m3=1.0)])
    found: list[Episode] = []
    for i in range(7):
        level = 1.5 if i < 6 else 0.1
        found += bank.add(reading(60 * i, level, monitor_id="m1"))
        found += bank.add(reading(60 * i, level, monitor_id="m2"))
    assert [(e.monitor_id, e.kind) for e in found] == [("m2", "exceedance")]
    assert [s.monitor_id for s in bank.statuses(at(400))] == ["m1", "m2"]


def test_bank_expire_and_close_cover_every_monitor() -> None:
    bank = MonitorBank([CONFIG, MonitorConfig(monitor_id="m2")])
    for r in every_minute([3.0] * 6):
        bank.add(r)
    for i in range(6):
        bank.add(reading(600 + 60 * i, 3.0, monitor_id="m2"))
    assert [e.monitor_id for e in bank.open_episodes()] == ["m1", "m2"]
    assert [(e.monitor_id, e.end_reason) for e in bank.expire(at(1000))] == [("m1", EndReason.SILENCE)]
    assert [(e.monitor_id, e.end_reason) for e in bank.close(at(1000))] == [("m2", EndReason.SHUTDOWN)]


def test_episodes_round_trip_through_json_by_kind() -> None:
    found = feed(MonitorTracker(CONFIG), [*every_minute([4.0] * 6, purifier_on=OFF, fan_on=ON), reading(360, 0.1)])
    adapter = TypeAdapter(list[Episode])
    assert adapter.validate_json(adapter.dump_json(found)) == found


# -- against an obviously correct reference


def naive_exceedances(config: MonitorConfig, readings: list[Reading]) -> list[tuple[datetime, datetime, int]]:
    """Split the sorted readings into runs above threshold with gaps no longer than max_gap_s."""
    runs: list[list[Reading]] = []
    previous: Reading | None = None
    for r in readings:
        above = r.concentration_mg_m3 > config.threshold_mg_m3
        bridged = previous is not None and (r.at - previous.at).total_seconds() <= config.max_gap_s
        previous_above = previous is not None and previous.concentration_mg_m3 > config.threshold_mg_m3
        if above and bridged and previous_above:
            runs[-1].append(r)
        elif above:
            runs.append([r])
        previous = r
    return [
        (run[0].at, run[-1].at, len(run))
        for run in runs
        if (run[-1].at - run[0].at).total_seconds() >= config.min_episode_s
    ]


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(min_value=1, max_value=400), st.sampled_from([0.0, 1.0, 2.0, 2.5, 8.0])),
        max_size=60,
    )
)
def test_exceedances_match_the_naive_reference(steps: list[tuple[int, float]]) -> None:
    readings, t = [], 0
    for delta, concentration in steps:
        t += delta
        readings.append(reading(t, concentration))
    tracker = MonitorTracker(CONFIG)
    found = feed(tracker, readings) + tracker.close(at(t))
    exceedances = [(e.started_at, e.last_at, e.readings) for e in found if e.kind == "exceedance"]
    assert exceedances == naive_exceedances(CONFIG, readings)

"""Online fume monitors (油烟在线监测): readings, exceedance episodes, stale monitors.

Restaurants that emit cooking fumes carry monitors on their exhausts that report about
once a minute: the fume concentration in mg/m³ and whether the purifier and the fan are
running. This module turns a monitor's stream of readings into findings, with explicit
times and no I/O, so that the same code serves readings from HTTP and from MQTT
(`pipelines.mqtt`) and can be replayed in tests:

- an `ExceedanceEpisode`: the concentration stayed above the threshold (GB 18483-2001,
  2.0 mg/m³, unless the premises has its own) for at least `min_episode_s`;
- a `PurifierOffEpisode`: the fan ran with the purifier off while there were fumes, for
  at least `min_episode_s` — exhausting fumes around the purifier is a finding of its own
  whatever the concentration;
- a `MonitorStatus`: whether the monitor is online, stale or offline, and how many
  readings it sent in the last hour.

The episode rule, exactly: a *run* is a sequence of consecutive readings of one monitor
that each meet the condition, where consecutive readings are at most `max_gap_s` apart.
The run spans the time from its first to its last reading — only observed time, nothing
is extrapolated past the readings, so an episode never claims more than the monitor saw
— and it is an episode when that span is at least `min_episode_s`. A run ends at the
first reading that does not meet the condition, at a reading that comes after a gap
longer than `max_gap_s` (a gap never bridges a run), when the monitor falls silent for
longer than `max_gap_s` (`expire`), or at shutdown (`close`). Runs too short to be
episodes are counted as spikes and dropped.

A `MonitorTracker` follows one monitor; a `MonitorBank` holds the trackers of every
known monitor and refuses readings of unknown ones with an `UnknownMonitorError` that
carries the reading, so that the caller can set it aside instead of losing it.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

logger = logging.getLogger(__name__)

#: GB 18483-2001 (饮食业油烟排放标准): maximum allowed emission concentration of cooking fume, mg/m³
GB18483_THRESHOLD_MG_M3 = 2.0
#: the pattern of monitor and premises ids: safe as one MQTT topic level, in file names and URLs
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
#: readings per hour are counted over this window
_RATE_WINDOW = timedelta(hours=1)


class MonitorError(Exception):
    """Base of the errors raised by the fume-monitor logic."""


class UnknownMonitorError(MonitorError, LookupError):
    """A reading names a monitor the bank does not know; the reading rides along to be set aside."""

    def __init__(self, reading: Reading, known: Iterable[str]) -> None:
        known = sorted(known)
        shown = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
        super().__init__(
            f"unknown monitor {reading.monitor_id!r}: no MonitorConfig has this id "
            f"(known: {shown or 'none'}); register the monitor before accepting its readings"
        )
        self.reading = reading
        self.monitor_id = reading.monitor_id


def _require_aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} must carry a UTC offset (e.g. 2024-05-01T12:00:00+08:00 or ...Z), but got the naive "
            f"{value.isoformat()}, whose time zone is unknown"
        )
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reading(_Strict):
    """One report of a fume monitor: the concentration and the state of purifier and fan."""

    monitor_id: str = Field(
        title="Monitor id",
        min_length=1,
        max_length=64,
        pattern=ID_PATTERN,
        description="Id of the monitor that took the reading (letters, digits, _ . -).",
    )
    at: datetime = Field(
        title="Measured at",
        description="When the reading was taken, with its UTC offset; a naive time is refused. Stored in UTC.",
    )
    concentration_mg_m3: float = Field(
        title="Fume concentration",
        ge=0.0,
        le=1000.0,
        allow_inf_nan=False,
        description="Cooking fume concentration at the outlet in mg/m³ (the GB 18483-2001 standard is 2.0).",
    )
    purifier_on: bool | None = Field(
        default=None,
        title="Purifier on",
        description="Whether the fume purifier was powered; null when the monitor does not report it.",
    )
    fan_on: bool | None = Field(
        default=None,
        title="Fan on",
        description="Whether the exhaust fan was running; null when the monitor does not report it.",
    )

    @field_validator("at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        return _require_aware(value, "at").astimezone(UTC)


class MonitorConfig(_Strict):
    """One monitor: the premises it watches and the rules its readings are judged by."""

    monitor_id: str = Field(
        title="Monitor id",
        min_length=1,
        max_length=64,
        pattern=ID_PATTERN,
        description="Id the monitor reports under (letters, digits, _ . -).",
    )
    premises_id: str | None = Field(
        default=None,
        title="Premises id",
        min_length=1,
        max_length=64,
        pattern=ID_PATTERN,
        description="The restaurant whose exhaust the monitor is on, for matching with camera findings.",
    )
    threshold_mg_m3: float = Field(
        default=GB18483_THRESHOLD_MG_M3,
        title="Threshold",
        gt=0.0,
        le=1000.0,
        description="Concentration in mg/m³ that readings must exceed (strictly) to count as an exceedance. "
        "GB 18483-2001 (饮食业油烟排放标准) sets 2.0 mg/m³ for every size of premises; set a lower value "
        "where a local standard or a permit is stricter.",
    )
    purifier_off_level_mg_m3: float = Field(
        default=1.0,
        title="Purifier-off level",
        ge=0.0,
        le=1000.0,
        description="Concentration in mg/m³ that readings must exceed (strictly) for fan-on, purifier-off readings "
        "to count towards a purifier-off episode: below it the kitchen is taken not to be cooking.",
    )
    min_episode_s: float = Field(
        default=300.0,
        title="Minimum episode",
        gt=0.0,
        le=86_400.0,
        description="Seconds from the first to the last reading of a run before it is an episode; shorter runs "
        "are spikes and are not reported.",
    )
    expected_interval_s: float = Field(
        default=60.0,
        title="Reporting interval",
        gt=0.0,
        le=3_600.0,
        description="Seconds between readings when the monitor works.",
    )
    max_gap_s: float = Field(
        default=180.0,
        title="Maximum gap",
        gt=0.0,
        le=86_400.0,
        description="Longest silence in seconds between two readings of one run; a longer gap ends the run, "
        "since nobody knows what the concentration did meanwhile.",
    )
    stale_after_s: float = Field(
        default=180.0,
        title="Stale after",
        gt=0.0,
        le=86_400.0,
        description="Seconds without a reading after which the monitor is stale (three reporting intervals).",
    )
    offline_after_s: float = Field(
        default=3_600.0,
        title="Offline after",
        gt=0.0,
        le=30 * 86_400.0,
        description="Seconds without a reading after which the monitor is offline; never seen is offline too.",
    )
    max_clock_skew_s: float = Field(
        default=300.0,
        title="Maximum clock skew",
        ge=0.0,
        le=86_400.0,
        description="How far in seconds a reading's time may lie ahead of when it was received; later ones are "
        "refused, since one reading from a clock far ahead would make every true reading after it out of order.",
    )

    @model_validator(mode="after")
    def _consistent_intervals(self) -> MonitorConfig:
        if self.max_gap_s < self.expected_interval_s:
            raise ValueError(
                f"max_gap_s ({self.max_gap_s}) must be at least expected_interval_s ({self.expected_interval_s}), "
                "or no two readings of a working monitor could form a run"
            )
        if self.stale_after_s < self.expected_interval_s:
            raise ValueError(
                f"stale_after_s ({self.stale_after_s}) must be at least expected_interval_s "
                f"({self.expected_interval_s}), or a working monitor would be stale between readings"
            )
        if self.offline_after_s <= self.stale_after_s:
            raise ValueError(
                f"offline_after_s ({self.offline_after_s}) must be greater than stale_after_s ({self.stale_after_s})"
            )
        return self


class EndReason(StrEnum):
    """Why an episode ended."""

    #: the next reading no longer met the condition
    CLEARED = "cleared"
    #: the next reading came more than max_gap_s later
    GAP = "gap"
    #: no reading came for more than max_gap_s (`expire`)
    SILENCE = "silence"
    #: closed so far at shutdown (`close`); the condition may still hold
    SHUTDOWN = "shutdown"


class _Episode(_Strict):
    monitor_id: str = Field(title="Monitor id", description="The monitor whose readings make up the episode.")
    premises_id: str | None = Field(title="Premises id", description="The premises the monitor watches.")
    started_at: datetime = Field(title="Started at", description="Time of the first reading of the episode (UTC).")
    last_at: datetime = Field(title="Last reading at", description="Time of the last reading of the episode (UTC).")
    ended_at: datetime | None = Field(
        default=None,
        title="Ended at",
        description="Time of the last reading meeting the condition once the episode is over; null while it is open.",
    )
    end_reason: EndReason | None = Field(
        default=None, title="End reason", description="Why the episode ended; null while it is open."
    )
    readings: int = Field(title="Readings", ge=1, description="Number of readings in the episode.")
    peak_mg_m3: float = Field(title="Peak", ge=0.0, description="Highest concentration in mg/m³.")
    mean_mg_m3: float = Field(title="Mean", ge=0.0, description="Mean concentration over the readings in mg/m³.")
    min_episode_s: float = Field(title="Minimum episode", description="The minimum duration in force, seconds.")

    @property
    def duration_s(self) -> float:
        """Seconds from the first to the last reading: the observed span, never extrapolated."""
        return (self.last_at - self.started_at).total_seconds()

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


class ExceedanceEpisode(_Episode):
    """The concentration stayed above the threshold for at least the minimum episode duration."""

    kind: Literal["exceedance"] = "exceedance"
    threshold_mg_m3: float = Field(title="Threshold", description="The threshold in force, mg/m³.")
    purifier_off_readings: int = Field(
        title="Purifier-off readings", ge=0, description="Readings of the episode with the purifier reported off."
    )


class PurifierOffEpisode(_Episode):
    """The fan ran with the purifier off while fumes were present, for at least the minimum duration.

    Every reading of the episode reports the fan on, the purifier off and a concentration
    above the purifier-off level; a reading that leaves either state unreported ends the
    run, since an unknown state is no evidence of a bypassed purifier.
    """

    kind: Literal["purifier_off"] = "purifier_off"
    level_mg_m3: float = Field(
        title="Purifier-off level", description="The concentration readings exceeded, mg/m³ (the level in force)."
    )


#: any finding of a monitor; `kind` tells which
Episode = Annotated[ExceedanceEpisode | PurifierOffEpisode, Field(discriminator="kind")]


class IgnoredReason(StrEnum):
    """Why a tracker ignored a reading."""

    #: older than the newest reading already taken
    OUT_OF_ORDER = "out_of_order"
    #: the same time and values as the newest reading (MQTT QoS 1 delivers at least once)
    DUPLICATE = "duplicate"
    #: the same time as the newest reading but other values; the first one is kept
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    #: further ahead of its receipt than max_clock_skew_s: the monitor's clock is wrong
    FROM_THE_FUTURE = "from_the_future"


class MonitorState(StrEnum):
    """How recently a monitor reported."""

    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"


class MonitorStatus(_Strict):
    """A monitor's health at one moment."""

    monitor_id: str = Field(title="Monitor id", description="The monitor.")
    premises_id: str | None = Field(title="Premises id", description="The premises the monitor watches.")
    checked_at: datetime = Field(title="Checked at", description="The moment the status describes (UTC).")
    state: MonitorState = Field(title="State", description="Online, stale or offline.")
    last_seen: datetime | None = Field(
        title="Last seen", description="Time of the newest reading taken (UTC); null if it never reported."
    )
    last_received: datetime | None = Field(
        title="Last received",
        description="When the newest reading reached nonsite (UTC), where its feeder said; the state is judged by "
        "it when present, else by last_seen.",
    )
    readings_last_hour: int = Field(
        title="Readings in the last hour", ge=0, description="Readings taken with times in the hour up to checked_at."
    )
    expected_per_hour: float = Field(
        title="Expected per hour", gt=0.0, description="Readings an hour at the configured reporting interval."
    )
    ignored: dict[IgnoredReason, int] = Field(
        title="Ignored readings", description="Readings ignored since start, by reason."
    )
    spikes: int = Field(title="Spikes", ge=0, description="Runs since start too short to be episodes.")


@dataclass(slots=True)
class _Run:
    """Readings meeting one condition, in progress."""

    started_at: datetime
    last_at: datetime
    count: int = 0
    total: float = 0.0
    peak: float = 0.0
    purifier_off: int = 0

    def extend(self, reading: Reading) -> None:
        self.last_at = reading.at
        self.count += 1
        self.total += reading.concentration_mg_m3
        self.peak = max(self.peak, reading.concentration_mg_m3)
        self.purifier_off += reading.purifier_on is False

    def span_s(self) -> float:
        return (self.last_at - self.started_at).total_seconds()


def _start_run(reading: Reading) -> _Run:
    run = _Run(started_at=reading.at, last_at=reading.at)
    run.extend(reading)
    return run


def _aware_utc(value: datetime, name: str) -> datetime:
    return _require_aware(value, name).astimezone(UTC)


class MonitorTracker:
    """Follows one monitor's readings and turns them into episodes and a status.

    Time is whatever the readings and the caller say it is: nothing here reads a clock,
    so a day of readings replays the same way every time.
    """

    def __init__(self, config: MonitorConfig) -> None:
        self.config = config
        self._last: Reading | None = None
        self._last_received: datetime | None = None
        self._exceedance: _Run | None = None
        self._purifier_off: _Run | None = None
        self._recent: deque[datetime] = deque()
        self._ignored: Counter[IgnoredReason] = Counter()
        self._spikes = 0

    @property
    def last_reading(self) -> Reading | None:
        """The newest reading taken, if any."""
        return self._last

    @property
    def ignored(self) -> Mapping[IgnoredReason, int]:
        """How many readings were ignored since start, by reason."""
        return dict(self._ignored)

    def add(self, reading: Reading, *, received_at: datetime | None = None) -> list[Episode]:
        """Take one reading; return the episodes it closed (oldest end first, often none).

        A reading older than the newest one taken, or at the same time, is counted under
        `ignored` and changes nothing. With `received_at` (when it reached nonsite), a
        reading dated more than `max_clock_skew_s` after it is ignored as well, and
        `expire` and `check` judge silence by it rather than by the monitor's own clock.
        """
        cfg = self.config
        if reading.monitor_id != cfg.monitor_id:
            raise ValueError(
                f"reading of monitor {reading.monitor_id!r} given to the tracker of monitor {cfg.monitor_id!r}"
            )
        if received_at is not None:
            received_at = _aware_utc(received_at, "received_at")
            if (reading.at - received_at).total_seconds() > cfg.max_clock_skew_s:
                return self._ignore(reading, IgnoredReason.FROM_THE_FUTURE)
        last = self._last
        if last is not None:
            if reading.at < last.at:
                return self._ignore(reading, IgnoredReason.OUT_OF_ORDER)
            if reading.at == last.at:
                same = reading == last
                return self._ignore(reading, IgnoredReason.DUPLICATE if same else IgnoredReason.CONFLICTING_DUPLICATE)
        gap = last is not None and (reading.at - last.at).total_seconds() > cfg.max_gap_s
        closed: list[Episode] = []

        exceeds = reading.concentration_mg_m3 > cfg.threshold_mg_m3
        if self._exceedance is not None and (gap or not exceeds):
            closed += self._finish_exceedance(EndReason.GAP if gap else EndReason.CLEARED)
        if exceeds:
            if self._exceedance is None:
                self._exceedance = _start_run(reading)
            else:
                self._exceedance.extend(reading)

        bypassing = (
            reading.fan_on is True
            and reading.purifier_on is False
            and reading.concentration_mg_m3 > cfg.purifier_off_level_mg_m3
        )
        if self._purifier_off is not None and (gap or not bypassing):
            closed += self._finish_purifier_off(EndReason.GAP if gap else EndReason.CLEARED)
        if bypassing:
            if self._purifier_off is None:
                self._purifier_off = _start_run(reading)
            else:
                self._purifier_off.extend(reading)

        closed.sort(key=lambda episode: (episode.last_at, episode.kind))
        self._last = reading
        self._last_received = received_at
        self._recent.append(reading.at)
        while self._recent and reading.at - self._recent[0] >= _RATE_WINDOW:
            self._recent.popleft()
        return closed

    def expire(self, now: datetime) -> list[Episode]:
        """Close the runs of a monitor silent for more than `max_gap_s` at `now`; return the episodes.

        A later reading could not extend such a run anyway, so closing it now reports the
        episode of a monitor that stopped mid-exceedance without waiting for it to return.
        Silence is measured from when the newest reading was received where the caller
        said so, else from its own time: a monitor whose clock lags must not have its runs
        cut after every reading by a caller sweeping on the wall clock.
        """
        now = _aware_utc(now, "now")
        heard = self._last_heard()
        if heard is None or (now - heard).total_seconds() <= self.config.max_gap_s:
            return []
        return self._finish_all(EndReason.SILENCE)

    def close(self, now: datetime) -> list[Episode]:
        """At shutdown: the episodes still open, closed so far (or silent ones, as `expire` would)."""
        expired = self.expire(now)
        return expired + self._finish_all(EndReason.SHUTDOWN)

    def open_episodes(self) -> list[Episode]:
        """Runs in progress that are already long enough to be episodes, with `ended_at` null."""
        found: list[Episode] = []
        if self._exceedance is not None and self._qualifies(self._exceedance):
            found.append(self._exceedance_episode(self._exceedance, None))
        if self._purifier_off is not None and self._qualifies(self._purifier_off):
            found.append(self._purifier_off_episode(self._purifier_off, None))
        return found

    def check(self, now: datetime) -> MonitorStatus:
        """The monitor's status at `now`: online, stale or offline, and its recent reading rate.

        Silence is measured as in `expire`; readings per hour count readings dated in the hour up to `now`.
        """
        now = _aware_utc(now, "now")
        cfg = self.config
        heard = self._last_heard()
        if heard is None:
            state = MonitorState.OFFLINE
        else:
            silent_s = (now - heard).total_seconds()
            if silent_s <= cfg.stale_after_s:
                state = MonitorState.ONLINE
            elif silent_s <= cfg.offline_after_s:
                state = MonitorState.STALE
            else:
                state = MonitorState.OFFLINE
        since = now - _RATE_WINDOW
        return MonitorStatus(
            monitor_id=cfg.monitor_id,
            premises_id=cfg.premises_id,
            checked_at=now,
            state=state,
            last_seen=self._last.at if self._last is not None else None,
            last_received=self._last_received,
            readings_last_hour=sum(1 for at in self._recent if since < at <= now),
            expected_per_hour=_RATE_WINDOW.total_seconds() / cfg.expected_interval_s,
            ignored=dict(self._ignored),
            spikes=self._spikes,
        )

    def _last_heard(self) -> datetime | None:
        if self._last_received is not None:
            return self._last_received
        return self._last.at if self._last is not None else None

    def _ignore(self, reading: Reading, reason: IgnoredReason) -> list[Episode]:
        self._ignored[reason] += 1
        newest = self._last.at.isoformat() if self._last is not None else "none"
        logger.info(
            "monitor %s: reading at %s ignored (%s); newest taken at %s",
            reading.monitor_id,
            reading.at.isoformat(),
            reason.value,
            newest,
        )
        return []

    def _qualifies(self, run: _Run) -> bool:
        return run.span_s() >= self.config.min_episode_s

    def _finish_all(self, reason: EndReason) -> list[Episode]:
        closed: list[Episode] = []
        if self._exceedance is not None:
            closed += self._finish_exceedance(reason)
        if self._purifier_off is not None:
            closed += self._finish_purifier_off(reason)
        return closed

    def _finish_exceedance(self, reason: EndReason) -> list[Episode]:
        run, self._exceedance = self._exceedance, None
        if run is None:
            return []
        if not self._qualifies(run):
            self._spikes += 1
            return []
        return [self._exceedance_episode(run, reason)]

    def _finish_purifier_off(self, reason: EndReason) -> list[Episode]:
        run, self._purifier_off = self._purifier_off, None
        if run is None:
            return []
        if not self._qualifies(run):
            self._spikes += 1
            return []
        return [self._purifier_off_episode(run, reason)]

    def _exceedance_episode(self, run: _Run, reason: EndReason | None) -> ExceedanceEpisode:
        cfg = self.config
        return ExceedanceEpisode(
            monitor_id=cfg.monitor_id,
            premises_id=cfg.premises_id,
            started_at=run.started_at,
            last_at=run.last_at,
            ended_at=run.last_at if reason is not None else None,
            end_reason=reason,
            readings=run.count,
            peak_mg_m3=run.peak,
            mean_mg_m3=run.total / run.count,
            min_episode_s=cfg.min_episode_s,
            threshold_mg_m3=cfg.threshold_mg_m3,
            purifier_off_readings=run.purifier_off,
        )

    def _purifier_off_episode(self, run: _Run, reason: EndReason | None) -> PurifierOffEpisode:
        cfg = self.config
        return PurifierOffEpisode(
            monitor_id=cfg.monitor_id,
            premises_id=cfg.premises_id,
            started_at=run.started_at,
            last_at=run.last_at,
            ended_at=run.last_at if reason is not None else None,
            end_reason=reason,
            readings=run.count,
            peak_mg_m3=run.peak,
            mean_mg_m3=run.total / run.count,
            min_episode_s=cfg.min_episode_s,
            level_mg_m3=cfg.purifier_off_level_mg_m3,
        )


class ReadingSink(Protocol):
    """What takes readings and hands back the episodes they closed: a `MonitorBank`, or a
    service that also keeps the readings (`pipelines.fume.MonitorService`)."""

    def add(self, reading: Reading, *, received_at: datetime | None = None) -> list[Episode]: ...

    def expire(self, now: datetime) -> list[Episode]: ...


class MonitorBank:
    """The trackers of every known monitor, by id; safe to share between threads.

    HTTP handlers and the MQTT subscriber feed one bank from their own threads, so every
    call holds the bank's lock for the little time the logic takes.
    """

    def __init__(self, configs: Iterable[MonitorConfig]) -> None:
        trackers: dict[str, MonitorTracker] = {}
        for config in configs:
            if config.monitor_id in trackers:
                raise ValueError(f"monitor {config.monitor_id!r} is configured twice; monitor ids must be unique")
            trackers[config.monitor_id] = MonitorTracker(config)
        self._trackers = trackers
        self._lock = threading.Lock()

    @property
    def monitor_ids(self) -> list[str]:
        return sorted(self._trackers)

    def register(self, config: MonitorConfig) -> None:
        """Add a monitor, or change one's settings (its tracker starts afresh)."""
        with self._lock:
            self._trackers = {**self._trackers, config.monitor_id: MonitorTracker(config)}

    def __contains__(self, monitor_id: object) -> bool:
        return monitor_id in self._trackers

    def add(self, reading: Reading, *, received_at: datetime | None = None) -> list[Episode]:
        """Give a reading to its monitor's tracker; the episodes it closed.

        Raises `UnknownMonitorError`, carrying the reading, for a monitor not configured.
        """
        tracker = self._trackers.get(reading.monitor_id)
        if tracker is None:
            raise UnknownMonitorError(reading, self._trackers)
        with self._lock:
            return tracker.add(reading, received_at=received_at)

    def config(self, monitor_id: str) -> MonitorConfig:
        """The configuration of monitor `monitor_id`."""
        return self._tracker(monitor_id).config

    def check(self, monitor_id: str, now: datetime) -> MonitorStatus:
        """The status of monitor `monitor_id` at `now`."""
        tracker = self._tracker(monitor_id)
        with self._lock:
            return tracker.check(now)

    def statuses(self, now: datetime) -> list[MonitorStatus]:
        """Every monitor's status at `now`, by monitor id."""
        with self._lock:
            return [self._trackers[mid].check(now) for mid in sorted(self._trackers)]

    def expire(self, now: datetime) -> list[Episode]:
        """Close the runs of every monitor silent for longer than its `max_gap_s`; the episodes."""
        with self._lock:
            return [episode for mid in sorted(self._trackers) for episode in self._trackers[mid].expire(now)]

    def close(self, now: datetime) -> list[Episode]:
        """At shutdown: every monitor's open episodes, closed so far."""
        with self._lock:
            return [episode for mid in sorted(self._trackers) for episode in self._trackers[mid].close(now)]

    def open_episodes(self) -> list[Episode]:
        """Episodes in progress on every monitor, with `ended_at` null."""
        with self._lock:
            return [episode for mid in sorted(self._trackers) for episode in self._trackers[mid].open_episodes()]

    def _tracker(self, monitor_id: str) -> MonitorTracker:
        tracker = self._trackers.get(monitor_id)
        if tracker is None:
            raise LookupError(f"unknown monitor {monitor_id!r}; known: {', '.join(self.monitor_ids) or 'none'}")
        return tracker

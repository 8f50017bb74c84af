"""Fume monitors in a deployment: readings kept in the case database, episodes sealed as
evidence and filed as cases of the premises, where they fuse with the cameras' plumes.

`MonitorService` takes readings from HTTP and MQTT alike (it is a `ReadingSink`): each
reading is stored once (by monitor and time), given to the monitor's tracker, and every
episode it closes is sealed (the episode's readings as JSON and as a chart) and filed.
Sealing is deterministic in the readings, so an episode filed twice — after a restart
replays the recent readings — is one package and one case.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cases.casebook import Casebook, Filed, utc_now
from cases.errors import CaseError
from cases.models import Monitor, MonitorReading, Party
from evidence.canonical import canonical_json
from evidence.package import PackageFile
from nonsite import __version__
from pipelines.monitors import (
    Episode,
    ExceedanceEpisode,
    MonitorBank,
    MonitorConfig,
    MonitorStatus,
    Reading,
    UnknownMonitorError,
)

logger = logging.getLogger(__name__)

REPLAY = timedelta(hours=2)  # readings replayed at start, so an episode open at a restart is not lost
CHART_SIZE = (720, 260)  # width, height


class MonitorServiceError(CaseError):
    """A monitor that cannot be registered (unknown premises) or a reading that cannot be kept."""


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    filed: list[Filed] = field(default_factory=list)


class MonitorService:
    """Readings in, cases out; one per deployment (the API process), shared by HTTP and MQTT."""

    def __init__(self, book: Casebook, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.book = book
        self.clock = clock
        with book.db.session() as s:
            configs = [MonitorConfig.model_validate(m.config) for m in s.scalars(select(Monitor))]
        self.bank = MonitorBank(configs)
        self._lock = threading.Lock()  # readings of one batch go to the bank in order

    # --- registry ---------------------------------------------------------------------------

    def register(self, config: MonitorConfig) -> None:
        """Add or update a monitor; its `premises_id` must be a premises of the registry."""
        with self.book.db.session() as s:
            party = None
            if config.premises_id is not None:
                party = s.scalar(select(Party).where(Party.code == config.premises_id))
                if party is None:
                    raise MonitorServiceError(
                        f"monitor {config.monitor_id}: premises {config.premises_id!r} is not in the registry"
                    )
            row = s.get(Monitor, config.monitor_id)
            if row is None:
                s.add(
                    Monitor(
                        id=config.monitor_id,
                        party_id=party.id if party else None,
                        config=config.model_dump(mode="json"),
                        created_at=self.clock(),
                    )
                )
            else:
                row.party_id = party.id if party else None
                row.config = config.model_dump(mode="json")
        self.bank.register(config)

    def statuses(self, now: datetime | None = None) -> list[MonitorStatus]:
        return self.bank.statuses(now or self.clock())

    # --- readings ---------------------------------------------------------------------------

    def add(self, reading: Reading, *, received_at: datetime | None = None) -> list[Episode]:
        """One reading (the MQTT subscriber's entry point); the episodes it closed, already filed."""
        return self._take([reading], received_at or self.clock(), IngestResult())[1]

    def ingest(self, readings: Iterable[Reading], *, received_at: datetime | None = None) -> IngestResult:
        """A batch of readings (HTTP), in time order; unknown monitors raise before anything is kept."""
        batch = sorted(readings, key=lambda r: (r.monitor_id, r.at))
        unknown = sorted({r.monitor_id for r in batch if r.monitor_id not in self.bank})
        if unknown:
            raise UnknownMonitorError(next(r for r in batch if r.monitor_id in unknown), self.bank.monitor_ids)
        result, _ = self._take(batch, received_at or self.clock(), IngestResult())
        return result

    def expire(self, now: datetime) -> list[Episode]:
        """Close the episodes of monitors that fell silent, and file them."""
        episodes = self.bank.expire(now)
        for episode in episodes:
            self.file_episode(episode)
        return episodes

    def replay(self, now: datetime | None = None) -> int:
        """At start: give the trackers the readings of the last `REPLAY`, so an episode that was
        open when the service stopped goes on (episodes it closes again are filed once)."""
        now = now or self.clock()
        with self.book.db.session() as s:
            rows = list(
                s.scalars(
                    select(MonitorReading)
                    .where(MonitorReading.at >= now - REPLAY)
                    .order_by(MonitorReading.monitor_id, MonitorReading.at)
                )
            )
        for row in rows:
            if row.monitor_id in self.bank:
                for episode in self.bank.add(_reading(row), received_at=row.received_at):
                    self.file_episode(episode)
        return len(rows)

    def _take(
        self, readings: list[Reading], received_at: datetime, result: IngestResult
    ) -> tuple[IngestResult, list[Episode]]:
        closed: list[Episode] = []
        with self._lock:
            for reading in readings:
                if reading.monitor_id not in self.bank:
                    raise UnknownMonitorError(reading, self.bank.monitor_ids)
            fresh = self._store(readings, received_at)
            result.duplicates += len(readings) - len(fresh)
            result.accepted += len(fresh)
            for reading in fresh:
                closed += self.bank.add(reading, received_at=received_at)
        for episode in closed:
            result.filed.append(self.file_episode(episode))
        return result, closed

    def _store(self, readings: list[Reading], received_at: datetime) -> list[Reading]:
        """Keep the readings in one transaction; returns those not kept before (by monitor and time)."""
        if not readings:
            return []
        try:
            with self.book.db.session() as s:
                seen = set()
                for monitor_id in {r.monitor_id for r in readings}:
                    times = [r.at for r in readings if r.monitor_id == monitor_id]
                    seen |= {
                        (monitor_id, at)
                        for at in s.scalars(
                            select(MonitorReading.at).where(
                                MonitorReading.monitor_id == monitor_id,
                                MonitorReading.at >= min(times),
                                MonitorReading.at <= max(times),
                            )
                        )
                    }
                fresh = []
                for r in readings:
                    if (r.monitor_id, r.at) in seen:
                        continue
                    seen.add((r.monitor_id, r.at))
                    fresh.append(r)
                s.add_all(
                    MonitorReading(
                        monitor_id=r.monitor_id,
                        at=r.at,
                        concentration_mg_m3=r.concentration_mg_m3,
                        purifier_on=r.purifier_on,
                        fan_on=r.fan_on,
                        received_at=received_at,
                    )
                    for r in fresh
                )
        except IntegrityError:
            # another thread kept some of them meanwhile: one at a time, so each is kept once
            kept = []
            for r in readings:
                kept += self._store([r], received_at)
            return kept
        return fresh

    # --- evidence and cases ---------------------------------------------------------------------

    def file_episode(self, episode: Episode) -> Filed:
        """Seal an episode (its readings, a chart) with the monitor as device, and file it."""
        with self.book.db.session() as s:
            rows = list(
                s.scalars(
                    select(MonitorReading)
                    .where(
                        MonitorReading.monitor_id == episode.monitor_id,
                        MonitorReading.at >= episode.started_at,
                        MonitorReading.at <= episode.last_at,
                    )
                    .order_by(MonitorReading.at)
                )
            )
        config = self.bank.config(episode.monitor_id)
        readings = [_reading(r).model_dump(mode="json") for r in rows]
        kind = "fume" if isinstance(episode, ExceedanceEpisode) else "purifier_off"
        threshold = episode.threshold_mg_m3 if isinstance(episode, ExceedanceEpisode) else config.threshold_mg_m3
        ended = episode.ended_at or episode.last_at
        attributes = episode.model_dump(mode="json", exclude={"monitor_id", "premises_id", "kind"})
        finding = {
            "device": {"id": episode.monitor_id, "kind": "fume_monitor", "name": f"fume monitor {episode.monitor_id}"},
            "place": {},
            "capture": {
                "started_at": episode.started_at.isoformat(),
                "ended_at": ended.isoformat(),
                "clock_source": "monitor",
                "readings": len(readings),
            },
            "violation": {
                "kind": kind,
                "zone": None,
                "premises": episode.premises_id,
                "started_at": episode.started_at.isoformat(),
                "ended_at": ended.isoformat(),
                "score": round(min(1.0, episode.peak_mg_m3 / (2 * threshold)), 4),
                "attributes": attributes,
            },
            "model": {},
            "rule": {
                "standard": "GB 18483-2001",
                "threshold_mg_m3": threshold,
                "min_episode_s": config.min_episode_s,
                "max_gap_s": config.max_gap_s,
            },
            "engine": {"name": "nonsite", "version": __version__},
        }
        files = [
            PackageFile("readings.json", canonical_json(readings), "application/json", "readings"),
            PackageFile("chart.png", _chart(rows, threshold, kind), "image/png", "annotated"),
        ]
        package_id = self.book.vault.seal(finding, files).package.package_id
        filed = self.book.file_package(package_id)
        logger.info(
            "monitor %s: %s episode %s..%s filed as %s",
            episode.monitor_id,
            kind,
            episode.started_at,
            ended,
            filed.case_number,
        )
        return filed


def _reading(row: MonitorReading) -> Reading:
    return Reading(
        monitor_id=row.monitor_id,
        at=row.at,
        concentration_mg_m3=row.concentration_mg_m3,
        purifier_on=row.purifier_on,
        fan_on=row.fan_on,
    )


def _chart(rows: list[MonitorReading], threshold: float, kind: str) -> bytes:
    """The episode's concentration over time with the threshold, as a PNG (deterministic)."""
    w, h = CHART_SIZE
    image = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 60, w - 20, 20, h - 40
    values = [r.concentration_mg_m3 for r in rows] or [0.0]
    peak = max(*values, threshold) * 1.15 or 1.0
    times = [r.at.timestamp() for r in rows] or [0.0]
    t0, span = times[0], max(times[-1] - times[0], 1.0)

    def xy(t: float, v: float) -> tuple[int, int]:
        return int(left + (t - t0) / span * (right - left)), int(bottom - v / peak * (bottom - top))

    cv2.rectangle(image, (left, top), (right, bottom), (200, 200, 200), 1)
    ty = xy(t0, threshold)[1]
    cv2.line(image, (left, ty), (right, ty), (0, 0, 220), 1, cv2.LINE_AA)
    cv2.putText(image, f"{threshold:g} mg/m3", (left + 4, ty - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 220), 1)
    points = np.array([xy(t, v) for t, v in zip(times, values, strict=True)], np.int32)
    if len(points) > 1:
        cv2.polylines(image, [points], False, (40, 40, 40), 2, cv2.LINE_AA)
    for row, (x, y) in zip(rows, points, strict=True):
        colour = (0, 0, 200) if row.purifier_on is False else (40, 40, 40)
        cv2.circle(image, (int(x), int(y)), 3, colour, -1, cv2.LINE_AA)
    label = f"{kind}  {rows[0].at:%Y-%m-%d %H:%M} .. {rows[-1].at:%H:%M} UTC  peak {max(values):.2f}" if rows else kind
    cv2.putText(image, label, (left, h - 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise MonitorServiceError("the episode chart could not be encoded")
    return png.tobytes()

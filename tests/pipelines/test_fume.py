"""Fume monitors in a deployment: readings kept once, episodes sealed with their readings and a
chart and filed as cases of the premises, and an episode open at a restart not lost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cases.casebook import Casebook
from cases.db import Database
from cases.models import Case, CaseEvidence, MonitorReading, Party
from evidence.bundle import export_bundle, verify_bundle
from evidence.package import load_package
from evidence.vault import Vault
from pipelines.fume import MonitorService, MonitorServiceError
from pipelines.monitors import MonitorConfig, Reading, UnknownMonitorError

START = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


@pytest.fixture
def book(database: Database, tmp_path: Path) -> Iterator[Casebook]:
    vault = Vault(tmp_path / "evidence", tmp_path / "keys")
    casebook = Casebook(database, vault, clock=lambda: START + timedelta(hours=1))
    casebook.add_party(kind="restaurant", name="老王面馆", lat=30.25, lon=120.16)
    with database.session() as s:
        party = s.scalar(select(Party))
        assert party is not None
        party.code = "R-001"
    yield casebook
    vault.close()


def readings(values: list[float], *, start: datetime = START, purifier_on: bool = True) -> list[Reading]:
    return [
        Reading(
            monitor_id="mon-1",
            at=start + timedelta(minutes=i),
            concentration_mg_m3=v,
            purifier_on=purifier_on,
            fan_on=True,
        )
        for i, v in enumerate(values)
    ]


def service(book: Casebook) -> MonitorService:
    monitors = MonitorService(book, clock=lambda: START + timedelta(hours=1))
    monitors.register(MonitorConfig(monitor_id="mon-1", premises_id="R-001"))
    return monitors


def test_an_exceedance_episode_is_sealed_with_its_readings_and_filed_at_the_premises(
    book: Casebook, tmp_path: Path
) -> None:
    monitors = service(book)
    result = monitors.ingest(readings([1.0, 2.5, 3.1, 4.2, 3.8, 3.0, 2.6, 2.4, 1.2]))
    assert result.accepted == 9 and len(result.filed) == 1
    (filed,) = result.filed
    with book.db.session() as s:
        case = s.scalar(select(Case).where(Case.number == filed.case_number))
        assert case is not None and (case.kind, case.state, case.lat) == ("fume", "pending_review", 30.25)
        package_id = s.scalar(select(CaseEvidence.package_id).where(CaseEvidence.case_id == case.id))
    assert package_id is not None
    package, files = load_package(book.vault.store, package_id)
    kept = json.loads(files["readings.json"])
    assert [r["concentration_mg_m3"] for r in kept] == [2.5, 3.1, 4.2, 3.8, 3.0, 2.6, 2.4]
    assert files["chart.png"].startswith(b"\x89PNG")
    assert package.manifest["device"]["kind"] == "fume_monitor"
    assert package.manifest["violation"]["attributes"]["peak_mg_m3"] == 4.2
    assert all(check.ok for check in verify_bundle(export_bundle(book.vault, package_id, tmp_path / "b.zip")))


def test_the_purifier_left_off_is_filed_as_its_own_kind(book: Casebook) -> None:
    monitors = service(book)
    result = monitors.ingest(readings([1.5] * 7 + [0.2], purifier_on=False))
    assert [f.case_number for f in result.filed] and len(result.filed) == 1
    with book.db.session() as s:
        assert s.scalar(select(Case.kind)) == "purifier_off"


def test_a_reading_sent_twice_is_kept_once(book: Casebook) -> None:
    monitors = service(book)
    batch = readings([1.0, 1.1, 1.2])
    monitors.ingest(batch)
    again = monitors.ingest(batch)
    assert (again.accepted, again.duplicates) == (0, 3)
    with book.db.session() as s:
        assert s.scalar(select(func.count()).select_from(MonitorReading)) == 3


def test_readings_of_an_unknown_monitor_are_refused_before_any_is_kept(book: Casebook) -> None:
    monitors = service(book)
    batch = [*readings([1.0]), Reading(monitor_id="mon-9", at=START, concentration_mg_m3=3.0)]
    with pytest.raises(UnknownMonitorError, match="mon-9"):
        monitors.ingest(batch)
    with book.db.session() as s:
        assert s.scalar(select(func.count()).select_from(MonitorReading)) == 0


def test_a_monitor_of_unregistered_premises_is_refused(book: Casebook) -> None:
    with pytest.raises(MonitorServiceError, match="premises 'R-404' is not in the registry"):
        MonitorService(book).register(MonitorConfig(monitor_id="mon-2", premises_id="R-404"))


def test_an_episode_open_at_a_restart_goes_on_and_is_filed_once(book: Casebook) -> None:
    series = readings([3.0] * 8 + [0.5])
    service(book).ingest(series[:6])  # the episode is open when the service stops
    restarted = MonitorService(book, clock=lambda: START + timedelta(minutes=7))
    assert restarted.replay() == 6
    result = restarted.ingest(series[6:])
    (filed,) = result.filed
    assert filed.created
    again = restarted.file_episode(_episode_of(restarted, series))
    assert again.case_number == filed.case_number and not again.created and not again.joined
    with book.db.session() as s:
        assert s.scalar(select(func.count()).select_from(CaseEvidence)) == 1


def _episode_of(monitors: MonitorService, series: list[Reading]):  # the same episode, rebuilt from its readings
    fresh = MonitorService(monitors.book, clock=monitors.clock)
    closed = [e for r in series for e in fresh.bank.add(r)]
    assert len(closed) == 1
    return closed[0]

"""Fusion of what cameras see and what fume monitors measure (GB 18483): a camera plume and a
monitor exceedance of one premises close in time are one stronger case; a monitor alone still
opens a case for review; a purifier left off is a finding of its own."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from cases.casebook import Casebook
from cases.errors import FilingError
from cases.models import Case
from evidence.package import PackageFile
from tests.cases.conftest import Clock, seal_finding


def seal_monitor(casebook: Casebook, *, started_at: datetime, kind: str = "fume", premises: str = "R-001") -> str:
    ended = started_at + timedelta(minutes=12)
    finding = {
        "device": {"id": "mon-1", "kind": "fume_monitor"},
        "place": {},
        "capture": {"started_at": started_at.isoformat(), "ended_at": ended.isoformat(), "clock_source": "monitor"},
        "violation": {
            "kind": kind,
            "zone": None,
            "premises": premises,
            "started_at": started_at.isoformat(),
            "ended_at": ended.isoformat(),
            "score": 0.9,
            "attributes": {"peak_mg_m3": 4.2, "threshold_mg_m3": 2.0},
        },
        "model": {},
        "rule": {"standard": "GB 18483-2001"},
        "engine": {"name": "nonsite", "version": "test"},
    }
    readings = PackageFile("readings.json", started_at.isoformat().encode(), "application/json", "readings")
    return casebook.vault.seal(finding, [readings]).package.package_id


@pytest.fixture
def premises(casebook: Casebook) -> Casebook:
    casebook.add_party(kind="restaurant", name="老王面馆", zones=[("cam-1", "kitchen")])
    with casebook.db.session() as s:
        from cases.models import Party

        party = s.scalar(select(Party))
        assert party is not None
        party.code, party.lat, party.lon = "R-001", 30.251, 120.161
    return casebook


def case_of(casebook: Casebook, number: str) -> Case:
    with casebook.db.session() as s:
        case = s.scalar(
            select(Case).options(selectinload(Case.party), selectinload(Case.transitions)).where(Case.number == number)
        )
        assert case is not None
        return case


@pytest.mark.parametrize("camera_first", [True, False])
def test_a_plume_and_an_exceedance_of_one_premises_fuse_into_one_stronger_case(
    premises: Casebook, clock: Clock, camera_first: bool
) -> None:
    start = clock() - timedelta(hours=1)
    camera = lambda: seal_finding(premises.vault, kind="fume", zone="kitchen", started_at=start)  # noqa: E731
    monitor = lambda: seal_monitor(premises, started_at=start + timedelta(minutes=5))  # noqa: E731
    first, second = (camera(), monitor()) if camera_first else (monitor(), camera())
    opened = premises.file_package(first)
    joined = premises.file_package(second)
    assert opened.created and joined.joined and joined.case_number == opened.case_number
    case = case_of(premises, opened.case_number)
    assert case.fused_at is not None and case.priority == 30 + 15
    assert case.party is not None and case.party.code == "R-001"
    assert case.transitions[-1].reason.startswith("fused: ")


def test_an_exceedance_with_no_camera_opens_a_case_for_review_at_the_premises(premises: Casebook, clock: Clock) -> None:
    filed = premises.file_package(seal_monitor(premises, started_at=clock() - timedelta(hours=1)))
    case = case_of(premises, filed.case_number)
    assert (case.state, case.kind, case.camera_id, case.fused_at) == ("pending_review", "fume", None, None)
    assert (case.lat, case.lon) == (30.251, 120.161), "where the premises is"


def test_findings_far_apart_in_time_join_as_a_repeat_but_do_not_fuse(premises: Casebook, clock: Clock) -> None:
    start = clock() - timedelta(hours=10)
    opened = premises.file_package(seal_finding(premises.vault, kind="fume", zone="kitchen", started_at=start))
    later = premises.file_package(seal_monitor(premises, started_at=start + timedelta(hours=5)))
    assert later.case_number == opened.case_number
    assert case_of(premises, opened.case_number).fused_at is None


def test_two_findings_of_the_same_source_do_not_fuse(premises: Casebook, clock: Clock) -> None:
    start = clock() - timedelta(hours=1)
    opened = premises.file_package(seal_monitor(premises, started_at=start))
    premises.file_package(seal_monitor(premises, started_at=start + timedelta(minutes=15)))
    assert case_of(premises, opened.case_number).fused_at is None


def test_a_purifier_left_off_is_its_own_finding(premises: Casebook, clock: Clock) -> None:
    start = clock() - timedelta(hours=1)
    fume = premises.file_package(seal_monitor(premises, started_at=start))
    off = premises.file_package(seal_monitor(premises, started_at=start, kind="purifier_off"))
    assert off.created and off.case_number != fume.case_number
    assert case_of(premises, off.case_number).priority == 25


def test_a_monitor_of_premises_not_in_the_registry_is_refused(premises: Casebook, clock: Clock) -> None:
    with pytest.raises(FilingError, match="premises 'R-404', which is not in the registry"):
        premises.file_package(seal_monitor(premises, started_at=clock(), premises="R-404"))


@pytest.mark.parametrize(("metres_east", "named"), [(12.0, "R-001"), (80.0, None)])
def test_a_drone_finding_belongs_to_the_registered_premises_within_reach(
    premises: Casebook, clock: Clock, metres_east: float, named: str | None
) -> None:
    lon = 120.161 + metres_east / (111_320.0 * 0.8643)  # cos(30.251°)
    package = seal_finding(
        premises.vault,
        kind="construction",
        camera=None,
        zone=None,
        started_at=clock() - timedelta(hours=1),
        place={"lat": 30.251, "lon": lon, "radius_m": 5.0},
    )
    case = case_of(premises, premises.file_package(package).case_number)
    assert (case.party.code if case.party else None) == named

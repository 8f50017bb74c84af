"""Filing sealed findings: idempotence, dedupe into open cases, repeats, numbering, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cases.casebook import Finding
from cases.errors import FilingError
from cases.models import Case, CaseEvidence, Transition
from tests.cases.conftest import seal_finding


def _count(casebook, model) -> int:
    with casebook.db.session() as s:
        return s.query(model).count()


def test_filing_opens_a_numbered_case_in_the_review_queue(casebook, vault, clock):
    package = seal_finding(vault, started_at=clock.now)
    filed = casebook.file_package(package)
    assert filed.created and not filed.joined
    assert filed.case_number == "CG-2025-000001"
    with casebook.db.session() as s:
        case = s.query(Case).one()
        assert case.state == "pending_review"
        assert [e.package_id for e in case.evidence] == [package]
        assert [(t.action, t.from_state, t.to_state) for t in case.transitions] == [
            ("queue", "detected", "pending_review")
        ]
        assert {d.name for d in case.deadlines} == {"review"}


def test_filing_the_same_package_twice_yields_one_case(casebook, vault, clock):
    package = seal_finding(vault, started_at=clock.now)
    first = casebook.file_package(package)
    again = casebook.file_package(package)
    assert again.case_number == first.case_number
    assert not again.created and not again.joined
    assert _count(casebook, Case) == 1
    assert _count(casebook, CaseEvidence) == 1
    assert _count(casebook, Transition) == 1


def test_a_finding_within_the_merge_window_joins_the_open_case(casebook, vault, clock):
    first = casebook.file_package(seal_finding(vault, started_at=clock.now))
    later = seal_finding(vault, started_at=clock.now + timedelta(hours=5))
    joined = casebook.file_package(later)
    assert joined.joined and joined.case_number == first.case_number
    with casebook.db.session() as s:
        case = s.query(Case).one()
        assert len(case.evidence) == 2
        assert case.transitions[-1].action == "add_evidence"
        assert case.transitions[-1].attachments == [later]
        assert case.last_seen_at == clock.now + timedelta(hours=5, minutes=10)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"camera": "cam-2"}, "another camera"),
        ({"zone": "kitchen", "kind": "occupation"}, "another zone"),
        ({"kind": "fume", "zone": "sidewalk"}, "another kind"),
        ({"delay": timedelta(hours=30)}, "after the merge window"),
    ],
)
def test_a_finding_elsewhere_or_later_opens_its_own_case(casebook, vault, clock, change, why):
    casebook.file_package(seal_finding(vault, started_at=clock.now))
    change = dict(change)
    delay = change.pop("delay", timedelta(minutes=30))
    second = casebook.file_package(seal_finding(vault, started_at=clock.now + delay, **change))
    assert second.created, why
    assert second.case_number == "CG-2025-000002"


def test_a_repeat_after_closing_opens_a_new_case_linked_to_the_old(casebook, vault, clock):
    first = casebook.file_package(seal_finding(vault, started_at=clock.now))
    casebook.apply(first.case_number, "confirm", actor="li")
    casebook.apply(first.case_number, "warn", actor="li")
    clock.advance(days=7)
    recheck = seal_finding(vault, started_at=clock.now, extra={"present": False})
    casebook.record_recheck(first.case_number, package_id=recheck, violation_present=False)
    clock.advance(hours=2)
    repeat = casebook.file_package(seal_finding(vault, started_at=clock.now))
    assert repeat.created and repeat.repeat_of == first.case_number
    with casebook.db.session() as s:
        new = s.query(Case).filter_by(number=repeat.case_number).one()
        assert new.previous_case.number == first.case_number


def test_a_rejected_case_is_not_joined(casebook, vault, clock):
    first = casebook.file_package(seal_finding(vault, started_at=clock.now))
    casebook.apply(first.case_number, "reject", actor="li", reason_code="shadow")
    second = casebook.file_package(seal_finding(vault, started_at=clock.now + timedelta(minutes=20)))
    assert second.created and second.repeat_of is None


def test_case_numbers_count_per_local_year(casebook, vault, clock):
    # 2025-12-31 17:00 UTC is already 2026 in Beijing
    clock.now = datetime(2025, 12, 31, 15, 0, tzinfo=UTC)
    a = casebook.file_package(seal_finding(vault, started_at=clock.now))
    clock.now = datetime(2025, 12, 31, 17, 0, tzinfo=UTC)
    b = casebook.file_package(seal_finding(vault, camera="cam-2", started_at=clock.now))
    c = casebook.file_package(seal_finding(vault, kind="fume", zone="kitchen", started_at=clock.now))
    assert (a.case_number, b.case_number, c.case_number) == ("CG-2025-000001", "CG-2026-000001", "CG-2026-000002")


def test_drone_findings_dedupe_by_overlapping_place(casebook, vault, clock):
    place = {"lat": 30.2500, "lon": 120.1600, "radius_m": 15.0}
    first = casebook.file_package(seal_finding(vault, camera=None, zone=None, started_at=clock.now, place=place))
    near = {"lat": 30.2501, "lon": 120.1601, "radius_m": 10.0}  # about 14 m away
    far = {"lat": 30.2600, "lon": 120.1600, "radius_m": 10.0}  # about 1.1 km away
    joined = casebook.file_package(seal_finding(vault, camera=None, zone=None, started_at=clock.now, place=near))
    separate = casebook.file_package(seal_finding(vault, camera=None, zone=None, started_at=clock.now, place=far))
    assert joined.joined and joined.case_number == first.case_number
    assert separate.created


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"camera": "cam-9"}, "camera 'cam-9', which is not registered"),
        ({"zone": "roof"}, "zone 'roof', which camera 'cam-1' does not have"),
        ({"camera": None, "zone": None}, "neither a camera, nor premises, nor a place"),
    ],
)
def test_findings_that_name_unknown_places_are_refused_and_nothing_is_written(casebook, vault, clock, kwargs, message):
    package = seal_finding(vault, started_at=clock.now, **kwargs)
    with pytest.raises(FilingError, match=message):
        casebook.file_package(package)
    assert _count(casebook, Case) == 0
    assert casebook.unfiled_packages() == [package]


def test_a_package_missing_from_the_store_is_refused(casebook):
    with pytest.raises(FilingError, match="cannot be read"):
        casebook.file_package("ab" * 32)


def test_a_manifest_without_violation_times_is_refused():
    with pytest.raises(FilingError, match="lacks what filing needs"):
        Finding.from_manifest("p1", {"device": {"id": "cam-1"}, "violation": {"kind": "fume"}})


def test_heal_files_what_a_crash_left_unfiled(casebook, vault, clock):
    packages = [
        seal_finding(vault, started_at=clock.now + timedelta(hours=h), camera=c)
        for h, c in [(0, "cam-1"), (0, "cam-2"), (30, "cam-1")]
    ]
    casebook.file_package(packages[0])
    healed = casebook.heal()
    assert sorted(f.package_id for f in healed) == sorted(packages[1:])
    assert casebook.unfiled_packages() == []
    assert casebook.heal() == []


@pytest.mark.parametrize(("present", "state", "outcome"), [(False, "closed", "rectified"), (True, "escalated", None)])
def test_heal_finishes_a_recheck_a_crash_left_unrecorded(casebook, vault, clock, present, state, outcome):
    number = casebook.file_package(seal_finding(vault, started_at=clock.now)).case_number
    casebook.apply(number, "confirm", actor="li")
    casebook.apply(number, "warn", actor="li")
    clock.advance(days=5)
    # sealed by the re-check, then the process died before recording the outcome
    seal_finding(vault, started_at=clock.now, extra={"present": present, "recheck_of": number})
    casebook.heal()
    with casebook.db.session() as s:
        case = s.query(Case).filter_by(number=number).one()
        assert (case.state, case.outcome) == (state, outcome)
        assert [e.role for e in case.evidence] == ["detection", "recheck"]
    assert casebook.unfiled_packages() == []


def test_heal_goes_on_past_a_package_it_cannot_file(casebook, vault, clock):
    bad = seal_finding(vault, started_at=clock.now, extra={"recheck_of": "CG-2025-999999"})
    good = seal_finding(vault, camera="cam-2", started_at=clock.now)
    healed = casebook.heal()
    assert [f.package_id for f in healed] == [good]
    assert casebook.unfiled_packages() == [bad]

"""Deadlines per state, computed from the law in working days across Chinese holidays,
and the overdue and due-soon lists supervisors watch."""

from __future__ import annotations

from datetime import UTC, datetime

from cases.models import Case
from cases.states import CaseState
from tests.cases.conftest import seal_finding

# Golden Week 2025: Oct 1-8 off; Sunday Sep 28 and Saturday Oct 11 are make-up working days.


def _deadlines(casebook, number) -> dict[str, tuple[datetime, str, bool]]:
    with casebook.db.session() as s:
        case = s.query(Case).filter_by(number=number).one()
        return {d.name: (d.due_at, d.owner, d.met_at is not None) for d in case.deadlines}


def test_service_deadline_counts_working_days_across_golden_week(casebook, vault, clock):
    clock.now = datetime(2025, 9, 15, 2, 0, tzinfo=UTC)
    number = casebook.file_package(seal_finding(vault, started_at=clock.now)).case_number
    casebook.apply(number, "confirm", actor="li")
    casebook.apply(number, "file", actor="chen")
    casebook.apply(number, "send_pre_notice", actor="wang")
    casebook.apply(number, "record_defense", actor="li", reason="statement")
    clock.now = datetime(2025, 9, 25, 2, 0, tzinfo=UTC)  # the 5-working-day hearing window has run
    casebook.apply(number, "legal_review", actor="zhao")
    clock.now = datetime(2025, 9, 30, 3, 0, tzinfo=UTC)  # decided on Tuesday Sep 30, Beijing
    casebook.apply(number, "decide", actor="chen", reason="fine")
    due, owner, met = _deadlines(casebook, number)["service"]
    # 7 working days after Sep 30: Oct 9, 10, 11 (make-up Saturday), 13, 14, 15, 16 -> due by the end of Oct 16
    assert due == datetime(2025, 10, 16, 16, 0, tzinfo=UTC)
    assert (owner, met) == ("agency", False)


def test_decision_deadline_is_ninety_days_from_filing_and_rolls_past_a_holiday(casebook, vault, clock):
    clock.now = datetime(2025, 7, 3, 2, 0, tzinfo=UTC)  # filed Thursday Jul 3; day 90 is Oct 1, a holiday
    number = casebook.file_package(seal_finding(vault, started_at=clock.now)).case_number
    casebook.apply(number, "confirm", actor="li")
    casebook.apply(number, "file", actor="chen")
    assert _deadlines(casebook, number)["decision"][0] == datetime(2025, 10, 9, 16, 0, tzinfo=UTC)


def test_the_hearing_window_is_the_partys_and_the_decision_period_spans_the_filed_states(casebook, vault, clock):
    number = casebook.file_package(seal_finding(vault, started_at=clock.now)).case_number
    casebook.apply(number, "confirm", actor="li")
    casebook.apply(number, "file", actor="chen")
    casebook.apply(number, "send_pre_notice", actor="wang")
    deadlines = _deadlines(casebook, number)
    assert deadlines["hearing_request"][1] == "party"
    assert deadlines["decision"][2] is False  # still running through the notice


def test_overdue_and_due_soon_lists(casebook, vault, clock):
    clock.now = datetime(2025, 9, 29, 1, 0, tzinfo=UTC)  # Monday before Golden Week
    a = casebook.file_package(seal_finding(vault, started_at=clock.now)).case_number
    b = casebook.file_package(seal_finding(vault, camera="cam-2", started_at=clock.now)).case_number
    casebook.apply(b, "confirm", actor="li")
    # review within 2 working days: Sep 30, then the holiday, then Oct 9 -> by the end of Oct 9 in Beijing
    assert casebook.overdue(datetime(2025, 10, 3, 1, 0, tzinfo=UTC)) == []
    assert casebook.due_soon(datetime(2025, 9, 29, 20, 0, tzinfo=UTC)) == []
    assert [v.case_number for v in casebook.due_soon(datetime(2025, 10, 8, 20, 0, tzinfo=UTC))] == [a]
    overdue = casebook.overdue(datetime(2025, 10, 10, 1, 0, tzinfo=UTC))
    assert [(v.case_number, v.name) for v in overdue] == [(a, "review")]
    assert overdue[0].due_at == datetime(2025, 10, 9, 16, 0, tzinfo=UTC)
    # b's disposition: 5 working days after Sep 29 -> Sep 30, Oct 9, 10, 11, 13
    assert casebook.overdue(datetime(2025, 10, 13, 15, 59, tzinfo=UTC)) == overdue
    assert [v.case_number for v in casebook.overdue(datetime(2025, 10, 13, 16, 0, tzinfo=UTC))] == [a, b]


def test_recheck_is_due_when_the_rectification_period_ends(casebook, vault, clock):
    number = casebook.file_package(seal_finding(vault, started_at=clock.now)).case_number
    casebook.apply(number, "confirm", actor="li")
    casebook.apply(number, "warn", actor="li", rectify_days=3)  # Monday Sep 8 + 3 working days: Thursday Sep 11
    assert casebook.due_rechecks(datetime(2025, 9, 11, 15, 0, tzinfo=UTC)) == []
    due = casebook.due_rechecks(datetime(2025, 9, 11, 16, 0, tzinfo=UTC))
    assert [(v.case_number, v.state) for v in due] == [(number, CaseState.WARNED)]
    deadlines = _deadlines(casebook, number)
    assert deadlines["rectification"][:2] == (datetime(2025, 9, 11, 16, 0, tzinfo=UTC), "party")
    assert deadlines["recheck"][:2] == (datetime(2025, 9, 12, 16, 0, tzinfo=UTC), "agency")

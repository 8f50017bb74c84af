"""The case lifecycle: both roads to closing, illegal steps, roles, reasons, Art. 42 and 64,
optimistic versions, and the signed, logged history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from cases.errors import ConcurrentUpdateError, IllegalTransitionError, PermissionDeniedError, UnknownRecordError
from cases.invariants import check_invariants, verify_history
from cases.models import Case, Deadline, Transition
from cases.states import STEPS, CaseState, Role
from tests.cases.conftest import seal_finding


@pytest.fixture
def case_number(casebook, vault, clock) -> str:
    return casebook.file_package(seal_finding(vault, started_at=clock.now)).case_number


def _state(casebook, number) -> str:
    with casebook.db.session() as s:
        return s.query(Case).filter_by(number=number).one().state


def _walk_to_legal_review(casebook, clock, number):
    casebook.apply(number, "confirm", actor="li")
    casebook.apply(number, "file", actor="chen")
    casebook.apply(number, "send_pre_notice", actor="wang")
    casebook.apply(number, "record_defense", actor="li", reason="the party says the stall was unloading goods")
    clock.advance(days=8)  # the party's 5 working days to ask for a hearing have run
    casebook.apply(number, "legal_review", actor="zhao")


def test_warning_road_closes_after_a_clean_recheck(casebook, vault, clock, case_number):
    casebook.apply(case_number, "confirm", actor="li")
    casebook.apply(case_number, "warn", actor="li", rectify_days=2)
    clock.advance(days=4)
    look = seal_finding(vault, started_at=clock.now, extra={"present": False})
    casebook.record_recheck(case_number, package_id=look, violation_present=False)
    with casebook.db.session() as s:
        case = s.query(Case).filter_by(number=case_number).one()
        assert case.state == "closed" and case.outcome == "rectified"
        assert case.closed_at == clock.now
        assert [t.action for t in case.transitions] == ["queue", "confirm", "warn", "rectify", "close"]
        assert {e.package_id: e.role for e in case.evidence}[look] == "recheck"
        assert all(d.met_at is not None for d in case.deadlines)


def test_penalty_road_runs_from_filing_to_execution(casebook, clock, case_number):
    _walk_to_legal_review(casebook, clock, case_number)
    casebook.apply(case_number, "decide", actor="chen", reason="fine of 200 yuan under the city appearance rules")
    casebook.apply(case_number, "serve", actor="li")
    casebook.apply(case_number, "execute", actor="wang")
    stepped = casebook.apply(case_number, "close", actor="li")
    assert stepped.to_state == "closed"
    with casebook.db.session() as s:
        case = s.query(Case).filter_by(number=case_number).one()
        assert case.outcome == "penalized"
        assert [d.name for d in case.deadlines] == [
            "review",
            "disposition",
            "decision",
            "hearing_request",
            "service",
            "payment",
            "closing",
        ]
    assert verify_history(casebook, case_number) == []


def test_recheck_that_still_sees_the_violation_escalates_to_the_head(casebook, vault, clock, case_number):
    casebook.apply(case_number, "confirm", actor="li")
    casebook.apply(case_number, "warn", actor="li")
    clock.advance(days=6)
    look = seal_finding(vault, started_at=clock.now)
    casebook.record_recheck(case_number, package_id=look, violation_present=True)
    assert _state(casebook, case_number) == "escalated"
    with casebook.db.session() as s:
        case = s.query(Case).filter_by(number=case_number).one()
        # the party's period ended by escalation, not by rectifying
        assert {d.name: d.closed_by for d in case.deadlines if d.met_at}["rectification"] == "escalate"
    casebook.apply(case_number, "file", actor="chen")
    assert _state(casebook, case_number) == "filed"


def test_rejection_needs_a_reason_code_and_ends_the_case(casebook, case_number):
    with pytest.raises(IllegalTransitionError, match="needs a reason code, one of: false_detection, steam"):
        casebook.apply(case_number, "reject", actor="li")
    with pytest.raises(IllegalTransitionError, match="'other' needs a reason in words"):
        casebook.apply(case_number, "reject", actor="li", reason_code="other")
    casebook.apply(case_number, "reject", actor="li", reason_code="steam", reason="kitchen steam, not smoke")
    with casebook.db.session() as s:
        case = s.query(Case).filter_by(number=case_number).one()
        assert (case.state, case.outcome) == ("rejected", "rejected:steam")


@pytest.mark.parametrize(
    ("steps_before", "action", "actor"),
    [
        ([], "warn", "li"),  # not yet confirmed
        ([], "close", "li"),
        ([("confirm", "li")], "confirm", "li"),  # twice
        ([("confirm", "li")], "serve", "li"),
        ([("confirm", "li")], "decide", "chen"),  # skipping filing, notice and review
        ([("confirm", "li"), ("warn", "li")], "file", "chen"),  # filing a warned case before it escalates
        ([("reject", "li")], "confirm", "li"),  # a terminal case stays terminal
    ],
)
def test_illegal_transitions_are_refused_loudly_and_change_nothing(casebook, case_number, steps_before, action, actor):
    for before, who in steps_before:
        casebook.apply(case_number, before, actor=who, reason_code="shadow" if before == "reject" else None)
    state, version = _state(casebook, case_number), casebook.case_version(case_number)
    with pytest.raises(IllegalTransitionError, match=f"case {case_number} is {state}: '{action}' is allowed only"):
        casebook.apply(case_number, action, actor=actor, reason="x")
    assert (_state(casebook, case_number), casebook.case_version(case_number)) == (state, version)


@pytest.mark.parametrize(
    ("action", "actor", "role"),
    [("confirm", "zhao", "legal_reviewer"), ("confirm", "eng", "engineer"), ("confirm", "system", "system")],
)
def test_each_step_needs_its_role(casebook, case_number, action, actor, role):
    with pytest.raises(PermissionDeniedError, match=f"'{action}' needs the role head or officer; '{actor}' is {role}"):
        casebook.apply(case_number, action, actor=actor)


def test_only_the_head_files_and_decides(casebook, clock, case_number):
    casebook.apply(case_number, "confirm", actor="li")
    with pytest.raises(PermissionDeniedError, match="'file' needs the role head"):
        casebook.apply(case_number, "file", actor="li")
    casebook.apply(case_number, "file", actor="chen")
    casebook.apply(case_number, "send_pre_notice", actor="wang")
    casebook.apply(case_number, "record_defense", actor="li", reason="hearing requested")
    with pytest.raises(PermissionDeniedError, match="'legal_review' needs the role legal_reviewer"):
        casebook.apply(case_number, "legal_review", actor="chen")


def test_a_decision_needs_two_officers_to_have_acted(casebook, clock, case_number):
    casebook.apply(case_number, "confirm", actor="li")
    casebook.apply(case_number, "file", actor="chen")
    casebook.apply(case_number, "send_pre_notice", actor="li")
    casebook.apply(case_number, "record_defense", actor="li", reason="statement received")
    clock.advance(days=8)
    casebook.apply(case_number, "legal_review", actor="zhao")
    with pytest.raises(IllegalTransitionError, match=r"at least two officers .*\(Art. 42\); case .* has 1"):
        casebook.apply(case_number, "decide", actor="chen", reason="fine")


def test_a_statement_of_defense_does_not_cut_the_hearing_window_short(casebook, clock, case_number):
    casebook.apply(case_number, "confirm", actor="li")
    casebook.apply(case_number, "file", actor="chen")
    casebook.apply(case_number, "send_pre_notice", actor="wang")
    casebook.apply(case_number, "record_defense", actor="li", reason="the party states a defense on day one")
    with pytest.raises(IllegalTransitionError, match=r"may state a defense or ask for a hearing until"):
        casebook.apply(case_number, "legal_review", actor="zhao")


def test_legal_review_waits_for_the_partys_hearing_window(casebook, clock, case_number):
    # notice on Monday 2025-09-29 (Beijing): 5 working days run across Golden Week to Monday 2025-10-13
    clock.now = datetime(2025, 9, 29, 2, 0, tzinfo=UTC)
    casebook.apply(case_number, "confirm", actor="li")
    casebook.apply(case_number, "file", actor="chen")
    casebook.apply(case_number, "send_pre_notice", actor="wang")
    clock.now = datetime(2025, 10, 9, 2, 0, tzinfo=UTC)  # 8 calendar days later, but 2 working days
    with pytest.raises(IllegalTransitionError, match="until 2025-10-13T16:00:00"):
        casebook.apply(case_number, "legal_review", actor="zhao")
    clock.now = datetime(2025, 10, 13, 16, 0, tzinfo=UTC)
    assert casebook.apply(case_number, "legal_review", actor="zhao").to_state == "legal_reviewed"


def test_dismissal_needs_the_head_and_a_reason(casebook, case_number):
    casebook.apply(case_number, "confirm", actor="li")
    casebook.apply(case_number, "file", actor="chen")
    with pytest.raises(IllegalTransitionError, match="needs a reason"):
        casebook.apply(case_number, "dismiss", actor="chen")
    casebook.apply(case_number, "dismiss", actor="chen", reason="the party holds a valid permit")
    with casebook.db.session() as s:
        case = s.query(Case).filter_by(number=case_number).one()
        assert (case.state, case.outcome) == ("closed", "dismissed")
        assert all(d.met_at is not None for d in case.deadlines)


def test_a_stale_version_is_refused(casebook, case_number):
    seen = casebook.case_version(case_number)
    casebook.apply(case_number, "confirm", actor="li", expected_version=seen)
    with pytest.raises(ConcurrentUpdateError, match="reload and try again"):
        casebook.apply(case_number, "warn", actor="wang", expected_version=seen)
    assert _state(casebook, case_number) == "confirmed"


@pytest.mark.parametrize(
    ("number", "action", "actor", "error", "message"),
    [
        ("CG-2025-999999", "confirm", "li", UnknownRecordError, "no case numbered"),
        (None, "approve", "li", IllegalTransitionError, "unknown action 'approve'"),
        (None, "confirm", "nobody", UnknownRecordError, "no user named 'nobody'"),
    ],
)
def test_unknown_cases_actions_and_users_are_named(casebook, case_number, number, action, actor, error, message):
    with pytest.raises(error, match=message):
        casebook.apply(number or case_number, action, actor=actor)


def test_attached_evidence_must_be_sealed_and_not_another_cases(casebook, vault, clock, case_number):
    with pytest.raises(IllegalTransitionError, match="not a sealed package"):
        casebook.apply(case_number, "add_evidence", actor="li", evidence=["cd" * 32])
    other = casebook.file_package(seal_finding(vault, camera="cam-2", started_at=clock.now))
    with casebook.db.session() as s:
        taken = s.query(Case).filter_by(number=other.case_number).one().evidence[0].package_id
    with pytest.raises(IllegalTransitionError, match=f"already belongs to case {other.case_number}"):
        casebook.apply(case_number, "add_evidence", actor="li", evidence=[taken])


def test_every_transition_is_signed_chained_and_in_the_log(casebook, vault, case_number):
    casebook.apply(case_number, "confirm", actor="li")
    casebook.apply(case_number, "warn", actor="li")
    assert verify_history(casebook, case_number) == []
    with casebook.db.session() as s:
        rows = s.query(Transition).order_by(Transition.seq).all()
        assert [t.leaf_index is not None for t in rows] == [True] * 3
        assert rows[1].record_sha256 in rows[2].record
    report = check_invariants(casebook)
    assert report.ok, report.problems


def test_a_rewritten_transition_is_caught(casebook, case_number):
    casebook.apply(case_number, "confirm", actor="li")
    with casebook.db.session() as s:
        s.execute(update(Transition).where(Transition.seq == 2).values(reason="confirmed by the head"))
        row = s.query(Transition).filter_by(seq=2).one()
        row.record = row.record.replace('"reason":""', '"reason":"confirmed by the head"')
    problems = verify_history(casebook, case_number)
    assert any("record hash does not match" in p for p in problems)
    assert any("signature does not verify" in p for p in problems)
    assert any("is not this record" in p for p in problems)
    assert not check_invariants(casebook).ok


def test_a_step_taken_by_a_role_that_lacks_it_is_caught_by_the_check(casebook, case_number):
    casebook.apply(case_number, "confirm", actor="li")
    with casebook.db.session() as s:
        s.query(Case).filter_by(number=case_number).one().transitions[1].actor.role = Role.ENGINEER.value
    assert any("lacks the role" in p for p in check_invariants(casebook).problems)


def test_the_lifecycle_table_reaches_a_terminal_state_from_every_state():
    # no state is a dead end: from each, some chain of steps leads to closed or rejected
    reach = {CaseState.CLOSED, CaseState.REJECTED}
    changed = True
    while changed:
        changed = False
        for step in STEPS.values():
            if step.target in reach:
                for source in step.sources - reach:
                    reach.add(source)
                    changed = True
    assert reach == set(CaseState)


def test_a_case_cannot_be_rectified_with_evidence_it_already_holds(casebook, vault, clock, case_number):
    with casebook.db.session() as s:
        original = s.query(Case).filter_by(number=case_number).one().evidence[0].package_id
    casebook.apply(case_number, "confirm", actor="li")
    casebook.apply(case_number, "warn", actor="li")
    with pytest.raises(IllegalTransitionError, match="needs sealed evidence the case does not hold yet"):
        casebook.apply(case_number, "rectify", actor="li", evidence=[original])
    assert _state(casebook, case_number) == "warned"


def test_a_rectification_look_must_be_taken_after_the_warning(casebook, vault, clock, case_number):
    before = seal_finding(vault, camera="cam-2", started_at=clock.now - timedelta(hours=1), extra={"present": False})
    casebook.apply(case_number, "confirm", actor="li")
    casebook.apply(case_number, "warn", actor="li")
    with pytest.raises(IllegalTransitionError, match="needs a look taken after the warning"):
        casebook.record_recheck(case_number, package_id=before, violation_present=False)
    assert _state(casebook, case_number) == "warned"


def test_only_a_warned_case_is_rechecked(casebook, vault, clock, case_number):
    look = seal_finding(vault, started_at=clock.now, extra={"present": False})
    with pytest.raises(IllegalTransitionError, match="only a warned case is re-checked"):
        casebook.record_recheck(case_number, package_id=look, violation_present=False)


@pytest.mark.parametrize(("action", "days"), [("warn", 0), ("warn", -2), ("confirm", 3)])
def test_a_rectification_period_is_set_only_by_a_warning_and_is_positive(casebook, case_number, action, days):
    if action == "warn":
        casebook.apply(case_number, "confirm", actor="li")
    with pytest.raises(IllegalTransitionError, match="rectification period is set only by 'warn'"):
        casebook.apply(case_number, action, actor="li", rectify_days=days)


def test_a_deleted_last_step_is_caught_by_the_check(casebook, case_number):
    casebook.apply(case_number, "confirm", actor="li")
    casebook.apply(case_number, "warn", actor="li")
    with casebook.db.session() as s:  # someone with database access but no key drops the warning
        case = s.query(Case).filter_by(number=case_number).one()
        s.delete(case.transitions[-1])
        s.query(Deadline).filter(Deadline.case_id == case.id, Deadline.name.in_(["rectification", "recheck"])).delete()
        case.state = "confirmed"
    assert verify_history(casebook, case_number) == []  # the remaining history is consistent in itself...
    problems = check_invariants(casebook).problems
    assert any(f"case {case_number} step 3 (warn): in the Merkle log" in p for p in problems), problems

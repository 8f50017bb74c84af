"""The closed loop, checked: the invariants that make "every case is filed, every filed
case is closed" (有案必立、立案必结) something a command can prove or refute.

1. Every detection has a recorded outcome: every sealed package in the vault belongs to
   a case (none left behind by a crash between sealing and filing).
2. Every case that is not terminal has a deadline running, so it reaches a terminal
   state or shows up as overdue; overdue deadlines are listed.
3. No transition without its role and reason: each recorded step is re-checked against
   the lifecycle table (legal from its state, by a role allowed to take it, with the
   reason and reason code it needs), and its record against its signature, the case's
   hash chain and its leaf in the Merkle log.
4. Terminal cases carry their closing time and outcome; open ones carry neither.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from cases.casebook import Casebook, DeadlineView
from cases.errors import UnknownRecordError
from cases.ledger import RECORD_TYPE, check_record
from cases.models import Case, Transition
from cases.states import STEPS, TERMINAL_STATES, CaseState, RejectReason, Role
from evidence.canonical import canonical_json


@dataclass(frozen=True, slots=True)
class InvariantReport:
    cases: int
    transitions: int
    unfiled_packages: list[str] = field(default_factory=list)
    unlogged_transitions: int = 0
    problems: list[str] = field(default_factory=list)  # broken invariants, one line each
    overdue: list[DeadlineView] = field(default_factory=list)  # listed, not a broken invariant

    @property
    def ok(self) -> bool:
        return not self.unfiled_packages and not self.problems


def transition_problems(casebook: Casebook, case: Case, transitions: list[Transition]) -> list[str]:
    """What is wrong with a case's recorded history (nothing: an empty list)."""
    problems = []
    previous: str | None = None
    state = CaseState.DETECTED.value
    for expected_seq, t in enumerate(transitions, start=1):
        where = f"case {case.number} step {t.seq} ({t.action})"
        step = STEPS.get(t.action)
        if t.seq != expected_seq:
            problems.append(f"{where}: sequence gap, expected step {expected_seq}")
        if step is None:
            problems.append(f"{where}: unknown action")
        else:
            if t.from_state != state or CaseState(t.from_state) not in step.sources:
                problems.append(f"{where}: from {t.from_state}, but the case was {state}")
            target = (step.target or CaseState(t.from_state)).value
            if t.to_state != target:
                problems.append(f"{where}: leads to {t.to_state}, but the lifecycle says {target}")
            if Role(t.actor.role) not in step.roles:
                problems.append(f"{where}: taken by {t.actor.username} ({t.actor.role}), who lacks the role")
            if step.needs_reason and not t.reason.strip():
                problems.append(f"{where}: no reason recorded")
            if step.needs_reason_code and t.reason_code not in set(RejectReason):
                problems.append(f"{where}: no valid reason code recorded")
            if step.needs_evidence and not t.attachments:
                problems.append(f"{where}: no evidence attached")
        problems += [
            f"{where}: {p}"
            for p in check_record(
                casebook.vault,
                t.record,
                record_sha256=t.record_sha256,
                key_id=t.key_id,
                signature_hex=t.signature,
                leaf_index=t.leaf_index,
                previous=previous,
            )
            if t.leaf_index is not None or p != "not yet in the Merkle log"
        ]
        problems += _row_mismatches(case, t)
        previous, state = t.record_sha256, t.to_state
    if state != case.state:
        problems.append(f"case {case.number}: history ends in {state}, but the case is {case.state}")
    return problems


def _row_mismatches(case: Case, t: Transition) -> list[str]:
    """Columns of a transition row that differ from its signed record (readers see the row)."""
    where = f"case {case.number} step {t.seq} ({t.action})"
    try:
        record = json.loads(t.record)
        at = datetime.fromisoformat(str(record.get("at")))
    except (ValueError, TypeError, AttributeError):
        return [f"{where}: the signed record cannot be read"]
    row: dict[str, Any] = {
        "case": case.number,
        "seq": t.seq,
        "action": t.action,
        "from": t.from_state,
        "to": t.to_state,
        "actor": t.actor.username,
        "role": t.actor.role,
        "reason": t.reason,
        "reason_code": t.reason_code,
        "evidence": list(t.attachments or []),
    }
    differ = [key for key, value in row.items() if record.get(key) != value]
    if at != t.at:
        differ.append("at")
    return [f"{where}: the stored {key!r} differs from the signed record" for key in differ]


def check_invariants(casebook: Casebook, at: datetime | None = None) -> InvariantReport:
    """Check every invariant over the whole database and vault."""
    at = at or casebook.clock()
    problems: list[str] = []
    n_cases = n_transitions = 0
    with casebook.db.session() as s:
        query = select(Case).options(
            selectinload(Case.transitions).selectinload(Transition.actor), selectinload(Case.deadlines)
        )
        for case in s.scalars(query.order_by(Case.id)):
            n_cases += 1
            n_transitions += len(case.transitions)
            problems += transition_problems(casebook, case, list(case.transitions))
            terminal = CaseState(case.state) in TERMINAL_STATES
            if terminal and (case.closed_at is None or not case.outcome):
                problems.append(f"case {case.number}: {case.state} without a closing time and outcome")
            if not terminal and case.closed_at is not None:
                problems.append(f"case {case.number}: {case.state} yet has a closing time")
            if not terminal and not any(d.met_at is None for d in case.deadlines):
                problems.append(f"case {case.number}: {case.state} with no deadline running (it could be forgotten)")
    problems += _missing_from_database(casebook)
    return InvariantReport(
        cases=n_cases,
        transitions=n_transitions,
        unfiled_packages=casebook.unfiled_packages(),
        unlogged_transitions=casebook.pending_log_count(),
        problems=problems,
        overdue=casebook.overdue(at),
    )


def _missing_from_database(casebook: Casebook) -> list[str]:
    """Logged transitions whose database row is gone (a deleted step leaves its leaf behind)."""
    try:
        logged = casebook.vault.records(RECORD_TYPE)
    except ValueError as e:
        return [str(e)]
    with casebook.db.session() as s:
        stored = set(s.scalars(select(Transition.record_sha256)))
    return [
        f"case {record.get('case')} step {record.get('seq')} ({record.get('action')}): in the Merkle log "
        f"(leaf {index}) but missing from the database"
        for index, record in logged
        if hashlib.sha256(canonical_json(record)).hexdigest() not in stored
    ]


def verify_history(casebook: Casebook, case_number: str) -> list[str]:
    """The problems with one case's recorded history: role, reason, chain, signature, log leaf."""
    with casebook.db.session() as s:
        case = s.scalar(
            select(Case)
            .where(Case.number == case_number)
            .options(selectinload(Case.transitions).selectinload(Transition.actor))
        )
        if case is None:
            raise UnknownRecordError(f"no case numbered {case_number!r}")
        return transition_problems(casebook, case, list(case.transitions))

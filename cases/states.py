"""The case lifecycle as a table: states, roles, and the steps between them.

Each step names the states it may start from, the state it leads to, the roles allowed to
take it, what it needs (a reason, a reason code, new evidence) and which deadlines it
meets. `Casebook.apply` refuses anything the table does not allow, loudly: an illegal
transition is an error, never a silent no-op.

The two roads follow the Administrative Penalty Law (2021): a confirmed violation is
either warned with a rectification deadline and re-checked (the common road for street
occupation), or filed (立案, head's approval, Art. 54), noticed to the party (告知, Art.
44-45), reviewed by a legal reviewer (法制审核, Art. 58), decided by the head (Art. 57),
served (Art. 61) and executed (Art. 66-67).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CaseState(StrEnum):
    DETECTED = "detected"
    PENDING_REVIEW = "pending_review"
    REJECTED = "rejected"
    CONFIRMED = "confirmed"
    WARNED = "warned"
    RECTIFIED = "rectified"
    ESCALATED = "escalated"
    FILED = "filed"
    PRE_NOTICE_SENT = "pre_notice_sent"
    DEFENSE = "defense"
    LEGAL_REVIEWED = "legal_reviewed"
    DECIDED = "decided"
    SERVED = "served"
    EXECUTED = "executed"
    CLOSED = "closed"


TERMINAL_STATES = frozenset({CaseState.REJECTED, CaseState.CLOSED})
# states in which the agency has filed the case (立案) and owes a decision
FILED_STATES = frozenset({CaseState.FILED, CaseState.PRE_NOTICE_SENT, CaseState.DEFENSE, CaseState.LEGAL_REVIEWED})


class Role(StrEnum):
    OFFICER = "officer"
    LEGAL_REVIEWER = "legal_reviewer"
    HEAD = "head"
    ENGINEER = "engineer"
    ADMIN = "admin"
    SYSTEM = "system"  # the engine itself: filing, re-checks


class RejectReason(StrEnum):
    """Why an officer rejected a detection; each becomes a class of hard negatives for training."""

    FALSE_DETECTION = "false_detection"
    STEAM = "steam"
    FOG = "fog"
    SHADOW = "shadow"
    REFLECTION = "reflection"
    PERMITTED = "permitted"
    DUPLICATE = "duplicate"
    OUT_OF_JURISDICTION = "out_of_jurisdiction"
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"
    OTHER = "other"


# a rejection with these codes needs the officer's words as well
REASONS_NEEDING_TEXT = frozenset({RejectReason.OTHER})


@dataclass(frozen=True, slots=True)
class Step:
    action: str
    sources: frozenset[CaseState]
    target: CaseState | None  # None: the case stays where it is (a recorded event)
    roles: frozenset[Role]
    needs_reason: bool = False
    needs_reason_code: bool = False
    needs_evidence: bool = False
    meets: frozenset[str] = frozenset()  # deadlines this step meets
    description: str = ""


_OPEN = frozenset(CaseState) - TERMINAL_STATES
_ENFORCERS = frozenset({Role.OFFICER, Role.HEAD})


def _step(
    action: str,
    sources: set[CaseState] | frozenset[CaseState],
    target: CaseState | None,
    roles: set[Role] | frozenset[Role],
    meets: set[str] | None = None,
    *,
    needs_reason: bool = False,
    needs_reason_code: bool = False,
    needs_evidence: bool = False,
    description: str,
) -> Step:
    return Step(
        action,
        frozenset(sources),
        target,
        frozenset(roles),
        needs_reason,
        needs_reason_code,
        needs_evidence,
        frozenset(meets or ()),
        description,
    )


S = CaseState
STEPS: dict[str, Step] = {
    step.action: step
    for step in (
        _step("queue", {S.DETECTED}, S.PENDING_REVIEW, {Role.SYSTEM}, description="put in the review queue"),
        _step(
            "add_evidence",
            _OPEN,
            None,
            {Role.SYSTEM, Role.OFFICER},
            needs_evidence=True,
            description="a further sealed finding joins the case",
        ),
        _step(
            "confirm",
            {S.PENDING_REVIEW},
            S.CONFIRMED,
            _ENFORCERS,
            {"review"},
            description="一审: the evidence is true, clear, complete and accurate (Art. 41)",
        ),
        _step(
            "reject",
            {S.PENDING_REVIEW},
            S.REJECTED,
            _ENFORCERS,
            {"review"},
            needs_reason_code=True,
            description="the engine was wrong, or the finding is not a violation",
        ),
        _step(
            "warn",
            {S.CONFIRMED},
            S.WARNED,
            _ENFORCERS,
            {"disposition"},
            description="order rectification by a deadline (责令改正)",
        ),
        _step(
            "rectify",
            {S.WARNED, S.ESCALATED},
            S.RECTIFIED,
            {Role.SYSTEM, Role.OFFICER},
            {"rectification", "recheck", "filing"},
            needs_evidence=True,
            description="a fresh look shows the violation gone",
        ),
        _step(
            "escalate",
            {S.WARNED},
            S.ESCALATED,
            {Role.SYSTEM, Role.OFFICER},
            {"rectification", "recheck"},
            needs_reason=True,
            description="not rectified by the deadline: to the head for filing",
        ),
        _step(
            "file",
            {S.CONFIRMED, S.ESCALATED},
            S.FILED,
            {Role.HEAD},
            {"disposition", "filing"},
            description="立案 with the head's approval (Art. 54)",
        ),
        _step(
            "send_pre_notice",
            {S.FILED},
            S.PRE_NOTICE_SENT,
            {Role.OFFICER},
            description="告知: facts, grounds, and the party's right to state a defense and see the evidence (Art. 44)",
        ),
        _step(
            "record_defense",
            {S.PRE_NOTICE_SENT},
            S.DEFENSE,
            {Role.OFFICER},
            # a statement does not end the party's window: it may still ask for a hearing
            needs_reason=True,
            description="the party states a defense or asks for a hearing (Art. 45, 64)",
        ),
        _step(
            "legal_review",
            {S.PRE_NOTICE_SENT, S.DEFENSE},
            S.LEGAL_REVIEWED,
            {Role.LEGAL_REVIEWER},
            {"hearing_request"},
            description="法制审核 before the decision (Art. 58)",
        ),
        _step(
            "decide",
            {S.LEGAL_REVIEWED},
            S.DECIDED,
            {Role.HEAD},
            {"decision"},
            needs_reason=True,
            description="the penalty decision (Art. 57); two officers must have acted (Art. 42)",
        ),
        _step("serve", {S.DECIDED}, S.SERVED, {Role.OFFICER}, {"service"}, description="送达 (Art. 61)"),
        _step(
            "execute",
            {S.SERVED},
            S.EXECUTED,
            {Role.OFFICER},
            {"payment"},
            description="the decision is carried out (Art. 66-67)",
        ),
        _step(
            "close",
            {S.RECTIFIED, S.EXECUTED},
            S.CLOSED,
            {Role.SYSTEM, Role.OFFICER, Role.HEAD},
            {"closing"},
            description="结案",
        ),
        _step(
            "dismiss",
            FILED_STATES,
            S.CLOSED,
            {Role.HEAD},
            {"decision", "hearing_request"},
            needs_reason=True,
            description="撤销立案 / 不予处罚: the filed case ends without a penalty",
        ),
    )
}
del S

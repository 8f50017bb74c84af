"""KPIs per period, camera, kind and officer: how much the engine found, how much of it
officers confirmed (the engine's officer-confirmed precision), how much was filed and
closed, how fast, and what is overdue.

Counts are of events inside the period [start, end): findings observed, cases opened,
review decisions taken, cases concluded. Rates divide events of the same period.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from cases.casebook import Casebook
from cases.models import Case, Transition
from cases.states import TERMINAL_STATES, CaseState

GroupBy = Literal["all", "camera", "kind"]


@dataclass(slots=True)
class KpiRow:
    group: str
    detections: int = 0  # sealed findings observed in the period
    cases_opened: int = 0
    confirmed: int = 0
    rejected: int = 0
    filed: int = 0  # 立案 steps
    concluded: int = 0  # cases that reached a terminal state (closed or rejected)
    closed: int = 0  # of which closed (rectified, penalized or dismissed)
    overdue: int = 0  # open deadlines past due at the end of the period
    close_hours: list[float] = field(default_factory=list, repr=False)

    @property
    def confirmed_rate(self) -> float | None:
        """Officer-confirmed precision of the engine: confirmed / reviewed."""
        reviewed = self.confirmed + self.rejected
        return self.confirmed / reviewed if reviewed else None

    @property
    def filing_rate(self) -> float | None:
        return self.filed / self.confirmed if self.confirmed else None

    @property
    def closing_rate(self) -> float | None:
        """Cases concluded in the period over cases opened in it (结案率 of the period).

        Concluded cases may have opened before the period, so a period that clears a
        backlog shows more than 100%.
        """
        return self.concluded / self.cases_opened if self.cases_opened else None

    @property
    def median_hours_to_close(self) -> float | None:
        return statistics.median(self.close_hours) if self.close_hours else None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("close_hours")
        for name in ("confirmed_rate", "filing_rate", "closing_rate", "median_hours_to_close"):
            value = getattr(self, name)
            out[name] = None if value is None else round(value, 4)
        return out


@dataclass(slots=True)
class OfficerRow:
    officer: str
    role: str
    confirmed: int = 0
    rejected: int = 0
    other_steps: int = 0
    review_hours: list[float] = field(default_factory=list, repr=False)

    @property
    def median_hours_to_review(self) -> float | None:
        return statistics.median(self.review_hours) if self.review_hours else None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("review_hours")
        median = self.median_hours_to_review
        out["median_hours_to_review"] = None if median is None else round(median, 2)
        return out


@dataclass(frozen=True, slots=True)
class KpiReport:
    start: datetime
    end: datetime
    group_by: GroupBy
    rows: list[KpiRow]
    officers: list[OfficerRow]

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "group_by": self.group_by,
            "rows": [row.to_json() for row in self.rows],
            "officers": [row.to_json() for row in self.officers],
        }


def _in(at: datetime | None, start: datetime, end: datetime) -> bool:
    return at is not None and start <= at < end


def _group_of(case: Case, group_by: GroupBy) -> str:
    if group_by == "camera":
        return case.camera_id or "(drone)"
    if group_by == "kind":
        return case.kind
    return "all"


def kpi_report(casebook: Casebook, *, start: datetime, end: datetime, group_by: GroupBy = "all") -> KpiReport:
    """The KPIs of [start, end), one row per group, plus one row per officer who acted."""
    if end <= start:
        raise ValueError(f"the period must end after it starts, but got {start.isoformat()} .. {end.isoformat()}")
    rows: dict[str, KpiRow] = defaultdict(lambda: KpiRow(""))
    officers: dict[str, OfficerRow] = {}
    with casebook.db.session() as s:
        query = (
            select(Case)
            .where(Case.opened_at < end)
            .options(
                selectinload(Case.evidence),
                selectinload(Case.deadlines),
                selectinload(Case.transitions).selectinload(Transition.actor),
            )
        )
        for case in s.scalars(query):
            row = rows[_group_of(case, group_by)]
            _count_case(row, case, start, end)
            _count_officers(officers, case, start, end)
    for name, row in rows.items():
        row.group = name
    return KpiReport(
        start, end, group_by, sorted(rows.values(), key=lambda r: r.group), sorted(officers.values(), key=_officer_key)
    )


def _officer_key(row: OfficerRow) -> str:
    return row.officer


def _count_case(row: KpiRow, case: Case, start: datetime, end: datetime) -> None:
    row.detections += sum(1 for e in case.evidence if e.role == "detection" and _in(e.observed_from, start, end))
    row.cases_opened += _in(case.opened_at, start, end)
    for t in case.transitions:
        if not _in(t.at, start, end):
            continue
        row.confirmed += t.action == "confirm"
        row.rejected += t.action == "reject"
        row.filed += t.action == "file"
    if CaseState(case.state) in TERMINAL_STATES and _in(case.closed_at, start, end):
        assert case.closed_at is not None
        row.concluded += 1
        if case.state == CaseState.CLOSED:
            row.closed += 1
            row.close_hours.append((case.closed_at - case.opened_at).total_seconds() / 3600)
    row.overdue += sum(
        1 for d in case.deadlines if d.due_at < end and (d.met_at is None or d.met_at >= end) and d.starts_at < end
    )


def _count_officers(officers: dict[str, OfficerRow], case: Case, start: datetime, end: datetime) -> None:
    for t in case.transitions:
        if not _in(t.at, start, end) or t.actor.role == "system":
            continue
        row = officers.setdefault(t.actor.username, OfficerRow(t.actor.username, t.actor.role))
        if t.action in ("confirm", "reject"):
            row.confirmed += t.action == "confirm"
            row.rejected += t.action == "reject"
            row.review_hours.append((t.at - case.opened_at).total_seconds() / 3600)
        else:
            row.other_steps += 1


def _cell(value: float | int | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    if percent:
        return f"{100 * value:.1f}%"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def format_report(report: KpiReport) -> str:
    """The report as aligned text tables for a terminal."""
    head = [
        "group",
        "detections",
        "opened",
        "confirmed",
        "rejected",
        "confirmed%",
        "filed",
        "filing%",
        "concluded",
        "closing%",
        "median h",
        "overdue",
    ]
    lines = [
        f"KPIs {report.start.isoformat()} .. {report.end.isoformat()} by {report.group_by}",
        *_table(
            head,
            (
                [
                    r.group,
                    _cell(r.detections),
                    _cell(r.cases_opened),
                    _cell(r.confirmed),
                    _cell(r.rejected),
                    _cell(r.confirmed_rate, True),
                    _cell(r.filed),
                    _cell(r.filing_rate, True),
                    _cell(r.concluded),
                    _cell(r.closing_rate, True),
                    _cell(r.median_hours_to_close),
                    _cell(r.overdue),
                ]
                for r in report.rows
            ),
        ),
        "",
        *_table(
            ["officer", "role", "confirmed", "rejected", "other steps", "median h to review"],
            (
                [
                    o.officer,
                    o.role,
                    _cell(o.confirmed),
                    _cell(o.rejected),
                    _cell(o.other_steps),
                    _cell(o.median_hours_to_review),
                ]
                for o in report.officers
            ),
        ),
    ]
    return "\n".join(lines)


def _table(head: list[str], rows: Iterable[list[str]]) -> list[str]:
    body = list(rows)
    widths = [max(len(str(c)) for c in column) for column in zip(head, *body, strict=True)]
    return [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
        for line in [head, *body]
    ]

"""Reading cases, detections and evidence for the API: database queries that build the
public schemas, one query per table per page (never one per row)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from api.schemas import (
    ActionPublic,
    CaseDetail,
    CaseSummary,
    DeadlinePublic,
    DetectionPublic,
    EvidencePublic,
    FilePublic,
    Page,
    ReviewItem,
    StatementPublic,
    TransitionPublic,
)
from cases.casebook import Casebook, utc_now
from cases.errors import UnknownRecordError
from cases.models import Camera, Case, CaseEvidence, Deadline, Detection, Party, PartyStatement, User, Zone
from cases.states import STEPS, CaseState, Role, Step
from evidence.errors import EvidenceError

REVIEW_STATE = CaseState.PENDING_REVIEW.value


def _summaries(s: Session, cases: Sequence[Case]) -> list[dict[str, Any]]:
    ids = [c.id for c in cases]
    counts: dict[int, int] = {
        case_id: n
        for case_id, n in s.execute(
            select(CaseEvidence.case_id, func.count())
            .where(CaseEvidence.case_id.in_(ids))
            .group_by(CaseEvidence.case_id)
        )
    }
    zones = {z.id: z.name for z in s.scalars(select(Zone).where(Zone.id.in_({c.zone_id for c in cases if c.zone_id})))}
    party_ids = {c.party_id for c in cases if c.party_id}
    parties = {p.id: p for p in s.scalars(select(Party).where(Party.id.in_(party_ids)))} if party_ids else {}
    return [
        {
            "number": c.number,
            "kind": c.kind,
            "state": c.state,
            "priority": c.priority,
            "camera_id": c.camera_id,
            "zone": zones.get(c.zone_id) if c.zone_id else None,
            "party": parties[c.party_id].name if c.party_id in parties else None,
            "party_code": parties[c.party_id].code if c.party_id in parties else None,
            "lat": c.lat,
            "lon": c.lon,
            "opened_at": c.opened_at,
            "first_seen_at": c.first_seen_at,
            "last_seen_at": c.last_seen_at,
            "closed_at": c.closed_at,
            "outcome": c.outcome,
            "evidence": counts.get(c.id, 0),
            "version": c.version,
        }
        for c in cases
    ]


def detection_public(d: Any, case_number: str) -> DetectionPublic:
    """A detection (an ORM row or a Core row of the detections table) as the API shows it.

    Built without re-validating: every field comes from the database, typed by the model;
    a review page holds a few hundred of them.
    """
    return DetectionPublic.model_construct(
        id=d.id,
        case_number=case_number,
        package_id=d.package_id,
        camera_id=d.camera_id,
        kind=d.kind,
        label=d.label,
        frame=d.frame,
        at=d.at,
        box=[d.x1, d.y1, d.x2, d.y2],
        score=d.score,
        corrected_label=d.corrected_label,
        corrected_box=d.corrected_box,
        corrected_by=d.corrected_by,
        corrected_at=d.corrected_at,
    )


def _page(s: Session, query: Select[Any], order: Sequence[Any], offset: int, limit: int) -> tuple[int, list[Case]]:
    total = s.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = list(s.scalars(query.order_by(*order).offset(offset).limit(limit)))
    return total, rows


def case_filters(
    *,
    camera: str | None,
    kind: str | None,
    state: str | None,
    since: datetime | None,
    until: datetime | None,
    bbox: tuple[float, float, float, float] | None = None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if camera is not None:
        where.append(Case.camera_id == camera)
    if kind is not None:
        where.append(Case.kind == kind)
    if state is not None:
        where.append(Case.state == state)
    if since is not None:
        where.append(Case.opened_at >= since)
    if until is not None:
        where.append(Case.opened_at < until)
    if bbox is not None:
        # a drone finding has its own place; a camera's finding is where its camera is
        west, south, east, north = bbox
        cameras_inside = select(Camera.id).where(Camera.lon.between(west, east), Camera.lat.between(south, north))
        where.append(
            or_(
                and_(Case.lon.between(west, east), Case.lat.between(south, north)),
                and_(Case.lat.is_(None), Case.camera_id.in_(cameras_inside)),
            )
        )
    return where


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """`west,south,east,north` in degrees (the GeoJSON order), or None."""
    if text is None:
        return None
    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError as e:
        raise ValueError(f"bbox is west,south,east,north in degrees, but got {text!r}") from e
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise ValueError(f"bbox must have west <= east within ±180 and south <= north within ±90, but got {text!r}")
    return west, south, east, north


def list_cases(s: Session, *, where: Sequence[ColumnElement[bool]], offset: int, limit: int) -> Page[CaseSummary]:
    total, rows = _page(s, select(Case).where(*where), (Case.opened_at.desc(), Case.id.desc()), offset, limit)
    return Page[CaseSummary](
        total=total, offset=offset, limit=limit, items=[CaseSummary(**row) for row in _summaries(s, rows)]
    )


def review_queue(s: Session, *, where: Sequence[ColumnElement[bool]], offset: int, limit: int) -> Page[ReviewItem]:
    """Cases awaiting an officer's review: highest priority first, then oldest first."""
    query = select(Case).where(Case.state == REVIEW_STATE, *where)
    total, rows = _page(s, query, (Case.priority.desc(), Case.opened_at, Case.id), offset, limit)
    numbers = {c.id: c.number for c in rows}
    boxes: dict[int, list[DetectionPublic]] = {}
    columns = select(*Detection.__table__.columns).where(Detection.case_id.in_(numbers)).order_by(Detection.id)
    for d in s.execute(columns):  # plain rows: no ORM objects for a few hundred boxes
        boxes.setdefault(d.case_id, []).append(detection_public(d, numbers[d.case_id]))
    now = utc_now()
    items = [
        ReviewItem(**row, age_s=(now - c.opened_at).total_seconds(), detections=boxes.get(c.id, []))
        for c, row in zip(rows, _summaries(s, rows), strict=True)
    ]
    return Page[ReviewItem](total=total, offset=offset, limit=limit, items=items)


def find_case(s: Session, number: str) -> Case:
    case = s.scalar(select(Case).where(Case.number == number))
    if case is None:
        raise UnknownRecordError(f"no case {number!r}")
    return case


def manifest_of(book: Casebook, package_id: str) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads(book.vault.store.get(package_id))
    except (EvidenceError, ValueError) as e:
        raise UnknownRecordError(f"package {package_id} cannot be read from the evidence store: {e}") from e
    return manifest


def evidence_public(book: Casebook, package_id: str, held: CaseEvidence | None = None, *, base: str) -> EvidencePublic:
    """A sealed package's manifest, its files and where to fetch them (under `base`)."""
    manifest = manifest_of(book, package_id)
    files = [
        FilePublic(
            name=name,
            kind=entry.get("role", ""),
            media_type=entry.get("media_type", "application/octet-stream"),
            size=int(entry.get("size", 0)),
            url=f"{base}/{package_id}/files/{name}",
        )
        for name, entry in sorted(manifest.get("files", {}).items())
    ]
    return EvidencePublic(
        package_id=package_id,
        role=held.role if held else None,
        observed_from=held.observed_from if held else None,
        observed_to=held.observed_to if held else None,
        score=held.score if held else None,
        device=manifest.get("device") or {},
        capture=manifest.get("capture") or {},
        rule=manifest.get("rule") or {},
        violation={k: v for k, v in (manifest.get("violation") or {}).items() if k != "boxes"},
        files=files,
    )


def deadline_public(d: Deadline, book: Casebook, now: datetime) -> DeadlinePublic:
    if d.met_at is not None:
        status = "met" if d.closed_by is None or d.met_at <= d.due_at else "ended"
    elif d.due_at <= now:
        status = "overdue"
    elif d.due_at <= now + book.policy.due_soon_delta:
        status = "due_soon"
    else:
        status = "running"
    return DeadlinePublic(
        name=d.name,
        owner=d.owner,
        basis=d.basis,
        starts_at=d.starts_at,
        due_at=d.due_at,
        provisional=d.provisional,
        met_at=d.met_at,
        status=status,
    )


def allowed_actions(state: str, role: str | None) -> list[ActionPublic]:
    """The steps a user of `role` may take on a case in `state` (attaching evidence is the engine's)."""
    if role is None or role == Role.SYSTEM:
        return []
    return [
        action_public(step)
        for step in STEPS.values()
        if CaseState(state) in step.sources and Role(role) in step.roles and not step.needs_evidence
    ]


def action_public(step: Step) -> ActionPublic:
    return ActionPublic(
        action=step.action,
        target=step.target.value if step.target else None,
        needs_reason=step.needs_reason,
        needs_reason_code=step.needs_reason_code,
        description=step.description,
    )


def statements(s: Session, case_id: int) -> list[StatementPublic]:
    rows = s.scalars(select(PartyStatement).where(PartyStatement.case_id == case_id).order_by(PartyStatement.id))
    return [StatementPublic(id=r.id, text=r.text, contact=r.contact, submitted_at=r.submitted_at) for r in rows]


def case_detail(book: Casebook, number: str, *, role: str | None, evidence_base: str) -> CaseDetail:
    now = utc_now()
    with book.db.session() as s:
        case = find_case(s, number)
        (summary,) = _summaries(s, [case])
        actors = {u.id: u for u in s.scalars(select(User).where(User.id.in_({t.actor_id for t in case.transitions})))}
        transitions = [
            TransitionPublic(
                seq=t.seq,
                action=t.action,
                from_state=t.from_state,
                to_state=t.to_state,
                actor=actors[t.actor_id].username,
                actor_name=actors[t.actor_id].display_name,
                role=json.loads(t.record).get("role", actors[t.actor_id].role),
                at=t.at,
                reason=t.reason,
                reason_code=t.reason_code,
                attachments=list(t.attachments or []),
            )
            for t in case.transitions
        ]
        held = list(case.evidence)
        detections = [
            detection_public(d, case.number)
            for d in s.scalars(select(Detection).where(Detection.case_id == case.id).order_by(Detection.id))
        ]
        previous = case.previous_case.number if case.previous_case else None
        return CaseDetail(
            **summary,
            previous_case=previous,
            transitions=transitions,
            deadlines=[deadline_public(d, book, now) for d in case.deadlines],
            evidence_packages=[evidence_public(book, e.package_id, e, base=evidence_base) for e in held],
            detections=detections,
            allowed_actions=allowed_actions(case.state, role),
            statements=statements(s, case.id),
        )


def list_detections(
    s: Session, *, where: Sequence[ColumnElement[bool]], offset: int, limit: int
) -> Page[DetectionPublic]:
    query = select(Detection, Case.number).join(Case, Detection.case_id == Case.id).where(*where)
    total = s.scalar(select(func.count()).select_from(select(Detection.id).join(Case).where(*where).subquery())) or 0
    rows = s.execute(query.order_by(Detection.at.desc(), Detection.id.desc()).offset(offset).limit(limit))
    return Page[DetectionPublic](
        total=total, offset=offset, limit=limit, items=[detection_public(d, number) for d, number in rows]
    )

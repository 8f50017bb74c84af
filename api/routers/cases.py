"""Cases: the list with filters, a case's whole record, its lifecycle steps, and party access codes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import AwareDatetime

from api.accounts import issue_access_code
from api.deps import CaseReader, Officer, ServicesDep, invalid
from api.schemas import AccessCodeIssued, CaseDetail, CaseSummary, Page, StepRequest
from api.views import case_detail, case_filters, find_case, list_cases, parse_bbox
from cases.errors import IllegalTransitionError
from cases.states import TERMINAL_STATES

router = APIRouter(prefix="/api/cases", tags=["cases"])
EVIDENCE_BASE = "/api/evidence"


@router.get("", response_model=Page[CaseSummary])
def get_cases(
    _: CaseReader,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    state: Annotated[str | None, Query(max_length=32)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    bbox: Annotated[
        str | None,
        Query(max_length=100, description="west,south,east,north in degrees", examples=["120.1,30.2,120.2,30.3"]),
    ] = None,
) -> Page[CaseSummary]:
    """Cases, newest first, filtered by camera, kind, state, the time they were opened and place."""
    try:
        box = parse_bbox(bbox)
    except ValueError as e:
        raise invalid("query", "bbox", str(e)) from e
    where = case_filters(camera=camera, kind=kind, state=state, since=since, until=until, bbox=box)
    with services.db.session() as s:
        return list_cases(s, where=where, offset=offset, limit=limit)


@router.get("/{number}", response_model=CaseDetail, responses={404: {}})
def get_case(number: str, principal: CaseReader, services: ServicesDep) -> CaseDetail:
    """A case's summary, history, deadlines, evidence, detections, the party's statements, and
    the steps the caller's role may take next."""
    return case_detail(services.casebook, number, role=principal.role, evidence_base=EVIDENCE_BASE)


@router.post("/{number}/steps", response_model=CaseDetail, responses={403: {}, 404: {}, 409: {}})
def take_step(number: str, body: StepRequest, principal: CaseReader, services: ServicesDep) -> CaseDetail:
    """Take one lifecycle step (confirm, reject with a reason code, warn, file, ...).

    `version` is the case version the caller saw: if someone else moved the case since, the
    step is refused with 409 and the caller reloads.
    """
    services.casebook.apply(
        number,
        body.action,
        actor=principal.name,
        reason=body.reason,
        reason_code=body.reason_code.value if body.reason_code else None,
        expected_version=body.version,
        rectify_days=body.rectify_days,
    )
    return case_detail(services.casebook, number, role=principal.role, evidence_base=EVIDENCE_BASE)


@router.post(
    "/{number}/access-code", response_model=AccessCodeIssued, status_code=status.HTTP_201_CREATED, responses={404: {}}
)
def new_access_code(number: str, principal: Officer, services: ServicesDep) -> AccessCodeIssued:
    """A code for the party to see this case's evidence and state a defense (Art. 41, 44); it
    replaces any earlier code of the case."""
    with services.db.session() as s:
        case = find_case(s, number)
        if case.state in TERMINAL_STATES:
            raise IllegalTransitionError(f"case {number} is {case.state}: there is nothing for its party to answer")
    code, expires = issue_access_code(
        services.db, case_number=number, by=principal.name, days=services.settings.party_code_days
    )
    return AccessCodeIssued(case_number=number, code=code, expires_at=expires)

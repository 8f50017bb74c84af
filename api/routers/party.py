"""The party portal (Art. 41, 44, 45): with the access code an officer gave them, the party of
one case sees that case's evidence and deadlines and states a defense; nothing else."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import select

from api.accounts import party_login
from api.deps import PARTY_COOKIE, Party, ServicesDep, end_session, throttled_login
from api.routers.evidence import file_response
from api.schemas import PackageId, PartyCase, PartyLogin, SessionToken, StatementCreate, StatementPublic
from api.views import deadline_public, evidence_public, statements
from cases.casebook import utc_now
from cases.errors import UnknownRecordError
from cases.models import Case, CaseEvidence, PartyStatement

router = APIRouter(prefix="/api/party", tags=["party portal"])
BASE = "/api/party/evidence"


@router.post("/login", response_model=SessionToken, responses={401: {}, 429: {}})
def log_in(body: PartyLogin, services: ServicesDep, response: Response) -> SessionToken:
    issued = throttled_login(
        services.throttle,
        f"party:{body.case_number}",
        lambda: party_login(
            services.db, case_number=body.case_number, code=body.code, hours=services.settings.party_session_hours
        ),
    )
    response.set_cookie(
        PARTY_COOKIE, issued.token, httponly=True, samesite="strict", secure=services.settings.secure_cookies
    )
    return SessionToken(
        access_token=issued.token, expires_at=issued.expires_at, case_number=issued.principal.case_number
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def log_out(principal: Party, services: ServicesDep) -> Response:
    """End the party's portal session (the console's, in the same browser, stays)."""
    return end_session(principal, services, PARTY_COOKIE)


@router.get("/case", response_model=PartyCase)
def get_case(principal: Party, services: ServicesDep) -> PartyCase:
    """The party's case: what was seen, when and where, the evidence, and what the party owes by when."""
    book = services.casebook
    now = utc_now()
    with services.db.session() as s:
        case = s.get(Case, principal.case_id)
        if case is None:
            raise UnknownRecordError("the case of this access code is gone")
        held = list(case.evidence)
        place = " / ".join(
            p for p in (case.camera.name if case.camera else None, case.zone.name if case.zone else None) if p
        )
        result = PartyCase(
            number=case.number,
            kind=case.kind,
            state=case.state,
            opened_at=case.opened_at,
            first_seen_at=case.first_seen_at,
            last_seen_at=case.last_seen_at,
            place=place or (f"{case.lat:.6f}, {case.lon:.6f}" if case.lat is not None and case.lon is not None else ""),
            evidence_packages=[evidence_public(book, e.package_id, e, base=BASE) for e in held],
            deadlines=[deadline_public(d, book, now) for d in case.deadlines if d.owner == "party"],
            statements=statements(s, case.id),
        )
    for e in held:
        book.record_custody(e.package_id, actor=principal.name, action="view", reason="party portal")
    return result


@router.get(
    "/evidence/{package_id}/files/{name}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "video/mp4": {}}}, 404: {}},
)
def get_file(
    package_id: PackageId, name: str, principal: Party, services: ServicesDep, download: bool = False
) -> Response:
    """A file of the party's own case's evidence; any other package is 404, as if it did not exist."""
    with services.db.session() as s:
        held = s.scalar(
            select(CaseEvidence).where(CaseEvidence.package_id == package_id, CaseEvidence.case_id == principal.case_id)
        )
    if held is None:
        raise UnknownRecordError(f"your case holds no evidence package {package_id}")
    response = file_response(services.casebook, package_id, name, download=download)
    if download:
        services.casebook.record_custody(package_id, actor=principal.name, action="download", reason=name)
    return response


@router.post("/statements", response_model=StatementPublic, status_code=status.HTTP_201_CREATED)
def add_statement(body: StatementCreate, principal: Party, services: ServicesDep) -> StatementPublic:
    """The party's statement of defense, kept as submitted; officers see it on the case page."""
    with services.db.session() as s:
        row = PartyStatement(case_id=principal.case_id, text=body.text, contact=body.contact, submitted_at=utc_now())
        s.add(row)
        s.flush()
        return StatementPublic(id=row.id, text=row.text, contact=row.contact, submitted_at=row.submitted_at)

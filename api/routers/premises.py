"""The premises registry: restaurants, shops and sites, their grades, purifiers, permits, the
zones that watch them and their history of cases; import of the county's CSV or Excel export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, or_, select

from api.deps import PremisesReader, Registrar, ServicesDep
from api.routers.cameras import read_limited
from api.schemas import (
    ImportReportPublic,
    Page,
    PermitPublic,
    PremisesDetail,
    PremisesPublic,
    RowProblemPublic,
)
from api.views import list_cases
from cases.casebook import utc_now
from cases.models import Case, Party, Permit, Zone
from cases.premises import (
    ImportReport,
    PremisesError,
    PremisesHistory,
    RowProblem,
    find_premises,
    import_premises,
    premises_history,
)

router = APIRouter(prefix="/api/premises", tags=["premises"])


def _public(p: Party, history: PremisesHistory | None) -> dict[str, object]:
    return {
        "code": p.code,
        "name": p.name,
        "kind": p.kind,
        "address": p.address,
        "street": p.street,
        "grid": p.grid,
        "lat": p.lat,
        "lon": p.lon,
        "category": p.category,
        "size_class": p.size_class,
        "risk_grade": p.risk_grade,
        "purifier": p.purifier,
        "credit_code": p.credit_code,
        "contact": p.contact,
        "cases": history.cases if history else 0,
        "open_cases": history.open_cases if history else 0,
        "cases_last_year": history.cases_last_year if history else 0,
        "repeat_offender": history.repeat_offender if history else False,
    }


@router.get("", response_model=Page[PremisesPublic])
def list_premises(
    _: PremisesReader,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    street: Annotated[str | None, Query(max_length=100)] = None,
    grade: Annotated[str | None, Query(max_length=16)] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    q: Annotated[str | None, Query(max_length=100, description="part of the name, address or code")] = None,
) -> Page[PremisesPublic]:
    """Premises of the registry by street, grade, kind or a search, with their case counts."""
    query = select(Party).where(Party.code.is_not(None))
    if street is not None:
        query = query.where(Party.street == street)
    if grade is not None:  # "ungraded" as in draws: premises without a risk grade
        query = query.where(Party.risk_grade.is_(None) if grade == "ungraded" else Party.risk_grade == grade)
    if kind is not None:
        query = query.where(Party.kind == kind)
    if q:
        like = f"%{q}%"
        query = query.where(or_(Party.name.like(like), Party.address.like(like), Party.code.like(like)))
    with services.db.session() as s:
        total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = list(s.scalars(query.order_by(Party.street, Party.code).offset(offset).limit(limit)))
    history = premises_history(services.db, [p.code for p in rows if p.code], at=utc_now())
    items = [PremisesPublic.model_validate(_public(p, history.get(p.code or ""))) for p in rows]
    return Page[PremisesPublic](total=total, offset=offset, limit=limit, items=items)


@router.get("/{code}", response_model=PremisesDetail, responses={404: {}})
def get_premises(code: str, _: PremisesReader, services: ServicesDep) -> PremisesDetail:
    """One premises: its record, the camera zones that watch it, its permits, and its latest cases."""
    party = find_premises(services.db, code)
    history = premises_history(services.db, [code], at=utc_now()).get(code)
    with services.db.session() as s:
        zones = [
            {"camera_id": z.camera_id, "zone": z.name, "rule": z.rule}
            for z in s.scalars(select(Zone).where(Zone.party_id == party.id).order_by(Zone.camera_id, Zone.name))
        ]
        permits = [
            PermitPublic(kind=p.kind, number=p.number, valid_from=p.valid_from, valid_to=p.valid_to, area=p.area)
            for p in s.scalars(select(Permit).where(Permit.party_id == party.id).order_by(Permit.valid_from))
        ]
        recent = list_cases(s, where=[Case.party_id == party.id], offset=0, limit=20).items
    return PremisesDetail.model_validate(
        {**_public(party, history), "zones": zones, "permits": permits, "recent_cases": recent}
    )


@router.post(
    "/import",
    response_model=ImportReportPublic,
    openapi_extra={
        "requestBody": {
            "content": {
                "text/csv": {"schema": {"type": "string", "format": "binary"}},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                    "schema": {"type": "string", "format": "binary"}
                },
            }
        }
    },
    responses={
        400: {"model": ImportReportPublic, "description": "The file has problems: nothing was imported"},
        413: {},
    },
)
async def import_file(
    request: Request, _: Registrar, services: ServicesDep, dry_run: bool = False
) -> ImportReportPublic | JSONResponse:
    """Import premises from a CSV or Excel file (the body); with any problem nothing is written
    and the answer (400) lists every problem by row and column."""
    data = await read_limited(request, services.settings.max_upload_bytes)
    try:
        report = import_premises(services.db, Path("upload"), data=data, at=utc_now(), dry_run=dry_run)
    except PremisesError as e:  # not a CSV or workbook at all: one problem, on the whole file
        report = ImportReport(problems=[RowProblem(1, "-", str(e))])
    public = ImportReportPublic(
        ok=report.ok,
        dry_run=dry_run,
        rows=report.rows,
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
        problems=[RowProblemPublic(row=p.row, column=p.column, message=p.message) for p in report.problems],
    )
    if not report.ok:
        return JSONResponse(public.model_dump(mode="json"), status_code=400)
    return public

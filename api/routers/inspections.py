"""Double random, one public inspections (双随机、一公开): the inspector pool, verifiable draws,
the inspections officers carry out and record with photos, and the public page.

Heads keep the pool and draw; officers see and record the inspections they are drawn for;
anyone, without logging in, sees the published draws and their results (never a seed before
publication, never a draw that is not published) and can check each one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, status
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse

from api.accounts import Principal
from api.deps import Officer, Registrar, ServicesDep, invalid, users
from api.inspection_schemas import (
    ChecklistDomainPublic,
    DrawCreate,
    DrawList,
    DrawPublic,
    InspectionList,
    InspectionPublic,
    InspectorId,
    InspectorList,
    InspectorPublic,
    InspectorUpdate,
    PublicDraw,
    PublicDrawDetail,
    PublicDrawList,
    ResultCreate,
)
from cases import inspections
from cases.casebook import utc_now
from cases.draws import DrawError, DrawSpec
from cases.errors import PermissionDeniedError
from cases.inspections import ChecklistError, InspectionInputError
from cases.states import Role
from evidence.package import PackageFile

router = APIRouter(tags=["inspections"])
STATIC = Path(__file__).resolve().parent.parent / "static"

Drawer = Annotated[Principal, Depends(users(frozenset({Role.HEAD})))]
DrawReader = Annotated[Principal, Depends(users(frozenset({Role.HEAD, Role.ADMIN, Role.LEGAL_REVIEWER})))]
# officers see the inspections they are drawn for; heads, legal reviewers and admins see all
InspectionReader = Annotated[
    Principal, Depends(users(frozenset({Role.OFFICER, Role.HEAD, Role.LEGAL_REVIEWER, Role.ADMIN})))
]
DrawId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
InspectionId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]

VERIFY = (
    "Check a draw yourself (nonsite.draw/1, specified in the docstring of cases/draws.py): "
    "1. SHA-256 of the seed (hex-decoded) must equal the commitment. "
    "2. The commitment was logged in the evidence log at commitment_leaf, before the publication at "
    "published_leaf (signed, time-stamped checkpoints of the log show when). "
    "3. Recompute the draw from the document alone with the nonsite package installed: "
    'save this JSON as draw.json and run python -c "import json; from cases.draws import verify; '
    "print(verify(json.load(open('draw.json'))['document']) or 'verified')\". "
    "Any problem is printed by name."
)


# the body field that carries each argument of cases.inspections, where the names differ
FIELDS = {"package_id": "photos", "files": "photos", "at": "inspected_at"}


@contextmanager
def _unprocessable(default: str) -> Iterator[None]:
    """Arguments the domain refuses as wrong in themselves are 422s in FastAPI's documented shape,
    each naming the body field (`default` when the domain does not say which) and what to change."""
    try:
        yield
    except ChecklistError as e:
        errors = [{"loc": ("body", "checklist"), "msg": problem, "type": "value_error"} for problem in e.problems]
        raise RequestValidationError(errors) from e
    except InspectionInputError as e:
        field = FIELDS.get(e.argument, e.argument) if e.argument else default
        raise invalid("body", field, str(e)) from e
    except DrawError as e:
        raise invalid("body", default, str(e)) from e


# --- the inspector pool -----------------------------------------------------------------------


@router.get("/api/inspectors", response_model=InspectorList)
def list_inspectors(_: Registrar, services: ServicesDep) -> InspectorList:
    """The expert pool that draws take inspectors from, active or not."""
    items = [InspectorPublic.model_validate(i) for i in inspections.list_inspectors(services.db)]
    return InspectorList(count=len(items), items=items)


@router.put("/api/inspectors/{inspector_id}", response_model=InspectorPublic, responses={404: {}})
def put_inspector(
    inspector_id: Annotated[InspectorId, PathParam()], body: InspectorUpdate, _: Registrar, services: ServicesDep
) -> InspectorPublic:
    """Add an inspector to the pool or change one (make them inactive rather than removing them)."""
    with _unprocessable("username"):
        record = inspections.register_inspector(
            services.db,
            inspector_id=inspector_id,
            name=body.name,
            street=body.street,
            username=body.username,
            active=body.active,
            at=utc_now(),
        )
    return InspectorPublic.model_validate(record)


# --- draws ------------------------------------------------------------------------------------


@router.get("/api/inspections/checklist", response_model=list[ChecklistDomainPublic])
def checklist(_: InspectionReader) -> list[ChecklistDomainPublic]:
    """The 7 domains of a restaurant fume inspection and their items, in Chinese and English."""
    return [ChecklistDomainPublic.model_validate(d) for d in inspections.checklist_definition()]


@router.get("/api/inspections/draws", response_model=DrawList)
def list_draws(_: DrawReader, services: ServicesDep) -> DrawList:
    """Every draw, newest first, with its inspections; seeds are never shown here."""
    items = [DrawPublic.model_validate(d) for d in inspections.list_draws(services.db)]
    return DrawList(count=len(items), items=items)


@router.post(
    "/api/inspections/draws",
    response_model=DrawPublic,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "The purpose was drawn already"}},
)
def create_draw(body: DrawCreate, principal: Drawer, services: ServicesDep) -> DrawPublic:
    """Draw premises from the registry and inspectors from the pool; the seed's commitment is logged first.

    The seed stays secret until the draw is published.
    """
    with _unprocessable("targets"):
        spec = DrawSpec(
            targets=body.targets,
            stratify_by=tuple(body.stratify_by),
            inspectors_per_target=body.inspectors_per_target,
            max_targets_per_inspector=body.max_targets_per_inspector,
        )
        record = inspections.make_draw(
            services.db,
            services.casebook.vault,
            purpose=body.purpose,
            spec=spec,
            street=body.street,
            grade=body.grade,
            kind=body.kind,
            by=principal.name,
            at=utc_now(),
        )
    return DrawPublic.model_validate(record)


@router.get("/api/inspections/draws/{draw_id}", response_model=DrawPublic, responses={404: {}})
def get_draw(draw_id: DrawId, _: DrawReader, services: ServicesDep) -> DrawPublic:
    return DrawPublic.model_validate(inspections.draw_record(services.db, draw_id))


@router.post("/api/inspections/draws/{draw_id}/publish", response_model=DrawPublic, responses={404: {}, 409: {}})
def publish_draw(draw_id: DrawId, principal: Drawer, services: ServicesDep) -> DrawPublic:
    """Publish the draw: its document, seed included, goes to the log and the public page (once)."""
    record = inspections.publish_draw(
        services.db, services.casebook.vault, draw_id=draw_id, by=principal.name, at=utc_now()
    )
    return DrawPublic.model_validate(record)


# --- inspections ------------------------------------------------------------------------------


@router.get("/api/inspections", response_model=InspectionList)
def list_inspections(
    principal: InspectionReader,
    services: ServicesDep,
    draw_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    state: Literal["planned", "done"] | None = None,
) -> InspectionList:
    """Inspections by draw: an officer's own (those of the inspectors they record for); everyone's for the others."""
    mine = principal.name if principal.role == Role.OFFICER else None
    records = inspections.list_inspections(services.db, assigned_to=mine, draw_id=draw_id, state=state)
    items = [InspectionPublic.model_validate(r) for r in records]
    return InspectionList(count=len(items), items=items)


def _visible(services: ServicesDep, principal: Principal, inspection_id: int) -> None:
    if principal.role == Role.OFFICER and not inspections.is_assigned(
        services.db, inspection_id=inspection_id, username=principal.name
    ):
        raise PermissionDeniedError(f"inspection {inspection_id} is not one of {principal.name}'s")


@router.get("/api/inspections/{inspection_id}", response_model=InspectionPublic, responses={403: {}, 404: {}})
def get_inspection(inspection_id: InspectionId, principal: InspectionReader, services: ServicesDep) -> InspectionPublic:
    _visible(services, principal, inspection_id)
    return InspectionPublic.model_validate(inspections.inspection_record(services.db, inspection_id))


@router.post(
    "/api/inspections/{inspection_id}/result",
    response_model=InspectionPublic,
    responses={403: {}, 404: {}, 409: {"description": "Recorded already"}},
)
def record_result(
    inspection_id: InspectionId, body: ResultCreate, principal: Officer, services: ServicesDep
) -> InspectionPublic:
    """Record an inspection's checklist, as one of its inspectors or a head; photos are sealed first.

    A failed emission item is a violation and opens (or joins) a fume case of the premises;
    other failures open a case only with `open_case`.
    """
    at = body.inspected_at or utc_now()
    if at.tzinfo is None:
        raise invalid("body", "inspected_at", "inspected_at needs a time zone (e.g. 2026-12-07T09:30:00+08:00)")
    store, book = services.uploads, services.casebook
    with _unprocessable("checklist"):
        inspections.assess(body.checklist, note=body.note, open_case=body.open_case)  # before sealing anything
        package_id = None
        if body.photos:
            files: list[PackageFile] = []
            for upload_id in dict.fromkeys(body.photos):
                upload, data = store.read_complete(upload_id, owner=principal.name)
                name = f"{len(files) + 1:02d}-{upload.filename}"  # numbered: two photos may share a name
                files.append(PackageFile(name, data, upload.media_type, f"field-{upload.kind}"))
            package_id = inspections.seal_photos(
                services.db, book.vault, inspection_id=inspection_id, files=files, by=principal.name, at=at
            )
        record = inspections.record_result(
            services.db,
            book,
            inspection_id=inspection_id,
            checklist=body.checklist,
            note=body.note,
            package_id=package_id,
            open_case=body.open_case,
            by=principal.name,
            at=at,
        )
    for upload_id in body.photos:
        store.remove(upload_id)
    return InspectionPublic.model_validate(record)


# --- the public page (no login) -----------------------------------------------------------------


@router.get("/api/public/draws", response_model=PublicDrawList, tags=["public"])
def public_draws(services: ServicesDep) -> PublicDrawList:
    """Published draws, newest first, with their premises, inspectors and recorded results. No login."""
    items = [PublicDraw.model_validate(d) for d in inspections.public_draws(services.db)]
    return PublicDrawList(count=len(items), items=items)


@router.get("/api/public/draws/{draw_id}", response_model=PublicDrawDetail, responses={404: {}}, tags=["public"])
def public_draw(draw_id: DrawId, services: ServicesDep) -> PublicDrawDetail:
    """One published draw with its whole public document, which anyone can verify. No login."""
    return PublicDrawDetail.model_validate({**inspections.public_draw(services.db, draw_id), "verify": VERIFY})


@router.get("/public/inspections", include_in_schema=False)
def public_page() -> FileResponse:
    return FileResponse(STATIC / "public.html", headers={"Cache-Control": "no-cache"})

"""Field evidence: officers upload photos, body-cam video and audio (resumably), which are
sealed exactly like camera evidence (signed package, Merkle log leaf, time-stamped
checkpoints) with the officer as the device, and attached to a case."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Header, HTTPException, Request, status
from sqlalchemy import select

from api.deps import Officer, ServicesDep
from api.routers.cameras import read_limited
from api.schemas import CaseNumber, EvidencePublic, FieldEvidenceCreate, UploadCreate, UploadPublic
from api.uploads import OffsetMismatchError, Upload
from api.views import evidence_public, find_case
from cases.casebook import utc_now
from cases.errors import IllegalTransitionError
from cases.models import User
from cases.states import TERMINAL_STATES
from evidence.package import PackageFile
from nonsite import __version__

router = APIRouter(tags=["field evidence"])
BINARY = {"type": "string", "format": "binary"}


def _public(upload: Upload) -> UploadPublic:
    return UploadPublic(
        id=upload.id,
        filename=upload.filename,
        media_type=upload.media_type,
        size=upload.size,
        offset=upload.offset,
        complete=upload.complete,
        expires_at=datetime.fromisoformat(upload.expires_at),
    )


@router.post("/api/uploads", response_model=UploadPublic, status_code=status.HTTP_201_CREATED, responses={409: {}})
def declare_upload(body: UploadCreate, principal: Officer, services: ServicesDep) -> UploadPublic:
    """Declare a file to upload (name, media type, size, optionally its SHA-256)."""
    upload = services.uploads.create(
        owner=principal.name,
        filename=body.filename,
        media_type=body.media_type,
        size=body.size,
        sha256=body.sha256,
        now=utc_now(),
    )
    return _public(upload)


@router.get("/api/uploads/{upload_id}", response_model=UploadPublic, responses={404: {}})
def upload_status(upload_id: str, principal: Officer, services: ServicesDep) -> UploadPublic:
    """Where the upload stands: after a dropped connection, go on from `offset`."""
    return _public(services.uploads.get(upload_id, owner=principal.name))


@router.patch(
    "/api/uploads/{upload_id}",
    response_model=UploadPublic,
    openapi_extra={
        "requestBody": {
            "content": {"application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        }
    },
    responses={404: {}, 409: {}, 413: {}},
)
async def send_chunk(
    upload_id: str,
    request: Request,
    principal: Officer,
    services: ServicesDep,
    upload_offset: int = Header(ge=0, description="Where this chunk starts; must be the upload's offset"),
) -> UploadPublic:
    """The next chunk of the file (at most the API's upload limit per request)."""
    chunk = await read_limited(request, services.settings.max_upload_bytes)
    try:
        upload = services.uploads.append(upload_id, owner=principal.name, offset=upload_offset, chunk=chunk)
    except OffsetMismatchError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e), headers={"Upload-Offset": str(e.expected)}) from e
    return _public(upload)


@router.post(
    "/api/cases/{number}/field-evidence",
    response_model=EvidencePublic,
    status_code=status.HTTP_201_CREATED,
    responses={404: {}, 409: {}},
)
def seal_field_evidence(
    number: CaseNumber, body: FieldEvidenceCreate, principal: Officer, services: ServicesDep
) -> EvidencePublic:
    """Seal finished uploads into one evidence package with the officer as its device, and
    attach it to the case; the uploads are removed once sealed."""
    store, book = services.uploads, services.casebook
    if body.captured_at.tzinfo is None:
        raise IllegalTransitionError("captured_at needs a time zone (e.g. 2026-12-07T09:30:00+08:00)")
    with services.db.session() as s:
        case = find_case(s, number)
        if case.state in TERMINAL_STATES:
            raise IllegalTransitionError(f"case {number} is {case.state}; it takes no more evidence")
        kind, zone = case.kind, case.zone.name if case.zone else None
        officer = s.scalar(select(User).where(User.username == principal.name))
        display = officer.display_name if officer else principal.name
    files: list[PackageFile] = []
    for upload_id in dict.fromkeys(body.uploads):
        upload, data = store.read_complete(upload_id, owner=principal.name)
        name = f"{len(files) + 1:02d}-{upload.filename}"  # numbered: two photos may share a name
        files.append(PackageFile(name, data, upload.media_type, f"field-{upload.kind}"))
    captured = body.captured_at.astimezone(UTC).isoformat()
    finding = {
        "device": {"id": f"officer:{principal.name}", "kind": "officer", "name": display},
        "place": {"lat": body.lat, "lon": body.lon} if body.lat is not None and body.lon is not None else {},
        "capture": {"started_at": captured, "ended_at": captured, "clock_source": "officer device"},
        "violation": {
            "kind": kind,
            "zone": zone,
            "started_at": captured,
            "ended_at": captured,
            "attach_to": number,
            "note": body.note,
        },
        "model": {},
        "rule": {"source": "field evidence"},
        "engine": {"name": "nonsite", "version": __version__},
    }
    sealed = book.vault.seal(finding, files)
    package_id = sealed.package.package_id
    book.apply(number, "add_evidence", actor=principal.name, reason=body.note, evidence=[package_id])
    for upload_id in body.uploads:
        store.remove(upload_id)
    return evidence_public(book, package_id, base="/api/evidence")

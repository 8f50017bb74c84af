"""Sealed evidence: the manifest, its files, the offline-verifiable bundle, the verification
verdict, and the custody record. Every view, download and export is written to custody."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, HTTPException, Response, status
from sqlalchemy import select

from api.deps import CaseReader, ServicesDep
from api.schemas import CheckPublic, CustodyPublic, EvidencePublic, PackageId, VerificationPublic
from api.views import evidence_public, manifest_of
from cases.casebook import Casebook
from cases.errors import UnknownRecordError
from cases.models import CaseEvidence
from evidence.bundle import export_bundle, verify_bundle
from evidence.errors import EvidenceError

router = APIRouter(prefix="/api/evidence", tags=["evidence"])
BASE = "/api/evidence"


def held_by_case(book: Casebook, package_id: str) -> CaseEvidence:
    """The package as a case holds it; packages no case holds are not served."""
    with book.db.session() as s:
        held = s.scalar(select(CaseEvidence).where(CaseEvidence.package_id == package_id))
    if held is None:
        raise UnknownRecordError(f"no case holds evidence package {package_id}")
    return held


def file_response(book: Casebook, package_id: str, name: str, *, download: bool) -> Response:
    """One file of a package, by its name in the manifest (and only such a name), checked against its hash."""
    entry = manifest_of(book, package_id).get("files", {}).get(name)
    if entry is None:
        raise UnknownRecordError(f"package {package_id} has no file {name!r}")
    try:
        data = book.vault.store.get(entry["sha256"])
    except EvidenceError as e:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, f"evidence file {name} is damaged: {e}") from e
    disposition = "attachment" if download else "inline"
    return Response(
        data,
        media_type=entry.get("media_type", "application/octet-stream"),
        headers={
            "Content-Disposition": f'{disposition}; filename="{package_id[:12]}-{name}"',
            "Cache-Control": "private, max-age=3600, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/{package_id}", response_model=EvidencePublic, responses={404: {}})
def get_package(package_id: PackageId, principal: CaseReader, services: ServicesDep) -> EvidencePublic:
    """A package's manifest and files (recorded as a view)."""
    held = held_by_case(services.casebook, package_id)
    public = evidence_public(services.casebook, package_id, held, base=BASE)
    services.casebook.record_custody(package_id, actor=principal.name, action="view", reason="console")
    return public


@router.get(
    "/{package_id}/files/{name}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "video/mp4": {}}}, 404: {}},
)
def get_file(
    package_id: PackageId, name: str, principal: CaseReader, services: ServicesDep, download: bool = False
) -> Response:
    """One file of a package; `download=true` serves it as an attachment and records a download."""
    held_by_case(services.casebook, package_id)
    response = file_response(services.casebook, package_id, name, download=download)
    if download:
        services.casebook.record_custody(package_id, actor=principal.name, action="download", reason=name)
    return response


@router.get(
    "/{package_id}/bundle", response_class=Response, responses={200: {"content": {"application/zip": {}}}, 404: {}}
)
def get_bundle(package_id: PackageId, principal: CaseReader, services: ServicesDep) -> Response:
    """The package as a bundle anyone can verify offline with `nonsite verify` (recorded as an export)."""
    held_by_case(services.casebook, package_id)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_bundle(services.casebook.vault, package_id, Path(tmp) / f"{package_id}.zip")
        data = path.read_bytes()
    services.casebook.record_custody(package_id, actor=principal.name, action="export", reason="bundle download")
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="evidence-{package_id[:16]}.zip"'},
    )


@router.get("/{package_id}/verification", response_model=VerificationPublic, responses={404: {}})
def get_verification(package_id: PackageId, _: CaseReader, services: ServicesDep) -> VerificationPublic:
    """Export the package's bundle and verify it as a stranger would: hashes, signature, log
    inclusion, checkpoint signature and its RFC 3161 timestamp."""
    held_by_case(services.casebook, package_id)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = export_bundle(services.casebook.vault, package_id, Path(tmp) / "bundle.zip")
        except EvidenceError as e:  # a stored file no longer matches its hash: that is the verdict
            return VerificationPublic(
                package_id=package_id, ok=False, checks=[CheckPublic(name="evidence store", ok=False, detail=str(e))]
            )
        checks = verify_bundle(path)
    return VerificationPublic(
        package_id=package_id,
        ok=all(c.ok for c in checks),
        checks=[CheckPublic(name=c.name, ok=c.ok, detail=c.detail) for c in checks],
    )


@router.get("/{package_id}/custody", response_model=list[CustodyPublic], responses={404: {}})
def get_custody(package_id: PackageId, _: CaseReader, services: ServicesDep) -> list[CustodyPublic]:
    """Who viewed, downloaded, exported, confirmed or rejected the package, oldest first."""
    held_by_case(services.casebook, package_id)
    return [
        CustodyPublic(actor=r.actor, action=r.action, at=r.at, reason=r.reason, leaf_index=r.leaf_index)
        for r in services.casebook.custody(package_id)
    ]

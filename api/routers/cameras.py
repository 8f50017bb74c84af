"""Cameras, their zones and rules, live health and snapshots.

Camera workers write health reports and snapshots into the health folder; a worker on
another machine sends them here with its camera's device token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from api.deps import CameraEditor, CameraReader, PrincipalDep, ServicesDep, invalid
from api.schemas import CameraPublic, Page, ZonePublic, ZoneUpdate
from cases.casebook import utc_now
from cases.errors import UnknownRecordError
from cases.models import Camera, Zone
from cases.states import Role
from evidence.store import write_atomic
from pipelines.worker import CameraHealth, read_health

router = APIRouter(prefix="/api/cameras", tags=["cameras"])
JPEG_MAGIC = b"\xff\xd8\xff"


def zone_public(z: Zone) -> ZonePublic:
    return ZonePublic(
        name=z.name,
        rule=z.rule,
        polygon=z.polygon,
        party=z.party.name if z.party else None,
        edited_by=z.edited_by,
        edited_at=z.edited_at,
    )


def _camera(c: Camera, health: dict[str, CameraHealth], services: ServicesDep) -> CameraPublic:
    return CameraPublic(
        id=c.id,
        name=c.name,
        lat=c.lat,
        lon=c.lon,
        zones=[zone_public(z) for z in c.zones],
        health=health.get(c.id),
        has_snapshot=(services.health_dir / f"{c.id}.jpg").is_file(),
    )


@router.get("", response_model=Page[CameraPublic])
def list_cameras(
    _: CameraReader,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[CameraPublic]:
    """Registered cameras with their zones and each one's latest health report."""
    health = {h.camera_id: h for h in read_health(services.health_dir)}
    with services.db.session() as s:
        total = s.scalar(select(func.count()).select_from(Camera)) or 0
        rows = s.scalars(
            select(Camera)
            .options(selectinload(Camera.zones).selectinload(Zone.party))
            .order_by(Camera.id)
            .offset(offset)
            .limit(limit)
        )
        return Page[CameraPublic](
            total=total, offset=offset, limit=limit, items=[_camera(c, health, services) for c in rows]
        )


def _get(services: ServicesDep, camera_id: str) -> Camera:
    with services.db.session() as s:
        camera = s.scalar(
            select(Camera).options(selectinload(Camera.zones).selectinload(Zone.party)).where(Camera.id == camera_id)
        )
    if camera is None:
        raise UnknownRecordError(f"no camera {camera_id!r}")
    return camera


@router.get("/{camera_id}", response_model=CameraPublic, responses={404: {}})
def get_camera(camera_id: str, _: CameraReader, services: ServicesDep) -> CameraPublic:
    camera = _get(services, camera_id)
    return _camera(camera, {h.camera_id: h for h in read_health(services.health_dir)}, services)


@router.get(
    "/{camera_id}/snapshot",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {}},
)
def get_snapshot(camera_id: str, _: CameraReader, services: ServicesDep) -> Response:
    """The camera's latest frame as its worker last saved it (JPEG)."""
    _get(services, camera_id)
    path = services.health_dir / f"{camera_id}.jpg"
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera_id!r} has sent no snapshot yet")
    return Response(path.read_bytes(), media_type="image/jpeg", headers={"Cache-Control": "no-store"})


def _may_report(principal: PrincipalDep, camera_id: str) -> None:
    device = principal.kind == "device" and principal.camera_id == camera_id
    if not device and not (principal.kind == "user" and principal.role in (Role.ENGINEER, Role.ADMIN)):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"{principal.name} may not report for camera {camera_id!r}; use its device token"
        )


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes (whatever it claims)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"uploads are limited to {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"uploads are limited to {limit} bytes")
    return bytes(body)


@router.put(
    "/{camera_id}/snapshot",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    openapi_extra={"requestBody": {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}},
    responses={403: {}, 404: {}, 413: {}, 415: {}},
)
async def put_snapshot(camera_id: str, request: Request, principal: PrincipalDep, services: ServicesDep) -> Response:
    """A camera worker's latest frame (JPEG), for the console's camera page and zone editor."""
    _may_report(principal, camera_id)
    _get(services, camera_id)
    data = await read_limited(request, services.settings.max_upload_bytes)
    if not data.startswith(JPEG_MAGIC):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "a snapshot is a JPEG image")
    write_atomic(services.health_dir / f"{camera_id}.jpg", data)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/{camera_id}/health", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, responses={403: {}})
def put_health(camera_id: str, report: CameraHealth, principal: PrincipalDep, services: ServicesDep) -> Response:
    """A camera worker's health report, for a worker that does not share this machine's folders."""
    _may_report(principal, camera_id)
    if report.camera_id != camera_id:
        raise invalid("body", "camera_id", f"the report is of {report.camera_id!r}, not {camera_id!r}")
    _get(services, camera_id)
    write_atomic(services.health_dir / f"{camera_id}.json", report.model_dump_json().encode())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/{camera_id}/zones/{zone_name}", response_model=ZonePublic, responses={404: {}})
def put_zone(
    camera_id: str, zone_name: str, body: ZoneUpdate, principal: CameraEditor, services: ServicesDep
) -> ZonePublic:
    """Redraw a zone's polygon (in the snapshot's pixels); who drew it and when are kept.

    The drawn polygon is what `nonsite run` registers from then on: it wins over the run
    file's until it is drawn again, and camera workers use it from their next start.
    """
    with services.db.session() as s:
        zone = s.scalar(select(Zone).where(Zone.camera_id == camera_id, Zone.name == zone_name))
        if zone is None:
            raise UnknownRecordError(f"camera {camera_id!r} has no zone {zone_name!r}")
        zone.polygon = [[round(x, 1), round(y, 1)] for x, y in body.polygon]
        zone.edited_by = principal.name
        zone.edited_at = utc_now()
        s.flush()
        return zone_public(zone)

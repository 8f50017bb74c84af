"""Online fume monitors: their settings and state, and readings sent over HTTP (the same
processing as MQTT: kept once, episodes sealed and filed as cases of the premises)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from api.deps import CameraEditor, CameraReader, PrincipalDep, ServicesDep, invalid
from api.schemas import ReadingsIngested
from cases.errors import UnknownRecordError
from cases.states import Role
from pipelines.fume import MonitorService
from pipelines.monitors import MonitorConfig, MonitorStatus, Reading

router = APIRouter(prefix="/api/monitors", tags=["fume monitors"])
MAX_BATCH = 1440  # a day of readings at one a minute


def _service(services: ServicesDep) -> MonitorService:
    if services.monitors is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "this deployment runs no fume monitor service")
    return services.monitors


@router.get("", response_model=list[MonitorStatus])
def list_monitors(_: CameraReader, services: ServicesDep) -> list[MonitorStatus]:
    """Every monitor's state (online, stale, offline), last reading and readings in the last hour."""
    return _service(services).statuses()


@router.put("/{monitor_id}", response_model=MonitorConfig, responses={409: {}, 422: {}})
def put_monitor(monitor_id: str, body: MonitorConfig, _: CameraEditor, services: ServicesDep) -> MonitorConfig:
    """Add or change a monitor (its premises, threshold and episode settings)."""
    if body.monitor_id != monitor_id:
        raise invalid("body", "monitor_id", f"the body is of {body.monitor_id!r}, not {monitor_id!r}")
    _service(services).register(body)
    return body


@router.post("/{monitor_id}/readings", response_model=ReadingsIngested, responses={403: {}, 404: {}, 413: {}})
def post_readings(
    monitor_id: str, body: list[Reading], principal: PrincipalDep, services: ServicesDep
) -> ReadingsIngested:
    """Readings of one monitor (its device token, or an engineer replaying a backlog)."""
    device = principal.kind == "device" and principal.monitor_id == monitor_id
    if not device and not (principal.kind == "user" and principal.role in (Role.ENGINEER, Role.ADMIN)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{principal.name} may not send readings of {monitor_id!r}")
    if len(body) > MAX_BATCH:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"send at most {MAX_BATCH} readings at a time")
    wrong = sorted({r.monitor_id for r in body} - {monitor_id})
    if wrong:
        raise invalid("body", "monitor_id", f"readings of {', '.join(wrong)} sent to {monitor_id}")
    service = _service(services)
    if monitor_id not in service.bank:
        raise UnknownRecordError(f"no fume monitor {monitor_id!r}; register it first")
    result = service.ingest(body)
    return ReadingsIngested(
        accepted=result.accepted, duplicates=result.duplicates, cases=sorted({f.case_number for f in result.filed})
    )

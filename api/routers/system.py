"""What the whole deployment looks like: liveness, Prometheus metrics, the vocabulary the
console needs (states, reason codes, actions), the map of findings, KPIs, and the models."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import AwareDatetime
from sqlalchemy import func, select

from api.deps import CaseReader, ModelReader, ServicesDep, invalid
from api.schemas import (
    FindingCollection,
    FindingFeature,
    KpiPublic,
    Meta,
    ModelPublic,
    PointGeometry,
    ReasonCode,
)
from api.views import action_public, case_filters
from cases.casebook import utc_now
from cases.kpi import kpi_report
from cases.models import Camera, Case
from cases.states import REASONS_NEEDING_TEXT, STEPS, CaseState, RejectReason, Role

router = APIRouter(tags=["system"])
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
MAP_LIMIT = 5000

REASON_LABELS = {
    RejectReason.FALSE_DETECTION: ("识别错误（物体不对）", "Wrong object"),
    RejectReason.STEAM: ("水蒸气", "Steam"),
    RejectReason.FOG: ("雾或云", "Fog or cloud"),
    RejectReason.SHADOW: ("阴影", "Shadow"),
    RejectReason.REFLECTION: ("反光", "Reflection"),
    RejectReason.PERMITTED: ("许可的活动", "Permitted activity"),
    RejectReason.DUPLICATE: ("重复", "Duplicate"),
    RejectReason.OUT_OF_JURISDICTION: ("不属本辖区", "Out of jurisdiction"),
    RejectReason.INSUFFICIENT_EVIDENCE: ("证据不足", "Insufficient evidence"),
    RejectReason.OTHER: ("其他", "Other"),
}


@router.get("/healthz", response_model=dict[str, str])
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def metrics_route(registry: CollectorRegistry) -> APIRouter:
    metrics = APIRouter(tags=["system"])

    @metrics.get("/metrics", response_class=Response, responses={200: {"content": {PROMETHEUS_TEXT: {}}}})
    def get_metrics() -> Response:
        """Per-camera gauges and counters in the Prometheus text format (for the scraper, no login)."""
        return Response(generate_latest(registry), media_type=PROMETHEUS_TEXT)

    return metrics


@router.get("/api/meta", response_model=Meta)
def meta(services: ServicesDep) -> Meta:
    """States, reason codes (with Chinese and English labels), kinds, roles and lifecycle steps,
    and whether this is a development deployment (whose demo accounts the login page names)."""
    return Meta(
        development=services.settings.development,
        reason_codes=[
            ReasonCode(code=code.value, zh=zh, en=en, needs_text=code in REASONS_NEEDING_TEXT)
            for code, (zh, en) in REASON_LABELS.items()
        ],
        states=[s.value for s in CaseState],
        kinds=["fume", "purifier_off", "occupation", "construction", "inspection"],
        roles=[r.value for r in Role if r is not Role.SYSTEM],
        actions=[action_public(step) for step in STEPS.values()],
    )


@router.get("/api/map/findings", response_model=FindingCollection)
def map_findings(
    _: CaseReader,
    services: ServicesDep,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    state: Annotated[str | None, Query(max_length=32)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    open_only: bool = True,
) -> FindingCollection:
    """Cases with a place (a drone finding's, else its camera's) as GeoJSON points, newest first."""
    where = case_filters(camera=None, kind=kind, state=state, since=since, until=until)
    if open_only and state is None:
        where.append(Case.closed_at.is_(None))
    lat = func.coalesce(Case.lat, Camera.lat)
    lon = func.coalesce(Case.lon, Camera.lon)
    query = (
        select(Case.number, Case.kind, Case.state, Case.camera_id, Case.opened_at, lat, lon)
        .outerjoin(Camera, Case.camera_id == Camera.id)
        .where(*where, lat.is_not(None), lon.is_not(None))
        .order_by(Case.opened_at.desc())
        .limit(MAP_LIMIT)
    )
    with services.db.session() as s:
        rows = s.execute(query).all()
    return FindingCollection(
        features=[
            FindingFeature(
                geometry=PointGeometry(coordinates=(float(lo), float(la))),
                properties={"number": n, "kind": k, "state": st, "camera_id": cam, "opened_at": at.isoformat()},
            )
            for n, k, st, cam, at, la, lo in rows
        ]
    )


@router.get("/api/kpi", response_model=KpiPublic, responses={422: {}})
def kpi(
    _: CaseReader,
    services: ServicesDep,
    start: AwareDatetime | None = None,
    end: AwareDatetime | None = None,
    by: Literal["all", "camera", "kind"] = "all",
) -> KpiPublic:
    """Detections, confirmations, rejections, filing and closing rates, overdue counts and
    officers' review times over [start, end) (default: the last 30 days)."""
    end = end or utc_now()
    start = start or end - timedelta(days=30)
    if end <= start:
        raise invalid("query", "end", f"the period must end after it starts: {start} .. {end}")
    report = kpi_report(services.casebook, start=start, end=end, group_by=by)
    return KpiPublic.model_validate(report.to_json())


@router.get("/api/models", response_model=list[ModelPublic])
def models(_: ModelReader, services: ServicesDep) -> list[ModelPublic]:
    """The model cards beside the shipped and the deployed models; `in_use` marks the run's model."""
    paths = sorted(services.models_dir.glob("*.card.json"))
    if services.model_path is not None:
        beside = services.model_path.with_name(services.model_path.stem + ".card.json")
        if beside.is_file() and beside not in paths:
            paths.append(beside)
    out = []
    for path in paths:
        try:
            card = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        model = path.with_name(str(card.get("model") or path.name.replace(".card.json", ".onnx")))
        in_use = services.model_path is not None and model.resolve() == services.model_path.resolve()
        size = card.get("input_size")
        out.append(
            ModelPublic(
                name=model.stem,
                path=str(model),
                sha256=card.get("sha256"),
                classes=[str(c) for c in card.get("classes", [])],
                input_size=[int(v) for v in size] if isinstance(size, list) else None,
                in_use=in_use,
                card=card,
            )
        )
    return out

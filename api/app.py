"""The FastAPI application that `nonsite run` serves.

What the running deployment looks like from outside: camera health as the workers report
it (JSON and Prometheus), the cases filed, and a console page that shows both and
refreshes itself. Reads only: filing is the task workers' job.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Response
from fastapi.responses import HTMLResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel
from sqlalchemy import func, select

from cases.db import Database
from cases.models import Case
from pipelines.worker import CameraHealth, read_health

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
STATIC = Path(__file__).parent / "static"


class CaseSummary(BaseModel):
    number: str
    kind: str
    state: str
    camera_id: str | None
    zone: str | None
    opened_at: datetime
    last_seen_at: datetime
    evidence: int


class CasePage(BaseModel):
    total: int
    offset: int
    items: list[CaseSummary]


class HealthCollector(Collector):
    """Prometheus metrics of every camera, from the workers' health reports."""

    def __init__(self, health_dir: Path, cameras: set[str] | None = None) -> None:
        self.health_dir = health_dir
        self.cameras = cameras  # a camera worker exports only its own

    def collect(self):  # type: ignore[no-untyped-def]
        reports = [h for h in read_health(self.health_dir) if self.cameras is None or h.camera_id in self.cameras]
        gauges = {
            "decode_fps": ("Frames decoded per second", lambda h: h.decode_fps),
            "detect_fps": ("Frames the engine looked at per second", lambda h: h.detect_fps),
            "lag_seconds": ("Seconds between a frame's capture and the engine finishing it", lambda h: h.lag_s),
            "gated_fraction": (
                "Fraction of engine frames the motion gate spared the detector",
                lambda h: h.gated_fraction,
            ),
            "up": ("1 when the camera is live, else 0", lambda h: float(h.state == "live")),
            "tampered": ("1 while a tampering condition is active", lambda h: float(bool(h.tamper))),
        }
        counters = {
            "frames": ("Frames the engine looked at", lambda h: h.frames),
            "reconnects": ("Times the stream was reconnected", lambda h: h.reconnects),
            "corrupt_frames": ("Frames that could not be decoded", lambda h: h.corrupt),
            "dropped_frames": ("Frames dropped because the engine fell behind", lambda h: h.dropped),
            "violations": ("Violations closed", lambda h: h.violations),
        }
        for name, (doc, value) in gauges.items():
            family = GaugeMetricFamily(f"nonsite_camera_{name}", doc, labels=["camera", "worker"])
            for h in reports:
                family.add_metric([h.camera_id, h.worker], value(h))
            yield family
        for name, (doc, value) in counters.items():
            counter = CounterMetricFamily(f"nonsite_camera_{name}", doc, labels=["camera", "worker"])
            for h in reports:
                counter.add_metric([h.camera_id, h.worker], value(h))
            yield counter


def create_app(db: Database, health_dir: Path) -> FastAPI:
    app = FastAPI(title="nonsite", summary="Non-site enforcement: cameras, violations, cases")
    registry = CollectorRegistry()
    registry.register(HealthCollector(health_dir))

    @app.get("/healthz", response_model=dict[str, str])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", response_class=Response)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=PROMETHEUS_TEXT)

    @app.get("/api/cameras", response_model=list[CameraHealth])
    def cameras() -> list[CameraHealth]:
        return read_health(health_dir)

    @app.get("/api/cases", response_model=CasePage)
    def cases(
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        camera: str | None = None,
        state: str | None = None,
    ) -> CasePage:
        query = select(Case)
        if camera is not None:
            query = query.where(Case.camera_id == camera)
        if state is not None:
            query = query.where(Case.state == state)
        with db.session() as s:
            total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = s.scalars(query.order_by(Case.opened_at.desc(), Case.id.desc()).offset(offset).limit(limit)).all()
            items = [
                CaseSummary(
                    number=c.number,
                    kind=c.kind,
                    state=c.state,
                    camera_id=c.camera_id,
                    zone=c.zone.name if c.zone else None,
                    opened_at=c.opened_at,
                    last_seen_at=c.last_seen_at,
                    evidence=len(c.evidence),
                )
                for c in rows
            ]
        return CasePage(total=total, offset=offset, items=items)

    @app.get("/", response_class=HTMLResponse)
    def console() -> str:
        return (STATIC / "console.html").read_text(encoding="utf-8")

    return app

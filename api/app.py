"""The FastAPI application that `nonsite run` serves: the officers' API and console.

One router per resource (`api/routers`); every route names the roles it admits (`api/deps`).
Domain errors become HTTP answers in one place here: unknown records 404, refused steps
403, illegal or stale steps 409, bad arguments 422.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request, status
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import DataError

from api.accounts import AccountError, LoginThrottle, UnknownAccountError
from api.deps import Services
from api.health import HealthCollector
from api.routers import auth, cameras, cases, evidence, field, models, party, premises, review, system, users
from api.routers import inspections as inspection_routes
from api.routers import monitors as monitor_routes
from api.routers import surveys as survey_routes
from api.settings import ApiSettings
from api.uploads import UnknownUploadError, UploadError, UploadStore
from cases.casebook import Casebook
from cases.db import Database
from cases.errors import (
    CaseError,
    ConcurrentUpdateError,
    DatabaseError,
    IllegalTransitionError,
    PermissionDeniedError,
    UnknownRecordError,
)
from evidence.vault import Vault
from models.errors import ModelsError
from models.registry import ModelRegistry, UnknownVersionError
from pipelines.fume import MonitorService, MonitorServiceError
from pipelines.monitors import UnknownMonitorError
from pipelines.survey_service import SurveyService, UnknownSurveyError

STATIC = Path(__file__).parent / "static"
MODELS_DIR = Path(__file__).resolve().parent.parent / "models" / "zoo"


def _error(code: int):  # type: ignore[no-untyped-def]
    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=code)

    return handler


def create_app(
    db: Database,
    vault: Vault,
    health_dir: Path,
    *,
    settings: ApiSettings | None = None,
    casebook: Casebook | None = None,
    model_path: Path | None = None,
    models_dir: Path = MODELS_DIR,
    uploads_dir: Path | None = None,
    monitors: MonitorService | None = None,
    registry: ModelRegistry | None = None,
    surveys: SurveyService | None = None,
) -> FastAPI:
    settings = settings or ApiSettings()
    app = FastAPI(
        title="nonsite",
        summary="Non-site enforcement: cameras, detections, the review queue, cases and their evidence",
        version="1",
    )
    app.state.services = Services(
        db=db,
        casebook=casebook or Casebook(db, vault),
        health_dir=health_dir,
        settings=settings,
        models_dir=models_dir,
        model_path=model_path,
        throttle=LoginThrottle(settings.login_attempts, settings.login_pause_s),
        monitors=monitors,
        registry=registry,
        surveys=surveys,
        uploads=UploadStore(uploads_dir or vault.root.parent / "uploads", max_bytes=settings.field_upload_max_bytes),
    )
    metrics = CollectorRegistry()
    metrics.register(HealthCollector(health_dir))

    for router in (
        auth.router,
        users.router,
        cameras.router,
        review.router,
        cases.router,
        evidence.router,
        party.router,
        field.router,
        premises.router,
        monitor_routes.router,
        inspection_routes.router,
        system.router,
        models.router,
        survey_routes.router,
        system.metrics_route(metrics),
    ):
        app.include_router(router)

    app.add_exception_handler(UnknownRecordError, _error(status.HTTP_404_NOT_FOUND))
    app.add_exception_handler(UnknownAccountError, _error(status.HTTP_404_NOT_FOUND))
    app.add_exception_handler(PermissionDeniedError, _error(status.HTTP_403_FORBIDDEN))
    app.add_exception_handler(IllegalTransitionError, _error(status.HTTP_409_CONFLICT))
    app.add_exception_handler(ConcurrentUpdateError, _error(status.HTTP_409_CONFLICT))
    app.add_exception_handler(AccountError, _error(status.HTTP_409_CONFLICT))
    app.add_exception_handler(DatabaseError, _error(status.HTTP_503_SERVICE_UNAVAILABLE))
    # a value the database cannot hold (a NUL byte, a number out of range) is the request's fault
    app.add_exception_handler(DataError, _error(status.HTTP_422_UNPROCESSABLE_CONTENT))
    app.add_exception_handler(UnknownUploadError, _error(status.HTTP_404_NOT_FOUND))
    app.add_exception_handler(UploadError, _error(status.HTTP_409_CONFLICT))
    app.add_exception_handler(UnknownMonitorError, _error(status.HTTP_404_NOT_FOUND))
    app.add_exception_handler(MonitorServiceError, _error(status.HTTP_409_CONFLICT))
    app.add_exception_handler(CaseError, _error(status.HTTP_409_CONFLICT))
    app.add_exception_handler(UnknownVersionError, _error(status.HTTP_404_NOT_FOUND))
    app.add_exception_handler(UnknownSurveyError, _error(status.HTTP_404_NOT_FOUND))
    app.add_exception_handler(ModelsError, _error(status.HTTP_409_CONFLICT))

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def console() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/party", include_in_schema=False)
    def party_portal() -> FileResponse:
        return FileResponse(STATIC / "party.html", headers={"Cache-Control": "no-cache"})

    return app

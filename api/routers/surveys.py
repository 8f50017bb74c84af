"""Drone surveys: start one on a flight in the drop folder, follow it, fetch its findings map and report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from fastapi.responses import FileResponse

from api.deps import ServicesDep, SurveyReader, SurveyStarter, invalid
from api.schemas import SurveyCreate, SurveyPublic
from pipelines.survey import SurveyError
from pipelines.survey_service import SurveyRequest, SurveyService, SurveyStatus

router = APIRouter(tags=["surveys"])

SurveyId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


def _service(services: ServicesDep) -> SurveyService:
    if services.surveys is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "this service runs no drone surveys")
    return services.surveys


def _public(s: SurveyStatus) -> SurveyPublic:
    return SurveyPublic(
        id=s.id, state=s.state, folder=str(s.request.get("folder", "")), baseline=s.request.get("baseline"),
        permits=s.request.get("permits"), streets=s.request.get("streets"), requested_by=s.requested_by,
        requested_at=s.requested_at, images=s.images, done=s.done, error=s.error, counts=s.counts,
    )  # fmt: skip


@router.post("/api/surveys", response_model=SurveyPublic, status_code=status.HTTP_202_ACCEPTED, responses={409: {}})
def start_survey(body: SurveyCreate, principal: SurveyStarter, services: ServicesDep) -> SurveyPublic:
    """Queue a survey of a flight copied to the drop folder; findings are filed as cases when it is done."""
    service = _service(services)
    try:
        started = service.start(
            SurveyRequest(body.folder, body.baseline, body.permits, body.streets), requested_by=principal.name
        )
    except SurveyError as e:
        field = next((f for f in ("baseline", "permits", "streets", "folder") if str(e).startswith(f)), "folder")
        raise invalid("body", field, str(e)) from e
    return _public(started)


@router.get("/api/surveys", response_model=list[SurveyPublic], responses={409: {}})
def list_surveys(_: SurveyReader, services: ServicesDep) -> list[SurveyPublic]:
    """Every survey, newest first, with its progress."""
    return [_public(s) for s in _service(services).list()]


@router.get("/api/surveys/{survey_id}", response_model=SurveyPublic, responses={404: {}, 409: {}})
def get_survey(survey_id: SurveyId, _: SurveyReader, services: ServicesDep) -> SurveyPublic:
    return _public(_service(services).status(survey_id))


@router.get(
    "/api/surveys/{survey_id}/findings.geojson",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"application/geo+json": {"schema": {"type": "object", "title": "GeoJSON FeatureCollection"}}}
        },
        404: {},
        409: {},
    },
)
def survey_findings(survey_id: SurveyId, _: SurveyReader, services: ServicesDep) -> FileResponse:
    """The findings as GeoJSON (lon/lat), for the map or QGIS."""
    path = _service(services).output(survey_id, "findings.geojson")
    return FileResponse(path, media_type="application/geo+json", filename=f"{survey_id}-findings.geojson")


@router.get(
    "/api/surveys/{survey_id}/report",
    response_class=FileResponse,
    responses={200: {"content": {"text/markdown": {"schema": {"type": "string"}}}}, 404: {}, 409: {}},
)
def survey_report(survey_id: SurveyId, _: SurveyReader, services: ServicesDep) -> FileResponse:
    """The survey's report: counts, per-image timing, permitted parcels skipped, images it could not use."""
    path = _service(services).output(survey_id, "report.md")
    return FileResponse(path, media_type="text/markdown; charset=utf-8", filename=f"{survey_id}-report.md")

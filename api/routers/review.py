"""The review queue and the detections officers confirm, reject or correct."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime
from sqlalchemy import ColumnElement, select

from api.deps import DetectionReader, Officer, ServicesDep
from api.schemas import DetectionCorrection, DetectionPublic, Page, ReviewItem
from api.views import case_filters, detection_public, list_detections, review_queue
from cases.models import Case, Detection

router = APIRouter(tags=["review"])


@router.get("/api/review", response_model=Page[ReviewItem])
def get_review_queue(
    _: Officer,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
) -> Page[ReviewItem]:
    """Cases awaiting review, highest priority first, then oldest first, with their boxes.

    Confirm or reject one with `POST /api/cases/{number}/steps`.
    """
    where = case_filters(camera=camera, kind=kind, state=None, since=None, until=None)
    with services.db.session() as s:
        return review_queue(s, where=where, offset=offset, limit=limit)


@router.get("/api/detections", response_model=Page[DetectionPublic])
def get_detections(
    _: DetectionReader,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    label: Annotated[str | None, Query(max_length=64)] = None,
    case: Annotated[str | None, Query(max_length=32)] = None,
    corrected: bool | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> Page[DetectionPublic]:
    """Detections (a box at a keyframe of a sealed package), newest first."""
    where: list[ColumnElement[bool]] = []
    if camera is not None:
        where.append(Detection.camera_id == camera)
    if kind is not None:
        where.append(Detection.kind == kind)
    if label is not None:
        where.append(Detection.label == label)
    if case is not None:
        where.append(Case.number == case)
    if corrected is not None:
        where.append(Detection.corrected_at.is_not(None) if corrected else Detection.corrected_at.is_(None))
    if since is not None:
        where.append(Detection.at >= since)
    if until is not None:
        where.append(Detection.at < until)
    with services.db.session() as s:
        return list_detections(s, where=where, offset=offset, limit=limit)


@router.put("/api/detections/{detection_id}/correction", response_model=DetectionPublic, responses={404: {}, 409: {}})
def correct_detection(
    detection_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: DetectionCorrection,
    principal: Officer,
    services: ServicesDep,
) -> DetectionPublic:
    """Correct a detection's label or box; the engine's original stays beside the correction,
    and the correction is what the next training set learns from."""
    services.casebook.correct_detection(detection_id, actor=principal.name, label=body.label, box=body.box)
    with services.db.session() as s:
        detection, number = s.execute(
            select(Detection, Case.number).join(Case, Detection.case_id == Case.id).where(Detection.id == detection_id)
        ).one()
        return detection_public(detection, number)

"""The review queue and the detections officers confirm, reject or correct."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime
from sqlalchemy import ColumnElement, select

from api.deps import DetectionReader, Officer, ServicesDep
from api.schemas import DetectionCorrection, DetectionPublic, Page, ReviewItem
from api.views import case_filters, detection_public, list_detections, review_queue
from cases.casebook import utc_now
from cases.errors import IllegalTransitionError, UnknownRecordError
from cases.models import Case, Detection
from cases.states import TERMINAL_STATES

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
    if body.label is None and body.box is None:
        raise IllegalTransitionError("a correction gives a label, a box, or both")
    with services.db.session() as s:
        found = s.execute(
            select(Detection, Case).join(Case, Detection.case_id == Case.id).where(Detection.id == detection_id)
        ).first()
        if found is None:
            raise UnknownRecordError(f"no detection {detection_id}")
        detection, case = found
        if case.state in TERMINAL_STATES:
            raise IllegalTransitionError(f"case {case.number} is {case.state}; its detections are no longer corrected")
        if body.label is not None:
            detection.corrected_label = body.label
        if body.box is not None:
            detection.corrected_box = [round(v, 1) for v in body.box]
        detection.corrected_by = principal.name
        detection.corrected_at = utc_now()
        s.flush()
        return detection_public(detection, case.number)

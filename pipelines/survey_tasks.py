"""Celery tasks of drone surveys: one task per image, so that workers share a batch, and the merge.

A survey is planned first (`pipelines.survey.plan_survey` writes `plan.json` under its
output folder, which every worker must see, as it must see the images); then
`dispatch_survey` sends `nonsite.survey_image` for each image without a result. The task
that stores the last result sends `nonsite.finish_survey`, which merges the results,
writes the outputs and files the findings through this worker's casebook. Every task is
idempotent: an image's result is kept under `state/` and a done image is not redone;
finishing twice files nothing twice. The tasks take the survey's folder and an image
name, never pixels. The embedded mode runs the same functions in-process
(`pipelines.survey.run_survey`).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from pipelines.survey import SurveyError, SurveyPlan, finish_survey, load_plan, pending_images, process_image
from pipelines.tasks import RetryingTask, app, services
from vision.detectors.base import Detector, file_sha256

logger = logging.getLogger(__name__)

_detectors: dict[tuple[str, str], Detector] = {}
_detectors_lock = threading.Lock()


def detector_for(plan: SurveyPlan) -> Detector:
    """The plan's detector, loaded once per worker process; refused if the file changed since planning."""
    model = plan.model
    if model.path is None:
        raise SurveyError(
            f"the plan of {plan.out_dir} names no model file (it was planned with an in-process detector): "
            "plan it with a model file to run it on workers"
        )
    key = (model.path, model.sha256)
    with _detectors_lock:
        if key not in _detectors:
            path = Path(model.path)
            if not path.is_file():
                raise SurveyError(f"model file {path} of the plan of {plan.out_dir} does not exist on this worker")
            if file_sha256(path) != model.sha256:
                raise SurveyError(f"model file {path} changed since the survey {plan.out_dir} was planned")
            from vision.detectors import create_detector
            from vision.detectors.onnx import sniff_backend

            _detectors[key] = create_detector({"type": sniff_backend(path), "path": path})
        return _detectors[key]


@app.task(base=RetryingTask, name="nonsite.survey_image")
def survey_image(survey_dir: str, image_name: str) -> dict[str, Any]:
    """Process one image of a planned survey (skipped if done); the last one sends the merge."""
    try:
        plan = load_plan(survey_dir)
        result, processed = process_image(plan, image_name, detector=detector_for(plan))
    except SurveyError as e:  # a bad plan or model: no retry helps; a person re-plans
        logger.error("survey %s, image %s: %s", survey_dir, image_name, e)
        return {"survey": survey_dir, "image": image_name, "error": str(e)}
    if processed and not pending_images(plan):
        finish_survey_task.delay(survey_dir)
    return {"survey": survey_dir, "image": image_name, "status": result.status, "processed": processed}


@app.task(base=RetryingTask, name="nonsite.finish_survey")
def finish_survey_task(survey_dir: str) -> dict[str, Any]:
    """Merge a survey's results, write its outputs and, if planned so, file its findings (idempotent)."""
    try:
        plan = load_plan(survey_dir)
        pending = pending_images(plan)
        if pending:  # sent early (a re-dispatch): the last image's task sends it again
            return {"survey": survey_dir, "pending": len(pending)}
        book = services().book if plan.file_cases else None
        report = finish_survey(plan, casebook=book)
    except SurveyError as e:
        logger.error("survey %s cannot be finished: %s", survey_dir, e)
        return {"survey": survey_dir, "error": str(e)}
    return {
        "survey": survey_dir,
        "findings": len(report.findings),
        "cases_filed": report.counts["cases_filed"],
        "filing_errors": report.counts["filing_errors"],
    }


def dispatch_survey(survey_dir: str | Path) -> int:
    """Send a task for every image of a planned survey without a result (or the merge, if none is left).

    Safe to call again: after a worker died, it sends only what is still missing.
    Returns how many image tasks were sent.
    """
    plan = load_plan(survey_dir)
    pending = pending_images(plan)
    for name in pending:
        survey_image.delay(str(survey_dir), name)
    if not pending:
        finish_survey_task.delay(str(survey_dir))
    logger.info("survey %s: sent %d image tasks", survey_dir, len(pending))
    return len(pending)

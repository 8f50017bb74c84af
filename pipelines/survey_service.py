"""Drone surveys started from the API: one at a time in a background thread of the service.

Survey staff copy a flight's images to the drop folder (`incoming/`, a share the drone
station writes to) and start a survey naming the folder (and an earlier survey's folder as
the baseline, a permits and a streets layer, all inside the drop folder). Each survey runs
`pipelines.survey.run_survey` into `runs/<id>/`, whose `plan.json`, `state/` and
`report.json` are its progress and its result, so the service keeps no state of its own: a
survey cut off by a restart is taken up again at start (each image's result is kept, filing
is idempotent). Paths given by a client are resolved inside the drop folder, never outside it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from queue import Queue
from typing import Any, Literal

from cases.casebook import Casebook
from pipelines.survey import SurveyConfig, SurveyError, run_survey
from vision.detectors import Detector

logger = logging.getLogger(__name__)

ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SurveyState = Literal["queued", "running", "done", "failed"]


class UnknownSurveyError(SurveyError):
    """No survey has that id."""


@dataclass(frozen=True)
class SurveyRequest:
    folder: str
    baseline: str | None = None
    permits: str | None = None
    streets: str | None = None


@dataclass(frozen=True)
class SurveyStatus:
    id: str
    state: SurveyState
    request: dict[str, Any]
    requested_by: str
    requested_at: str
    images: int
    done: int
    error: str | None
    counts: dict[str, int]
    out_dir: Path


class SurveyService:
    """Starts, lists and resumes the API's surveys (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        *,
        detector: Callable[[], Detector],
        casebook: Casebook | None,
        config: SurveyConfig | None = None,
    ) -> None:
        self.incoming = Path(root) / "incoming"
        self.runs = Path(root) / "runs"
        self.incoming.mkdir(parents=True, exist_ok=True)
        self.runs.mkdir(parents=True, exist_ok=True)
        self._detector_factory = detector
        self._detector: Detector | None = None
        self.casebook = casebook
        self.config = config
        self._queue: Queue[str | None] = Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- paths --------------------------------------------------------------------------

    def inside(self, relative: str, what: str, *, folder: bool | None) -> Path:
        """`relative` resolved inside the drop folder: a folder, a file, or (`folder=None`) either.

        An error names what was wrong.
        """
        if not relative or relative.startswith("/") or "\\" in relative or "\0" in relative:
            raise SurveyError(f"{what} must be a path inside the drop folder, got {relative!r}")
        path = (self.incoming / relative).resolve()
        if not path.is_relative_to(self.incoming.resolve()):
            raise SurveyError(f"{what} {relative!r} lies outside the drop folder")
        if folder is None and not path.exists():
            raise SurveyError(f"{what} {relative!r} is neither a folder nor a file in the drop folder")
        if folder and not path.is_dir():
            raise SurveyError(f"{what} {relative!r} is not a folder in the drop folder")
        if folder is False and not path.is_file():
            raise SurveyError(f"{what} {relative!r} is not a file in the drop folder")
        return path

    # -- starting and running -------------------------------------------------------------

    def start(self, request: SurveyRequest, *, requested_by: str) -> SurveyStatus:
        """Check the request and queue the survey; its id is returned at once."""
        self.inside(request.folder, "folder", folder=True)
        if request.baseline:
            self.inside(request.baseline, "baseline", folder=None)
        for name, value in (("permits", request.permits), ("streets", request.streets)):
            if value:
                self.inside(value, name, folder=False)
        now = datetime.now(UTC)
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(request.folder).name).strip("-")[:40] or "survey"
        with self._lock:
            number = 1 + sum(1 for _ in self.runs.glob(f"{now:%Y%m%d}-*"))
            survey_id = f"{now:%Y%m%d}-{number:03d}-{stem}"
            folder = self.runs / survey_id
            folder.mkdir()
        request_doc = {k: v for k, v in request.__dict__.items() if v}
        (folder / "request.json").write_text(
            json.dumps({"request": request_doc, "requested_by": requested_by, "requested_at": now.isoformat()}),
            encoding="utf-8",
        )
        self._enqueue(survey_id)
        return self.status(survey_id)

    def _enqueue(self, survey_id: str) -> None:
        self._queue.put(survey_id)
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="surveys", daemon=True)
            self._thread.start()

    def resume(self) -> list[str]:
        """Queue again every survey that did not finish (the service stopped while it ran)."""
        unfinished = [s.id for s in self.list() if s.state in ("queued", "running")]
        for survey_id in unfinished:
            self._enqueue(survey_id)
        return unfinished

    def stop(self) -> None:
        self._queue.put(None)

    def _work(self) -> None:
        while (survey_id := self._queue.get()) is not None:
            try:
                self.run(survey_id)
            except Exception:  # the failure is in the survey's folder; the next survey runs
                logger.exception("survey %s failed", survey_id)

    def run(self, survey_id: str) -> None:
        """Run one survey here and now (the worker thread calls this)."""
        folder = self._folder(survey_id)
        meta = json.loads((folder / "request.json").read_text(encoding="utf-8"))
        request = meta["request"]
        (folder / "failed.json").unlink(missing_ok=True)
        try:
            if self._detector is None:
                self._detector = self._detector_factory()
            run_survey(
                self.inside(request["folder"], "folder", folder=True),
                out_dir=folder / "out",
                detector=self._detector,
                baseline=self.inside(request["baseline"], "baseline", folder=None) if request.get("baseline") else None,
                permits=self.inside(request["permits"], "permits", folder=False) if request.get("permits") else None,
                streets=self.inside(request["streets"], "streets", folder=False) if request.get("streets") else None,
                casebook=self.casebook,
                config=self.config,
            )
        except Exception as e:
            (folder / "failed.json").write_text(json.dumps({"error": str(e) or type(e).__name__}), encoding="utf-8")
            raise

    # -- reading ----------------------------------------------------------------------------

    def _folder(self, survey_id: str) -> Path:
        if not ID.match(survey_id) or not (self.runs / survey_id / "request.json").is_file():
            raise UnknownSurveyError(f"no survey {survey_id}")
        return self.runs / survey_id

    def status(self, survey_id: str) -> SurveyStatus:
        folder = self._folder(survey_id)
        meta = json.loads((folder / "request.json").read_text(encoding="utf-8"))
        out = folder / "out"
        images = done = 0
        counts: dict[str, int] = {}
        plan = out / "plan.json"
        if plan.is_file():
            images = len(json.loads(plan.read_text(encoding="utf-8")).get("images", []))
            done = sum(1 for _ in (out / "state").glob("*.json")) if (out / "state").is_dir() else 0
        failed = folder / "failed.json"
        report = out / "report.json"
        state: SurveyState
        error = None
        if failed.is_file():
            state, error = "failed", str(json.loads(failed.read_text(encoding="utf-8")).get("error"))
        elif report.is_file():
            state = "done"
            counts = {k: int(v) for k, v in json.loads(report.read_text(encoding="utf-8")).get("counts", {}).items()}
        else:
            state = "running" if plan.is_file() else "queued"
        return SurveyStatus(
            id=survey_id, state=state, request=meta["request"], requested_by=meta["requested_by"],
            requested_at=meta["requested_at"], images=images, done=min(done, images), error=error, counts=counts,
            out_dir=out,
        )  # fmt: skip

    def list(self) -> list[SurveyStatus]:
        ids = sorted((p.parent.name for p in self.runs.glob("*/request.json")), reverse=True)
        return [self.status(i) for i in ids if ID.match(i)]

    def output(self, survey_id: str, name: Literal["report.json", "report.md", "findings.geojson"]) -> Path:
        path = self.status(survey_id).out_dir / name
        if not path.is_file():
            raise UnknownSurveyError(f"survey {survey_id} has no {name} yet")
        return path

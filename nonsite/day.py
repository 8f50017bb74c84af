"""A synthetic day of camera footage through the whole closed loop, for the KPI report.

Four cameras watch a street (a restaurant row, a market sidewalk, a building site and a
quiet alley); each contributes scenes spread over the day's hours, rendered with exact
ground truth. Every scene runs through the camera engine; every violation is sealed and
filed (findings within the two-hour merge window of `DAY_POLICY` join one case).
Officers then review each case the way a careful officer would, by the ground truth: a
finding that overlaps a true event of its kind is confirmed, anything else is rejected
as a false detection. Confirmed stalls and plumes are warned with a one-working-day
rectification order; confirmed construction is filed for a penalty. On the next working
day the cameras take a fresh look at every warned zone (rendered with the violation
gone, except at one camera where the stall is back), and the re-check closes or
escalates each case. The figures are synthetic: they say how the loop behaves, never how
the model does on real streets.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from cases.casebook import Casebook
from cases.db import Database
from cases.invariants import InvariantReport, check_invariants
from cases.kpi import KpiReport, kpi_report
from cases.models import Case, Detection
from cases.policy import CasePolicy
from cases.states import CaseState, RejectReason, Role
from datasets.synthetic import DistractorKind, SceneSpec, SceneTruth, sample_scene_spec, write_video
from evidence.package import load_package
from evidence.vault import Vault
from nonsite.analyze import analyze_source, synthetic_camera
from nonsite.recheck import recheck_case
from pipelines.sources import FileSource
from vision.detectors import Detector

logger = logging.getLogger(__name__)

LOCAL = ZoneInfo("Asia/Shanghai")
#: a Monday with a working Tuesday after it
DAY = date(2026, 11, 23)
DAY_SEED = 20261123
#: camera id -> what its scenes show
CAMERAS = {
    "cam-restaurant-row": "restaurant_street",
    "cam-market-sidewalk": "sidewalk_stall",
    "cam-building-site": "construction_site",
    "cam-quiet-alley": "sampled",
}
SCENE_HOURS = (8, 11, 14, 17, 20)
#: the camera whose stall is back when it is re-checked
STUBBORN_CAMERA = "cam-market-sidewalk"
OFFICERS = (("officer-li", Role.OFFICER), ("officer-wang", Role.OFFICER), ("head-chen", Role.HEAD))
MARKER = ".nonsite-day"
#: an officer redraws a box that overlaps its object less than this
CORRECT_BELOW_IOU = 0.85
#: scenes of one camera come three hours apart: a two-hour merge window keeps them separate cases
DAY_POLICY = CasePolicy(rectify_working_days=1, merge_window_hours=2)


@dataclass(frozen=True)
class DayResult:
    out_dir: Path
    scenes: int
    packages: int
    kpis: KpiReport
    kpis_by_kind: KpiReport
    invariants: InvariantReport
    states: dict[str, int]


def _scene(camera_id: str, hour: int, index: int) -> SceneSpec:
    preset = CAMERAS[camera_id]
    seed = DAY_SEED + 100 * index + hour
    if preset == "sampled":
        return sample_scene_spec(seed) if hour % 2 else SceneSpec.distractor_only(seed=seed)
    if hour == 20:  # evening: nothing going on at this camera
        return SceneSpec.distractor_only(seed=seed)
    return getattr(SceneSpec, preset)(seed=seed)


def _render(spec: SceneSpec, video: Path, start: datetime) -> SceneTruth:
    truth = write_video(spec, video)
    stamp = start.timestamp()
    os.utime(video, (stamp, stamp))  # file sources stamp frames from the file's time
    return truth


def _fresh(out_dir: Path) -> None:
    if out_dir.exists():
        if not (out_dir / MARKER).is_file() and any(out_dir.iterdir()):
            raise FileExistsError(f"{out_dir} exists and was not made by `nonsite day`; choose another --out")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    (out_dir / MARKER).write_text("made by `nonsite day`; removed and rebuilt by each run\n")


def run_synthetic_day(detector: Detector, out_dir: Path, *, hours: tuple[int, ...] = SCENE_HOURS) -> DayResult:
    """Run the day and its re-checks; everything lands under `out_dir` (rebuilt each run)."""
    _fresh(out_dir)
    clock = SimulatedClock(datetime.combine(DAY, time(7), LOCAL).astimezone(UTC))
    db = Database(f"sqlite:///{out_dir / 'cases.db'}")
    vault = Vault(out_dir / "evidence", out_dir / "keys")
    try:
        book = Casebook(db, vault, policy=DAY_POLICY, clock=clock)
        for username, role in OFFICERS:
            book.add_user(username, role)
        truths: dict[str, tuple[SceneTruth, str]] = {}  # package id -> (scene truth, camera id)
        zones: dict[str, tuple[str, ...]] = {}
        scenes = 0
        for hour in hours:
            for index, camera_id in enumerate(CAMERAS):
                start = datetime.combine(DAY, time(hour, 5 * index), LOCAL).astimezone(UTC)
                name = f"{camera_id}-{hour:02d}h"
                video = out_dir / "footage" / f"{name}.mp4"
                video.parent.mkdir(parents=True, exist_ok=True)
                truth = _render(_scene(camera_id, hour, index), video, start)
                camera = synthetic_camera(camera_id, truth, str(video))
                zones[camera_id] = tuple(z.name for z in camera.zones)
                book.register_camera(camera_id, name=camera_id, zones=[(z.name, z.rule) for z in camera.zones])
                analysis = analyze_source(FileSource(video, source_id=camera_id), camera, detector,
                                          out_dir / "scenes" / name, vault=vault)  # fmt: skip
                scenes += 1
                clock.now = start + timedelta(minutes=2)
                for package_id in analysis.packages:
                    truths[package_id] = (truth, camera_id)
                    book.file_package(package_id)
        clock.now = datetime.combine(DAY, time(21, 30), LOCAL).astimezone(UTC)
        _review(book, vault, truths)
        _recheck(book, detector, out_dir, clock)
        end = datetime.combine(DAY + timedelta(days=3), time(0), LOCAL).astimezone(UTC)
        start = datetime.combine(DAY, time(0), LOCAL).astimezone(UTC)
        with db.session() as s:
            states: dict[str, int] = {}
            for case in s.query(Case):
                states[case.state] = states.get(case.state, 0) + 1
        result = DayResult(
            out_dir,
            scenes,
            len(vault.package_ids()),
            kpi_report(book, start=start, end=end, group_by="camera"),
            kpi_report(book, start=start, end=end, group_by="kind"),
            check_invariants(book, at=clock.now),
            states,
        )
        (out_dir / "kpis.json").write_text(json.dumps(result.kpis.to_json(), indent=2, ensure_ascii=False))
        return result
    finally:
        vault.close()
        db.close()


class SimulatedClock:
    """A clock the simulation moves by hand (the casebook reads it for filing and step times)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _true_event(truth: SceneTruth, violation: dict[str, Any]) -> bool:
    start, end = int(violation["start_frame"]), int(violation["end_frame"])
    return any(e.kind == violation["kind"] and e.start_frame <= end and start <= e.end_frame for e in truth.events)


def _review(book: Casebook, vault: Vault, truths: dict[str, tuple[SceneTruth, str]]) -> None:
    """Officers review every case in the queue by the ground truth of its first finding."""
    with book.db.session() as s:
        queue = [
            (case.number, case.kind, case.evidence[0].package_id)
            for case in s.query(Case).filter(Case.state == CaseState.PENDING_REVIEW.value).order_by(Case.id)
        ]
    for i, (number, kind, package_id) in enumerate(queue):
        officer = OFFICERS[i % 2][0]
        other = OFFICERS[(i + 1) % 2][0]
        package, _ = load_package(vault.store, package_id)
        truth, _camera = truths[package_id]
        if not _true_event(truth, package.manifest["violation"]):
            book.apply(number, "reject", actor=officer, reason_code=_reason_code(truth),
                       reason="no such event in the scene")  # fmt: skip
            continue
        _correct_boxes(book, number, truth, officer)
        book.apply(number, "confirm", actor=officer)
        if kind == "construction":
            book.apply(number, "file", actor="head-chen")
            book.apply(number, "send_pre_notice", actor=other)
        else:
            book.apply(number, "warn", actor=officer, reason="rectify by the end of the next working day")


def _reason_code(truth: SceneTruth) -> str:
    """What an officer would say the engine mistook: the scene's steam or haze, else a false detection."""
    distractors = {DistractorKind(d) for d in truth.spec_json.get("distractors", [])}
    if DistractorKind.STEAM in distractors:
        return RejectReason.STEAM.value
    if distractors & {DistractorKind.FOG, DistractorKind.CLOUDS}:
        return RejectReason.FOG.value
    return RejectReason.FALSE_DETECTION.value


def _correct_boxes(book: Casebook, number: str, truth: SceneTruth, officer: str) -> None:
    """Before confirming, the officer fixes boxes that fit their object badly and wrong labels
    (by the truth of the keyframe: the object the box overlaps most)."""
    with book.db.session() as s:
        rows = [
            (d.id, d.frame, d.label, (d.x1, d.y1, d.x2, d.y2))
            for d in s.scalars(select(Detection).join(Case, Detection.case_id == Case.id).where(Case.number == number))
        ]
    for detection_id, frame, label, box in rows:
        if not 0 <= frame < len(truth.frames):
            continue
        best, best_iou = None, 0.0
        for obj in truth.frames[frame].objects:
            iou = _iou(box, obj.xyxy)
            if iou > best_iou:
                best, best_iou = obj, iou
        if best is None or best_iou < 0.1:
            continue
        new_label = best.class_name if best.class_name != label else None
        new_box = best.xyxy if best_iou < CORRECT_BELOW_IOU else None
        if new_label or new_box:
            book.correct_detection(detection_id, actor=officer, label=new_label, box=new_box)


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _recheck(book: Casebook, detector: Detector, out_dir: Path, clock: SimulatedClock) -> None:
    """On the next working day, take a fresh look at every zone whose rectification period has ended."""
    clock.now = datetime.combine(DAY + timedelta(days=2), time(9), LOCAL).astimezone(UTC)
    for due in book.due_rechecks():
        with book.db.session() as s:
            camera_id = s.query(Case).filter_by(number=due.case_number).one().camera_id
        if camera_id is None:
            continue
        back = camera_id == STUBBORN_CAMERA
        seed = DAY_SEED + 7
        spec = getattr(SceneSpec, CAMERAS[camera_id])(seed=seed) if back else SceneSpec.distractor_only(seed=seed)
        video = out_dir / "footage" / f"recheck-{due.case_number}.mp4"
        truth = _render(spec, video, clock.now)
        camera = synthetic_camera(camera_id, truth, str(video))
        source = FileSource(video, source_id=camera_id)
        recheck_case(book, due.case_number, camera=camera, source=source, detector=detector,
                     out_dir=out_dir / "rechecks" / due.case_number)  # fmt: skip
        clock.now += timedelta(minutes=5)

"""A synthetic district for a simulated week: premises, fume monitors and cameras, every
finding filed, officers reviewing by the ground truth; how each path opens cases and what
fusing cameras with monitors changes.

The district has 32 restaurants on four streets. Each has a ground-truth habit: compliant
(its purifier works), exceeding (a dirty purifier: above GB 18483's 2.0 mg/m³ in some
cooking sessions), purifier-off (switches the purifier off in some dinner sessions) or
steamy (compliant, but its exhaust throws visible steam). Sixteen carry online monitors (a
reading every five minutes), sixteen are watched by cameras (two fume zones per camera),
eight have both. Camera plume findings are simulated as sealed findings — no footage is rendered
here — seen with a fixed probability when the premises really emits, and as steam false
alarms at steamy premises. Monitor readings go through the real `MonitorService` (episodes,
sealing, filing) and every camera finding through the real casebook, so fusion, dedupe
and review happen exactly as in a deployment.

Officers review each case by the ground truth of its premises and time: a case is
confirmed when the premises truly exceeded or ran without its purifier then, and rejected
as steam otherwise. All figures are synthetic.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
from sqlalchemy import select

from cases.casebook import Casebook
from cases.db import Database
from cases.invariants import check_invariants
from cases.models import Case, Monitor
from cases.policy import CasePolicy
from cases.premises import import_premises
from cases.states import CaseState, Role
from evidence.package import PackageFile
from evidence.vault import Vault
from nonsite import __version__
from nonsite.day import SimulatedClock
from pipelines.fume import MonitorService
from pipelines.monitors import MonitorConfig, Reading

LOCAL = ZoneInfo("Asia/Shanghai")
START = date(2026, 11, 23)  # a Monday
STREETS = ("文化街道", "解放街道", "人民街道", "新华街道")
SESSIONS = ((time(11), time(13)), (time(17), time(20)))  # lunch and dinner, local time
HABITS = ("compliant", "exceeding", "purifier_off", "steamy")
READING_EVERY = timedelta(minutes=5)
CAMERA_SEES = 0.8  # chance a camera sees a real plume in a session
STEAM_ALARM = 0.5  # chance a steamy premises' steam is taken for a plume in a session
MONITOR = dict(expected_interval_s=300, max_gap_s=900, min_episode_s=900, stale_after_s=900, offline_after_s=3600)
OFFICERS = (("officer-li", Role.OFFICER), ("officer-wang", Role.OFFICER))


@dataclass(frozen=True)
class Premises:
    code: str
    street: str
    habit: str
    monitored: bool
    camera: str | None  # the camera whose zone (named after the premises) watches it


@dataclass
class DistrictResult:
    out_dir: Path
    days: int
    premises: int
    monitors: int
    cameras: int
    readings: int
    paths: dict[str, Counter[str]] = field(default_factory=dict)  # path -> outcome counts
    fused_separately: int = 0  # cases there would have been had fused evidence not met
    invariants_ok: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "days": self.days,
            "premises": self.premises,
            "monitors": self.monitors,
            "cameras": self.cameras,
            "readings": self.readings,
            "paths": {path: dict(counts) for path, counts in self.paths.items()},
            "cases_without_fusion": self.fused_separately,
            "invariants_ok": self.invariants_ok,
        }


def _district(rng: np.random.Generator) -> list[Premises]:
    """32 restaurants: 8 with a camera and a monitor, 8 with a camera only, 8 with a monitor
    only, 8 with neither; each camera watches two of them."""
    out = []
    for i in range(32):
        habit = HABITS[int(rng.choice(4, p=[0.5, 0.2, 0.15, 0.15]))]
        watched = i % 4 in (0, 1)
        camera = f"cam-{i // 4 + 1:02d}" if watched else None
        out.append(Premises(f"R-{i + 1:03d}", STREETS[i % 4], habit, monitored=i % 4 in (0, 2), camera=camera))
    return out


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, LOCAL).astimezone(UTC)


@dataclass(frozen=True)
class _Emission:
    start: datetime
    end: datetime
    kind: str  # exceedance | purifier_off | steam


def _emissions(p: Premises, day: date, rng: np.random.Generator) -> list[_Emission]:
    """What the premises truly did in each cooking session of the day."""
    out = []
    for index, (open_at, close_at) in enumerate(SESSIONS):
        start, end = _local(day, open_at), _local(day, close_at)
        offset = timedelta(minutes=int(rng.integers(10, 50)))
        length = timedelta(minutes=int(rng.integers(30, 70)))
        if p.habit == "exceeding" and rng.random() < 0.6:
            out.append(_Emission(start + offset, min(end, start + offset + length), "exceedance"))
        elif p.habit == "purifier_off" and index == 1 and rng.random() < 0.5:
            out.append(_Emission(start + offset, min(end, start + offset + length), "purifier_off"))
        elif p.habit == "steamy":
            out.append(_Emission(start + offset, min(end, start + offset + length), "steam"))
    return out


def _readings(p: Premises, day: date, emissions: list[_Emission], rng: np.random.Generator) -> list[Reading]:
    """A day of the monitor's readings: low outside cooking, the truth inside it."""
    readings = []
    at = _local(day, time(0))
    end = at + timedelta(days=1)
    sessions = [(_local(day, a), _local(day, b)) for a, b in SESSIONS]
    while at < end:
        cooking = any(a <= at < b for a, b in sessions)
        value = float(rng.uniform(0.6, 1.4)) if cooking else float(rng.uniform(0.02, 0.2))
        purifier = True
        for e in emissions:
            if e.start <= at <= e.end and e.kind == "exceedance":
                value = float(rng.uniform(2.6, 5.0))
            elif e.start <= at <= e.end and e.kind == "purifier_off":  # fumes, but under the standard
                value, purifier = float(rng.uniform(1.2, 1.9)), False
        readings.append(
            Reading(
                monitor_id=f"mon-{p.code}",
                at=at,
                concentration_mg_m3=round(value, 2),
                purifier_on=purifier,
                fan_on=cooking,
            )
        )
        at += READING_EVERY
    return readings


def _camera_package(vault: Vault, p: Premises, e: _Emission, rng: np.random.Generator) -> str:
    """A camera plume finding as the camera worker would seal it (a keyframe, no clip)."""
    assert p.camera is not None
    start = e.start + timedelta(minutes=int(rng.integers(0, 10)))
    end = min(e.end, start + timedelta(minutes=int(rng.integers(3, 15))))
    image = np.full((90, 160, 3), 200, np.uint8)
    cv2.circle(image, (80, 40), 25, (170, 170, 170), -1)
    cv2.putText(image, p.code, (4, 84), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    ok, png = cv2.imencode(".png", image)
    assert ok
    finding = {
        "device": {"id": p.camera, "kind": "camera", "name": p.camera},
        "place": {},
        "capture": {"started_at": start.isoformat(), "ended_at": end.isoformat(), "clock_source": "simulated"},
        "violation": {
            "kind": "fume",
            "zone": p.code,
            "started_at": start.isoformat(),
            "ended_at": end.isoformat(),
            "score": round(float(rng.uniform(0.5, 0.95)), 3),
            "simulated": True,
        },
        "model": {},
        "rule": {"rule": "fume_watch"},
        "engine": {"name": "nonsite", "version": __version__},
    }
    keyframe = PackageFile("keyframe-000001.png", png.tobytes(), "image/png", "keyframe")
    return vault.seal(finding, [keyframe]).package.package_id


def run_district(out_dir: Path, *, days: int = 7, seed: int = 20261123) -> DistrictResult:
    """Simulate `days` days of the district; everything lands under `out_dir` (rebuilt each run)."""
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    clock = SimulatedClock(_local(START, time(0)))
    db = Database(f"sqlite:///{out_dir / 'cases.db'}")
    vault = Vault(out_dir / "evidence", out_dir / "keys")
    try:
        book = Casebook(db, vault, policy=CasePolicy(merge_window_hours=4), clock=clock)
        for username, role in OFFICERS:
            book.add_user(username, role)
        district = _district(rng)
        cameras = sorted({p.camera for p in district if p.camera})
        for camera in cameras:
            zones = [(p.code, "fume_watch") for p in district if p.camera == camera]
            book.register_camera(camera, name=camera, zones=zones)
        rows = ["code,name,street,risk_grade,zones"]
        for p in district:
            zone = f"{p.camera}:{p.code}" if p.camera else ""
            rows.append(f"{p.code},餐馆 {p.code},{p.street},{'ABCD'[int(p.code[2:]) % 4]},{zone}")
        (out_dir / "premises.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        report = import_premises(db, out_dir / "premises.csv", at=clock())
        if not report.ok:
            raise ValueError(f"the district's premises file is wrong: {report.problems[0]}")
        monitors = MonitorService(book, clock=clock)
        for p in district:
            if p.monitored:
                monitors.register(MonitorConfig(monitor_id=f"mon-{p.code}", premises_id=p.code, **MONITOR))
        truth: dict[str, list[_Emission]] = {p.code: [] for p in district}
        readings = 0
        for n in range(days):
            day = START + timedelta(days=n)
            for p in district:
                emissions = _emissions(p, day, rng)
                truth[p.code] += emissions
                if p.camera:
                    for e in emissions:
                        sees = CAMERA_SEES if e.kind != "steam" else STEAM_ALARM
                        if rng.random() < sees:
                            clock.now = e.end + timedelta(minutes=2)
                            book.file_package(_camera_package(vault, p, e, rng))
                if p.monitored:
                    batch = _readings(p, day, emissions, rng)
                    clock.now = _local(day + timedelta(days=1), time(0))
                    monitors.ingest(batch, received_at=clock.now)
                    readings += len(batch)
            clock.now = _local(day + timedelta(days=1), time(0, 30))
            monitors.expire(clock.now)
            _review(book, truth, clock)
        result = DistrictResult(
            out_dir,
            days,
            len(district),
            sum(p.monitored for p in district),
            len(cameras),
            readings,
        )
        _tally(book, result)
        result.invariants_ok = check_invariants(book, at=clock.now).ok
        (out_dir / "district.json").write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        return result
    finally:
        vault.close()
        db.close()


def _sources(book: Casebook, case: Case) -> set[str]:
    return {book.source_of(e.package_id) for e in case.evidence if e.role == "detection"}


def _review(book: Casebook, truth: dict[str, list[_Emission]], clock: SimulatedClock) -> None:
    """Officers review the queue by the truth of each case's premises over the case's span."""
    with book.db.session() as s:
        queue = [
            (c.number, c.kind, c.party.code if c.party else None, c.first_seen_at, c.last_seen_at)
            for c in s.scalars(select(Case).where(Case.state == CaseState.PENDING_REVIEW.value).order_by(Case.id))
        ]
    for i, (number, kind, code, first, last) in enumerate(queue):
        officer = OFFICERS[i % 2][0]
        # a plume is real fumes (over the standard, or with the purifier off); purifier off is its own
        wanted = {"purifier_off"} if kind == "purifier_off" else {"exceedance", "purifier_off"}
        slack = timedelta(minutes=30)
        real = code is not None and any(
            e.kind in wanted and e.start - slack <= last and first <= e.end + slack for e in truth[code]
        )
        if real:
            book.apply(number, "confirm", actor=officer)
            book.apply(number, "warn", actor=officer, reason="clean or repair the purifier", rectify_days=3)
        else:
            book.apply(number, "reject", actor=officer, reason_code="steam", reason="no emission above the standard")


def _tally(book: Casebook, result: DistrictResult) -> None:
    """Cases by the path that opened them and what officers decided."""
    with book.db.session() as s:
        monitored = {party_id for party_id in s.scalars(select(Monitor.party_id)) if party_id is not None}
        for case in s.scalars(select(Case)):
            sources = _sources(book, case)
            if case.kind == "purifier_off":
                path = "purifier off (monitor)"
            elif case.fused_at is not None:
                path = "fused camera + monitor"
                result.fused_separately += 1
            elif sources == {"camera"}:
                path = "camera only, monitored premises" if case.party_id in monitored else "camera only, no monitor"
            elif sources == {"fume_monitor"}:
                path = "monitor only"
            else:
                path = "camera + monitor, apart in time"
            outcome = "rejected" if case.state == CaseState.REJECTED.value else "confirmed"
            result.paths.setdefault(path, Counter())[outcome] += 1


def format_district(result: DistrictResult) -> str:
    head = (
        f"{result.days} simulated days, {result.premises} restaurants, {result.monitors} monitors "
        f"({result.readings} readings), {result.cameras} cameras (synthetic figures)"
    )
    lines = [head, f"{'path':<34} {'cases':>6} {'confirmed':>10} {'rejected':>9}"]
    for path, counts in sorted(result.paths.items()):
        total = sum(counts.values())
        lines.append(f"{path:<34} {total:>6} {counts['confirmed']:>10} {counts['rejected']:>9}")
    total = sum(sum(c.values()) for c in result.paths.values())
    lines.append(
        f"without fusion the fused cases would have been {result.fused_separately} more case(s) to review "
        f"({total + result.fused_separately} instead of {total})"
    )
    lines.append(f"closed-loop invariants {'hold' if result.invariants_ok else 'BROKEN'}")
    return "\n".join(lines)

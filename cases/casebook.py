"""The casebook: filing sealed findings as cases and moving cases through their lifecycle.

Every public method runs in its own database transaction and, once that has committed,
appends the new transitions to the evidence Merkle log. A crash between the two leaves
transitions without a leaf; `heal()` logs them, and files every sealed package that has
no case yet, so re-running it after any crash loses nothing and files nothing twice.

Concurrency: a case row is locked (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite
serialises writers) and versioned, so parallel writers on one case either see each
other's work or fail with `ConcurrentUpdateError`; filing locks the camera so that two
findings of one camera cannot both open a case where dedupe would have merged them.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cases.calendar import DeadlineRule, WorkCalendar, deadline
from cases.db import Database
from cases.errors import (
    CaseError,
    ConcurrentUpdateError,
    FilingError,
    IllegalTransitionError,
    PermissionDeniedError,
    UnknownRecordError,
)
from cases.ledger import seal_record, transition_record
from cases.models import (
    Camera,
    Case,
    CaseCounter,
    CaseEvidence,
    CustodyRecord,
    Deadline,
    Detection,
    Inspection,
    Party,
    Transition,
    User,
    Zone,
)
from cases.policy import ENTRY_DEADLINES, PARTY_DEADLINES, STATUTORY, CasePolicy
from cases.states import REASONS_NEEDING_TEXT, STEPS, TERMINAL_STATES, CaseState, RejectReason, Role, Step
from evidence.errors import EvidenceError
from evidence.merkle import leaf_hash
from evidence.package import PackageError, load_package
from evidence.vault import CUSTODY_ACTIONS, CustodyEvent, Vault

logger = logging.getLogger(__name__)

SYSTEM_USER = "system"
EVIDENCE_ROLES = ("detection", "recheck", "attachment")
_RETRIES = 3


def utc_now() -> datetime:
    return datetime.now(UTC)


# what a kind's box shows when the rule does not name the object's class
DEFAULT_LABELS = {"fume": "smoke", "construction": "construction", "occupation": "object"}
# the review queue's order: kinds that hurt more are looked at first, repeats before first offences
KIND_PRIORITY = {"fume": 30, "purifier_off": 25, "construction": 20, "occupation": 10}
REPEAT_PRIORITY = 5
FUSED_PRIORITY = 15
# kinds whose findings are of premises: a camera zone's and a monitor's of one premises dedupe and fuse
PARTY_KINDS = frozenset({"fume", "purifier_off", "inspection"})
FUSING_SOURCES = frozenset({"camera", "fume_monitor"})


@dataclass(frozen=True, slots=True)
class _Place:
    where: list[Any]
    by_point: bool  # drone findings: candidates must also be near by distance


@dataclass(frozen=True, slots=True)
class DetectedBox:
    """One box of a finding at one of its keyframes, as the engine saw it."""

    frame: int
    at: datetime
    xyxy: tuple[float, float, float, float]
    score: float
    label: str


def _keyframe_boxes(violation: Mapping[str, Any], started: datetime, fps: float | None) -> tuple[DetectedBox, ...]:
    """The boxes at the record's keyframes (or, if none falls on one, at the confirming frame)."""
    boxes = violation.get("boxes") or []
    attributes = violation.get("attributes") or {}
    label = str(attributes.get("class_name") or DEFAULT_LABELS.get(str(violation["kind"]), str(violation["kind"])))
    wanted = set(violation.get("keyframes") or [])
    chosen = [b for b in boxes if b["frame"] in wanted]
    if not chosen and boxes:
        confirmed = violation.get("confirmed_frame", boxes[0]["frame"])
        chosen = [min(boxes, key=lambda b: abs(b["frame"] - confirmed))]
    start_frame = int(violation.get("start_frame", 0))
    out = []
    for b in chosen:
        offset = (b["frame"] - start_frame) / fps if fps else 0.0
        x1, y1, x2, y2 = (float(v) for v in b["xyxy"])
        out.append(
            DetectedBox(
                int(b["frame"]),
                started + timedelta(seconds=max(0.0, offset)),
                (x1, y1, x2, y2),
                float(b["score"]),
                label,
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Finding:
    """What filing needs to know of a sealed package: its id, kind, where and when."""

    package_id: str
    kind: str
    camera_id: str | None
    zone: str | None
    started_at: datetime
    ended_at: datetime
    score: float | None = None
    lat: float | None = None
    lon: float | None = None
    radius_m: float | None = None
    recheck_of: str | None = None  # a re-check look names the case it was taken for
    attach_to: str | None = None  # field evidence an officer took for a case names it
    premises: str | None = None  # the registry code of the premises a finding without a camera zone is of
    source: str = "camera"  # the device kind: camera, fume_monitor, officer, drone
    present: bool = True  # a re-check look may say the violation was gone
    boxes: tuple[DetectedBox, ...] = ()

    @classmethod
    def from_manifest(cls, package_id: str, manifest: Mapping[str, Any]) -> Finding:
        """Read a finding from a sealed manifest (device, place, violation)."""
        try:
            violation = manifest["violation"]
            place = manifest.get("place") or {}
            device = manifest.get("device") or {}
            started = datetime.fromisoformat(violation["started_at"])
            ended = datetime.fromisoformat(violation["ended_at"])
            fps = (manifest.get("capture") or {}).get("fps")
            return cls(
                package_id=package_id,
                kind=str(violation["kind"]),
                # an officer's field evidence names the officer as its device, not a camera
                camera_id=device.get("id") if device.get("kind", "camera") == "camera" else None,
                zone=violation.get("zone"),
                started_at=started,
                ended_at=ended,
                score=None if violation.get("score") is None else float(violation["score"]),
                lat=place.get("lat"),
                lon=place.get("lon"),
                radius_m=place.get("radius_m"),
                recheck_of=violation.get("recheck_of"),
                attach_to=violation.get("attach_to"),
                premises=violation.get("premises"),
                source=str(device.get("kind", "camera")),
                present=bool(violation.get("present", True)),
                boxes=_keyframe_boxes(violation, started, float(fps) if fps else None),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise FilingError(f"package {package_id}: the manifest lacks what filing needs ({e!r})") from e


@dataclass(frozen=True, slots=True)
class Filed:
    """The outcome of filing one finding."""

    package_id: str
    case_number: str
    created: bool  # a new case was opened
    joined: bool  # the finding joined an open case as further evidence
    repeat_of: str | None = None  # the closed case this one repeats


@dataclass(frozen=True, slots=True)
class Stepped:
    case_number: str
    action: str
    seq: int
    from_state: str
    to_state: str
    version: int


@dataclass(frozen=True, slots=True)
class DeadlineView:
    case_number: str
    kind: str
    state: str
    camera_id: str | None
    name: str
    owner: str
    basis: str
    due_at: datetime
    provisional: bool


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(min(1.0, a)))


class Casebook:
    """Cases of one agency: filing, dedupe, lifecycle, deadlines, re-checks."""

    def __init__(
        self,
        db: Database,
        vault: Vault,
        *,
        policy: CasePolicy | None = None,
        calendar: WorkCalendar | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.db = db
        self.vault = vault
        self.policy = policy or CasePolicy()
        self.calendar = calendar or WorkCalendar()
        self.clock = clock
        self._log_lock = threading.Lock()
        self.add_user(SYSTEM_USER, Role.SYSTEM, display_name="nonsite engine")

    # --- registry ---------------------------------------------------------------------------

    def add_user(self, username: str, role: Role | str, *, display_name: str = "") -> None:
        """Add a user with a role; adding the same user with the same role again does nothing."""
        role = Role(role)
        if not username or len(username) > 64:
            raise ValueError(f"a username has 1-64 characters, but got {username!r}")
        for _ in range(_RETRIES):
            try:
                with self.db.session() as s:
                    user = s.scalar(select(User).where(User.username == username))
                    if user is None:
                        s.add(
                            User(
                                username=username,
                                display_name=display_name or username,
                                role=role.value,
                                active=True,
                                created_at=self.clock(),
                            )
                        )
                    elif user.role != role.value:
                        raise ValueError(f"user {username!r} exists with role {user.role}, not {role.value}")
                return
            except IntegrityError:
                continue  # added by someone else meanwhile; look again

    def register_camera(
        self,
        camera_id: str,
        *,
        name: str = "",
        lat: float | None = None,
        lon: float | None = None,
        zones: Iterable[tuple[str, str]] = (),
        polygons: Mapping[str, Sequence[Sequence[float]]] | None = None,
    ) -> None:
        """Add or update a camera and its zones (name, rule); zones are never deleted (cases name them).

        `polygons` gives zones' polygons as configured; a polygon an officer drew in the
        console (`edited_at` set) is kept until it is edited again, so a restart does not undo it.
        """
        polygons = polygons or {}
        with self.db.session() as s:
            camera = s.get(Camera, camera_id)
            if camera is None:
                camera = Camera(id=camera_id, name=name or camera_id, lat=lat, lon=lon, created_at=self.clock())
                s.add(camera)
            else:  # what is not given stays as it was
                camera.name = name or camera.name
                camera.lat = camera.lat if lat is None else lat
                camera.lon = camera.lon if lon is None else lon
            s.flush()
            known = {z.name: z for z in camera.zones}
            for zone_name, rule in zones:
                polygon = [[float(x), float(y)] for x, y in polygons[zone_name]] if zone_name in polygons else None
                zone = known.get(zone_name)
                if zone is None:
                    s.add(Zone(camera_id=camera_id, name=zone_name, rule=rule, polygon=polygon))
                    continue
                zone.rule = rule
                if polygon is not None and zone.edited_at is None:
                    zone.polygon = polygon

    def add_party(
        self,
        *,
        kind: str,
        name: str,
        address: str = "",
        credit_code: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
        zones: Iterable[tuple[str, str]] = (),
    ) -> int:
        """Add premises or a party, and link the camera zones (camera id, zone name) that watch it."""
        with self.db.session() as s:
            party = Party(
                kind=kind,
                name=name,
                address=address,
                credit_code=credit_code,
                lat=lat,
                lon=lon,
                created_at=self.clock(),
            )
            s.add(party)
            s.flush()
            for camera_id, zone_name in zones:
                self._zone(s, camera_id, zone_name).party_id = party.id
            return party.id

    # --- filing -----------------------------------------------------------------------------

    def file_package(self, package_id: str) -> Filed:
        """File a sealed package from the vault (idempotent on the package id, its manifest hash)."""
        try:
            package, _ = load_package(self.vault.store, package_id)
        except (PackageError, FileNotFoundError, KeyError) as e:
            raise FilingError(f"package {package_id} cannot be read from the evidence store: {e}") from e
        return self.file_finding(Finding.from_manifest(package_id, package.manifest))

    def file_finding(self, finding: Finding) -> Filed:
        """Open a case for a finding, or add it to the open case it repeats within the merge window."""
        for attempt in range(_RETRIES):
            try:
                with self.db.session() as s:
                    filed = self._file(s, finding, self.clock())
                break
            except IntegrityError:
                # the same package filed concurrently, or a case number taken meanwhile: look again
                if attempt == _RETRIES - 1:
                    raise
        self._log_pending()
        return filed

    def _zone(self, s: Session, camera_id: str, zone_name: str) -> Zone:
        zone = s.scalar(select(Zone).where(Zone.camera_id == camera_id, Zone.name == zone_name))
        if zone is None:
            raise UnknownRecordError(f"camera {camera_id!r} has no zone {zone_name!r}")
        return zone

    def _file(self, s: Session, finding: Finding, at: datetime) -> Filed:
        existing = s.scalar(select(CaseEvidence).where(CaseEvidence.package_id == finding.package_id))
        if existing is not None:
            return Filed(finding.package_id, existing.case.number, created=False, joined=False)
        if finding.attach_to is not None:
            # field evidence sealed for a case, whose attaching a crash interrupted
            case = s.scalar(select(Case).where(Case.number == finding.attach_to).with_for_update())
            if case is None:
                raise FilingError(f"package {finding.package_id} was taken for unknown case {finding.attach_to!r}")
            self._attach(s, case, finding, "attachment", at)
            if CaseState(case.state) not in TERMINAL_STATES:
                self._step(
                    s, case, STEPS["add_evidence"], self._user(s, SYSTEM_USER), at=at, evidence=[finding.package_id]
                )
            return Filed(finding.package_id, case.number, created=False, joined=True)

        party = None
        if finding.premises is not None:
            # one filer per premises at a time: its camera and its monitor may file together
            party = s.scalar(select(Party).where(Party.code == finding.premises).with_for_update())
            if party is None:
                raise FilingError(
                    f"package {finding.package_id} names premises {finding.premises!r}, which is not in the registry"
                )
        zone = None
        if finding.camera_id is not None:
            # one filer per camera at a time, so dedupe sees every case opened before it
            camera = s.scalar(select(Camera).where(Camera.id == finding.camera_id).with_for_update())
            if camera is None:
                raise FilingError(
                    f"package {finding.package_id} names camera {finding.camera_id!r}, which is not registered "
                    f"(register it with `nonsite cases register --cameras CONFIG`)"
                )
            if finding.zone is not None:
                zone = s.scalar(select(Zone).where(Zone.camera_id == camera.id, Zone.name == finding.zone))
                if zone is None:
                    raise FilingError(
                        f"package {finding.package_id} names zone {finding.zone!r}, which camera "
                        f"{finding.camera_id!r} does not have"
                    )
        elif party is None and (finding.lat is None or finding.lon is None):
            raise FilingError(
                f"package {finding.package_id} names neither a camera, nor premises, nor a place on the ground"
            )
        elif s.get_bind().dialect.name == "postgresql":
            # no camera row to lock: one drone filer per kind at a time (SQLite serialises writers anyway)
            s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"nonsite.drone.{finding.kind}"})

        if finding.recheck_of is not None:
            # a re-check whose outcome was never recorded (a crash): finish it from the sealed look
            case = s.scalar(select(Case).where(Case.number == finding.recheck_of).with_for_update())
            if case is None:
                raise FilingError(f"package {finding.package_id} is a re-check of unknown case {finding.recheck_of!r}")
            self._attach(s, case, finding, "recheck", at)
            system = self._user(s, SYSTEM_USER)
            if case.state == CaseState.WARNED:
                self._finish_recheck(s, case, system, finding, at)
            elif CaseState(case.state) not in TERMINAL_STATES:
                self._step(s, case, STEPS["add_evidence"], system, at=at, evidence=[finding.package_id])
            return Filed(finding.package_id, case.number, created=False, joined=True)

        if party is None and zone is None and finding.lat is not None and finding.lon is not None:
            party = self._premises_near(s, finding.lat, finding.lon, finding.radius_m or 0.0)
        party_id = zone.party_id if zone is not None and zone.party_id is not None else party.id if party else None
        if party is None and party_id is not None and finding.kind in PARTY_KINDS:
            s.scalar(select(Party).where(Party.id == party_id).with_for_update())
        place = self._same_place(finding, zone, party_id)
        open_case = self._open_case_for(s, finding, place)
        if open_case is not None:
            self._attach(s, open_case, finding, "detection", at)
            reason = ""
            if open_case.fused_at is None and self._fuses(s, open_case, finding):
                open_case.fused_at = at
                open_case.priority += FUSED_PRIORITY
                reason = f"fused: {finding.source} evidence of the same premises within the fusion window"
            open_case.first_seen_at = min(open_case.first_seen_at, finding.started_at)
            open_case.last_seen_at = max(open_case.last_seen_at, finding.ended_at)
            self._step(
                s,
                open_case,
                STEPS["add_evidence"],
                self._user(s, SYSTEM_USER),
                at=at,
                reason=reason,
                evidence=[finding.package_id],
            )
            return Filed(finding.package_id, open_case.number, created=False, joined=True)

        previous = self._last_closed(s, finding, place)
        case = Case(
            number=self._next_number(s, at),
            agency=self.policy.agency,
            kind=finding.kind,
            state=CaseState.DETECTED.value,
            camera_id=finding.camera_id,
            zone_id=zone.id if zone else None,
            party_id=party_id,
            lat=finding.lat if finding.lat is not None or party is None else party.lat,
            lon=finding.lon if finding.lon is not None or party is None else party.lon,
            radius_m=finding.radius_m,
            first_seen_at=finding.started_at,
            last_seen_at=finding.ended_at,
            opened_at=at,
            previous_case_id=previous.id if previous else None,
            priority=KIND_PRIORITY.get(finding.kind, 0) + (REPEAT_PRIORITY if previous else 0),
        )
        s.add(case)
        s.flush()
        self._attach(s, case, finding, "detection", at)
        self._step(s, case, STEPS["queue"], self._user(s, SYSTEM_USER), at=at, evidence=[finding.package_id])
        return Filed(
            finding.package_id, case.number, created=True, joined=False, repeat_of=previous.number if previous else None
        )

    def _same_place(self, finding: Finding, zone: Zone | None, party_id: int | None) -> _Place:
        """Where a finding is, for dedupe: a fume finding of known premises is of the premises,
        whichever camera or monitor saw it (so they fuse); else its camera zone, else its point."""
        if party_id is not None and finding.kind in PARTY_KINDS:
            return _Place([Case.party_id == party_id], by_point=False)
        if finding.camera_id is not None:
            return _Place([Case.camera_id == finding.camera_id, Case.zone_id == (zone.id if zone else None)], False)
        return _Place([Case.camera_id.is_(None), Case.lat.is_not(None), Case.lon.is_not(None)], by_point=True)

    def _near(self, case: Case, finding: Finding, place: _Place) -> bool:
        if not place.by_point:
            return True
        assert case.lat is not None and case.lon is not None and finding.lat is not None and finding.lon is not None
        reach = (case.radius_m or 0.0) + (finding.radius_m or 0.0)
        return _distance_m(case.lat, case.lon, finding.lat, finding.lon) <= max(reach, 1.0)

    def _open_case_for(self, s: Session, finding: Finding, place: _Place) -> Case | None:
        query = (
            select(Case)
            .where(
                Case.kind == finding.kind,
                Case.state.not_in([state.value for state in TERMINAL_STATES]),
                Case.last_seen_at >= finding.started_at - self.policy.merge_window,
                *place.where,
            )
            .order_by(Case.last_seen_at.desc())
            .with_for_update()
        )
        return next((case for case in s.scalars(query) if self._near(case, finding, place)), None)

    def _last_closed(self, s: Session, finding: Finding, place: _Place) -> Case | None:
        query = (
            select(Case)
            .where(Case.kind == finding.kind, Case.state == CaseState.CLOSED.value, *place.where)
            .order_by(Case.closed_at.desc())
        )
        return next((case for case in s.scalars(query) if self._near(case, finding, place)), None)

    def _premises_near(self, s: Session, lat: float, lon: float, radius_m: float) -> Party | None:
        """The registered premises nearest a place on the ground, if one is within reach."""
        reach = max(self.policy.premises_radius_m, radius_m)
        if reach <= 0:
            return None
        dlat = reach / 111_320.0
        dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
        nearby = s.scalars(
            select(Party).where(
                Party.code.is_not(None),
                Party.lat.between(lat - dlat, lat + dlat),
                Party.lon.between(lon - dlon, lon + dlon),
            )
        )
        distances = [
            (_distance_m(lat, lon, p.lat, p.lon), p.id, p) for p in nearby if p.lat is not None and p.lon is not None
        ]
        within = [d for d in distances if d[0] <= reach]
        return min(within)[2] if within else None

    def _fuses(self, s: Session, case: Case, finding: Finding) -> bool:
        """A camera plume and a monitor exceedance of one premises, close in time: one stronger finding."""
        if finding.source not in FUSING_SOURCES or finding.kind not in PARTY_KINDS:
            return False
        window = self.policy.fusion_window
        held = s.scalars(select(CaseEvidence).where(CaseEvidence.case_id == case.id, CaseEvidence.role == "detection"))
        return any(
            e.observed_from is not None
            and e.observed_to is not None
            and finding.started_at <= e.observed_to + window
            and finding.ended_at >= e.observed_from - window
            and self.source_of(e.package_id) in FUSING_SOURCES - {finding.source}
            for e in held
        )

    def source_of(self, package_id: str) -> str:
        """The kind of device that sealed a package (its manifest only is read)."""
        try:
            manifest = json.loads(self.vault.store.get(package_id))
        except (EvidenceError, ValueError):
            return "unknown"
        return str((manifest.get("device") or {}).get("kind", "camera"))

    def _next_number(self, s: Session, at: datetime) -> str:
        """The next case number of the agency in the local year of `at`, e.g. CG-2026-000123."""
        agency, year = self.policy.agency, at.astimezone(self.policy.tz).year
        bump = (
            update(CaseCounter)
            .where(CaseCounter.agency == agency, CaseCounter.year == year)
            .values(last=CaseCounter.last + 1)
            .returning(CaseCounter.last)
        )
        value = s.scalar(bump)
        if value is None:
            try:
                with s.begin_nested():
                    s.add(CaseCounter(agency=agency, year=year, last=1))
                value = 1
            except IntegrityError:
                value = s.scalar(bump)  # another filer made the year's counter first
        return f"{agency}-{year}-{value:06d}"

    def _attach(self, s: Session, case: Case, finding: Finding, role: str, at: datetime) -> None:
        s.add(
            CaseEvidence(
                case_id=case.id,
                package_id=finding.package_id,
                role=role,
                observed_from=finding.started_at,
                observed_to=finding.ended_at,
                score=finding.score,
                added_at=at,
            )
        )
        s.add_all(
            Detection(
                case_id=case.id,
                package_id=finding.package_id,
                camera_id=finding.camera_id,
                kind=finding.kind,
                label=box.label,
                frame=box.frame,
                at=box.at,
                x1=box.xyxy[0],
                y1=box.xyxy[1],
                x2=box.xyxy[2],
                y2=box.xyxy[3],
                score=box.score,
            )
            for box in finding.boxes
        )

    def correct_detection(
        self,
        detection_id: int,
        *,
        actor: str,
        label: str | None = None,
        box: Sequence[float] | None = None,
    ) -> None:
        """An officer's correction of a detection's label or box; the engine's original stays beside
        it, and the correction is what the next training set learns from."""
        if label is None and box is None:
            raise IllegalTransitionError("a correction gives a label, a box, or both")
        if box is not None and len(box) != 4:
            raise IllegalTransitionError(f"a box is [x1, y1, x2, y2], got {list(box)}")
        with self.db.session() as s:
            found = s.execute(
                select(Detection, Case.state, Case.number)
                .join(Case, Detection.case_id == Case.id)
                .where(Detection.id == detection_id)
            ).first()
            if found is None:
                raise UnknownRecordError(f"no detection {detection_id}")
            detection, state, number = found
            if CaseState(state) in TERMINAL_STATES:
                raise IllegalTransitionError(f"case {number} is {state}; its detections are no longer corrected")
            if label is not None:
                detection.corrected_label = label
            if box is not None:
                detection.corrected_box = [round(float(v), 1) for v in box]
            detection.corrected_by = actor
            detection.corrected_at = self.clock()

    # --- lifecycle --------------------------------------------------------------------------

    def apply(
        self,
        case_number: str,
        action: str,
        *,
        actor: str,
        reason: str = "",
        reason_code: str | None = None,
        evidence: Sequence[str] = (),
        expected_version: int | None = None,
        rectify_days: int | None = None,
        evidence_role: str = "attachment",
    ) -> Stepped:
        """Take one lifecycle step on a case, as `actor`; refuses anything the lifecycle does not allow.

        `expected_version` is the case version the actor saw: if the case has moved on since,
        the step is refused with `ConcurrentUpdateError` instead of acting on stale information.
        `evidence` names sealed packages (already in the store) that the step attaches.
        """
        step = STEPS.get(action)
        if step is None:
            raise IllegalTransitionError(f"unknown action {action!r}; known: {', '.join(sorted(STEPS))}")
        if rectify_days is not None and (action != "warn" or rectify_days < 1):
            raise IllegalTransitionError(
                f"a rectification period is set only by 'warn' and is at least 1 working day; got {rectify_days} "
                f"for '{action}'"
            )
        if evidence_role not in EVIDENCE_ROLES:
            raise ValueError(f"evidence_role must be one of {EVIDENCE_ROLES}, but got {evidence_role!r}")
        at = self.clock()
        try:
            with self.db.session() as s:
                case = self._case(s, case_number, lock=True)
                if expected_version is not None and case.version != expected_version:
                    raise ConcurrentUpdateError(
                        f"case {case_number} is at version {case.version}, not {expected_version}: "
                        "someone else changed it; reload and try again"
                    )
                user = self._user(s, actor)
                attached = [f for p in evidence if (f := self._attach_package(s, case, p, evidence_role, at))]
                if step.needs_evidence and not attached:
                    raise IllegalTransitionError(f"'{action}' needs sealed evidence the case does not hold yet")
                if action in ("rectify", "escalate"):
                    self._check_after_warning(case, attached, action)
                transition = self._step(
                    s,
                    case,
                    step,
                    user,
                    at=at,
                    reason=reason,
                    reason_code=reason_code,
                    evidence=evidence,
                    rectify_days=rectify_days,
                )
                # _step flushed, so the version is the one the case has now
                stepped = Stepped(
                    case.number, action, transition.seq, transition.from_state, transition.to_state, case.version
                )
                packages = [e.package_id for e in case.evidence]
        except (StaleDataError, IntegrityError) as e:
            raise ConcurrentUpdateError(f"case {case_number} was changed by someone else meanwhile; try again") from e
        self._log_pending()
        if action in CUSTODY_ACTIONS:
            for package_id in packages:
                self.record_custody(package_id, actor=actor, action=action, reason=reason or reason_code or "", at=at)
        return stepped

    def record_custody(
        self, package_id: str, *, actor: str, action: str, reason: str = "", at: datetime | None = None
    ) -> None:
        """Record who viewed, downloaded, exported, confirmed or rejected a package, and why.

        The event goes to the evidence vault first (its custody file and a Merkle log leaf,
        the tamper-evident record), then to the database beside the case; `heal()` copies
        any event a crash kept out of the database, and records again the confirmations and
        rejections a crash kept out of both (their transitions say who, when and why).
        """
        at = at or self.clock()
        event = self.vault.record_custody(package_id, actor=actor, action=action, reason=reason, at=at)
        with self.db.session() as s:
            self._store_custody(s, event)

    def _store_custody(self, s: Session, event: CustodyEvent) -> None:
        if s.scalar(select(CustodyRecord.id).where(CustodyRecord.leaf_index == event.leaf_index)) is not None:
            return  # copied in already (by heal, or by another process)
        held = s.scalar(select(CaseEvidence).where(CaseEvidence.package_id == event.package_id))
        s.add(
            CustodyRecord(
                package_id=event.package_id,
                case_id=held.case_id if held else None,
                actor=event.actor,
                action=event.action,
                at=datetime.fromisoformat(event.at),
                reason=event.reason,
                leaf_index=event.leaf_index,
            )
        )

    def custody(self, package_id: str) -> list[CustodyRecord]:
        """The package's custody events from the database, oldest first."""
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(CustodyRecord).where(CustodyRecord.package_id == package_id).order_by(CustodyRecord.id)
                )
            )

    def _custody_from_transitions(self) -> int:
        """Record the custody of confirmations and rejections whose events a crash lost."""
        missing = []
        actions = sorted(CUSTODY_ACTIONS)
        with self.db.session() as s:
            have = {
                (c.package_id, c.action, c.actor, c.at)
                for c in s.scalars(select(CustodyRecord).where(CustodyRecord.action.in_(actions)))
            }
            for t in s.scalars(select(Transition).where(Transition.action.in_(actions))):
                at = t.at.replace(microsecond=0)  # custody times are kept to the second
                reason = t.reason or t.reason_code or ""
                missing += [
                    (e.package_id, t.actor.username, t.action, reason, t.at)
                    for e in t.case.evidence
                    if e.added_at <= t.at and (e.package_id, t.action, t.actor.username, at) not in have
                ]
        for package_id, actor, action, reason, at in missing:
            self.record_custody(package_id, actor=actor, action=action, reason=reason, at=at)
        return len(missing)

    def _sync_custody(self) -> int:
        """Copy into the database the custody events the vault has and the database lacks."""
        copied = 0
        with self.db.session() as s:
            known = set(s.scalars(select(CustodyRecord.leaf_index)))
            for package_id in self.vault.package_ids():
                for event in self.vault.custody_report(package_id):
                    if event.leaf_index not in known:
                        self._store_custody(s, event)
                        copied += 1
        return copied

    def case_version(self, case_number: str) -> int:
        with self.db.session() as s:
            return self._case(s, case_number).version

    def _case(self, s: Session, case_number: str, *, lock: bool = False) -> Case:
        query = select(Case).where(Case.number == case_number)
        if lock:
            query = query.with_for_update()
        case = s.scalar(query)
        if case is None:
            raise UnknownRecordError(f"no case numbered {case_number!r}")
        return case

    def _user(self, s: Session, username: str) -> User:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            raise UnknownRecordError(f"no user named {username!r}")
        return user

    def _attach_package(self, s: Session, case: Case, package_id: str, role: str, at: datetime) -> Finding | None:
        """Attach a sealed package to a case; returns its finding, or None if it already belongs to the case."""
        held = s.scalar(select(CaseEvidence).where(CaseEvidence.package_id == package_id))
        if held is not None:
            if held.case_id != case.id:
                raise IllegalTransitionError(f"package {package_id} already belongs to case {held.case.number}")
            return None
        try:
            package, _ = load_package(self.vault.store, package_id)
        except (PackageError, FileNotFoundError, KeyError) as e:
            raise IllegalTransitionError(f"package {package_id} is not a sealed package in the evidence store") from e
        try:
            finding = Finding.from_manifest(package_id, package.manifest)
        except FilingError:
            finding = Finding(package_id, case.kind, case.camera_id, None, at, at)
        self._attach(s, case, finding, role, at)
        return finding

    def _check_step(
        self,
        s: Session,
        case: Case,
        step: Step,
        user: User,
        at: datetime,
        reason: str,
        reason_code: str | None,
        evidence: Sequence[str],
    ) -> None:
        state = CaseState(case.state)
        if state not in step.sources:
            allowed = ", ".join(sorted(step.sources))
            raise IllegalTransitionError(
                f"case {case.number} is {state}: '{step.action}' is allowed only from {allowed}"
            )
        if not user.active:
            raise PermissionDeniedError(f"user {user.username!r} is deactivated")
        if Role(user.role) not in step.roles:
            raise PermissionDeniedError(
                f"'{step.action}' needs the role {' or '.join(sorted(step.roles))}; {user.username!r} is {user.role}"
            )
        if step.needs_reason and not reason.strip():
            raise IllegalTransitionError(f"'{step.action}' needs a reason")
        if step.needs_reason_code:
            codes = ", ".join(code.value for code in RejectReason)
            if reason_code not in set(RejectReason):
                raise IllegalTransitionError(f"'{step.action}' needs a reason code, one of: {codes}")
            if reason_code in REASONS_NEEDING_TEXT and not reason.strip():
                raise IllegalTransitionError(f"reason code {reason_code!r} needs a reason in words")
        elif reason_code is not None:
            raise IllegalTransitionError(f"'{step.action}' takes no reason code")
        if step.needs_evidence and not evidence:
            raise IllegalTransitionError(f"'{step.action}' needs sealed evidence attached")
        if step.action == "legal_review":
            window = self._open_deadline(case, "hearing_request")
            if window is not None and at < window.due_at:
                raise IllegalTransitionError(
                    f"the party may state a defense or ask for a hearing until {window.due_at.isoformat()} "
                    "(Art. 64); record the defense, or wait for the window to close"
                )
        if step.action == "decide":
            officers = {t.actor_id for t in case.transitions if t.actor.role == Role.OFFICER}
            if len(officers) < 2:
                raise IllegalTransitionError(
                    f"a decision needs at least two officers to have acted on the case (Art. 42); "
                    f"case {case.number} has {len(officers)}"
                )

    @staticmethod
    def _open_deadline(case: Case, name: str) -> Deadline | None:
        return next((d for d in case.deadlines if d.name == name and d.met_at is None), None)

    def _step(
        self,
        s: Session,
        case: Case,
        step: Step,
        user: User,
        *,
        at: datetime,
        reason: str = "",
        reason_code: str | None = None,
        evidence: Sequence[str] = (),
        rectify_days: int | None = None,
    ) -> Transition:
        self._check_step(s, case, step, user, at, reason, reason_code, evidence)
        source = CaseState(case.state)
        target = step.target or source
        last = case.transitions[-1] if case.transitions else None
        seq = (last.seq if last else 0) + 1
        record = transition_record(
            agency=case.agency,
            case_number=case.number,
            seq=seq,
            action=step.action,
            from_state=source.value,
            to_state=target.value,
            actor=user.username,
            role=user.role,
            at=at,
            reason=reason,
            reason_code=reason_code,
            evidence=evidence,
            previous=last.record_sha256 if last else None,
        )
        text, sha, signature = seal_record(self.vault, record)
        transition = Transition(
            case_id=case.id,
            seq=seq,
            action=step.action,
            from_state=source.value,
            to_state=target.value,
            actor_id=user.id,
            at=at,
            reason=reason,
            reason_code=reason_code,
            attachments=list(evidence),
            record=text,
            record_sha256=sha,
            key_id=signature.key_id,
            signature=signature.value.hex(),
        )
        case.transitions.append(transition)
        for open_deadline in case.deadlines:
            if open_deadline.met_at is None and (open_deadline.name in step.meets or target in TERMINAL_STATES):
                open_deadline.met_at, open_deadline.closed_by = at, step.action
        if target != source:
            case.state = target.value
            self._open_deadlines(case, target, at, rectify_days)
            if target in TERMINAL_STATES:
                case.closed_at = at
                case.outcome = self._outcome(step, source, reason_code)
        s.flush()
        return transition

    @staticmethod
    def _outcome(step: Step, source: CaseState, reason_code: str | None) -> str:
        if step.action == "reject":
            return f"rejected:{reason_code}"
        if step.action == "dismiss":
            return "dismissed"
        return "rectified" if source == CaseState.RECTIFIED else "penalized"

    def _open_deadlines(self, case: Case, state: CaseState, at: datetime, rectify_days: int | None) -> None:
        for name in ENTRY_DEADLINES.get(state, ()):
            if self._open_deadline(case, name) is not None:
                continue  # a period already running (the decision period spans the filed states)
            rule = STATUTORY.get(name) or self.policy.rule(name, rectify_days if name == "rectification" else None)
            opened = self._add_deadline(case, rule, at)
            if name == "rectification":
                # the agency owes a fresh look soon after the party's period ends; counted from the
                # period's last day (its last instant), so one working day means the next working day
                last_instant = opened.due_at - timedelta(microseconds=1)
                self._add_deadline(case, self.policy.rule("recheck"), last_instant, provisional=opened.provisional)

    def _add_deadline(self, case: Case, rule: DeadlineRule, start: datetime, *, provisional: bool = False) -> Deadline:
        computed = deadline(rule, start, self.calendar, tz=self.policy.tz)
        row = Deadline(
            name=rule.name,
            owner="party" if rule.name in PARTY_DEADLINES else "agency",
            basis=rule.basis,
            starts_at=start,
            due_at=computed.due_at,
            provisional=computed.provisional or provisional,
        )
        case.deadlines.append(row)
        return row

    # --- re-checks --------------------------------------------------------------------------

    def due_rechecks(self, at: datetime | None = None) -> list[DeadlineView]:
        """Warned cases whose rectification period has ended: the camera should take a fresh look."""
        return self._deadline_views(
            at=at or self.clock(), where=[Deadline.name == "rectification", Case.state == CaseState.WARNED.value]
        )

    def record_recheck(self, case_number: str, *, package_id: str, violation_present: bool) -> list[Stepped]:
        """Close the loop on a warned case with the sealed result of a fresh look at its zone.

        Gone: the case is rectified and closed with the new evidence. Still there: it escalates
        to the head for filing, with the new evidence attached. One transaction either way.
        """
        at = self.clock()
        with self.db.session() as s:
            case = self._case(s, case_number, lock=True)
            if case.state != CaseState.WARNED:
                raise IllegalTransitionError(f"case {case_number} is {case.state}: only a warned case is re-checked")
            finding = self._attach_package(s, case, package_id, "recheck", at)
            if finding is None:
                raise IllegalTransitionError(f"package {package_id} is already evidence of case {case_number}")
            finding = replace(finding, present=violation_present)
            steps = self._finish_recheck(s, case, self._user(s, SYSTEM_USER), finding, at)
            stepped = [Stepped(case.number, t.action, t.seq, t.from_state, t.to_state, case.version) for t in steps]
        self._log_pending()
        return stepped

    def _check_after_warning(self, case: Case, looks: list[Finding], action: str) -> None:
        """A re-check's evidence must have been seen after the warning, not be the old finding."""
        warned = self._open_deadline(case, "rectification")
        early = [f.package_id for f in looks if warned is not None and f.started_at < warned.starts_at]
        if warned is not None and early:
            raise IllegalTransitionError(
                f"'{action}' needs a look taken after the warning of {warned.starts_at.isoformat()}; "
                f"package {early[0]} was seen before it"
            )

    def _finish_recheck(self, s: Session, case: Case, system: User, look: Finding, at: datetime) -> list[Transition]:
        self._check_after_warning(case, [look], "rectify")
        evidence = [look.package_id]
        if look.present:
            why = "re-check after the rectification deadline: violation still present"
            return [self._step(s, case, STEPS["escalate"], system, at=at, reason=why, evidence=evidence)]
        why = "re-check after the rectification deadline: violation gone"
        return [
            self._step(s, case, STEPS["rectify"], system, at=at, reason=why, evidence=evidence),
            self._step(s, case, STEPS["close"], system, at=at, reason="rectified; confirmed by re-check"),
        ]

    # --- deadlines --------------------------------------------------------------------------

    def _deadline_views(
        self, *, at: datetime | None, soon: bool = False, where: Sequence[ColumnElement[bool]] = ()
    ) -> list[DeadlineView]:
        with self.db.session() as s:
            query = (
                select(Deadline, Case)
                .join(Case, Deadline.case_id == Case.id)
                .where(Deadline.met_at.is_(None), *where)
                .order_by(Deadline.due_at)
            )
            if at is not None:
                query = query.where(Deadline.due_at <= (at + self.policy.due_soon_delta if soon else at))
            return [
                DeadlineView(
                    case.number,
                    case.kind,
                    case.state,
                    case.camera_id,
                    d.name,
                    d.owner,
                    d.basis,
                    d.due_at,
                    d.provisional,
                )
                for d, case in s.execute(query)
            ]

    def overdue(self, at: datetime | None = None) -> list[DeadlineView]:
        """Open deadlines that have passed, earliest first."""
        return self._deadline_views(at=at or self.clock())

    def due_soon(self, at: datetime | None = None) -> list[DeadlineView]:
        """Open deadlines that pass within the policy's due-soon horizon but have not passed yet."""
        at = at or self.clock()
        return [view for view in self._deadline_views(at=at, soon=True) if view.due_at > at]

    # --- healing ----------------------------------------------------------------------------

    def unfiled_packages(self) -> list[str]:
        """Sealed packages in the vault that no case holds (a crash between sealing and filing);
        an inspection's photos, which its record holds, are accounted for."""
        sealed = set(self.vault.package_ids())
        with self.db.session() as s:
            filed = set(s.scalars(select(CaseEvidence.package_id)))
            filed |= {p for p in s.scalars(select(Inspection.package_id)) if p is not None}
        return sorted(sealed - filed)

    def heal(self) -> list[Filed]:
        """File every sealed package without a case, log every transition without a leaf, and
        copy into the database every custody event only the vault has."""
        self._log_pending()
        self._sync_custody()
        self._custody_from_transitions()
        filed = []
        for package_id in self.unfiled_packages():
            try:
                filed.append(self.file_package(package_id))
            except (CaseError, IntegrityError, ValueError) as e:  # one bad package never stops the rest
                logger.error("cannot file %s: %s", package_id, e)
        return filed

    def _log_pending(self) -> int:
        """Append transitions that are not yet in the Merkle log, oldest first; returns how many."""
        logged = 0
        with self._log_lock:
            while True:
                with self.db.session() as s:
                    transition = s.scalar(
                        select(Transition)
                        .where(Transition.leaf_index.is_(None))
                        .order_by(Transition.id)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    )
                    if transition is None:
                        return logged
                    data = transition.record.encode()
                    log = self.vault.log
                    log.refresh()
                    # a crash after the append but before the commit: the leaf is already the last one
                    if log.size and log.leaf_hash(log.size - 1) == leaf_hash(data):
                        transition.leaf_index = log.size - 1
                    else:
                        transition.leaf_index = self.vault.append_record(json.loads(data))
                    logged += 1

    def pending_log_count(self) -> int:
        with self.db.session() as s:
            return int(
                s.scalar(select(func.count()).select_from(Transition).where(Transition.leaf_index.is_(None))) or 0
            )

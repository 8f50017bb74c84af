"""What the API takes and gives: one family of schemas per resource (Create / Update / Public,
and a page wrapper with its count)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from cases.states import RejectReason
from pipelines.worker import CameraHealth

T = TypeVar("T")

Username = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]{1,63}$")]
PackageId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
CaseNumber = Annotated[str, StringConstraints(pattern=r"^[A-Z]{1,16}-\d{4}-\d{6}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    total: int = Field(description="How many match the filters, over all pages")
    offset: int
    limit: int
    items: list[T]


# --- auth and users --------------------------------------------------------------------------


class LoginRequest(Strict):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class UserPublic(BaseModel):
    username: str
    display_name: str
    role: str
    active: bool
    last_login_at: datetime | None = None


class SessionToken(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    user: UserPublic | None = None
    case_number: str | None = None  # a party's session names its one case


class UserCreate(Strict):
    username: Username
    display_name: Annotated[str, StringConstraints(max_length=128)] = ""
    role: Literal["officer", "legal_reviewer", "head", "engineer", "admin"]
    password: Annotated[str, StringConstraints(min_length=10, max_length=256)]


class UserUpdate(Strict):
    display_name: Annotated[str, StringConstraints(max_length=128)] | None = None
    role: Literal["officer", "legal_reviewer", "head", "engineer", "admin"] | None = None
    active: bool | None = None
    password: Annotated[str, StringConstraints(min_length=10, max_length=256)] | None = None


class DeviceTokenCreate(Strict):
    camera_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    monitor_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    label: Annotated[str, StringConstraints(max_length=200)] = ""
    days: int | None = Field(None, ge=1, le=3650)


class DeviceTokenIssued(BaseModel):
    id: int
    token: str = Field(description="Shown once; only its hash is kept")
    camera_id: str | None
    monitor_id: str | None
    expires_at: datetime


class DeviceTokenPublic(BaseModel):
    id: int
    label: str
    camera_id: str | None
    monitor_id: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


# --- cameras and zones -------------------------------------------------------------------------

Point = tuple[Annotated[float, Field(ge=0, le=100_000)], Annotated[float, Field(ge=0, le=100_000)]]


class ZonePublic(BaseModel):
    name: str
    rule: str
    polygon: list[list[float]] | None
    party: str | None = None
    edited_by: str | None = None
    edited_at: datetime | None = None


class ZoneUpdate(Strict):
    polygon: list[Point] = Field(min_length=3, max_length=64, description="Points in the camera's pixels")


class CameraPublic(BaseModel):
    id: str
    name: str
    lat: float | None
    lon: float | None
    zones: list[ZonePublic]
    health: CameraHealth | None = None
    has_snapshot: bool = False


# --- detections, cases, review -----------------------------------------------------------------

Box = tuple[
    Annotated[float, Field(ge=0, le=100_000)],
    Annotated[float, Field(ge=0, le=100_000)],
    Annotated[float, Field(ge=0, le=100_000)],
    Annotated[float, Field(ge=0, le=100_000)],
]


class DetectionPublic(BaseModel):
    id: int
    case_number: str
    package_id: str
    camera_id: str | None
    kind: str
    label: str
    frame: int
    at: datetime
    box: list[float]
    score: float
    corrected_label: str | None
    corrected_box: list[float] | None
    corrected_by: str | None
    corrected_at: datetime | None


class DetectionCorrection(Strict):
    label: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")] | None = None
    box: Box | None = Field(None, description="x1, y1, x2, y2 in the keyframe's pixels")

    @field_validator("box")
    @classmethod
    def _ordered(cls, box: Box | None) -> Box | None:
        if box is not None and not (box[0] < box[2] and box[1] < box[3]):
            raise ValueError(f"a box is x1, y1, x2, y2 with x1 < x2 and y1 < y2, but got {list(box)}")
        return box


class CaseSummary(BaseModel):
    number: str
    kind: str
    state: str
    priority: int
    camera_id: str | None
    zone: str | None
    party: str | None
    party_code: str | None = Field(None, description="The premises' registry code, where the party is registered")
    lat: float | None
    lon: float | None
    opened_at: datetime
    first_seen_at: datetime
    last_seen_at: datetime
    closed_at: datetime | None
    outcome: str | None
    evidence: int
    version: int


class ReviewItem(CaseSummary):
    age_s: float = Field(description="Seconds since the case was opened")
    detections: list[DetectionPublic]


class TransitionPublic(BaseModel):
    seq: int
    action: str
    from_state: str
    to_state: str
    actor: str
    actor_name: str
    role: str
    at: datetime
    reason: str
    reason_code: str | None
    attachments: list[str]


class DeadlinePublic(BaseModel):
    name: str
    owner: str
    basis: str
    starts_at: datetime
    due_at: datetime
    provisional: bool
    met_at: datetime | None
    status: Literal["met", "running", "due_soon", "overdue", "ended"]


class FilePublic(BaseModel):
    name: str
    kind: str
    media_type: str
    size: int
    url: str


class EvidencePublic(BaseModel):
    package_id: str
    role: str | None = None
    observed_from: datetime | None = None
    observed_to: datetime | None = None
    score: float | None = None
    device: dict[str, Any]
    capture: dict[str, Any]
    rule: dict[str, Any]
    violation: dict[str, Any]
    files: list[FilePublic]


class ActionPublic(BaseModel):
    action: str
    target: str | None
    needs_reason: bool
    needs_reason_code: bool
    description: str


class StatementPublic(BaseModel):
    id: int
    text: str
    contact: str
    submitted_at: datetime


class CaseDetail(CaseSummary):
    previous_case: str | None
    transitions: list[TransitionPublic]
    deadlines: list[DeadlinePublic]
    evidence_packages: list[EvidencePublic]
    detections: list[DetectionPublic]
    allowed_actions: list[ActionPublic]
    statements: list[StatementPublic]


class StepRequest(Strict):
    action: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    version: int = Field(ge=0, description="The case version you saw; a newer one refuses the step")
    reason: Annotated[str, StringConstraints(max_length=4000)] = ""
    reason_code: RejectReason | None = None
    rectify_days: int | None = Field(None, ge=1, le=365)


class AccessCodeIssued(BaseModel):
    case_number: str
    code: str = Field(description="Give it to the party; shown once")
    expires_at: datetime


# --- evidence ------------------------------------------------------------------------------


class CheckPublic(BaseModel):
    name: str
    ok: bool
    detail: str


class VerificationPublic(BaseModel):
    package_id: str
    ok: bool
    checks: list[CheckPublic]


class CustodyPublic(BaseModel):
    actor: str
    action: str
    at: datetime
    reason: str
    leaf_index: int


# --- party portal ----------------------------------------------------------------------------


class PartyLogin(Strict):
    case_number: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    code: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class PartyCase(BaseModel):
    number: str
    kind: str
    state: str
    opened_at: datetime
    first_seen_at: datetime
    last_seen_at: datetime
    place: str
    evidence_packages: list[EvidencePublic]
    deadlines: list[DeadlinePublic]
    statements: list[StatementPublic]


class StatementCreate(Strict):
    text: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
    contact: Annotated[str, StringConstraints(max_length=200)] = ""


# --- map, KPIs, models, meta --------------------------------------------------------------------


class PointGeometry(BaseModel):
    type: Literal["Point"] = "Point"
    coordinates: tuple[float, float]  # lon, lat (GeoJSON order)


class FindingFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    geometry: PointGeometry
    properties: dict[str, Any]


class FindingCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[FindingFeature]


class KpiPublic(BaseModel):
    start: datetime
    end: datetime
    group_by: str
    rows: list[dict[str, Any]]
    officers: list[dict[str, Any]]


class ModelPublic(BaseModel):
    name: str
    path: str
    sha256: str | None
    classes: list[str]
    input_size: list[int] | None
    in_use: bool
    card: dict[str, Any]


class ReasonCode(BaseModel):
    code: str
    zh: str
    en: str
    needs_text: bool = Field(description="Rejecting with this code needs a written reason")


class Meta(BaseModel):
    development: bool
    reason_codes: list[ReasonCode]
    states: list[str]
    kinds: list[str]
    roles: list[str]
    actions: list[ActionPublic]


# --- premises -------------------------------------------------------------------------------


class PremisesPublic(BaseModel):
    code: str
    name: str
    kind: str
    address: str
    street: str | None
    grid: str | None
    lat: float | None
    lon: float | None
    category: str | None
    size_class: str | None
    risk_grade: str | None
    purifier: dict[str, Any] | None
    credit_code: str | None
    contact: str
    cases: int = 0
    open_cases: int = 0
    cases_last_year: int = 0
    repeat_offender: bool = False


class PermitPublic(BaseModel):
    kind: str
    number: str
    valid_from: datetime
    valid_to: datetime | None
    area: dict[str, Any] | None


class PremisesDetail(PremisesPublic):
    zones: list[dict[str, str]]  # camera_id, zone, rule
    permits: list[PermitPublic]
    recent_cases: list[CaseSummary]


class RowProblemPublic(BaseModel):
    row: int
    column: str
    message: str


class ImportReportPublic(BaseModel):
    ok: bool
    dry_run: bool
    rows: int
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    problems: list[RowProblemPublic]


# --- field evidence -----------------------------------------------------------------------------


class UploadCreate(Strict):
    filename: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    media_type: Annotated[str, StringConstraints(max_length=64)]
    size: int = Field(gt=0, description="The whole file's size in bytes")
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = Field(
        None, description="If given, the finished upload must match it"
    )


class UploadPublic(BaseModel):
    id: str
    filename: str
    media_type: str
    size: int
    offset: int = Field(description="Bytes received so far: send the next chunk from here")
    complete: bool
    expires_at: datetime


UploadId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{22}$")]


class FieldEvidenceCreate(Strict):
    uploads: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{22}$")]] = Field(
        min_length=1, max_length=20
    )
    captured_at: datetime = Field(description="When the photos, video or audio were taken")
    note: Annotated[str, StringConstraints(max_length=4000)] = ""
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)


# --- fume monitors --------------------------------------------------------------------------------


class ReadingsIngested(BaseModel):
    accepted: int
    duplicates: int
    cases: list[str] = Field(description="Cases the episodes these readings closed were filed as")


class ModelVersionPublic(BaseModel):
    version: int
    sha256: str
    registered_at: str
    note: str
    classes: list[str]
    metrics: dict[str, dict[str, float]] = Field(description="Figures on each fixed evaluation set, once measured.")
    deployed: bool
    shadow: bool


class RegistryPublic(BaseModel):
    versions: list[ModelVersionPublic]
    deployed: int | None
    shadow: int | None
    eval_sets: list[dict[str, Any]]
    history: list[dict[str, Any]] = Field(description="The latest registry events, newest last.")


class PromotionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(
        None, max_length=2000, description="Why a candidate the gate refuses is deployed anyway; needed with force."
    )
    force: bool = Field(False, description="Deploy even when the candidate does worse on a fixed set.")
    tolerance: float = Field(0.01, ge=0.0, le=1.0, description="mAP50 the candidate may lose on each set.")


class GatePublic(BaseModel):
    candidate: int
    deployed: int | None
    tolerance: float
    sets: list[dict[str, Any]]
    passed: bool
    forced: bool


class ShadowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=2**31 - 1)


class SurveyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    folder: str = Field(min_length=1, max_length=500, description="The flight's folder, inside the drop folder.")
    baseline: str | None = Field(
        None,
        max_length=500,
        description="An earlier flight's folder of the same area, or its orthomosaic GeoTIFF, inside the drop folder.",
    )
    permits: str | None = Field(None, max_length=500, description="GeoJSON of permitted parcels, in the drop folder.")
    streets: str | None = Field(None, max_length=500, description="GeoJSON of street polygons, in the drop folder.")


class SurveyPublic(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed"]
    folder: str
    baseline: str | None
    permits: str | None
    streets: str | None
    requested_by: str
    requested_at: str
    images: int = Field(description="Images (and video frames) the survey plans to look at.")
    done: int = Field(description="Of those, how many are processed.")
    error: str | None
    counts: dict[str, int] = Field(description="The report's counts, once it is done.")

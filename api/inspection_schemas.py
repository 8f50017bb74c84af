"""What the inspection routes take and give: the inspector pool, draws, inspections and their
results, and the public documents of published draws (the same families as `api.schemas`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.schemas import Strict, UploadId, Username
from cases.draws import MIN_INSPECTORS_PER_TARGET

InspectorId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Street = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


class Attributes(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- the inspector pool ---------------------------------------------------------------------


class InspectorUpdate(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]
    street: Street = Field(description="The street the inspector works for; they never inspect premises there")
    username: Username | None = Field(None, description="The officer account that records their results")
    active: bool = Field(True, description="Inactive inspectors are left out of new draws")


class InspectorPublic(Attributes):
    id: str
    name: str
    street: str
    username: str | None
    active: bool
    created_at: datetime


class InspectorList(BaseModel):
    count: int
    items: list[InspectorPublic]


# --- draws and inspections ------------------------------------------------------------------


class DrawCreate(Strict):
    purpose: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)] = Field(
        description="The campaign, unique: a second draw for one purpose would show in the log as a re-draw"
    )
    targets: int | dict[str, int] = Field(
        description="How many premises in all (split over the strata by size), or a count per stratum label "
        "such as {'grade=A': 3}"
    )
    stratify_by: list[Literal["grade", "street"]] = Field([], max_length=2)
    inspectors_per_target: int = Field(MIN_INSPECTORS_PER_TARGET, ge=MIN_INSPECTORS_PER_TARGET, le=10)
    max_targets_per_inspector: int | None = Field(None, ge=1)
    street: Street | None = Field(None, description="Draw only from premises of this street")
    grade: Annotated[str, StringConstraints(min_length=1, max_length=16)] | None = Field(
        None, description="Draw only from premises of this risk grade ('ungraded' for none)"
    )
    kind: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = Field(
        None, description="Draw only from premises of this kind (restaurant, shop, ...)"
    )


class InspectorRefPublic(Attributes):
    id: str
    name: str


class InspectionPublic(Attributes):
    id: int
    draw_id: int
    purpose: str
    premises: str = Field(description="The premises' registry code")
    premises_name: str
    address: str
    street: str | None
    grade: str
    inspectors: list[InspectorRefPublic]
    state: Literal["planned", "done"]
    checklist: dict[str, Any] | None
    result: Literal["pass", "rectify", "violation"] | None
    note: str
    package_id: str | None = Field(description="The sealed photos of the inspection, if any")
    case_number: str | None = Field(description="The case the result opened or joined, if any")
    inspected_at: datetime | None
    recorded_by: str | None


class InspectionList(BaseModel):
    count: int
    items: list[InspectionPublic]


class UnassignedPublic(Attributes):
    premises: str
    reason: str


class DrawPublic(Attributes):
    """A draw as the agency sees it; its seed is never part of it (see the public document once published)."""

    id: int
    purpose: str
    spec: dict[str, Any]
    inputs_sha256: str
    commitment: str = Field(description="SHA-256 of the secret seed, logged before the draw")
    commitment_leaf: int | None
    drawn_at: datetime
    drawn_by: str
    published_at: datetime | None
    published_leaf: int | None
    candidates: int
    pool: int
    allocation: dict[str, int]
    inspections: list[InspectionPublic]
    unassigned: list[UnassignedPublic]


class DrawList(BaseModel):
    count: int
    items: list[DrawPublic]


class ResultCreate(Strict):
    checklist: dict[str, dict[str, str]] = Field(
        description="Every item of the 7 domains answered pass, fail or na (GET /api/inspections/checklist)"
    )
    note: Annotated[str, StringConstraints(max_length=4000)] = ""
    photos: list[UploadId] = Field([], max_length=20, description="Finished uploads to seal as the inspection's")
    inspected_at: datetime | None = Field(None, description="When it was inspected; now if not given")
    open_case: bool = Field(False, description="Open a case for a rectification finding too (a violation always does)")


class ChecklistItemPublic(BaseModel):
    key: str
    zh: str
    en: str


class ChecklistDomainPublic(BaseModel):
    number: int
    key: str
    zh: str
    en: str
    emission: bool = Field(description="A failed item here is a violation (it opens a case)")
    items: list[ChecklistItemPublic]


# --- the public page ------------------------------------------------------------------------


class PublicTarget(BaseModel):
    premises_id: str
    name: str | None
    street: str
    grade: str
    inspectors: list[InspectorRefPublic]
    result: Literal["pass", "rectify", "violation"] | None = Field(description="None until it is recorded")
    inspected_at: datetime | None


class PublicUnassigned(BaseModel):
    premises_id: str
    reason: str


class PublicDraw(BaseModel):
    id: int
    purpose: str
    algorithm: str
    drawn_at: datetime
    published_at: datetime
    commitment: str
    commitment_leaf: int
    published_leaf: int
    inputs_sha256: str
    seed: str = Field(description="Revealed by publication: its SHA-256 is the commitment")
    candidates: int
    pool: int
    allocation: dict[str, int]
    targets: list[PublicTarget]
    unassigned: list[PublicUnassigned]


class PublicDrawDetail(PublicDraw):
    document: dict[str, Any] = Field(description="The published document, as logged: cases.draws.verify checks it")
    verify: str = Field(description="How to check the draw yourself")


class PublicDrawList(BaseModel):
    count: int
    items: list[PublicDraw]

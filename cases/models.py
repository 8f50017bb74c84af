"""The case database: SQLAlchemy 2 models. The schema itself is owned by Alembic
(`cases/migrations`); a test checks that these models and the migrations agree.

Times are stored as UTC and always come back timezone-aware, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC; naive datetimes are refused, not guessed at."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"case times must be timezone-aware, but got naive {value.isoformat()}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    """A person (or the engine itself, `system`) who acts on cases, with one role."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    password_hash: Mapped[str | None] = mapped_column(String(255))  # argon2id; None: cannot log in
    last_login_at: Mapped[datetime | None]


class Party(Base):
    """Premises or a party a case can name: a restaurant, a shop front, a construction parcel.

    Premises of the registry carry the registry's `code` (unique), their street and grid (the
    unit that manages them), category and grades, and their fume purifier.
    """

    __tablename__ = "parties"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(400), default="")
    credit_code: Mapped[str | None] = mapped_column(String(32))  # 统一社会信用代码
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]
    code: Mapped[str | None] = mapped_column(String(64), unique=True)  # the premises registry's id
    street: Mapped[str | None] = mapped_column(String(100), index=True)  # 街道
    grid: Mapped[str | None] = mapped_column(String(100))  # 网格
    category: Mapped[str | None] = mapped_column(String(64))
    size_class: Mapped[str | None] = mapped_column(String(16))  # small | medium | large (GB 18483 by stoves)
    risk_grade: Mapped[str | None] = mapped_column(String(16))  # A (highest) .. D
    purifier: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # model, installed_on, cleaned_on
    contact: Mapped[str] = mapped_column(String(200), default="", server_default="")
    updated_at: Mapped[datetime | None]


class Permit(Base):
    """A permit held by premises: outdoor seating, a construction permit, a stall licence.

    `area` is a GeoJSON polygon (lon, lat) where the permit applies (a permitted parcel
    silences construction findings inside it); `valid_to` None is open-ended.
    """

    __tablename__ = "permits"
    __table_args__ = (UniqueConstraint("party_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    number: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[datetime]
    valid_to: Mapped[datetime | None]
    area: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]

    zones: Mapped[list[Zone]] = relationship(back_populates="camera", order_by="Zone.name")


class Zone(Base):
    __tablename__ = "zones"
    __table_args__ = (UniqueConstraint("camera_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"))
    name: Mapped[str] = mapped_column(String(100))
    rule: Mapped[str] = mapped_column(String(32))
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    # the polygon in the camera's pixel coordinates, as configured or as last drawn in the console
    polygon: Mapped[list[Any] | None] = mapped_column(JSON)
    edited_by: Mapped[str | None] = mapped_column(String(64))  # set when drawn in the console
    edited_at: Mapped[datetime | None]

    camera: Mapped[Camera] = relationship(back_populates="zones")
    party: Mapped[Party | None] = relationship()


class CaseCounter(Base):
    """The last case number handed out per agency and year."""

    __tablename__ = "case_counters"

    agency: Mapped[str] = mapped_column(String(16), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class Case(Base):
    __tablename__ = "cases"
    # the review queue: pending cases by priority, oldest first; the case list by state and age
    __table_args__ = (
        Index("ix_cases_queue", "state", "priority", "opened_at"),
        Index("ix_cases_state_opened", "state", "opened_at"),
        Index("ix_cases_camera_kind_opened", "camera_id", "kind", "opened_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    agency: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    camera_id: Mapped[str | None] = mapped_column(ForeignKey("cameras.id"), index=True)
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id"))
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    # drone findings have a place on the ground instead of a camera zone
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    radius_m: Mapped[float | None] = mapped_column(Float)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    opened_at: Mapped[datetime] = mapped_column(index=True)
    closed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))  # reject reason code, "rectified", "decided", ...
    previous_case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # higher is reviewed first
    # when a camera's and a fume monitor's findings of the premises first met in this case
    fused_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it from the class)

    camera: Mapped[Camera | None] = relationship()
    zone: Mapped[Zone | None] = relationship()
    party: Mapped[Party | None] = relationship()
    previous_case: Mapped[Case | None] = relationship(remote_side=[id])
    evidence: Mapped[list[CaseEvidence]] = relationship(back_populates="case", order_by="CaseEvidence.id")
    transitions: Mapped[list[Transition]] = relationship(back_populates="case", order_by="Transition.seq")
    deadlines: Mapped[list[Deadline]] = relationship(back_populates="case", order_by="Deadline.id")


class CaseEvidence(Base):
    """A sealed evidence package (by manifest hash) that belongs to a case."""

    __tablename__ = "case_evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    package_id: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # detection | recheck | attachment
    observed_from: Mapped[datetime | None]
    observed_to: Mapped[datetime | None]
    score: Mapped[float | None] = mapped_column(Float)
    added_at: Mapped[datetime]

    case: Mapped[Case] = relationship(back_populates="evidence")


class Transition(Base):
    """One recorded step of a case: who, when, from, to, why, with what; signed and logged."""

    __tablename__ = "transitions"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    reason_code: Mapped[str | None] = mapped_column(String(32))
    attachments: Mapped[list[Any]] = mapped_column(default=list)  # evidence package ids
    record: Mapped[str] = mapped_column(Text)  # the canonical JSON that was signed and logged
    record_sha256: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(128))  # hex Ed25519
    leaf_index: Mapped[int | None] = mapped_column(Integer)  # set once appended to the Merkle log

    case: Mapped[Case] = relationship(back_populates="transitions")
    actor: Mapped[User] = relationship()


class Deadline(Base):
    """A period running against a case: who owes what by when, and when it was met."""

    __tablename__ = "deadlines"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(16))  # agency | party
    basis: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime]
    due_at: Mapped[datetime] = mapped_column(index=True)
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    met_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(32))  # the step that ended it (escalate is not rectify)

    case: Mapped[Case] = relationship(back_populates="deadlines")


class CustodyRecord(Base):
    """Who viewed, downloaded, exported, confirmed or rejected a package, when and why.

    The evidence vault keeps the same event as a leaf of the Merkle log (`leaf_index`);
    this row makes it queryable beside the case.
    """

    __tablename__ = "custody_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[str] = mapped_column(String(64), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")
    leaf_index: Mapped[int] = mapped_column(Integer, unique=True)


class Detection(Base):
    """One box an officer reviews: the object at a keyframe of a sealed package.

    Officers may correct its label or box; the correction, with who made it, is what
    dataset building turns into a training label (the original stays as the engine saw it).
    """

    __tablename__ = "detections"
    __table_args__ = (Index("ix_detections_camera_at", "camera_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    package_id: Mapped[str] = mapped_column(String(64), index=True)
    camera_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(64))
    frame: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    track_id: Mapped[int | None] = mapped_column(Integer)
    corrected_label: Mapped[str | None] = mapped_column(String(64))
    corrected_box: Mapped[list[Any] | None] = mapped_column(JSON)
    corrected_by: Mapped[str | None] = mapped_column(String(64))
    corrected_at: Mapped[datetime | None]


class ApiToken(Base):
    """A bearer token, stored only as its SHA-256: a user's session, a camera device's, or a party's.

    Device tokens name the camera they speak for; party tokens name the one case they open.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # session | device | party
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    camera_id: Mapped[str | None] = mapped_column(ForeignKey("cameras.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    monitor_id: Mapped[str | None] = mapped_column(String(64))  # a fume monitor's device token
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]

    user: Mapped[User | None] = relationship()


class CaseAccessCode(Base):
    """The code a party is given to look up the evidence of one case and state a defense (Art. 41, 44)."""

    __tablename__ = "case_access_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    code_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class PartyStatement(Base):
    """What the party said in its defense through the portal, kept as submitted."""

    __tablename__ = "party_statements"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    contact: Mapped[str] = mapped_column(String(200), default="")
    submitted_at: Mapped[datetime]


class Monitor(Base):
    """An online fume monitor on a premises' exhaust, and the settings its readings are judged by."""

    __tablename__ = "monitors"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)  # pipelines.monitors.MonitorConfig, as JSON
    created_at: Mapped[datetime]

    party: Mapped[Party | None] = relationship()


class MonitorReading(Base):
    """One reading as the monitor sent it; kept so that an episode's evidence holds every reading of it."""

    __tablename__ = "monitor_readings"
    __table_args__ = (UniqueConstraint("monitor_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    monitor_id: Mapped[str] = mapped_column(ForeignKey("monitors.id"))
    at: Mapped[datetime]
    concentration_mg_m3: Mapped[float] = mapped_column(Float)
    purifier_on: Mapped[bool | None] = mapped_column(Boolean)
    fan_on: Mapped[bool | None] = mapped_column(Boolean)
    received_at: Mapped[datetime]


class Inspector(Base):
    """A member of the expert pool that "double random" inspections draw from (双随机's second random).

    `street` is the street the inspector works for (they never inspect premises there);
    `user_id` names the officer account that records their results, if they have one.
    """

    __tablename__ = "inspectors"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    street: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]

    user: Mapped[User | None] = relationship()


class InspectionDraw(Base):
    """One verifiable draw (`cases.draws`): its inputs as drawn from, its commitment, and its publication.

    `seed` is the secret the draw was computed from: it stays in this row until the draw is
    published, when `public` (the published document) reveals it.
    """

    __tablename__ = "inspection_draws"

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(200), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)  # cases.draws.DrawSpec.to_json()
    candidates: Mapped[list[Any]] = mapped_column(JSON)  # the premises drawn from, as Candidate.to_json()
    pool: Mapped[list[Any]] = mapped_column(JSON)  # the inspectors drawn from, as Inspector.to_json()
    inputs_sha256: Mapped[str] = mapped_column(String(64))
    commitment: Mapped[str] = mapped_column(String(64))
    commitment_leaf: Mapped[int | None] = mapped_column(Integer)  # None only while the commitment is being logged
    seed: Mapped[str] = mapped_column(String(128))  # hex; secret until published
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # allocation, assignments, unassigned
    drawn_at: Mapped[datetime]
    drawn_by: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime | None]
    published_leaf: Mapped[int | None] = mapped_column(Integer)
    public: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # cases.draws.to_public(), seed included

    inspections: Mapped[list[Inspection]] = relationship(back_populates="draw", order_by="Inspection.id")


class Inspection(Base):
    """One drawn premises and the inspectors drawn for it; once done, the checklist and its result."""

    __tablename__ = "inspections"
    __table_args__ = (UniqueConstraint("draw_id", "party_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    draw_id: Mapped[int] = mapped_column(ForeignKey("inspection_draws.id"), index=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    inspectors: Mapped[list[Any]] = mapped_column(JSON)  # inspector ids, in id order
    state: Mapped[str] = mapped_column(String(16), index=True)  # planned | done
    checklist: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # domain -> item -> pass | fail | na
    result: Mapped[str | None] = mapped_column(String(16))  # pass | rectify | violation
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    package_id: Mapped[str | None] = mapped_column(String(64))  # the sealed photos, if any
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    inspected_at: Mapped[datetime | None] = mapped_column(index=True)
    recorded_by: Mapped[str | None] = mapped_column(String(64))

    draw: Mapped[InspectionDraw] = relationship(back_populates="inspections")
    party: Mapped[Party] = relationship()
    case: Mapped[Case | None] = relationship()

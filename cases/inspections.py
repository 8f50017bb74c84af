"""Double random, one public (双随机、一公开): the inspector pool, draws from the premises
registry, inspections recorded against the restaurant fume checklist, the cases they open,
and what the public page shows.

A draw runs in the order `cases.draws` needs to be verifiable: the candidates (the premises
registry, filtered), the pool (active inspectors, each with the premises they inspected in
the last 365 days) and a fresh seed are fixed and stored first; the seed's commitment and
the inputs' digest are logged; only then is the draw computed and its inspections stored.
The stored row makes the draw resumable: a crash after the commitment is logged is finished
by asking for the same purpose again, with the same seed, so the log never shows a re-draw
that did not happen. Publication logs the public document, which reveals the seed; until
then the seed never leaves this module.

A recorded result is judged from the checklist: a failed item of an emission domain
(purifier, operation, exhaust) is a violation, which opens a case (kind "fume", so it joins
an open fume case of the same premises); any other failed item asks for rectification,
which opens a case (kind "inspection") only when the recorder asks for one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from cases import draws
from cases.casebook import Casebook
from cases.db import Database
from cases.errors import CaseError, PermissionDeniedError, UnknownRecordError
from cases.models import Case, Inspection, InspectionDraw, Inspector, Party, User
from cases.states import Role
from evidence.canonical import canonical_json
from evidence.errors import EvidenceError
from evidence.package import PackageError, PackageFile, load_package
from evidence.vault import Vault

logger = logging.getLogger(__name__)

RECENT_WINDOW = timedelta(days=365)  # an inspector does not inspect premises they inspected within it
UNGRADED = "ungraded"  # the risk grade of premises the registry gives none
PLANNED, DONE = "planned", "done"
ANSWERS = ("pass", "fail", "na")
RESULTS = ("pass", "rectify", "violation")
CHECKLIST_VERSION = "nonsite.fume-inspection/1"
DRAWERS = frozenset({Role.HEAD})  # who draws and publishes
RECORDERS = frozenset({Role.OFFICER, Role.HEAD})  # a head records any result; an officer only their own
INSPECTOR_ACCOUNTS = frozenset({Role.OFFICER, Role.HEAD})
# a probe seed, used only to find out whether a draw can be made at all before anything is logged
_PROBE_SEED = bytes(draws.SEED_BYTES)


class InspectionError(CaseError):
    """Base of the errors of inspections: a draw, publication or result that cannot go on as asked."""


class InspectionInputError(InspectionError, ValueError):
    """Arguments that are wrong in themselves: the message names what to change, `argument` which one."""

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


class ChecklistError(InspectionInputError):
    """A checklist with unknown domains or items, missing items, or answers other than pass, fail, na."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("the checklist is not valid: " + "; ".join(problems), argument="checklist")
        self.problems = list(problems)


class InspectionConflictError(InspectionError):
    """A step that the record's state no longer allows: a purpose drawn already, a result recorded already."""


# --- the checklist ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    key: str
    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class ChecklistDomain:
    number: int
    key: str
    zh: str
    en: str
    emission: bool  # a failed item here is a violation of the emission rules, not only a lapse
    items: tuple[ChecklistItem, ...]


# the 7 domains of a restaurant fume inspection, as the county's inspection platform lists them
CHECKLIST: tuple[ChecklistDomain, ...] = (
    ChecklistDomain(
        1,
        "licences",
        "证照",
        "Licences",
        False,
        (
            ChecklistItem("business_licence", "营业执照", "Business licence"),
            ChecklistItem("discharge_registration", "排污登记", "Discharge registration"),
        ),
    ),
    ChecklistDomain(
        2,
        "purifier",
        "油烟净化设施",
        "Fume purifier",
        True,
        (
            ChecklistItem("installed", "已安装油烟净化设施", "Purifier installed"),
            ChecklistItem("matches_registered_model", "与登记型号一致", "Matches the registered model"),
        ),
    ),
    ChecklistDomain(
        3,
        "operation",
        "运行",
        "Operation",
        True,
        (
            ChecklistItem("runs_while_cooking", "烹饪时同步运行", "Runs while cooking"),
            ChecklistItem("power_on", "电源接通", "Power on"),
        ),
    ),
    ChecklistDomain(
        4,
        "maintenance",
        "清洗维护",
        "Cleaning and maintenance",
        False,
        (
            ChecklistItem("cleaning_records", "清洗记录齐全", "Cleaning records kept"),
            ChecklistItem("cleaned_within_period", "按期清洗", "Cleaned within the period"),
        ),
    ),
    ChecklistDomain(
        5,
        "exhaust",
        "排放口",
        "Exhaust outlet",
        True,
        (
            ChecklistItem("height_and_position", "高度与位置符合要求", "Height and position as required"),
            ChecklistItem("not_toward_residents", "未朝向居民住所排放", "No discharge toward residents"),
        ),
    ),
    ChecklistDomain(
        6,
        "monitoring",
        "在线监测",
        "Online monitoring",
        False,
        (
            ChecklistItem("installed_where_required", "按要求安装在线监测", "Installed where required"),
            ChecklistItem("online", "监测设备在线", "Monitor online"),
        ),
    ),
    ChecklistDomain(
        7,
        "frontage",
        "门前三包",
        "Frontage duties",
        False,
        (
            ChecklistItem("no_street_occupation", "无占道经营", "No street occupation"),
            ChecklistItem("clean_frontage", "门前整洁", "Clean frontage"),
        ),
    ),
)
DOMAINS = {d.key: d for d in CHECKLIST}
EMISSION_DOMAINS = frozenset(d.key for d in CHECKLIST if d.emission)


def validate_checklist(checklist: object) -> dict[str, dict[str, str]]:
    """The checklist, checked: every item of every domain answered pass, fail or na, nothing else.

    Every problem is named (unknown domain or item, missing item, bad answer); the returned
    copy lists domains and items in the checklist's order.
    """
    if not isinstance(checklist, Mapping):
        raise ChecklistError([f"a checklist maps domains to items to answers, but got {type(checklist).__name__}"])
    problems = []
    for key, answers in checklist.items():
        domain = DOMAINS.get(key) if isinstance(key, str) else None
        if domain is None:
            problems.append(f"unknown domain {key!r} (known: {', '.join(DOMAINS)})")
            continue
        if not isinstance(answers, Mapping):
            problems.append(f"domain {key!r} maps items to answers, but got {type(answers).__name__}")
            continue
        known = {item.key for item in domain.items}
        for item, answer in answers.items():
            if item not in known:
                problems.append(f"unknown item {item!r} of domain {key!r} (known: {', '.join(sorted(known))})")
            elif answer not in ANSWERS:
                problems.append(f"{key}.{item} is {answer!r}, but an answer is one of {', '.join(ANSWERS)}")
    for domain in CHECKLIST:
        answers = checklist.get(domain.key)
        given = answers if isinstance(answers, Mapping) else {}
        missing = [item.key for item in domain.items if item.key not in given]
        if domain.key not in checklist:
            problems.append(f"domain {domain.key!r} is missing (items: {', '.join(missing)})")
        elif isinstance(answers, Mapping) and missing:
            problems.append(f"domain {domain.key!r} does not answer {', '.join(missing)}")
    if problems:
        raise ChecklistError(problems)
    return {d.key: {item.key: str(checklist[d.key][item.key]) for item in d.items} for d in CHECKLIST}


def failed_items(checklist: Mapping[str, Mapping[str, str]]) -> list[tuple[ChecklistDomain, ChecklistItem]]:
    """The items a (valid) checklist failed, in checklist order."""
    return [(d, item) for d in CHECKLIST for item in d.items if checklist[d.key][item.key] == "fail"]


def judge(checklist: Mapping[str, Mapping[str, str]]) -> str:
    """The result of a valid checklist: violation, rectify or pass."""
    failed = {d.key for d, _ in failed_items(checklist)}
    if failed & EMISSION_DOMAINS:
        return "violation"
    return "rectify" if failed else "pass"


def assess(checklist: object, *, note: str = "", open_case: bool = False) -> tuple[dict[str, dict[str, str]], str]:
    """The checked checklist and its result, or the error recording it would meet: check before sealing photos."""
    answers = validate_checklist(checklist)
    result = judge(answers)
    if open_case and result == "pass":
        raise InspectionInputError(
            "the checklist passes every item: there is nothing to open a case for", argument="open_case"
        )
    if not isinstance(note, str) or len(note) > 4000:
        raise InspectionInputError("a note is text of at most 4000 characters", argument="note")
    return answers, result


# --- records the callers get --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InspectorRecord:
    id: str
    name: str
    street: str
    username: str | None
    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class InspectorRef:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class InspectionRecord:
    id: int
    draw_id: int
    purpose: str
    premises: str
    premises_name: str
    address: str
    street: str | None
    grade: str
    inspectors: tuple[InspectorRef, ...]
    state: str
    checklist: dict[str, Any] | None
    result: str | None
    note: str
    package_id: str | None
    case_number: str | None
    inspected_at: datetime | None
    recorded_by: str | None


@dataclass(frozen=True, slots=True)
class Unassigned:
    premises: str
    reason: str


@dataclass(frozen=True, slots=True)
class DrawRecord:
    """A draw as its agency sees it before and after publication; never its seed."""

    id: int
    purpose: str
    spec: dict[str, Any]
    inputs_sha256: str
    commitment: str
    commitment_leaf: int | None
    drawn_at: datetime
    drawn_by: str
    published_at: datetime | None
    published_leaf: int | None
    candidates: int
    pool: int
    allocation: dict[str, int]
    inspections: tuple[InspectionRecord, ...]
    unassigned: tuple[Unassigned, ...]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds")


def _check_time(at: object) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InspectionInputError(
            f"times must be timezone-aware datetimes (datetime.now(UTC)), but got {at!r}", argument="at"
        )
    return at


def _name(value: object, what: str, longest: int, *, argument: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > longest:
        raise InspectionInputError(f"{what} must be 1-{longest} characters, but got {value!r}", argument=argument)
    return value


def _user(s: Session, username: str) -> User:
    user = s.scalar(select(User).where(User.username == username))
    if user is None:
        raise UnknownRecordError(f"no user named {username!r}")
    return user


def _acting(s: Session, username: str, roles: frozenset[Role], what: str) -> User:
    user = _user(s, username)
    if not user.active:
        raise PermissionDeniedError(f"user {username!r} is deactivated")
    if user.role not in roles:
        raise PermissionDeniedError(f"{what} needs the role {' or '.join(sorted(roles))}; {username!r} is {user.role}")
    return user


# --- the inspector pool -------------------------------------------------------------------


def _inspector_record(inspector: Inspector, usernames: Mapping[int, str]) -> InspectorRecord:
    return InspectorRecord(
        id=inspector.id,
        name=inspector.name,
        street=inspector.street,
        username=usernames.get(inspector.user_id) if inspector.user_id is not None else None,
        active=inspector.active,
        created_at=inspector.created_at,
    )


def register_inspector(
    db: Database,
    *,
    inspector_id: str,
    name: str,
    street: str,
    username: str | None = None,
    active: bool = True,
    at: datetime,
) -> InspectorRecord:
    """Add an inspector to the pool or change one; `username` names the account that records their results.

    Inspectors are never deleted (past draws name them): one who leaves is made inactive.
    """
    _name(inspector_id, "an inspector id", 64, argument="inspector_id")
    _name(name, "an inspector's name", 128, argument="name")
    _name(street, "an inspector's street", 100, argument="street")
    _check_time(at)
    with db.session() as s:
        user_id = None
        if username is not None:
            user = _user(s, username)
            if user.role not in INSPECTOR_ACCOUNTS:
                raise InspectionInputError(
                    f"inspector {inspector_id} records results as {username!r}, who is {user.role}; "
                    f"the account must be one of: {', '.join(sorted(INSPECTOR_ACCOUNTS))}",
                    argument="username",
                )
            user_id = user.id
        inspector = s.get(Inspector, inspector_id, with_for_update=True)
        if inspector is None:
            inspector = Inspector(id=inspector_id, created_at=at)
            s.add(inspector)
        inspector.name, inspector.street, inspector.user_id, inspector.active = name, street, user_id, active
        s.flush()
        return _inspector_record(inspector, {user_id: username} if user_id is not None and username else {})


def list_inspectors(db: Database, *, active_only: bool = False) -> list[InspectorRecord]:
    """The pool, by id."""
    with db.session() as s:
        query = select(Inspector).order_by(Inspector.id)
        if active_only:
            query = query.where(Inspector.active.is_(True))
        inspectors = list(s.scalars(query))
        usernames = {i: name for i, name in s.execute(select(User.id, User.username))}
        return [_inspector_record(i, usernames) for i in inspectors]


# --- draws --------------------------------------------------------------------------------


def _candidates(s: Session, *, street: str | None, grade: str | None, kind: str | None) -> list[draws.Candidate]:
    """The premises registry as draw candidates, filtered; premises without a grade are "ungraded"."""
    query = select(Party).where(Party.code.is_not(None)).order_by(Party.code)
    if street is not None:
        query = query.where(Party.street == street)
    if grade is not None:
        query = query.where(Party.risk_grade.is_(None) if grade == UNGRADED else Party.risk_grade == grade)
    if kind is not None:
        query = query.where(Party.kind == kind)
    parties = [p for p in s.scalars(query) if p.code is not None]
    streetless = [str(p.code) for p in parties if not p.street]
    if streetless:
        raise InspectionInputError(
            f"premises {', '.join(streetless[:10])} have no street in the registry; "
            "a draw needs each premises' street (import the registry with the street column)"
        )
    return [draws.Candidate(str(p.code), str(p.street), p.risk_grade or UNGRADED) for p in parties]


def _pool(s: Session, at: datetime) -> list[draws.Inspector]:
    """The active inspectors, each with the premises they inspected in the year before `at`."""
    inspectors = list(s.scalars(select(Inspector).where(Inspector.active.is_(True)).order_by(Inspector.id)))
    recent: dict[str, set[str]] = {i.id: set() for i in inspectors}
    done = s.execute(
        select(Inspection.inspectors, Party.code)
        .join(Party, Inspection.party_id == Party.id)
        .where(
            Inspection.state == DONE,
            Inspection.inspected_at >= at - RECENT_WINDOW,
            Inspection.inspected_at <= at,
        )
    )
    for inspector_ids, code in done:
        for inspector_id in inspector_ids:
            if inspector_id in recent and code is not None:
                recent[inspector_id].add(code)
    return [draws.Inspector(i.id, i.name, i.street, frozenset(recent[i.id])) for i in inspectors]


def _inputs_of(row: InspectionDraw) -> tuple[draws.DrawSpec, list[draws.Candidate], list[draws.Inspector]]:
    spec = draws.DrawSpec.from_json(row.spec)
    candidates = [draws.Candidate(c["premises_id"], c["street"], c["grade"]) for c in row.candidates]
    pool = [draws.Inspector(i["id"], i["name"], i["street"], frozenset(i["recent_premises"])) for i in row.pool]
    return spec, candidates, pool


def _redraw(row: InspectionDraw) -> draws.DrawResult:
    """The draw recomputed from the stored seed and inputs."""
    spec, candidates, pool = _inputs_of(row)
    return draws.draw(bytes.fromhex(row.seed), spec, candidates, pool)


def _outcome(result: draws.DrawResult) -> dict[str, Any]:
    public = draws.to_public(result)
    return {key: public[key] for key in ("allocation", "assignments", "unassigned")}


def _logged_commitment(vault: Vault, row: InspectionDraw) -> int | None:
    """The leaf of this draw's commitment if an interrupted run logged it already."""
    for leaf, record in vault.records(draws.COMMITMENT_RECORD):
        if record.get("commitment") == row.commitment and record.get("purpose") == row.purpose:
            return leaf
    return None


def make_draw(
    db: Database,
    vault: Vault,
    *,
    purpose: str,
    spec: draws.DrawSpec,
    street: str | None = None,
    grade: str | None = None,
    kind: str | None = None,
    by: str,
    at: datetime,
) -> DrawRecord:
    """Draw premises from the registry (optionally one street, grade or kind) and inspectors from the pool.

    The seed, inputs and commitment are stored first, the commitment (with the inputs'
    digest) is logged next, and only then is the draw computed and its inspections planned.
    Asking again for a purpose whose run was interrupted finishes that run; a purpose that
    was drawn already is refused (a second draw would show in the log as a re-draw).
    """
    _name(purpose, "purpose", 200, argument="purpose")
    _check_time(at)
    with db.session() as s:
        _acting(s, by, DRAWERS, "a draw")
        row = s.scalar(select(InspectionDraw).where(InspectionDraw.purpose == purpose))
        if row is not None and row.commitment_leaf is not None:
            raise InspectionConflictError(
                f"{purpose!r} was drawn already (draw {row.id}, {_iso(row.drawn_at)}); "
                "a second draw for it would show in the log as a re-draw: give the new campaign its own purpose"
            )
        if row is not None and row.spec != spec.to_json():
            raise InspectionConflictError(
                f"an interrupted draw for {purpose!r} (draw {row.id}) was asked with {row.spec}; "
                "ask again with that spec to finish it"
            )
        if row is None:
            candidates = _candidates(s, street=street, grade=grade, kind=kind)
            pool = _pool(s, at)
            draws.draw(_PROBE_SEED, spec, candidates, pool)  # refuses a draw that cannot be made, before any logging
            seed = draws.new_seed()
            row = InspectionDraw(
                purpose=purpose,
                spec=spec.to_json(),
                candidates=[c.to_json() for c in candidates],
                pool=[i.to_json() for i in sorted(pool, key=lambda i: i.id)],
                inputs_sha256=draws.inputs_digest(spec, candidates, pool),
                commitment=draws.commit(seed),
                seed=seed.hex(),
                drawn_at=at,
                drawn_by=by,
            )
            s.add(row)
            try:
                s.flush()
            except IntegrityError as e:
                raise InspectionConflictError(f"{purpose!r} is being drawn by someone else right now") from e
        draw_id = row.id
    with db.session() as s:
        row = s.get(InspectionDraw, draw_id, with_for_update=True)
        if row is None:  # pragma: no cover - rows are never deleted
            raise UnknownRecordError(f"no draw {draw_id}")
        if row.commitment_leaf is None:
            leaf = _logged_commitment(vault, row)
            if leaf is None:
                leaf = draws.commit_to_log(
                    vault, row.commitment, purpose=row.purpose, at=row.drawn_at, inputs_sha256=row.inputs_sha256
                )
            result = _redraw(row)  # computed only now that the commitment is in the log
            codes = {p.code: p.id for p in s.scalars(select(Party).where(Party.code.in_(list(result.targets))))}
            for premises, inspector_ids in result.assignments:
                s.add(
                    Inspection(draw_id=row.id, party_id=codes[premises], inspectors=list(inspector_ids), state=PLANNED)
                )
            row.commitment_leaf, row.outcome = leaf, _outcome(result)
            logger.info(
                "inspection draw %d (%s): %d targets, %d unassigned",
                row.id,
                row.purpose,
                len(result.assignments),
                len(result.unassigned),
            )
    return draw_record(db, draw_id)


def publish_draw(db: Database, vault: Vault, *, draw_id: int, by: str, at: datetime) -> DrawRecord:
    """Publish a draw: log its public document (which reveals the seed) and keep it for the public page.

    Publishing a published draw changes nothing. A draw whose stored outcome no longer
    matches the one its seed and inputs give is refused: something changed it.
    """
    _check_time(at)
    with db.session() as s:
        _acting(s, by, DRAWERS, "publishing a draw")
        row = s.get(InspectionDraw, draw_id, with_for_update=True)
        if row is None:
            raise UnknownRecordError(f"no inspection draw {draw_id}")
        if row.published_leaf is not None:
            return _draw_record(s, row)
        if row.commitment_leaf is None:
            raise InspectionConflictError(
                f"draw {draw_id} was interrupted before its commitment was logged; "
                f"finish it by drawing {row.purpose!r} again"
            )
        result = _redraw(row)
        if _outcome(result) != row.outcome:
            raise InspectionError(
                f"draw {draw_id} as stored is not what its seed and inputs give; it was changed after it was drawn"
            )
        public = draws.to_public(result)
        wanted = canonical_json(public)
        logged = [
            leaf
            for leaf, record in vault.records(draws.PUBLISHED_RECORD)
            if record.get("commitment_leaf") == row.commitment_leaf and canonical_json(record.get("draw")) == wanted
        ]
        leaf = logged[0] if logged else draws.publish_to_log(vault, result, row.commitment_leaf, at=at)
        row.published_at, row.published_leaf, row.public = at, leaf, public
        logger.info("inspection draw %d (%s) published at leaf %d", row.id, row.purpose, leaf)
        s.flush()
        return _draw_record(s, row)


def verify_published(db: Database, vault: Vault, draw_id: int) -> list[str]:
    """What is wrong with a published draw (nothing: an empty list).

    The public document must recompute (`cases.draws.verify`), be in the log after a
    commitment that covers it with no re-draw (`verify_against_log`), and the inspections
    stored for it must be the published assignments.
    """
    with db.session() as s:
        row = s.get(InspectionDraw, draw_id)
        if row is None:
            raise UnknownRecordError(f"no inspection draw {draw_id}")
        if row.public is None:
            return [f"draw {draw_id} ({row.purpose}) is not published"]
        stored = {
            str(i.party.code): list(i.inspectors)
            for i in s.scalars(
                select(Inspection).where(Inspection.draw_id == draw_id).options(selectinload(Inspection.party))
            )
        }
        public = row.public
    problems = draws.verify_against_log(vault, public)
    published = {a["premises_id"]: a["inspectors"] for a in public.get("assignments", [])}
    for premises in sorted(set(stored) | set(published)):
        if stored.get(premises) != published.get(premises):
            problems.append(
                f"premises {premises}: the stored inspection has inspectors {stored.get(premises)}, "
                f"the published draw {published.get(premises)}"
            )
    return problems


def _inspection_records(s: Session, inspections: Sequence[Inspection]) -> list[InspectionRecord]:
    ids = {i for inspection in inspections for i in inspection.inspectors}
    names = {i: name for i, name in s.execute(select(Inspector.id, Inspector.name).where(Inspector.id.in_(ids)))}
    case_ids = {i.case_id for i in inspections if i.case_id is not None}
    numbers = {i: number for i, number in s.execute(select(Case.id, Case.number).where(Case.id.in_(case_ids)))}
    return [
        InspectionRecord(
            id=i.id,
            draw_id=i.draw_id,
            purpose=i.draw.purpose,
            premises=str(i.party.code),
            premises_name=i.party.name,
            address=i.party.address,
            street=i.party.street,
            grade=i.party.risk_grade or UNGRADED,
            inspectors=tuple(InspectorRef(x, names.get(x, x)) for x in i.inspectors),
            state=i.state,
            checklist=i.checklist,
            result=i.result,
            note=i.note,
            package_id=i.package_id,
            case_number=numbers.get(i.case_id) if i.case_id is not None else None,
            inspected_at=i.inspected_at,
            recorded_by=i.recorded_by,
        )
        for i in inspections
    ]


def _inspections_query() -> Any:
    return select(Inspection).options(selectinload(Inspection.party), selectinload(Inspection.draw))


def _draw_record(s: Session, row: InspectionDraw) -> DrawRecord:
    inspections = list(s.scalars(_inspections_query().where(Inspection.draw_id == row.id).order_by(Inspection.id)))
    outcome = row.outcome or {}
    return DrawRecord(
        id=row.id,
        purpose=row.purpose,
        spec=dict(row.spec),
        inputs_sha256=row.inputs_sha256,
        commitment=row.commitment,
        commitment_leaf=row.commitment_leaf,
        drawn_at=row.drawn_at,
        drawn_by=row.drawn_by,
        published_at=row.published_at,
        published_leaf=row.published_leaf,
        candidates=len(row.candidates),
        pool=len(row.pool),
        allocation=dict(outcome.get("allocation", {})),
        inspections=tuple(
            sorted(_inspection_records(s, inspections), key=lambda r: r.premises),
        ),
        unassigned=tuple(Unassigned(u["premises_id"], u["reason"]) for u in outcome.get("unassigned", [])),
    )


def draw_record(db: Database, draw_id: int) -> DrawRecord:
    with db.session() as s:
        row = s.get(InspectionDraw, draw_id)
        if row is None:
            raise UnknownRecordError(f"no inspection draw {draw_id}")
        return _draw_record(s, row)


def list_draws(db: Database) -> list[DrawRecord]:
    """Every draw, newest first."""
    with db.session() as s:
        rows = list(s.scalars(select(InspectionDraw).order_by(InspectionDraw.drawn_at.desc(), InspectionDraw.id)))
        return [_draw_record(s, row) for row in rows]


# --- inspections and their results --------------------------------------------------------


def list_inspections(
    db: Database, *, assigned_to: str | None = None, draw_id: int | None = None, state: str | None = None
) -> list[InspectionRecord]:
    """Inspections by draw and premises; `assigned_to` (a username) keeps those an inspector of that account is on."""
    with db.session() as s:
        query = _inspections_query().order_by(Inspection.draw_id.desc(), Inspection.id)
        if draw_id is not None:
            query = query.where(Inspection.draw_id == draw_id)
        if state is not None:
            query = query.where(Inspection.state == state)
        inspections = list(s.scalars(query))
        if assigned_to is not None:
            user = _user(s, assigned_to)
            mine = set(s.scalars(select(Inspector.id).where(Inspector.user_id == user.id)))
            inspections = [i for i in inspections if mine & set(i.inspectors)]
        return _inspection_records(s, inspections)


def inspection_record(db: Database, inspection_id: int) -> InspectionRecord:
    with db.session() as s:
        inspection = s.scalar(_inspections_query().where(Inspection.id == inspection_id))
        if inspection is None:
            raise UnknownRecordError(f"no inspection {inspection_id}")
        return _inspection_records(s, [inspection])[0]


def is_assigned(db: Database, *, inspection_id: int, username: str) -> bool:
    """Whether an inspector of the inspection records their results as `username`."""
    with db.session() as s:
        inspection = s.get(Inspection, inspection_id)
        if inspection is None:
            raise UnknownRecordError(f"no inspection {inspection_id}")
        return _assigned(s, inspection, _user(s, username))


def _assigned(s: Session, inspection: Inspection, user: User) -> bool:
    linked = s.scalars(select(Inspector.id).where(Inspector.user_id == user.id))
    return bool(set(linked) & set(inspection.inspectors))


def _recorder(s: Session, inspection: Inspection, username: str) -> User:
    """The user recording a result: a head, or an officer an inspector of the inspection records as."""
    user = _acting(s, username, RECORDERS, "recording an inspection")
    if user.role == Role.OFFICER and not _assigned(s, inspection, user):
        raise PermissionDeniedError(
            f"{username!r} is not linked to an inspector of inspection {inspection.id}; "
            "only its inspectors or a head record its result"
        )
    return user


def _planned(s: Session, inspection_id: int, *, lock: bool = False) -> Inspection:
    inspection = s.scalar(
        _inspections_query().where(Inspection.id == inspection_id).with_for_update(of=Inspection)
        if lock
        else _inspections_query().where(Inspection.id == inspection_id)
    )
    if inspection is None:
        raise UnknownRecordError(f"no inspection {inspection_id}")
    if inspection.state != PLANNED:
        when = _iso(inspection.inspected_at) if inspection.inspected_at else "earlier"
        raise InspectionConflictError(
            f"inspection {inspection_id} was recorded already "
            f"({inspection.result}, {when}, by {inspection.recorded_by})"
        )
    return inspection


def _place(party: Party) -> dict[str, float]:
    return {"lat": party.lat, "lon": party.lon} if party.lat is not None and party.lon is not None else {}


def _engine() -> dict[str, str]:
    try:  # the installed distribution's version: cases may not import the nonsite package
        installed = version("nonsite")
    except PackageNotFoundError:
        installed = "unknown"
    return {"name": "nonsite", "version": installed}


def seal_photos(
    db: Database, vault: Vault, *, inspection_id: int, files: Sequence[PackageFile], by: str, at: datetime
) -> str:
    """Seal an inspection's photos (or video, audio) into an evidence package with the officer as device.

    The package is the inspection's record, not a finding: its manifest names the inspection
    and carries no violation times, so filing refuses it; a case the result opens gets its
    own package, which copies these files.
    """
    _check_time(at)
    if not files:
        raise InspectionInputError("sealing photos needs at least one file", argument="files")
    with db.session() as s:
        inspection = _planned(s, inspection_id)
        user = _recorder(s, inspection, by)
        manifest = {
            "device": {"id": f"officer:{user.username}", "kind": "officer", "name": user.display_name},
            "place": _place(inspection.party),
            "capture": {"started_at": _iso(at), "ended_at": _iso(at), "clock_source": "officer device"},
            # a package must have a "violation"; this one names the inspection it records and no finding
            "violation": {
                "kind": "inspection",
                "record_only": True,
                "inspection": {
                    "id": inspection.id,
                    "draw": inspection.draw_id,
                    "purpose": inspection.draw.purpose,
                    "premises_code": inspection.party.code,
                },
            },
            "model": {},
            "rule": {"source": "double-random inspection", "checklist": CHECKLIST_VERSION},
            "engine": _engine(),
        }
    try:
        return vault.seal(manifest, files).package.package_id
    except PackageError as e:
        raise InspectionInputError(f"the photos cannot be sealed: {e}", argument="files") from e


def _check_photos(vault: Vault, package_id: str, inspection_id: int) -> None:
    """The package must be sealed in the log, and for this inspection."""
    try:
        vault.leaf_index(package_id)
        manifest = json.loads(vault.store.get(package_id))
    except (KeyError, EvidenceError, ValueError) as e:
        raise InspectionInputError(
            f"package {package_id} is not a sealed package in the evidence log", argument="package_id"
        ) from e
    sealed_for = ((manifest.get("violation") or {}).get("inspection") or {}).get("id")
    if sealed_for != inspection_id:
        raise InspectionInputError(
            f"package {package_id} was sealed for inspection {sealed_for}, not {inspection_id}; seal its photos again",
            argument="package_id",
        )


def _case_files(vault: Vault, document: Mapping[str, Any], package_id: str | None) -> list[PackageFile]:
    files = [PackageFile("inspection-checklist.json", canonical_json(document), "application/json", "checklist")]
    if package_id is None:
        return files
    try:
        package, contents = load_package(vault.store, package_id)
    except (PackageError, FileNotFoundError, KeyError) as e:
        raise InspectionInputError(
            f"package {package_id} is not a sealed package in the evidence store", argument="package_id"
        ) from e
    for name, entry in sorted(package.manifest["files"].items()):
        if name != files[0].name:
            files.append(PackageFile(name, contents[name], entry["media_type"], entry["role"]))
    return files


def record_result(
    db: Database,
    casebook: Casebook,
    *,
    inspection_id: int,
    checklist: Mapping[str, Any],
    note: str = "",
    package_id: str | None = None,
    open_case: bool = False,
    by: str,
    at: datetime,
) -> InspectionRecord:
    """Record what an inspection found, as its inspector (or a head) at `at`.

    The result is judged from the checklist (`judge`). A violation opens a case, and so does
    a rectification finding when `open_case` is asked; the case's package holds the
    checklist and copies of the photos (`package_id`, sealed by `seal_photos`). The same call
    made again after a crash files the same package and opens nothing twice.
    """
    _check_time(at)
    answers, result = assess(checklist, note=note, open_case=open_case)
    with db.session() as s:
        inspection = _planned(s, inspection_id)
        user = _recorder(s, inspection, by)
        party = inspection.party
        failed = [
            {"domain": d.key, "item": item.key, "zh": f"{d.zh}：{item.zh}", "en": f"{d.en}: {item.en}"}
            for d, item in failed_items(answers)
        ]
        document = {
            "checklist": CHECKLIST_VERSION,
            "inspection": inspection.id,
            "draw": inspection.draw_id,
            "purpose": inspection.draw.purpose,
            "premises": party.code,
            "premises_name": party.name,
            "inspectors": list(inspection.inspectors),
            "answers": answers,
            "failed": failed,
            "result": result,
            "note": note,
            "inspected_at": _iso(at),
            "recorded_by": user.username,
            "photos_package": package_id,
        }
        emission = any(f["domain"] in EMISSION_DOMAINS for f in failed)
        kind = "fume" if emission else "inspection"
        place, display = _place(party), user.display_name
    if package_id is not None:
        _check_photos(casebook.vault, package_id, inspection_id)

    case_number = None
    if result == "violation" or open_case:
        finding = {
            "device": {"id": f"officer:{by}", "kind": "officer", "name": display},
            "place": place,
            "capture": {"started_at": _iso(at), "ended_at": _iso(at), "clock_source": "officer device"},
            "violation": {
                "kind": kind,
                "zone": None,
                "started_at": _iso(at),
                "ended_at": _iso(at),
                "premises": party.code,
                "note": note,
                "failed": [f"{f['domain']}.{f['item']}" for f in failed],
                "inspection": {"id": inspection_id, "draw": document["draw"], "photos_package": package_id},
            },
            "model": {},
            "rule": {"source": "double-random inspection", "checklist": CHECKLIST_VERSION},
            "engine": _engine(),
        }
        try:
            sealed = casebook.vault.seal(finding, _case_files(casebook.vault, document, package_id))
        except PackageError as e:
            raise InspectionInputError(f"the inspection's evidence cannot be sealed: {e}") from e
        case_number = casebook.file_package(sealed.package.package_id).case_number

    with db.session() as s:
        inspection = _planned(s, inspection_id, lock=True)
        inspection.state, inspection.checklist, inspection.result, inspection.note = DONE, answers, result, note
        inspection.package_id, inspection.inspected_at, inspection.recorded_by = package_id, at, by
        if case_number is not None:
            inspection.case_id = s.scalar(select(Case.id).where(Case.number == case_number))
        s.flush()
        logger.info(
            "inspection %d recorded: %s%s", inspection_id, result, f", case {case_number}" if case_number else ""
        )
        return _inspection_records(s, [inspection])[0]


# --- the public page ----------------------------------------------------------------------


def _public_draw(record: DrawRecord, public: Mapping[str, Any], *, document: bool) -> dict[str, Any]:
    """A published draw as the public page shows it: the published assignments, and each result once recorded."""
    recorded = {r.premises: r for r in record.inspections if r.state == DONE}
    names = {r.premises: r.premises_name for r in record.inspections}
    candidates = {c["premises_id"]: c for c in public["candidates"]}
    inspectors = {i["id"]: i["name"] for i in public["pool"]}
    targets = []
    for assignment in public["assignments"]:
        premises = assignment["premises_id"]
        done = recorded.get(premises)
        targets.append(
            {
                "premises_id": premises,
                "name": names.get(premises),
                "street": candidates[premises]["street"],
                "grade": candidates[premises]["grade"],
                "inspectors": [{"id": x, "name": inspectors.get(x, x)} for x in assignment["inspectors"]],
                "result": done.result if done else None,
                "inspected_at": done.inspected_at if done else None,
            }
        )
    return {
        "id": record.id,
        "purpose": record.purpose,
        "algorithm": public["algorithm"],
        "drawn_at": record.drawn_at,
        "published_at": record.published_at,
        "commitment": public["commitment"],
        "commitment_leaf": record.commitment_leaf,
        "published_leaf": record.published_leaf,
        "inputs_sha256": record.inputs_sha256,
        "seed": public["seed"],
        "candidates": len(public["candidates"]),
        "pool": len(public["pool"]),
        "allocation": dict(public["allocation"]),
        "targets": targets,
        "unassigned": [dict(u) for u in public["unassigned"]],
        "document": dict(public) if document else None,
    }


def public_draws(db: Database) -> list[dict[str, Any]]:
    """The published draws, newest first, each with its targets, inspectors and recorded results.

    Draws not yet published are left out whole: their seed and even their targets stay inside.
    """
    with db.session() as s:
        rows = list(
            s.scalars(
                select(InspectionDraw)
                .where(InspectionDraw.public.is_not(None), InspectionDraw.published_at.is_not(None))
                .order_by(InspectionDraw.published_at.desc(), InspectionDraw.id.desc())
            )
        )
        return [_public_draw(_draw_record(s, row), row.public or {}, document=False) for row in rows]


def public_draw(db: Database, draw_id: int) -> dict[str, Any]:
    """One published draw with its whole public document, which `cases.draws.verify` checks."""
    with db.session() as s:
        row = s.get(InspectionDraw, draw_id)
        if row is None or row.public is None:
            raise UnknownRecordError(f"no published inspection draw {draw_id}")
        return _public_draw(_draw_record(s, row), row.public, document=True)


def checklist_definition() -> list[dict[str, Any]]:
    """The checklist's domains and items with their labels, for forms and the public page."""
    return [
        {
            "number": d.number,
            "key": d.key,
            "zh": d.zh,
            "en": d.en,
            "emission": d.emission,
            "items": [{"key": i.key, "zh": i.zh, "en": i.en} for i in d.items],
        }
        for d in CHECKLIST
    ]

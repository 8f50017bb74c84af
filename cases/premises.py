"""The premises registry: restaurants, shops and sites with their street and grid, grades,
fume purifier, permits, the camera zones that watch them, and their history of cases.

Imported from CSV or Excel (the county's "Internet + inspection" export): columns by their
English or Chinese names; every bad cell is reported with its row and column, and a file
with any problem imports nothing (fix it and import again). Premises are matched by the
registry's `code`, so importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, select

from cases.db import Database
from cases.errors import CaseError, UnknownRecordError
from cases.models import Case, Party, Permit, Zone
from cases.states import TERMINAL_STATES

# a column's name in the file, English or as the county's export writes it in Chinese
COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("code", "编号", "档案编号"),
    "name": ("name", "名称", "单位名称"),
    "kind": ("kind", "类型"),
    "address": ("address", "地址"),
    "street": ("street", "街道", "所属街道"),
    "grid": ("grid", "网格", "所属网格"),
    "lat": ("lat", "纬度"),
    "lon": ("lon", "经度"),
    "category": ("category", "类别", "经营类别"),
    "size_class": ("size_class", "规模"),
    "risk_grade": ("risk_grade", "风险等级", "等级"),
    "purifier_model": ("purifier_model", "净化器型号"),
    "purifier_installed_on": ("purifier_installed_on", "净化器安装日期"),
    "purifier_cleaned_on": ("purifier_cleaned_on", "净化器清洗日期"),
    "credit_code": ("credit_code", "统一社会信用代码"),
    "contact": ("contact", "联系人", "联系方式"),
    "zones": ("zones", "监控区域"),
}
SIZE_NAMES = {"小型": "small", "中型": "medium", "大型": "large"}
KIND_NAMES = {"餐饮": "restaurant", "商铺": "shop", "工地": "site", "其他": "other"}
CREDIT_CODE = r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$"  # GB 32100-2015
REPEAT_WINDOW = timedelta(days=365)


class PremisesError(CaseError):
    """A premises file that cannot be read at all (not a CSV or Excel file, no header)."""


class PremisesRecord(BaseModel):
    """One row of a premises file, checked."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="The registry's id of the premises: letters, digits, '_', '.' and '-' (it is used in URLs)",
    )
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["restaurant", "shop", "site", "other"] = "restaurant"
    address: str = Field("", max_length=400)
    street: str = Field(min_length=1, max_length=100, description="街道: the unit that manages the premises")
    grid: str = Field("", max_length=100)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    category: str = Field("", max_length=64)
    size_class: Literal["small", "medium", "large"] | None = None
    risk_grade: Literal["A", "B", "C", "D"] | None = None
    purifier_model: str = Field("", max_length=100)
    purifier_installed_on: date | None = None
    purifier_cleaned_on: date | None = None
    credit_code: str | None = Field(None, pattern=CREDIT_CODE)
    contact: str = Field("", max_length=200)
    zones: tuple[tuple[str, str], ...] = Field((), description="camera:zone pairs that watch the premises")

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value: object) -> object:
        return (
            KIND_NAMES.get(str(value).strip(), str(value).strip().lower()) if value not in (None, "") else "restaurant"
        )

    @field_validator("size_class", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        return SIZE_NAMES.get(str(value).strip(), str(value).strip().lower()) if value not in (None, "") else None

    @field_validator("risk_grade", mode="before")
    @classmethod
    def _grade(cls, value: object) -> object:
        return str(value).strip().upper() if value not in (None, "") else None

    @field_validator("lat", "lon", "purifier_installed_on", "purifier_cleaned_on", "credit_code", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("zones", mode="before")
    @classmethod
    def _zones(cls, value: object) -> object:
        if value in (None, ""):
            return ()
        if not isinstance(value, str):
            return value
        pairs = []
        for item in value.replace("；", ";").split(";"):
            camera, sep, zone = item.strip().partition(":")
            if not item.strip():
                continue
            if not sep or not camera or not zone:
                raise ValueError(f"zones are camera:zone pairs separated by ';', but got {item.strip()!r}")
            pairs.append((camera.strip(), zone.strip()))
        return tuple(pairs)


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int  # as a spreadsheet numbers it: the header is row 1
    column: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, {self.column}: {self.message}"


@dataclass
class ImportReport:
    rows: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def read_rows(path: Path, data: bytes | None = None) -> list[tuple[int, dict[str, str]]]:
    """The rows of a CSV (UTF-8, with or without BOM, or GB 18030) or Excel (.xlsx) file, keyed by
    column name as written, each with its spreadsheet row number."""
    data = path.read_bytes() if data is None else data
    if data[:4] == b"PK\x03\x04":
        return _xlsx_rows(path, data)
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise PremisesError(f"{path.name}: neither UTF-8 nor GB 18030 text, nor an Excel (.xlsx) file")
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise PremisesError(f"{path.name}: no header row")
    return [(n, {k.strip(): (v or "") for k, v in row.items() if k}) for n, row in enumerate(reader, start=2)]


def _xlsx_rows(path: Path, data: bytes) -> list[tuple[int, dict[str, str]]]:
    from openpyxl import load_workbook

    try:
        sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=True).worksheets[0]
    except Exception as e:  # openpyxl raises many kinds for a damaged workbook
        raise PremisesError(f"{path.name}: not a readable Excel workbook ({e})") from e
    rows = sheet.iter_rows(values_only=True)
    header = next(rows, None)
    if not header:
        raise PremisesError(f"{path.name}: no header row")
    names = [str(h).strip() if h is not None else "" for h in header]
    out = []
    for n, values in enumerate(rows, start=2):
        if values is None or all(v in (None, "") for v in values):
            continue
        cells = {}
        for name, value in zip(names, values, strict=False):
            if name:
                cells[name] = (
                    value.date().isoformat() if isinstance(value, datetime) else ("" if value is None else str(value))
                )
        out.append((n, cells))
    return out


def _columns(header: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """File column -> field, and the columns nobody knows."""
    aliases = {alias.lower(): name for name, names in COLUMNS.items() for alias in names}
    known, unknown = {}, []
    for column in header:
        if column.lower() in aliases:
            known[column] = aliases[column.lower()]
        else:
            unknown.append(column)
    return known, unknown


def validate(rows: Sequence[tuple[int, dict[str, str]]]) -> tuple[list[tuple[int, PremisesRecord]], list[RowProblem]]:
    """Check every row; returns the good records and every problem (row, column, what is wrong)."""
    if not rows:
        return [], [RowProblem(1, "-", "the file has a header but no premises")]
    known, unknown = _columns(rows[0][1].keys())
    problems = [
        RowProblem(1, column, f"unknown column; known: {', '.join(sorted(COLUMNS))} (or their Chinese names)")
        for column in unknown
    ]
    missing = [name for name in ("code", "name", "street") if name not in known.values()]
    problems += [RowProblem(1, name, "required column is missing") for name in missing]
    if problems:
        return [], problems
    field_to_column = {v: k for k, v in known.items()}
    records = []
    for n, cells in rows:
        values = {known[c]: v for c, v in cells.items() if c in known}
        try:
            records.append((n, PremisesRecord.model_validate(values)))
        except ValidationError as e:
            for err in e.errors():
                name = str(err["loc"][0]) if err["loc"] else "-"
                problems.append(RowProblem(n, field_to_column.get(name, name), err["msg"]))
    first_row: dict[str, int] = {}
    for n, record in records:
        if record.code in first_row:
            problems.append(
                RowProblem(n, field_to_column["code"], f"code {record.code!r} repeats row {first_row[record.code]}")
            )
        first_row.setdefault(record.code, n)
    return records, problems


def _purifier(record: PremisesRecord) -> dict[str, Any] | None:
    purifier = {
        "model": record.purifier_model or None,
        "installed_on": record.purifier_installed_on.isoformat() if record.purifier_installed_on else None,
        "cleaned_on": record.purifier_cleaned_on.isoformat() if record.purifier_cleaned_on else None,
    }
    return purifier if any(purifier.values()) else None


def import_premises(
    db: Database, path: Path, *, at: datetime, data: bytes | None = None, dry_run: bool = False
) -> ImportReport:
    """Create or update premises from a file, and link the camera zones named in it; with any
    problem (a bad cell, an unknown camera or zone, a zone another premises holds) nothing
    is written and the report lists every problem."""
    rows = read_rows(path, data)
    records, problems = validate(rows)
    report = ImportReport(rows=len(rows), problems=problems)
    if problems:
        return report
    with db.session() as s:
        zones = {(z.camera_id, z.name): z for z in s.scalars(select(Zone))}
        parties = {p.code: p for p in s.scalars(select(Party).where(Party.code.is_not(None)))}
        claimed: dict[tuple[str, str], str] = {}  # a zone watches one premises; the file decides which
        for n, record in records:
            for camera_zone in record.zones:
                if camera_zone not in zones:
                    problems.append(RowProblem(n, "zones", f"camera {camera_zone[0]!r} has no zone {camera_zone[1]!r}"))
                elif claimed.setdefault(camera_zone, record.code) != record.code:
                    other = claimed[camera_zone]
                    problems.append(RowProblem(n, "zones", f"zone {':'.join(camera_zone)} is also given to {other}"))
        if problems:
            report.problems = problems
            return report
        for _, record in records:
            values = {
                "kind": record.kind,
                "name": record.name,
                "address": record.address,
                "credit_code": record.credit_code,
                "lat": record.lat,
                "lon": record.lon,
                "street": record.street,
                "grid": record.grid or None,
                "category": record.category or None,
                "size_class": record.size_class,
                "risk_grade": record.risk_grade,
                "purifier": _purifier(record),
                "contact": record.contact,
            }
            party = parties.get(record.code)
            if party is None:
                party = Party(code=record.code, created_at=at, updated_at=at, **values)
                s.add(party)
                report.created.append(record.code)
            elif any(getattr(party, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(party, k, v)
                party.updated_at = at
                report.updated.append(record.code)
            else:
                report.unchanged.append(record.code)
            s.flush()
            for camera_zone in record.zones:
                zones[camera_zone].party_id = party.id
        if dry_run:
            s.rollback()
    return report


@dataclass(frozen=True, slots=True)
class PremisesHistory:
    code: str
    cases: int
    open_cases: int
    cases_last_year: int
    kinds: dict[str, int]
    last_case_at: datetime | None

    @property
    def repeat_offender(self) -> bool:
        return self.cases_last_year >= 2


def premises_history(db: Database, codes: Iterable[str] | None = None, *, at: datetime) -> dict[str, PremisesHistory]:
    """Each premises' cases: how many, how many open, how many in the last year, by kind."""
    with db.session() as s:
        query = select(Party.code, Case.kind, Case.state, Case.opened_at).join(Case, Case.party_id == Party.id)
        if codes is not None:
            query = query.where(Party.code.in_(list(codes)))
        rows = s.execute(query.where(Party.code.is_not(None))).all()
    grouped: dict[str, list[Any]] = {}
    for code, kind, state, opened in rows:
        if code is not None:
            grouped.setdefault(code, []).append((kind, state, opened))
    terminal = {s.value for s in TERMINAL_STATES}
    return {
        code: PremisesHistory(
            code=code,
            cases=len(items),
            open_cases=sum(state not in terminal for _, state, _ in items),
            cases_last_year=sum(opened >= at - REPEAT_WINDOW for _, _, opened in items),
            kinds=dict(Counter(kind for kind, _, _ in items)),
            last_case_at=max(opened for _, _, opened in items),
        )
        for code, items in grouped.items()
    }


def find_premises(db: Database, code: str) -> Party:
    with db.session() as s:
        party = s.scalar(select(Party).where(Party.code == code))
        if party is None:
            raise UnknownRecordError(f"no premises {code!r} in the registry")
        return party


def count_premises(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Party).where(Party.code.is_not(None))) or 0


def add_permit(
    db: Database,
    *,
    code: str,
    kind: str,
    number: str,
    valid_from: datetime,
    valid_to: datetime | None,
    area: dict[str, Any] | None,
    at: datetime,
) -> None:
    """Record a permit of the premises `code` (idempotent on its number)."""
    with db.session() as s:
        party = s.scalar(select(Party).where(Party.code == code))
        if party is None:
            raise UnknownRecordError(f"no premises {code!r} in the registry")
        existing = s.scalar(select(Permit).where(Permit.party_id == party.id, Permit.number == number))
        if existing is None:
            s.add(
                Permit(
                    party_id=party.id,
                    kind=kind,
                    number=number,
                    valid_from=valid_from,
                    valid_to=valid_to,
                    area=area,
                    created_at=at,
                )
            )

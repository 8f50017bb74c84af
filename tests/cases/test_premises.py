"""The premises registry: importing the county's CSV or Excel export, every bad cell named,
nothing half-imported, zones linked so that cases name the premises, and the repeat-offender view."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from cases.casebook import Casebook
from cases.models import Case, Party, Zone
from cases.premises import PremisesError, import_premises, premises_history
from tests.cases.conftest import Clock, seal_finding

CHINESE = (
    "编号,名称,类型,地址,街道,网格,纬度,经度,类别,规模,风险等级,净化器型号,净化器清洗日期,统一社会信用代码,监控区域\n"
    "R-001,老王面馆,餐饮,文化路 12 号,文化街道,一网格,30.251,120.161,面馆,小型,B,JD-2000,2026-10-01,"
    "91330100MA2B3C4D5E,cam-1:kitchen\n"
    "R-002,川味火锅,餐饮,文化路 20 号,文化街道,二网格,30.252,120.162,火锅,中型,A,,,,\n"
)


def write(tmp_path: Path, text: str, name: str = "premises.csv", encoding: str = "utf-8-sig") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_a_chinese_export_imports_with_grades_purifier_and_zones(
    casebook: Casebook, clock: Clock, tmp_path: Path
) -> None:
    report = import_premises(casebook.db, write(tmp_path, CHINESE), at=clock())
    assert report.ok and report.created == ["R-001", "R-002"]
    with casebook.db.session() as s:
        wang = s.scalar(select(Party).where(Party.code == "R-001"))
        assert wang is not None
        assert (wang.name, wang.kind, wang.street, wang.size_class, wang.risk_grade) == (
            "老王面馆",
            "restaurant",
            "文化街道",
            "small",
            "B",
        )
        assert wang.purifier == {"model": "JD-2000", "installed_on": None, "cleaned_on": "2026-10-01"}
        kitchen = s.scalar(select(Zone).where(Zone.camera_id == "cam-1", Zone.name == "kitchen"))
        assert kitchen is not None and kitchen.party_id == wang.id


def test_importing_the_same_file_again_changes_nothing(casebook: Casebook, clock: Clock, tmp_path: Path) -> None:
    path = write(tmp_path, CHINESE)
    import_premises(casebook.db, path, at=clock())
    again = import_premises(casebook.db, path, at=clock.advance(hours=1))
    assert again.ok and again.created == [] and again.updated == [] and again.unchanged == ["R-001", "R-002"]
    changed = import_premises(casebook.db, write(tmp_path, CHINESE.replace(",B,", ",A,")), at=clock())
    assert changed.updated == ["R-001"]


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        ("R-9,名,餐饮,,文化街道,,91.5,120,,,,,,,", "纬度", "less than or equal to 90"),
        ("R-9,名,餐饮,,文化街道,,,,,巨型,,,,,", "规模", "'small', 'medium' or 'large'"),
        ("R-9,名,餐饮,,文化街道,,,,,,Z,,,,", "风险等级", "'A', 'B', 'C' or 'D'"),
        ("R-9,名,餐饮,,文化街道,,,,,,,,2026-13-01,,", "净化器清洗日期", "date"),
        ("R-9,名,餐饮,,文化街道,,,,,,,,,12345,", "统一社会信用代码", "pattern"),
        ("R-9,,餐饮,,文化街道,,,,,,,,,,", "名称", "at least 1 character"),
        ("R-9,名,餐饮,,文化街道,,,,,,,,,,cam-1", "监控区域", "camera:zone pairs"),
        ("R-9,名,餐饮,,文化街道,,,,,,,,,,cam-1:roof", "zones", "camera 'cam-1' has no zone 'roof'"),
        ("R-001,名,餐饮,,文化街道,,,,,,,,,,", "编号", "repeats row 2"),
        ("R/9,名,餐饮,,文化街道,,,,,,,,,,", "编号", "pattern"),
    ],
)
def test_a_bad_cell_is_named_by_row_and_column_and_nothing_is_imported(
    casebook: Casebook, clock: Clock, tmp_path: Path, row: str, column: str, message: str
) -> None:
    report = import_premises(casebook.db, write(tmp_path, CHINESE + row + "\n"), at=clock())
    assert not report.ok
    (problem,) = report.problems
    assert (problem.row, problem.column) == (4, column) and message in problem.message, str(problem)
    with casebook.db.session() as s:
        assert s.scalar(select(Party).where(Party.code.is_not(None))) is None, "nothing half-imported"


def test_unknown_and_missing_columns_are_reported_on_the_header(
    casebook: Casebook, clock: Clock, tmp_path: Path
) -> None:
    report = import_premises(casebook.db, write(tmp_path, "code,name,colour\nR-1,x,red\n"), at=clock())
    assert {(p.row, p.column) for p in report.problems} == {(1, "colour"), (1, "street")}


def test_two_premises_cannot_share_a_zone(casebook: Casebook, clock: Clock, tmp_path: Path) -> None:
    text = CHINESE.replace("火锅,中型,A,,,,", "火锅,中型,A,,,,cam-1:kitchen")
    report = import_premises(casebook.db, write(tmp_path, text), at=clock())
    assert [str(p) for p in report.problems] == ["row 3, zones: zone cam-1:kitchen is also given to R-001"]


def test_gb18030_text_and_excel_workbooks_import_too(casebook: Casebook, clock: Clock, tmp_path: Path) -> None:
    assert import_premises(casebook.db, write(tmp_path, CHINESE, encoding="gb18030"), at=clock()).created == [
        "R-001",
        "R-002",
    ]
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["code", "name", "street", "risk_grade"])
    sheet.append(["S-1", "便利店", "文化街道", "c"])
    sheet.append([None, None, None, None])
    path = tmp_path / "premises.xlsx"
    book.save(path)
    report = import_premises(casebook.db, path, at=clock())
    assert report.ok and report.created == ["S-1"]


def test_a_file_that_is_neither_text_nor_a_workbook_is_refused(
    casebook: Casebook, clock: Clock, tmp_path: Path
) -> None:
    path = tmp_path / "premises.csv"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(PremisesError, match="not a readable Excel workbook"):
        import_premises(casebook.db, path, at=clock())
    path.write_bytes(bytes(range(128, 256)) * 4)
    with pytest.raises(PremisesError, match="neither UTF-8 nor GB 18030"):
        import_premises(casebook.db, path, at=clock())


def test_cases_in_a_linked_zone_name_the_premises_and_make_a_repeat_offender(
    casebook: Casebook, clock: Clock, tmp_path: Path
) -> None:
    import_premises(casebook.db, write(tmp_path, CHINESE), at=clock())
    for days in (30, 0):
        clock.advance(days=30 - days)
        package = seal_finding(casebook.vault, kind="fume", zone="kitchen", started_at=clock() - timedelta(hours=2))
        number = casebook.file_package(package).case_number
        if days == 30:
            casebook.apply(number, "reject", actor="li", reason_code="steam")
    with casebook.db.session() as s:
        assert {c.party.code for c in s.scalars(select(Case)) if c.party} == {"R-001"}
    history = premises_history(casebook.db, at=clock())
    assert set(history) == {"R-001"}
    wang = history["R-001"]
    assert (wang.cases, wang.open_cases, wang.cases_last_year, wang.kinds) == (2, 1, 2, {"fume": 2})
    assert wang.repeat_offender

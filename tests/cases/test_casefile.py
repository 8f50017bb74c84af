"""The case file (卷宗): bundles that verify, a self-contained page, escaping, and tampering shown."""

from __future__ import annotations

import base64
import json
import re
import zipfile
from datetime import timedelta
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from cases.casefile import THUMB_WIDTH, export_case_file
from cases.errors import UnknownRecordError
from cases.models import Case, Transition
from evidence.bundle import verify_bundle
from evidence.package import PackageFile
from tests.cases.conftest import seal_finding


class _Tables(HTMLParser):
    """The text of every table cell, by the table's class: {class: [[cell, ...], ...]}."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs).get("class") or "", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._table is not None and self._cell is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _tables(page: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def _finding(started_at, *, minutes: float = 10) -> dict:
    ended = started_at + timedelta(minutes=minutes)
    return {
        "device": {"id": "cam-1"},
        "place": {},
        "capture": {"started_at": started_at.isoformat(), "ended_at": ended.isoformat(), "clock_source": "test"},
        "violation": {
            "kind": "occupation",
            "zone": "sidewalk",
            "started_at": started_at.isoformat(),
            "ended_at": ended.isoformat(),
            "score": 0.93,
        },
        "model": {"sha256": "0" * 64},
        "rule": {},
        "engine": {"name": "nonsite", "version": "test"},
    }


def _png(width: int, height: int) -> bytes:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    cv2.rectangle(image, (width // 4, height // 4), (3 * width // 4, 3 * height // 4), (0, 0, 255), 8)
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def _warned_case(casebook, vault, clock) -> tuple[str, list[str]]:
    """A case with two packages, confirmed and warned: queue, add_evidence, confirm, warn."""
    first = seal_finding(vault, started_at=clock.now)
    number = casebook.file_package(first).case_number
    clock.advance(hours=1)
    second = seal_finding(vault, started_at=clock.now)
    assert casebook.file_package(second).joined
    casebook.apply(number, "confirm", actor="li", reason="stall on the sidewalk, seen on site")
    casebook.apply(number, "warn", actor="li")
    return number, [first, second]


def test_the_case_file_holds_a_verified_bundle_per_package_and_the_history_in_order(casebook, vault, clock, tmp_path):
    number, packages = _warned_case(casebook, vault, clock)
    out = tmp_path / "case"
    case_file = export_case_file(casebook, number, out, actor="li")

    assert case_file.verified
    assert case_file.html == out / "case-file.html"
    assert case_file.bundles == [out / "bundles" / f"{p}.zip" for p in packages]
    checkpoints = set()
    for bundle in case_file.bundles:
        checks = verify_bundle(bundle)
        assert checks and all(c.ok for c in checks), checks
        with zipfile.ZipFile(bundle) as z:
            checkpoints.add(z.read("checkpoint.json"))
    assert len(checkpoints) == 1  # one checkpoint for every bundle
    for package in packages:  # each export is in the package's custody log
        assert [(e.actor, e.action) for e in vault.custody_report(package)][-1] == ("li", "export")

    page = case_file.html.read_text(encoding="utf-8")
    assert '<meta charset="utf-8">' in page and '<html lang="zh-CN">' in page
    for heading in ("案件卷宗 Case file", "案件信息 Case", "证据 Evidence", "处理记录 History", "期限 Deadlines"):
        assert heading in page
    assert "@media print" in page
    assert not re.search(r"<script|<link|src=\"(?!data:)|url\(", page)  # nothing external, no scripts

    tables = _tables(page)
    history = tables["history"][1:]
    assert [row[0] for row in history] == ["1", "2", "3", "4"]
    assert [row[2] for row in history] == ["queue", "add_evidence", "confirm", "warn"]
    assert history[0][1] == "2025-09-08 09:00:00"  # 01:00 UTC, in Beijing
    assert history[2][3] == "pending_review → confirmed"
    assert history[2][4] == "li (officer)"
    assert history[2][5] == "stall on the sidewalk, seen on site"
    assert history[1][7] == packages[1][:16] + "…"
    # packages are leaves 0 and 2; the confirmation of each package is a custody leaf (5 and 6)
    assert [row[8] for row in history] == ["1", "3", "4", "7"]
    with casebook.db.session() as s:
        hashes = list(s.scalars(select(Transition.record_sha256).order_by(Transition.seq)))
    assert [row[9] for row in history] == [h[:16] for h in hashes]

    evidence = tables["evidence"][1:]
    assert [row[0] for row in evidence] == packages
    assert all(row[4].startswith("✓ all") for row in evidence)
    assert "history verified: 4 steps, signatures, hash chain and log leaves OK" in page
    assert "已核验 Verified" in page


def test_the_case_section_names_camera_zone_party_and_previous_case(casebook, vault, clock, tmp_path):
    casebook.add_party(kind="restaurant", name="老王面馆", address="文化路 12 号", zones=[("cam-1", "sidewalk")])
    first = casebook.file_package(seal_finding(vault, started_at=clock.now)).case_number
    casebook.apply(first, "confirm", actor="li")
    casebook.apply(first, "warn", actor="li")
    clock.advance(days=7)
    recheck = seal_finding(vault, started_at=clock.now, extra={"present": False})
    casebook.record_recheck(first, package_id=recheck, violation_present=False)
    clock.advance(hours=2)
    repeat = casebook.file_package(seal_finding(vault, started_at=clock.now))

    facts = dict(_tables(export_case_file(casebook, first, tmp_path / "first", actor="li").html.read_text())["facts"])
    assert facts["摄像头 Camera"] == "cam-1 · Wenhua Rd east"
    assert facts["区域 Zone"] == "sidewalk (no_occupation)"
    assert facts["当事人 Party"] == "老王面馆 · 文化路 12 号"
    assert facts["状态 State"] == "closed" and facts["结果 Outcome"] == "rectified"
    assert facts["结案 Closed"] != "—"

    facts = dict(
        _tables(export_case_file(casebook, repeat.case_number, tmp_path / "repeat", actor="li").html.read_text())[
            "facts"
        ]
    )
    assert facts["前案 Previous case (repeat)"] == first
    assert facts["结案 Closed"] == "—"


def test_thumbnails_are_downscaled_jpegs_of_the_annotated_images(casebook, vault, clock, tmp_path):
    files = [
        PackageFile("annotated-000001.png", _png(800, 600), "image/png", "annotated"),
        PackageFile("annotated-000002.png", b"not an image at all", "image/png", "annotated"),
        PackageFile("keyframe-000001.png", _png(640, 480), "image/png", "keyframe"),
    ]
    package = vault.seal(_finding(clock.now), files).package.package_id
    number = casebook.file_package(package).case_number

    page = export_case_file(casebook, number, tmp_path / "case", actor="li").html.read_text(encoding="utf-8")
    uris = re.findall(r'src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == 1  # the annotated image; keyframes only when there is none
    image = cv2.imdecode(np.frombuffer(base64.b64decode(uris[0]), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[1] <= THUMB_WIDTH
    assert image.shape[:2] == (240, 320)
    assert "annotated-000001.png · 800×600" in page
    assert "annotated-000002.png" in page and "not a decodable image" in page


def test_keyframes_are_shown_when_a_package_has_no_annotated_image(casebook, vault, clock, tmp_path):
    files = [PackageFile("keyframe-000001.png", _png(200, 100), "image/png", "keyframe")]
    number = casebook.file_package(vault.seal(_finding(clock.now), files).package.package_id).case_number
    page = export_case_file(casebook, number, tmp_path / "case", actor="li").html.read_text(encoding="utf-8")
    (uri,) = re.findall(r'src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', page)
    image = cv2.imdecode(np.frombuffer(base64.b64decode(uri), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (100, 200)  # small images are not enlarged


def test_user_input_is_escaped(casebook, vault, clock, tmp_path):
    casebook.add_party(kind="shop", name='<img src=x onerror="alert(2)">', zones=[("cam-1", "sidewalk")])
    number = casebook.file_package(seal_finding(vault, started_at=clock.now)).case_number
    casebook.apply(number, "reject", actor="li", reason_code="other", reason="<script>alert(1)</script>")

    page = export_case_file(casebook, number, tmp_path / "case", actor="li").html.read_text(encoding="utf-8")
    assert "<script" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page
    reject = _tables(page)["history"][-1]
    assert reject[5] == "<script>alert(1)</script>" and reject[6] == "other"


def test_deadlines_show_met_open_and_overdue_against_the_casebook_clock(casebook, vault, clock, tmp_path):
    number, _ = _warned_case(casebook, vault, clock)
    rows = _tables(export_case_file(casebook, number, tmp_path / "now", actor="li").html.read_text())["deadlines"][1:]
    status = {row[0]: row[5] for row in rows}
    assert status["review"].startswith("ended ") and status["review"].endswith("by confirm")
    assert status["disposition"].startswith("ended ") and status["disposition"].endswith("by warn")
    assert status["rectification"] == "OPEN" and status["recheck"] == "OPEN"
    assert {row[1] for row in rows if row[0] == "rectification"} == {"party"}

    clock.advance(days=30)
    rows = _tables(export_case_file(casebook, number, tmp_path / "later", actor="li").html.read_text())["deadlines"][1:]
    status = {row[0]: row[5] for row in rows}
    assert status["rectification"] == "OVERDUE" and status["recheck"] == "OVERDUE"


def test_an_existing_folder_with_files_is_refused(casebook, vault, clock, tmp_path):
    number = casebook.file_package(seal_finding(vault, started_at=clock.now)).case_number
    out = tmp_path / "case"
    out.mkdir()
    (out / "old.txt").write_text("earlier export")
    with pytest.raises(ValueError, match="not an empty folder"):
        export_case_file(casebook, number, out, actor="li")
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    with pytest.raises(ValueError, match="not an empty folder"):
        export_case_file(casebook, number, out / "old.txt", actor="li")

    empty = tmp_path / "empty"
    empty.mkdir()
    assert export_case_file(casebook, number, empty, actor="li").verified


def test_an_unknown_case_is_refused_and_nothing_is_written(casebook, tmp_path):
    with pytest.raises(UnknownRecordError, match="CG-2025-999999"):
        export_case_file(casebook, "CG-2025-999999", tmp_path / "case", actor="li")
    assert not (tmp_path / "case").exists()


def _tamper(casebook, number: str, seq: int, **values) -> None:
    with casebook.db.session() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        transition = next(t for t in case.transitions if t.seq == seq)
        for name, value in values.items():
            setattr(transition, name, value)


def test_a_rewritten_transition_record_is_not_verified_and_the_page_says_why(casebook, vault, clock, tmp_path):
    number, _ = _warned_case(casebook, vault, clock)
    with casebook.db.session() as s:
        record = s.scalar(select(Transition.record).join(Case).where(Case.number == number, Transition.seq == 3))
    forged = record.replace("seen on site", "not seen at all")
    assert forged != record
    _tamper(casebook, number, 3, record=forged)

    case_file = export_case_file(casebook, number, tmp_path / "case", actor="li")
    assert not case_file.verified
    assert all(all(c.ok for c in verify_bundle(b)) for b in case_file.bundles)  # the evidence itself is fine
    page = case_file.html.read_text(encoding="utf-8")
    assert "未通过核验 NOT verified" in page
    problems = re.findall(r"<li>(.*?)</li>", page)
    assert f"case {number} step 3 (confirm): record hash does not match the record" in problems
    assert f"case {number} step 3 (confirm): signature does not verify" in problems
    assert "history verified" not in page


def test_a_row_that_differs_from_its_signed_record_is_not_verified(casebook, vault, clock, tmp_path):
    number, _ = _warned_case(casebook, vault, clock)
    _tamper(casebook, number, 3, reason="approved by phone")  # the row, not the signed record

    case_file = export_case_file(casebook, number, tmp_path / "case", actor="li")
    assert not case_file.verified
    assert f"case {number} step 3 (confirm): the stored &#x27;reason&#x27; differs from the signed record" in (
        case_file.html.read_text(encoding="utf-8")
    )


def test_a_record_that_is_not_json_does_not_stop_the_export(casebook, vault, clock, tmp_path):
    number, _ = _warned_case(casebook, vault, clock)
    _tamper(casebook, number, 2, record="{not json")

    case_file = export_case_file(casebook, number, tmp_path / "case", actor="li")
    assert not case_file.verified
    page = case_file.html.read_text(encoding="utf-8")
    assert f"case {number} step 2 (add_evidence): record is not a JSON object" in page
    assert f"case {number} step 2 (add_evidence): the signed record cannot be read" in page


def test_an_altered_evidence_file_is_named_and_the_rest_still_exported(casebook, vault, clock, tmp_path):
    number, packages = _warned_case(casebook, vault, clock)
    manifest = json.loads(vault.store.get(packages[1]))
    stored = vault.store.path_of(manifest["files"]["keyframe-000001.png"]["sha256"])
    stored.chmod(0o644)
    stored.write_bytes(b"swapped")

    case_file = export_case_file(casebook, number, tmp_path / "case", actor="li")
    assert not case_file.verified
    assert case_file.bundles == [tmp_path / "case" / "bundles" / f"{packages[0]}.zip"]
    evidence = _tables(case_file.html.read_text(encoding="utf-8"))["evidence"][1:]
    assert evidence[0][4].startswith("✓")
    assert evidence[1][4].startswith("✗ failed: export:") and "no longer matches its hash" in evidence[1][4]

"""KPIs count the events of their period and divide like with like."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cases.kpi import format_report, kpi_report
from tests.cases.conftest import seal_finding


@pytest.fixture
def day(casebook, vault, clock):
    """Four findings on two cameras: two confirmed (one warned and closed after a re-check), one rejected,
    one left in the queue past its review deadline."""
    start = clock.now
    a = casebook.file_package(seal_finding(vault, started_at=clock.now)).case_number
    b = casebook.file_package(seal_finding(vault, camera="cam-2", started_at=clock.now)).case_number
    c = casebook.file_package(seal_finding(vault, kind="fume", zone="kitchen", started_at=clock.now)).case_number
    casebook.file_package(seal_finding(vault, started_at=clock.now + timedelta(hours=1)))  # joins a
    clock.advance(hours=2)
    casebook.apply(a, "confirm", actor="li")
    casebook.apply(a, "warn", actor="li", rectify_days=1)
    casebook.apply(b, "reject", actor="wang", reason_code="shadow")
    casebook.apply(c, "confirm", actor="wang")
    casebook.apply(c, "file", actor="chen")
    clock.advance(days=2)
    casebook.record_recheck(a, package_id=seal_finding(vault, started_at=clock.now), violation_present=False)
    d = casebook.file_package(seal_finding(vault, camera="cam-2", kind="fume", zone=None, started_at=clock.now))
    return start, clock.now + timedelta(days=5), (a, b, c, d.case_number)


def test_totals_of_a_period(casebook, day):
    start, end, _ = day
    (row,) = kpi_report(casebook, start=start, end=end).rows
    assert (row.detections, row.cases_opened, row.confirmed, row.rejected, row.filed) == (5, 4, 2, 1, 1)
    assert row.confirmed_rate == pytest.approx(2 / 3)
    assert row.filing_rate == pytest.approx(1 / 2)
    assert (row.concluded, row.closed) == (2, 1)
    assert row.closing_rate == pytest.approx(2 / 4)
    assert row.median_hours_to_close == pytest.approx(50.0)
    # c's decision period (90 days) runs on; d's review deadline passed within the five days
    assert row.overdue == 1


def test_groups_by_camera_and_kind(casebook, day):
    start, end, _ = day
    by_camera = {r.group: r for r in kpi_report(casebook, start=start, end=end, group_by="camera").rows}
    assert {g: (r.cases_opened, r.confirmed, r.rejected) for g, r in by_camera.items()} == {
        "cam-1": (2, 2, 0),
        "cam-2": (2, 0, 1),
    }
    by_kind = {r.group: r.cases_opened for r in kpi_report(casebook, start=start, end=end, group_by="kind").rows}
    assert by_kind == {"fume": 2, "occupation": 2}


def test_officers_are_counted_by_their_own_steps(casebook, day):
    start, end, _ = day
    officers = {o.officer: o for o in kpi_report(casebook, start=start, end=end).officers}
    assert set(officers) == {"li", "wang", "chen"}
    assert (officers["li"].confirmed, officers["li"].other_steps) == (1, 1)
    assert (officers["wang"].confirmed, officers["wang"].rejected) == (1, 1)
    assert officers["chen"].other_steps == 1
    assert officers["li"].median_hours_to_review == pytest.approx(2.0)


def test_a_period_before_anything_happened_is_empty(casebook, day):
    start, _, _ = day
    report = kpi_report(casebook, start=start - timedelta(days=3), end=start)
    assert report.rows == [] and report.officers == []


def test_the_text_report_names_every_group(casebook, day):
    start, end, _ = day
    by_camera = format_report(kpi_report(casebook, start=start, end=end, group_by="camera"))
    assert "cam-1" in by_camera and "cam-2" in by_camera
    assert "66.7%" in format_report(kpi_report(casebook, start=start, end=end))


def test_an_empty_period_is_refused(casebook, clock):
    with pytest.raises(ValueError, match="must end after it starts"):
        kpi_report(casebook, start=clock.now, end=clock.now)

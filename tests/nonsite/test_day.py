"""The synthetic day, cut to the scenes of one hour (14:00): every path of the loop the day exercises."""

from __future__ import annotations

import json

import pytest

from cases.db import Database
from cases.models import Case
from nonsite.day import STUBBORN_CAMERA, run_synthetic_day
from nonsite.starter import starter_model_path
from vision.detectors import create_detector


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    detector = create_detector({"type": "onnx_yolo", "path": starter_model_path()})
    return run_synthetic_day(detector, tmp_path_factory.mktemp("day") / "out", hours=(14,))


def test_each_violation_ends_where_its_road_leads(day):
    db = Database(f"sqlite:///{day.out_dir / 'cases.db'}", migrate=False)
    with db.session() as s:
        cases = {c.camera_id: (c.kind, c.state, c.outcome) for c in s.query(Case)}
    db.close()
    assert cases["cam-restaurant-row"] == ("fume", "closed", "rectified")  # warned, re-checked clean, closed
    assert cases[STUBBORN_CAMERA] == ("occupation", "escalated", None)  # the stall was back at the re-check
    assert cases["cam-building-site"] == ("construction", "pre_notice_sent", None)  # filed for a penalty
    assert "cam-quiet-alley" not in cases  # nothing happened there


def test_the_loop_holds_and_the_kpis_are_written(day):
    assert day.invariants.ok, day.invariants.problems
    assert day.invariants.unfiled_packages == []
    rows = {row["group"]: row for row in json.loads((day.out_dir / "kpis.json").read_text())["rows"]}
    assert set(rows) == {"cam-restaurant-row", STUBBORN_CAMERA, "cam-building-site"}
    assert all(row["confirmed_rate"] == 1.0 for row in rows.values())
    assert rows["cam-restaurant-row"]["closed"] == 1


def test_running_again_rebuilds_its_own_folder_but_not_a_strangers(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="was not made by `nonsite day`"):
        run_synthetic_day(None, tmp_path)  # type: ignore[arg-type]
    assert (tmp_path / "mine.txt").read_text() == "keep"

"""The synthetic district: every path that opens a fume case runs, fused cases need both a
camera and a monitor of one premises, and the loop's invariants hold (synthetic figures)."""

from __future__ import annotations

import json
from pathlib import Path

from nonsite.cli import main


def test_two_days_of_the_district_open_cases_by_every_path(tmp_path: Path, capsys) -> None:
    assert main(["district", "--days", "2", "--out", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "closed-loop invariants hold" in out
    for path in ("camera only", "monitor only", "purifier off (monitor)"):
        assert path in out, out
    result = json.loads((tmp_path / "d" / "district.json").read_text())
    assert result["readings"] == 16 * 2 * 288, "a reading every five minutes from each of 16 monitors"
    monitor_only = result["paths"]["monitor only"]
    assert monitor_only.get("rejected", 0) == 0, "a measured exceedance is a real one"


def test_days_must_be_positive(tmp_path: Path, capsys) -> None:
    assert main(["district", "--days", "0", "--out", str(tmp_path / "d")]) != 0
    assert "--days must be at least 1" in capsys.readouterr().err

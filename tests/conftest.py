"""Shared fixtures and the rules for tests that need optional things.

Tests that need `../shared/data` or the `train` extra skip with a reason on a machine
without them, but under CI (CI=true) a missing prerequisite is an error: CI has both,
and a silently skipped check there would be a defect.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get("NONSITE_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(marker: str) -> str | None:
    if marker == "shared_data" and not SHARED_DATA.is_dir():
        return f"needs real data at {SHARED_DATA} (set NONSITE_SHARED_DATA)"
    if marker == "train" and (
        importlib.util.find_spec("torch") is None or importlib.util.find_spec("ultralytics") is None
    ):
        return "needs the train extra: pip install -e '.[train]'"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in ("shared_data", "train"):
        if item.get_closest_marker(marker) is None:
            continue
        reason = _missing(marker)
        if reason is None:
            continue
        if IN_CI:
            pytest.fail(f"CI must run this test, but it {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _case_database_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands that open the default case database use one in the test's folder, never var/ of the checkout."""
    monkeypatch.setenv("NONSITE_DATABASE_URL", f"sqlite:///{tmp_path / 'default-cases.db'}")

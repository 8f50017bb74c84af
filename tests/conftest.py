"""Shared fixtures and the rules for tests that need optional things.

Tests that need `../shared/data` or the `train` extra skip with a reason on a machine
without them, but under CI (CI=true) a missing prerequisite is an error: CI has both,
and a silently skipped check there would be a defect.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from cases.db import Database
from cases.models import Base

SHARED_DATA = Path(
    os.environ.get("NONSITE_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = Path(os.environ.get("NONSITE_CHROMIUM", "/usr/bin/chromium"))
POSTGRES_ADMIN_URL = os.environ.get("NONSITE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _missing(marker: str) -> str | None:
    if marker == "shared_data" and not SHARED_DATA.is_dir():
        return f"needs real data at {SHARED_DATA} (set NONSITE_SHARED_DATA)"
    if marker == "train" and (
        importlib.util.find_spec("torch") is None or importlib.util.find_spec("ultralytics") is None
    ):
        return "needs the train extra: pip install -e '.[train]'"
    if marker == "services":
        down = [
            name for name, port in (("Redis", 6379), ("RabbitMQ", 5672), ("Mosquitto", 1883)) if not _listening(port)
        ]
        if down:
            return f"needs {' and '.join(down)} on 127.0.0.1 (.ci/run starts them)"
    if marker == "browser":
        if not CHROMIUM.is_file():
            return f"needs Chromium at {CHROMIUM}: apt-get install -y chromium fonts-noto-cjk (or set NONSITE_CHROMIUM)"
        if importlib.util.find_spec("playwright") is None:
            return "needs the dev extra's playwright: pip install -e '.[dev]'"
    return None


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in ("shared_data", "train", "services", "browser"):
        if item.get_closest_marker(marker) is None:
            continue
        reason = _missing(marker)
        if reason is None:
            continue
        if IN_CI:
            pytest.fail(f"CI must run this test, but it {reason}")
        pytest.skip(reason)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item (`item.report_call`), so that a fixture can act on a failed test."""
    report: pytest.TestReport = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _case_database_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands that open the default case database use one in the test's folder, never var/ of the checkout."""
    monkeypatch.setenv("NONSITE_DATABASE_URL", f"sqlite:///{tmp_path / 'default-cases.db'}")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"nonsite_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as e:
        admin.dispose()
        message = f"needs PostgreSQL at {POSTGRES_ADMIN_URL} (set NONSITE_TEST_POSTGRES): {e.orig}"
        if IN_CI:
            pytest.fail(f"CI must run the PostgreSQL tests, but it {message}")
        pytest.skip(message)
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    Database(url).close()  # migrate once
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'cases.db'}")
    else:
        db = Database(request.getfixturevalue("postgres_url"))
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with db.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield db
    db.close()


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Wait until `condition()` is true, polling; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)

"""Fixtures for the case tests: every test that takes `casebook` runs on SQLite and on PostgreSQL.

PostgreSQL is the one on this machine (`NONSITE_TEST_POSTGRES`, default the trust-auth
server on 127.0.0.1); each test session makes its own database there and drops it after.
Without a server the PostgreSQL half skips with a reason, except under CI, where it fails.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cases.casebook import Casebook
from cases.db import Database
from cases.policy import CasePolicy
from cases.states import Role
from evidence.package import PackageFile
from evidence.vault import Vault


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    v = Vault(tmp_path / "evidence", tmp_path / "keys")
    yield v
    v.close()


@pytest.fixture
def clock() -> Clock:
    # a Monday morning in Beijing, well clear of holidays
    return Clock(datetime(2025, 9, 8, 1, 0, tzinfo=UTC))


@pytest.fixture
def casebook(database: Database, vault: Vault, clock: Clock) -> Casebook:
    book = Casebook(database, vault, policy=CasePolicy(agency="CG", merge_window_hours=24), clock=clock)
    book.register_camera(
        "cam-1",
        name="Wenhua Rd east",
        lat=30.25,
        lon=120.16,
        zones=[("sidewalk", "no_occupation"), ("kitchen", "fume_watch")],
    )
    book.register_camera("cam-2", name="Market St", zones=[("sidewalk", "no_occupation")])
    for username, role in [
        ("li", Role.OFFICER),
        ("wang", Role.OFFICER),
        ("zhao", Role.LEGAL_REVIEWER),
        ("chen", Role.HEAD),
        ("eng", Role.ENGINEER),
    ]:
        book.add_user(username, role)
    return book


def seal_finding(
    vault: Vault,
    *,
    kind: str = "occupation",
    camera: str | None = "cam-1",
    zone: str | None = "sidewalk",
    started_at: datetime,
    minutes: float = 10,
    score: float = 0.8,
    place: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Seal a small package for a finding and return its package id."""
    ended = started_at + timedelta(minutes=minutes)
    finding = {
        "device": {"id": camera} if camera else {},
        "place": dict(place or {}),
        "capture": {"started_at": started_at.isoformat(), "ended_at": ended.isoformat(), "clock_source": "test"},
        "violation": {
            "kind": kind,
            "zone": zone,
            "started_at": started_at.isoformat(),
            "ended_at": ended.isoformat(),
            "score": score,
            **(extra or {}),
        },
        "model": {"sha256": "0" * 64},
        "rule": {},
        "engine": {"name": "nonsite", "version": "test"},
    }
    frame = PackageFile("keyframe-000001.png", started_at.isoformat().encode(), "image/png", "keyframe")
    return vault.seal(finding, [frame]).package.package_id

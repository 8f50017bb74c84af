"""A deployment for the API tests: a case database (SQLite and PostgreSQL), an evidence vault
with real sealed packages of three cameras, users of every role, and camera health reports.

`deployment.login(username)` returns the headers of that user's session.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.accounts import create_user
from api.app import create_app
from api.settings import ApiSettings
from cases.casebook import Casebook
from cases.db import Database
from evidence.vault import Vault
from pipelines.fume import MonitorService
from pipelines.sealing import violation_package
from pipelines.settings import register_cameras
from pipelines.worker import CameraHealth, HealthEvent
from vision.camera import CameraConfig, Location
from vision.zones import ZoneConfig

PASSWORD = "correct horse battery"
USERS = {
    "officer-li": "officer",
    "officer-wang": "officer",
    "head-chen": "head",
    "legal-zhao": "legal_reviewer",
    "engineer-sun": "engineer",
    "admin": "admin",
}
FRAME = (96, 160)  # height, width of the test cameras
CAMERAS = {
    "cam-street": ("occupation", "sidewalk", "no_occupation", "stall", Location(lat=30.251, lon=120.161)),
    "cam-kitchen": ("fume", "exhaust", "fume_watch", "smoke", Location(lat=30.252, lon=120.162)),
    "cam-site": ("construction", "parcel", "construction_watch", "scaffolding", None),
}


def camera_config(camera_id: str) -> CameraConfig:
    _, zone, rule, cls, location = CAMERAS[camera_id]
    h, w = FRAME
    return CameraConfig(
        id=camera_id,
        name=f"{camera_id} name",
        source=f"rtsp://user:secret@127.0.0.1/{camera_id}",
        fps=10.0,
        location=location,
        zones=(
            ZoneConfig(name=zone, polygon=((8, 8), (w - 8, 8), (w - 8, h - 8), (8, h - 8)), rule=rule, classes=(cls,)),
        ),
    )


def sealed_finding(vault: Vault, camera_id: str, started: datetime, seed: int) -> str:
    """Seal one violation of `camera_id` with a box at each of its two keyframes; returns the package id."""
    kind, zone, _, cls, _ = CAMERAS[camera_id]
    rng = np.random.default_rng(seed)
    h, w = FRAME
    record = {
        "kind": kind,
        "source": camera_id,
        "zone": zone,
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(seconds=40)).isoformat(),
        "start_frame": 10,
        "end_frame": 14,
        "confirmed_frame": 12,
        "track_ids": [seed + 1],
        "bbox": [20.0, 20.0, 80.0, 70.0],
        "score": 0.87,
        "keyframes": [11, 13],
        "clip_span": [10, 14],
        "model_id": "0" * 64,
        "rule": {"zone": zone, "rule": CAMERAS[camera_id][2], "classes": [cls]},
        "attributes": {"class_name": cls} if kind == "occupation" else {},
        "closed": True,
        "boxes": [
            {"frame": f, "xyxy": [20.0 + f, 20.0, 80.0 + f, 70.0], "score": 0.8 + f / 100} for f in (10, 11, 12, 13)
        ],
    }
    frames = {}
    for i in range(10, 15):
        frame = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
        cv2.rectangle(frame, (20 + i, 20), (80 + i, 70), (0, 160, 255), -1)
        frames[i] = frame
    return vault.seal(*violation_package(frames, record, camera_config(camera_id), 10.0, "system")).package.package_id


@dataclass
class Deployment:
    client: TestClient
    casebook: Casebook
    vault: Vault
    health_dir: Path
    monitors: MonitorService
    packages: dict[str, str] = field(default_factory=dict)  # camera id -> package id
    cases: dict[str, str] = field(default_factory=dict)  # camera id -> case number
    _sessions: dict[str, dict[str, str]] = field(default_factory=dict)

    def login(self, username: str) -> dict[str, str]:
        if username not in self._sessions:
            response = self.client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
            assert response.status_code == 200, response.text
            self.client.cookies.clear()  # each request says who it is by its header alone
            self._sessions[username] = {"Authorization": f"Bearer {response.json()['access_token']}"}
        return self._sessions[username]


def write_health(health_dir: Path, camera_id: str, state: str = "live") -> None:
    now = datetime.now(UTC)
    report = CameraHealth(
        camera_id=camera_id,
        name=camera_id,
        source=f"rtsp://user:***@127.0.0.1/{camera_id}",
        worker="w1",
        state=state,
        frames=120,
        decode_fps=10.0,
        lag_s=0.05,
        updated_at=now,
        events=[HealthEvent(camera_id=camera_id, kind="connected", at=now)],
    )
    (health_dir / f"{camera_id}.json").write_text(report.model_dump_json(), encoding="utf-8")


@pytest.fixture
def deployment(database: Database, tmp_path: Path) -> Iterator[Deployment]:
    vault = Vault(tmp_path / "evidence", tmp_path / "keys")
    book = Casebook(database, vault)
    register_cameras(book, [camera_config(c) for c in CAMERAS])
    for username, role in USERS.items():
        create_user(database, username=username, role=role, password=PASSWORD, display_name=username.title())
    health = tmp_path / "health"
    health.mkdir()
    write_health(health, "cam-street")
    write_health(health, "cam-kitchen", state="reconnecting")
    settings = ApiSettings(environment="development", max_upload_bytes=64 * 1024, login_attempts=3)
    monitors = MonitorService(book)
    app = create_app(database, vault, health, settings=settings, casebook=book, monitors=monitors)
    deployment = Deployment(TestClient(app), book, vault, health, monitors)
    started = datetime.now(UTC) - timedelta(hours=2)
    for n, camera_id in enumerate(CAMERAS):
        package = sealed_finding(vault, camera_id, started + timedelta(minutes=n), seed=n)
        deployment.packages[camera_id] = package
        deployment.cases[camera_id] = book.file_package(package).case_number
    yield deployment
    deployment.client.close()
    vault.close()


# the browser tests' fixtures (a served deployment, Chromium, screenshotted contexts)
from tests.api.browser import browser, browsers, live, playwright, template  # noqa: E402, F401

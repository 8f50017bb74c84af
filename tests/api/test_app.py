"""The API as `nonsite run` serves it: camera health from the workers' reports, Prometheus
metrics, cases with counts and filters, and the console page."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from cases.casebook import Casebook
from cases.db import Database
from evidence.vault import Vault
from pipelines.staging import StagingArea
from pipelines.worker import CameraHealth, HealthEvent
from tests.pipelines.test_tasks import stage_violations


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    vault = Vault(tmp_path / "evidence", tmp_path / "keys")
    db = Database(f"sqlite:///{tmp_path / 'cases.db'}")
    book = Casebook(db, vault)
    book.register_camera("cam-1", name="Test street", zones=[("street", "no_occupation")])
    staging = StagingArea(tmp_path / "staging")
    for item in stage_violations(staging, 3, zone="street"):
        loaded = staging.load(item)
        book.file_package(vault.seal(loaded.finding, loaded.files).package.package_id)
    health = tmp_path / "health"
    health.mkdir()
    now = datetime.now(UTC)
    for camera_id, state in (("cam-1", "live"), ("cam-2", "reconnecting")):
        report = CameraHealth(
            camera_id=camera_id,
            name=camera_id,
            source="rtsp://user:***@10.0.0.1/s",
            worker="w1",
            state=state,
            frames=120,
            decode_fps=10.0,
            lag_s=0.05,
            reconnects=2 if state != "live" else 0,
            updated_at=now,
            events=[HealthEvent(camera_id=camera_id, kind="connected", at=now)],
        )
        (health / f"{camera_id}.json").write_text(report.model_dump_json(), encoding="utf-8")
    (health / "broken.json").write_text("{not json", encoding="utf-8")
    client = TestClient(create_app(db, health))
    yield client
    db.close()
    vault.close()


def test_camera_health_lists_every_readable_report(client: TestClient) -> None:
    response = client.get("/api/cameras")
    assert response.status_code == 200
    states = {c["camera_id"]: c["state"] for c in response.json()}
    assert states == {"cam-1": "live", "cam-2": "reconnecting"}


def test_metrics_are_prometheus_text_per_camera(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'nonsite_camera_up{camera="cam-1",worker="w1"} 1.0' in text
    assert 'nonsite_camera_up{camera="cam-2",worker="w1"} 0.0' in text
    assert 'nonsite_camera_reconnects_total{camera="cam-2",worker="w1"} 2.0' in text
    assert 'nonsite_camera_decode_fps{camera="cam-1",worker="w1"} 10.0' in text


def test_cases_are_paged_with_a_count_and_filtered(client: TestClient) -> None:
    page = client.get("/api/cases", params={"limit": 1}).json()
    assert page["offset"] == 0 and len(page["items"]) == 1
    assert page["total"] == 1, "the three repeats of one zone share one case"
    item = page["items"][0]
    assert (item["kind"], item["camera_id"], item["zone"], item["state"]) == (
        "occupation",
        "cam-1",
        "street",
        "pending_review",
    )
    assert client.get("/api/cases", params={"camera": "cam-9"}).json() == {"total": 0, "offset": 0, "items": []}
    assert client.get("/api/cases", params={"state": "closed"}).json()["total"] == 0
    assert client.get("/api/cases", params={"limit": 0}).status_code == 422


def test_the_console_page_is_served(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and "非现场执法" in response.text and "/api/cameras" in response.text

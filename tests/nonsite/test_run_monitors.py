"""A run's fume monitors: registered from the run file, readings taken from MQTT, an
exceedance filed as a case of the premises; a monitor of premises not in the registry stops
the run before it starts."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import select

from cases.db import Database
from cases.models import Case
from cases.premises import import_premises
from nonsite.run import RunError, start_monitors
from pipelines.monitors import MonitorConfig
from pipelines.settings import RunConfig, Runtime
from tests.conftest import wait_for
from vision.camera import CameraConfig

pytestmark = pytest.mark.services


def run_config(tmp_path: Path, *, mqtt_url: str | None, premises: str = "R-001") -> RunConfig:
    return RunConfig(
        runtime=Runtime(var=tmp_path / "var", mqtt=mqtt_url, queue=f"test-{uuid.uuid4().hex[:8]}"),
        cameras=(CameraConfig(id="cam-1", name="c", source="rtsp://127.0.0.1/x", fps=10.0),),
        monitors=(MonitorConfig(monitor_id="mon-1", premises_id=premises),),
    )


def test_readings_published_over_mqtt_become_a_case_of_the_premises(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'cases.db'}")
    (tmp_path / "p.csv").write_text("code,name,street\nR-001,Old Wang,Wenhua\n", encoding="utf-8")
    assert import_premises(db, tmp_path / "p.csv", at=datetime.now(UTC)).ok
    config = run_config(tmp_path, mqtt_url="mqtt://127.0.0.1:1883")
    service, stop = start_monitors(config, db)
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    publisher.connect("127.0.0.1", 1883)
    publisher.loop_start()
    try:
        start = datetime.now(UTC) - timedelta(minutes=20)
        for i, value in enumerate([3.2] * 8 + [0.3]):
            reading = {
                "monitor_id": "mon-1",
                "at": (start + timedelta(minutes=i)).isoformat(),
                "concentration_mg_m3": value,
            }
            publisher.publish("nonsite/monitors/mon-1/readings", json.dumps(reading), qos=1).wait_for_publish(5)

        def filed() -> bool:
            with db.session() as s:
                return s.scalar(select(Case).where(Case.kind == "fume")) is not None

        wait_for(filed, 15, "the exceedance to be filed")
        with db.session() as s:
            case = s.scalar(select(Case))
            assert case is not None and case.party is not None and case.party.code == "R-001"
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        stop()
        service.book.vault.close()
        db.close()


def test_a_monitor_of_premises_not_in_the_registry_stops_the_run(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'cases.db'}")
    with pytest.raises(RunError, match=r"premises 'R-404' is not in the registry.*import-premises"):
        start_monitors(run_config(tmp_path, mqtt_url=None, premises="R-404"), db)
    db.close()

"""Zones an officer redraws in the console are what camera workers watch from their next start."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from cases.casebook import Casebook
from cases.db import Database
from cases.models import Zone
from evidence.vault import Vault
from pipelines.settings import apply_drawn_zones, register_cameras
from vision.camera import CameraConfig, FrameSize
from vision.zones import ZoneConfig

CAMERA = CameraConfig(
    id="cam-1",
    name="Test street",
    source="rtsp://127.0.0.1/s",
    fps=10.0,
    detect_size=FrameSize(width=640, height=360),
    zones=(
        ZoneConfig(name="street", polygon=((0, 0), (64, 0), (64, 48)), rule="no_occupation", classes=("stall",)),
        ZoneConfig(name="kitchen", polygon=((100, 0), (164, 0), (164, 48)), rule="fume_watch", classes=("smoke",)),
    ),
)


def draw(db: Database, zone: str, polygon: list[list[float]]) -> None:
    with db.session() as s:
        row = s.scalar(select(Zone).where(Zone.camera_id == "cam-1", Zone.name == zone))
        assert row is not None
        row.polygon, row.edited_by, row.edited_at = polygon, "engineer-sun", datetime.now(UTC)


def test_a_drawn_zone_replaces_the_run_files_and_the_others_stay(database: Database, tmp_path) -> None:
    vault = Vault(tmp_path / "evidence", tmp_path / "keys")
    register_cameras(Casebook(database, vault), [CAMERA])
    assert apply_drawn_zones([CAMERA], database) == [CAMERA], "nothing drawn: the run file's zones"
    draw(database, "street", [[10, 10], [300, 10], [300, 200], [10, 200]])
    (camera,) = apply_drawn_zones([CAMERA], database)
    assert camera.zones[0].polygon == ((10, 10), (300, 10), (300, 200), (10, 200))
    assert camera.zones[1] == CAMERA.zones[1]
    vault.close()


def test_a_drawn_zone_the_camera_would_refuse_keeps_the_run_files(database: Database, tmp_path) -> None:
    vault = Vault(tmp_path / "evidence", tmp_path / "keys")
    register_cameras(Casebook(database, vault), [CAMERA])
    draw(database, "street", [[10, 10], [900, 10], [900, 200]])  # beyond the 640x360 detect size
    assert apply_drawn_zones([CAMERA], database) == [CAMERA]
    vault.close()

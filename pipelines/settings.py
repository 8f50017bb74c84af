"""A deployment's run configuration: its cameras and where everything else lives.

One YAML file describes a deployment: a `runtime:` section (model, database, broker,
folders, API address, how many camera processes) and the `cameras:` list that
`vision.camera` defines. It is loaded as strictly as a camera file (unknown or duplicate
keys are errors naming the line).

The same settings reach every process: `nonsite run` and `nonsite worker` pass them to
the processes they start through the environment (`to_env`/`from_env`), so a task worker
on another machine needs only the same variables. The environment also overrides the
file for the two URLs that differ per machine: `NONSITE_DATABASE_URL` and
`NONSITE_BROKER_URL`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from cases.casebook import Casebook
from cases.db import Database, database_url
from cases.models import Zone
from pipelines.monitors import MonitorConfig
from vision.camera import CameraConfig, CamerasFile, load_camera_configs, load_config, mask_credentials

logger = logging.getLogger(__name__)

#: the environment variable that carries a whole `Runtime` to child processes
RUNTIME_ENV = "NONSITE_RUNTIME"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Runtime(_Strict):
    """Where a deployment keeps its things, and how its processes are laid out."""

    var: Path = Field(default=Path("var"), title="State folder", description="Folder for everything local.")
    model: Path | None = Field(
        default=None, title="Model", description="ONNX detection model; the shipped starter model when omitted."
    )
    conf: float | None = Field(
        default=None, gt=0.0, lt=1.0, title="Confidence", description="Minimum detection score; the model's default."
    )
    imgsz: int | None = Field(
        default=None,
        ge=32,
        le=4096,
        title="Model input size",
        description="Side the frames are letterboxed into for a model with a dynamic input; smaller runs faster.",
    )
    database: str | None = Field(
        default=None,
        title="Database",
        description="SQLAlchemy URL of the case database; $NONSITE_DATABASE_URL, else SQLite under the state "
        "folder, when omitted.",
    )
    broker: str | None = Field(
        default=None,
        title="Broker",
        description="Celery broker URL (redis://, amqp://); $NONSITE_BROKER_URL, else a broker in files under "
        "the state folder that needs no server, when omitted.",
    )
    queue: str = Field(
        default="nonsite",
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        title="Queue",
        description="Name of the task queue on the broker; deployments sharing a broker use different ones.",
    )
    api_host: str = Field(default="127.0.0.1", title="API host", description="Address the API listens on.")
    api_port: int = Field(default=8470, ge=0, le=65535, title="API port", description="Port of the API (0: any).")
    camera_processes: int = Field(
        default=1, ge=1, le=64, title="Camera processes", description="Camera worker processes; cameras are dealt out."
    )
    task_processes: int = Field(default=1, ge=1, le=64, title="Task processes", description="Task worker processes.")
    ring_s: float = Field(
        default=20.0,
        gt=0.0,
        le=600.0,
        title="Ring buffer",
        description="Seconds of decoded frames each camera keeps for evidence clips (pre-roll included).",
    )
    visibility_timeout_s: float = Field(
        default=300.0,
        gt=0.0,
        le=86400.0,
        title="Visibility timeout",
        description="Redis broker: seconds before a task a dead worker held goes to another worker; longer than "
        "the longest task.",
    )
    health_interval_s: float = Field(
        default=2.0, gt=0.0, le=60.0, title="Health interval", description="How often workers report health."
    )
    mqtt: str | None = Field(
        default=None,
        pattern=r"^mqtt://[^/:]+(:\d+)?/?$",
        title="MQTT broker",
        description="mqtt://host:port where fume monitors publish readings (nonsite/monitors/<id>/readings); "
        "readings come over HTTP only when omitted.",
    )

    @property
    def database_url(self) -> str:
        return os.environ.get("NONSITE_DATABASE_URL") or self.database or f"sqlite:///{self.var / 'nonsite.db'}"

    @property
    def broker_url(self) -> str:
        return os.environ.get("NONSITE_BROKER_URL") or self.broker or "filesystem://localhost/"

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url.startswith("filesystem://")

    @property
    def evidence_dir(self) -> Path:
        return self.var / "evidence"

    @property
    def keys_dir(self) -> Path:
        return self.var / "keys"

    @property
    def staging_dir(self) -> Path:
        return self.var / "staging"

    @property
    def broker_dir(self) -> Path:
        return self.var / "broker"

    @property
    def health_dir(self) -> Path:
        return self.var / "health"

    @property
    def models_dir(self) -> Path:
        """The model registry the cameras run from when no `model` is named."""
        return self.var / "models"

    def describe(self) -> str:
        """One line for logs, credentials masked."""
        return (
            f"database {mask_credentials(database_url(self.database_url))}, broker {mask_credentials(self.broker_url)}"
            f", state in {self.var}"
        )

    def to_env(self) -> dict[str, str]:
        return {RUNTIME_ENV: self.model_dump_json()}

    @classmethod
    def from_env(cls) -> Runtime:
        raw = os.environ.get(RUNTIME_ENV)
        return cls.model_validate(json.loads(raw)) if raw else cls()


class RunConfig(_Strict):
    """A deployment's run file: `runtime:`, `cameras:` and the online fume `monitors:`."""

    runtime: Runtime = Field(default_factory=Runtime, title="Runtime", description="Where things live.")
    cameras: tuple[CameraConfig, ...] = Field(
        title="Cameras", min_length=1, max_length=4096, description="The cameras, each with a unique id."
    )
    monitors: tuple[MonitorConfig, ...] = Field(
        default=(),
        max_length=100_000,
        title="Fume monitors",
        description="Online fume monitors, each on premises of the registry (import it first).",
    )

    _unique_ids = field_validator("cameras")(CamerasFile._unique_ids.__func__)  # type: ignore[attr-defined]


def load_run_config(path: str | Path) -> RunConfig:
    """Read a run file; raises `vision.camera.CameraConfigError` naming each problem and its line."""
    return load_config(path, RunConfig, what="run configuration", extra_models=(Runtime, MonitorConfig))


def load_cameras(path: str | Path) -> list[CameraConfig]:
    """The cameras of a camera file or of a run file (one with a `runtime:` section)."""
    try:
        head = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        head = None  # the strict loader says what is wrong
    if isinstance(head, dict) and "runtime" in head:
        return list(load_run_config(path).cameras)
    return load_camera_configs(path)


def register_cameras(book: Casebook, cameras: Iterable[CameraConfig]) -> list[str]:
    """Register each camera and its zones with the casebook (idempotent); returns their ids."""
    ids = []
    for camera in cameras:
        location = camera.location
        book.register_camera(
            camera.id,
            name=camera.name,
            lat=location.lat if location else None,
            lon=location.lon if location else None,
            zones=[(zone.name, zone.rule) for zone in camera.zones],
            polygons={zone.name: zone.polygon for zone in camera.zones},
        )
        ids.append(camera.id)
    return ids


def apply_drawn_zones(cameras: Iterable[CameraConfig], db: Database) -> list[CameraConfig]:
    """The cameras with each zone an officer redrew in the console (`Zone.edited_at` set)
    taking its drawn polygon; a drawn polygon the camera's config would refuse is logged and
    the configured one kept."""
    with db.session() as s:
        drawn = {
            (z.camera_id, z.name): z.polygon
            for z in s.scalars(select(Zone).where(Zone.edited_at.is_not(None), Zone.polygon.is_not(None)))
        }
    out = []
    for camera in cameras:
        if not any((camera.id, z.name) in drawn for z in camera.zones):
            out.append(camera)
            continue
        document = camera.model_dump(mode="json")
        for zone in document["zones"]:
            zone["polygon"] = drawn.get((camera.id, zone["name"]), zone["polygon"])
        try:
            out.append(CameraConfig.model_validate(document))
            logger.info("camera %s: using the zones drawn in the console", camera.id)
        except ValueError as e:
            logger.error("camera %s: a zone drawn in the console is refused (%s); using the run file's", camera.id, e)
            out.append(camera)
    return out

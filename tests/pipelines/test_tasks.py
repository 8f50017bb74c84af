"""The task queue for real: worker processes on the embedded file broker, on this machine's
Redis and RabbitMQ with PostgreSQL, a worker killed mid-task, and a broker restarted.

Each test stages violations as a camera worker would, sends their ids, and checks that
every one ends as exactly one case with one sealed package logged once.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

import nonsite.run
from cases.db import Database
from cases.models import Case, CaseEvidence
from evidence.merkle import leaf_hash
from evidence.vault import Vault, package_leaf
from pipelines import tasks
from pipelines.sealing import violation_package
from pipelines.settings import RunConfig, Runtime
from pipelines.staging import StagingArea
from tests.conftest import wait_for
from vision.camera import CameraConfig
from vision.zones import ZoneConfig

ROOT = Path(__file__).resolve().parents[2]
CAMERA = CameraConfig(
    id="cam-1",
    name="Test street",
    source="rtsp://user:secret@127.0.0.1/stream",
    fps=10.0,
    zones=(
        ZoneConfig(
            name="street", polygon=((0, 0), (64, 0), (64, 48), (0, 48)), rule="no_occupation", classes=("stall",)
        ),
    ),
)


def stage_violations(staging: StagingArea, count: int, *, zone: str = "street") -> list[str]:
    """`count` distinct staged violations of CAMERA, an hour apart."""
    rng = np.random.default_rng(0)
    ids = []
    for n in range(count):
        started = datetime(2026, 11, 27, 8, 0, tzinfo=UTC) + timedelta(hours=n)
        record = {
            "kind": "occupation",
            "source": CAMERA.id,
            "zone": zone,
            "started_at": started.isoformat(),
            "ended_at": (started + timedelta(seconds=30)).isoformat(),
            "start_frame": 10,
            "end_frame": 12,
            "confirmed_frame": 11,
            "track_ids": [n + 1],
            "bbox": [4.0, 4.0, 20.0, 20.0],
            "score": 0.9,
            "keyframes": [11],
            "clip_span": [10, 12],
            "model_id": "0" * 64,
            "rule": {"zone": zone},
            "attributes": {},
            "closed": True,
            "boxes": [],
        }
        frames = {i: rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for i in (10, 11, 12)}
        ids.append(staging.stage(*violation_package(frames, record, CAMERA, 10.0, "system")))
    return ids


def prepare(runtime: Runtime) -> None:
    nonsite.run.prepare(RunConfig(runtime=runtime, cameras=(CAMERA,)))


class Workers:
    """Task worker processes started as `nonsite worker tasks`, stopped at the end."""

    def __init__(self, runtime: Runtime, log_dir: Path) -> None:
        self.runtime = runtime
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *, pause: str | None = None) -> None:
        env = {**os.environ, **self.runtime.to_env(), "PYTHONUNBUFFERED": "1"}
        env.pop("NONSITE_DATABASE_URL", None)  # the runtime names the database
        if pause:
            env[tasks.FAULT_PAUSE_ENV] = pause
        log = (self.log_dir / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "nonsite.cli", "-v", "worker", "tasks", "--name", name],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def assert_filed_once(runtime: Runtime, staging: StagingArea, ids: list[str]) -> None:
    """Every item done and filed once (its package in one case; repeats of one zone join one
    case), each package logged at exactly one leaf."""
    outcomes = [staging.done(i) for i in ids]
    assert all(o is not None and "case" in o for o in outcomes), outcomes
    db = Database(runtime.database_url, migrate=False)
    vault = Vault(runtime.evidence_dir, runtime.keys_dir)
    try:
        with db.session() as s:
            packages = [e.package_id for e in s.query(CaseEvidence).all()]
            cases = {c.number for c in s.query(Case).all()}
        assert sorted(packages) == sorted(o["package"] for o in outcomes if o)
        assert cases == {o["case"] for o in outcomes if o}
        leaves = [vault.log.leaf_hash(i) for i in range(vault.log.size)]  # packages and case transitions
        for package in packages:
            assert leaves.count(leaf_hash(package_leaf(package))) == 1, f"package {package} logged twice"
    finally:
        vault.close()
        db.close()
    assert staging.pending() == []


def _runtime(tmp_path: Path, broker: str | None, database: str | None) -> Runtime:
    """A runtime in the test's folder with a queue of its own on a shared broker."""
    return Runtime(var=tmp_path / "var", broker=broker, database=database, queue=f"test-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NONSITE_DATABASE_URL", raising=False)
    monkeypatch.delenv("NONSITE_BROKER_URL", raising=False)


def test_embedded_file_broker_files_each_violation_once(tmp_path: Path, isolated_env: None) -> None:
    runtime = _runtime(tmp_path, None, None)
    assert runtime.embedded_broker
    prepare(runtime)
    staging = StagingArea(runtime.staging_dir)
    ids = stage_violations(staging, 3)
    tasks.configure(runtime)
    workers = Workers(runtime, tmp_path)
    workers.start("tasks-a")
    try:
        for item in [*ids, ids[0]]:  # one message delivered twice
            tasks.seal_and_file.delay(item)
        wait_for(lambda: not staging.pending(), 60, "the file broker's worker to file every item")
        tasks.seal_and_file.delay(ids[1])  # again after it was filed
        queue = runtime.broker_dir / "queue"
        wait_for(lambda: not any(queue.iterdir()), 30, "the repeated message to be taken")
        time.sleep(0.5)  # and its task, a no-op, to finish
    finally:
        workers.stop()
    assert_filed_once(runtime, staging, ids)


def test_a_staged_item_that_cannot_be_filed_is_set_aside_with_its_reason(tmp_path: Path, isolated_env: None) -> None:
    runtime = _runtime(tmp_path, None, None)
    staging = StagingArea(runtime.staging_dir)
    (item,) = stage_violations(staging, 1)
    Database(runtime.database_url).close()  # no camera registered: filing must refuse
    os.environ.update(runtime.to_env())
    try:
        tasks._services = None
        outcome = tasks.seal_and_file.run(item)
    finally:
        os.environ.pop("NONSITE_RUNTIME")
        tasks._services = None
    assert "error" in outcome and "cam-1" in outcome["error"]
    assert staging.pending() == []
    assert item in staging.failed() and "cam-1" in staging.failed()[item]
    assert (runtime.staging_dir / "failed" / item / "clip.mp4").is_file(), "nothing of the item may be lost"


BROKERS = {
    "redis": "redis://127.0.0.1:6379/15",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
}


@pytest.mark.services
@pytest.mark.postgres
@pytest.mark.parametrize("broker", sorted(BROKERS))
def test_a_worker_killed_mid_task_loses_nothing_and_files_nothing_twice(
    tmp_path: Path, isolated_env: None, postgres_url: str, broker: str
) -> None:
    # on Redis an unacknowledged message goes to another worker after the visibility timeout
    runtime = _runtime(tmp_path, BROKERS[broker], postgres_url).model_copy(update={"visibility_timeout_s": 5.0})
    _truncate(postgres_url)
    prepare(runtime)
    staging = StagingArea(runtime.staging_dir)
    ids = stage_violations(staging, 6)
    tasks.configure(runtime)
    workers = Workers(runtime, tmp_path)
    # worker A holds its first task for a minute after sealing: killed there, it has logged the
    # package but filed nothing, and has not acknowledged the message
    workers.start("tasks-a", pause="after_seal:60")
    try:
        tasks.seal_and_file.delay(ids[0])
        wait_for(lambda: "pausing" in workers.log("tasks-a"), 60, "worker A to seal and pause")
        workers.processes["tasks-a"].kill()
        workers.processes["tasks-a"].wait()
        assert staging.pending() == ids, "the killed worker's item must still be pending"
        workers.start("tasks-b")
        workers.start("tasks-c")
        for name in ("tasks-b", "tasks-c"):
            wait_for(lambda name=name: "ready." in workers.log(name), 60, f"worker {name} to be ready")
        for item in ids[1:]:  # two workers compete for these and for A's message, given back
            tasks.seal_and_file.delay(item)
        wait_for(lambda: not staging.pending(), 90, "workers B and C to file every item, A's included")
    finally:
        workers.stop()
    assert_filed_once(runtime, staging, ids)


def _truncate(url: str) -> None:
    from sqlalchemy import text

    from cases.models import Base

    db = Database(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of the test's own, to kill and restart."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        server = shutil.which("redis-server")
        assert server, "redis-server is not installed"
        self.process = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self._up, 10, f"redis-server on port {self.port}")

    def _up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()


@pytest.mark.services
def test_a_broker_restart_loses_no_violation(tmp_path: Path, isolated_env: None) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    runtime = _runtime(tmp_path, f"redis://127.0.0.1:{redis.port}/0", None)
    prepare(runtime)
    staging = StagingArea(runtime.staging_dir)
    first, second, third = stage_violations(staging, 3)
    tasks.configure(runtime)
    workers = Workers(runtime, tmp_path)
    workers.start("tasks-a")
    try:
        tasks.seal_and_file.delay(first)
        wait_for(lambda: staging.done(first), 60, "the first item filed")
        redis.kill()  # the broker dies, and with it every message it held (it keeps nothing on disk)
        with pytest.raises(Exception):  # noqa: B017 - kombu raises its own OperationalError
            tasks.seal_and_file.apply_async((second,), retry=False)
        redis.start()  # back on the same port, empty
        tasks.seal_and_file.delay(third)
        wait_for(lambda: staging.done(third), 60, "the worker to reconnect and file the next item")
        assert staging.pending() == [second], "the item whose message was lost is still pending"
        for item in staging.pending():  # what a camera worker's sweep does
            tasks.seal_and_file.delay(item)
        wait_for(lambda: not staging.pending(), 60, "the swept item filed")
    finally:
        workers.stop()
        redis.kill()
    assert_filed_once(runtime, staging, [first, second, third])

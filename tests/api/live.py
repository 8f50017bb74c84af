"""A populated deployment served over real HTTP, for the browser tests and for trying the console by hand.

`build_deployment(root)` makes a case database (SQLite), an evidence vault with a sealed
finding of each test camera filed as a case, users of every role, camera health reports and
snapshots under `root`. `serve_deployment(root)` serves it with uvicorn on 127.0.0.1 on a free
port in a background thread; given a `template` (a folder `build_deployment` made), it copies
that instead of building anew, which is how each browser test gets its own deployment fast.
By hand:

    .venv/bin/python -m tests.api.live            # prints the address; Ctrl-C stops it
    .venv/bin/python -m tests.api.live --port 8470 --dir var/live --days 3
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import uvicorn

from api.accounts import DEMO_USERS, create_user
from api.app import create_app
from api.settings import DEVELOPMENT_PASSWORD, ApiSettings
from cases.casebook import Casebook
from cases.db import Database
from evidence.vault import Vault
from models.registry import ModelRegistry
from pipelines.fume import MonitorService
from pipelines.settings import register_cameras
from pipelines.survey_service import SurveyService
from tests.api.conftest import CAMERAS, FRAME, PASSWORD, USERS, camera_config, sealed_finding, write_health

DISPLAY_NAMES = {username: name for username, _, name in DEMO_USERS} | {"admin": "管理员 Admin"}
HEALTH_STATES = {"cam-street": "live", "cam-kitchen": "reconnecting"}  # cam-site has sent nothing
SEED = "deployment.json"  # what build_deployment made: packages, cases, password


@dataclass
class LiveDeployment:
    """A served deployment: its address, and the casebook (and fume monitor service) to check the database through."""

    url: str
    root: Path
    casebook: Casebook
    vault: Vault
    health_dir: Path
    password: str
    packages: dict[str, str] = field(default_factory=dict)  # camera id -> package id
    cases: dict[str, str] = field(default_factory=dict)  # camera id -> case number
    monitors: MonitorService | None = None


def snapshot(seed: int) -> bytes:
    """A JPEG frame of the test cameras' size: a street-ish scene with the stall's place lit."""
    h, w = FRAME
    rng = np.random.default_rng(seed)
    scene = np.full((h, w, 3), (70, 78, 84), np.uint8)
    scene[h // 2 :, :] = (96, 104, 110)
    frame = cv2.add(scene, rng.integers(0, 18, (h, w, 3), dtype=np.uint8))
    cv2.rectangle(frame, (20, 20), (80, 70), (40, 140, 220), -1)
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("cannot encode a snapshot")
    return data.tobytes()


def write_health_reports(health_dir: Path) -> None:
    """Fresh health reports of the cameras that have a worker, each replaced atomically as a worker does."""
    staging = health_dir / ".staging"
    staging.mkdir(exist_ok=True)
    for camera_id, state in HEALTH_STATES.items():
        write_health(staging, camera_id, state=state)
        os.replace(staging / f"{camera_id}.json", health_dir / f"{camera_id}.json")


def build_deployment(root: Path, *, password: str = PASSWORD, history_days: int = 0) -> None:
    """Everything the console shows, on disk under `root`; `history_days` > 0 files one more
    finding per camera for each of that many earlier days."""
    root.mkdir(parents=True, exist_ok=True)
    db = Database(f"sqlite:///{root / 'cases.db'}")
    vault = Vault(root / "evidence", root / "keys")
    try:
        book = Casebook(db, vault)
        register_cameras(book, [camera_config(c) for c in CAMERAS])
        for username, role in USERS.items():
            create_user(
                db, username=username, role=role, password=password, display_name=DISPLAY_NAMES.get(username, "")
            )
        health = root / "health"
        health.mkdir(exist_ok=True)
        write_health_reports(health)
        for n, camera_id in enumerate(HEALTH_STATES):
            (health / f"{camera_id}.jpg").write_bytes(snapshot(seed=n))
        packages, cases = {}, {}
        started = datetime.now(UTC) - timedelta(hours=2)
        for n, camera_id in enumerate(CAMERAS):
            packages[camera_id] = sealed_finding(vault, camera_id, started + timedelta(minutes=n), seed=n)
            cases[camera_id] = book.file_package(packages[camera_id]).case_number
        for day in range(1, history_days + 1):
            for n, camera_id in enumerate(CAMERAS):
                earlier = started - timedelta(days=day)
                book.file_package(sealed_finding(vault, camera_id, earlier, seed=10 * day + n))
    finally:
        vault.close()
        db.close()
    seed = {"packages": packages, "cases": cases, "password": password}
    (root / SEED).write_text(json.dumps(seed, indent=1), encoding="utf-8")


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _keep_health_fresh(health_dir: Path, stop: threading.Event) -> None:
    """Renew the health reports as camera workers do, so that they never read as stale."""
    while not stop.wait(2.0):
        write_health_reports(health_dir)


@contextmanager
def serve_deployment(
    root: Path,
    *,
    port: int = 0,
    template: Path | None = None,
    password: str = PASSWORD,
    history_days: int = 0,
    registry: ModelRegistry | None = None,
    surveys: Callable[[Casebook], SurveyService] | None = None,
) -> Iterator[LiveDeployment]:
    """Serve a deployment under `root` (a copy of `template`, else built anew) on 127.0.0.1
    (`port` 0: a free one) until the block ends; without a model `registry` it is a run that
    pins a model file; `surveys` makes its drone survey service over the deployment's casebook
    (without it the service runs no surveys)."""
    if template is not None:
        shutil.copytree(template, root, dirs_exist_ok=True)
    elif not (root / SEED).is_file():
        build_deployment(root, password=password, history_days=history_days)
    seed = json.loads((root / SEED).read_text(encoding="utf-8"))
    db = Database(f"sqlite:///{root / 'cases.db'}")
    vault = Vault(root / "evidence", root / "keys")
    book = Casebook(db, vault)
    health = root / "health"
    monitors = MonitorService(book)
    deployment = LiveDeployment(
        "", root, book, vault, health, seed["password"], seed["packages"], seed["cases"], monitors=monitors
    )
    write_health_reports(health)
    settings = ApiSettings(environment="development", login_attempts=20)
    survey_service = surveys(book) if surveys is not None else None
    app = create_app(
        db,
        vault,
        health,
        settings=settings,
        casebook=book,
        monitors=monitors,
        registry=registry,
        surveys=survey_service,
    )
    sock = _free_socket()
    if port:
        sock.close()
        sock = socket.create_server(("127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="live-console", daemon=True)
    stop = threading.Event()
    fresh = threading.Thread(target=_keep_health_fresh, args=(health, stop), name="live-health", daemon=True)
    thread.start()
    fresh.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the console's server did not start")
            time.sleep(0.02)
        deployment.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        yield deployment
    finally:
        stop.set()
        if survey_service is not None:
            survey_service.stop()
        server.should_exit = True
        thread.join(timeout=10)
        fresh.join(timeout=5)
        sock.close()
        vault.close()
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the console over a populated test deployment")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--dir", type=Path, default=None, help="where to keep it (default: a temporary folder)")
    parser.add_argument("--days", type=int, default=0, help="earlier days of findings to file as well")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    with tempfile.TemporaryDirectory(prefix="nonsite-live-") as tmp:
        root = args.dir or Path(tmp)
        with serve_deployment(root, port=args.port, password=DEVELOPMENT_PASSWORD, history_days=args.days) as live:
            print(f"console at {live.url}/ (users: {', '.join(USERS)}; password {live.password})", flush=True)
            print(f"party portal at {live.url}/party; Ctrl-C stops", flush=True)
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass


if __name__ == "__main__":
    main()

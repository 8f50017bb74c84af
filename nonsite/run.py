"""`nonsite run` and `nonsite worker`: the deployment as long-running processes.

`nonsite run` is the embedded default on one machine: it prepares the database and the
cameras, then starts the task workers and the camera workers as child processes and
serves the API and console itself; it restarts a child that dies and prints each case
as it is filed. (Camera workers send staged items again whose message was lost.) Without a
configuration it runs the demo: three cameras whose feeds are footage the project
renders (a restaurant street with an exhaust plume, a sidewalk where a stall appears, a
site where scaffolding goes up), replayed as live streams.

`nonsite worker cameras|tasks` starts one worker of the distributed mode; on SIGTERM a
camera worker closes open events and hands them over, a task worker finishes its task.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import uvicorn
import yaml
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import select

from cases.casebook import Casebook
from cases.db import Database
from cases.errors import DatabaseError
from cases.models import Case
from evidence.vault import Vault
from models.registry import ModelRegistry
from pipelines.fume import MonitorService
from pipelines.settings import RunConfig, Runtime, apply_drawn_zones, load_run_config, register_cameras
from pipelines.staging import StagingArea
from pipelines.survey_service import SurveyService
from pipelines.worker import ModelSlot
from vision.camera import CameraConfig, CameraConfigError, mask_credentials
from vision.detectors import Detector

logger = logging.getLogger(__name__)

#: the demo cameras: (scene preset, seed, the zone an officer would watch in that view)
DEMO_SCENES = (("restaurant_street", 3, "exhausts"), ("sidewalk_stall", 3, "street"), ("construction_site", 3, "site"))
#: decode and detect rates of the demo cameras, as a city camera is usually set up
DEMO_FPS, DEMO_DETECT_FPS = 10.0, 5.0
RESTART_DELAY_S = 2.0
MONITOR_SWEEP_S = 30.0  # how often episodes of fume monitors that fell silent are closed
#: a child that dies this soon after starting, this many times in a row, stops the deployment
CRASH_WINDOW_S, MAX_QUICK_CRASHES = 30.0, 5


def demo_config(var: Path) -> Path:
    """Render the demo footage (once) and write a run file for it; returns the file's path."""
    from datasets.synthetic import SceneSpec, write_video
    from nonsite.analyze import synthetic_camera

    path = var / "demo-run.yaml"
    if path.is_file():
        return path
    footage = var / "demo-footage"
    footage.mkdir(parents=True, exist_ok=True)
    cameras = []
    for name, seed, zone in DEMO_SCENES:
        spec = getattr(SceneSpec, name)(seed=seed)
        video = footage / f"{name}.mp4"
        print(f"rendering demo footage {video}")
        truth = write_video(spec, video)
        camera = synthetic_camera(f"demo-{name.replace('_', '-')}", truth, str(video))
        update = {
            "name": name.replace("_", " "),
            "fps": DEMO_FPS,
            "detect_fps": DEMO_DETECT_FPS,
            "zones": tuple(z for z in camera.zones if z.name == zone),
        }
        cameras.append(camera.model_copy(update=update))
    config = RunConfig(runtime=Runtime(var=var), cameras=tuple(cameras))
    document = config.model_dump(mode="json", exclude_defaults=True)
    document["runtime"] = {"var": str(var)}
    header = "# The demo deployment `nonsite run` writes: three cameras replaying footage it rendered.\n"
    path.write_text(header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def model_slot(config: RunConfig) -> ModelSlot:
    """The runtime's model (the shipped starter model when none is named), loaded and checked
    against the classes every zone watches; raises `ModelLoadError` saying what is wrong."""
    from nonsite.starter import starter_model_path

    runtime = config.runtime
    for camera in config.cameras:
        if camera.detector is not None:
            raise CameraConfigError(
                f"camera {camera.id} sets its own detector, which camera workers do not support yet; "
                "remove it to use the runtime's model"
            )
    classes = frozenset(c for camera in config.cameras for zone in camera.zones for c in zone.classes)
    registry = model_registry(runtime)
    if registry is not None:
        registry.seed(starter_model_path(), note="the starter model shipped with nonsite")
    return ModelSlot(deployed_model(runtime), conf=runtime.conf, imgsz=runtime.imgsz, required_classes=classes)


def model_registry(runtime: Runtime) -> ModelRegistry | None:
    """The registry the cameras run from, unless the run file pins a model file."""
    return None if runtime.model is not None else ModelRegistry(runtime.models_dir)


def deployed_model(runtime: Runtime) -> Path:
    """The file the cameras run: the pinned model, else the registry's deployed one."""
    return runtime.model or ModelRegistry(runtime.models_dir).deployed_path


def prepare(config: RunConfig) -> None:
    """Create the database schema, register every camera and its zones (idempotent), and drop
    health reports of cameras no longer configured."""
    runtime = config.runtime
    configured = {c.id for c in config.cameras}
    for report in runtime.health_dir.glob("*.json") if runtime.health_dir.is_dir() else []:
        if report.stem not in configured:
            report.unlink()
    vault = Vault(runtime.evidence_dir, runtime.keys_dir)
    db = Database(runtime.database_url)
    try:
        register_cameras(Casebook(db, vault), config.cameras)
    finally:
        vault.close()
        db.close()


def camera_groups(cameras: tuple[CameraConfig, ...], processes: int) -> list[list[str]]:
    """Camera ids dealt round-robin over `processes` (no empty group)."""
    groups: list[list[str]] = [[] for _ in range(min(processes, len(cameras)))]
    for i, camera in enumerate(cameras):
        groups[i % len(groups)].append(camera.id)
    return groups


@dataclass
class _Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    quick_crashes: int = 0
    started_at: float = field(default=0.0)


class Supervisor:
    """Starts the children, keeps them running, and stops them in order."""

    def __init__(self, config_path: Path, config: RunConfig, *, verbose: int = 0) -> None:
        self.config_path = config_path
        self.config = config
        runtime = config.runtime
        env_flags = ["-v"] * verbose
        base = [sys.executable, "-m", "nonsite.cli", *env_flags, "worker"]
        self.tasks = [
            _Child(f"tasks-{i}", [*base, "tasks", "--config", str(config_path), "--name", f"tasks-{i}"])
            for i in range(runtime.task_processes)
        ]
        self.cameras = [
            _Child(
                f"cameras-{i}",
                [*base, "cameras", "--config", str(config_path), "--name", f"cameras-{i}", "--only", ",".join(group)],
            )
            for i, group in enumerate(camera_groups(config.cameras, runtime.camera_processes))
        ]
        self._env = {**os.environ, **runtime.to_env()}
        self._stopping = threading.Event()

    def _start(self, child: _Child) -> None:
        # a session of its own: Ctrl-C reaches only the supervisor, which stops children in order
        child.process = subprocess.Popen(child.argv, env=self._env, start_new_session=True)
        child.started_at = time.monotonic()
        logger.info("started %s (pid %d)", child.name, child.process.pid)

    def start(self) -> None:
        for child in [*self.tasks, *self.cameras]:
            self._start(child)

    def watch(self) -> str | None:
        """Restart any child that died (not while stopping); returns why the deployment must
        stop when a child keeps dying as soon as it starts."""
        for child in [*self.tasks, *self.cameras]:
            if child.process is None or child.process.poll() is None or self._stopping.is_set():
                continue
            code = child.process.returncode
            lived = time.monotonic() - child.started_at
            if lived < RESTART_DELAY_S:
                continue
            child.quick_crashes = child.quick_crashes + 1 if lived < CRASH_WINDOW_S else 0
            if child.quick_crashes >= MAX_QUICK_CRASHES:
                return f"{child.name} exited {child.quick_crashes} times within {CRASH_WINDOW_S:g} s of starting"
            child.restarts += 1
            print(f"{child.name} exited with status {code}; restarting it (restart {child.restarts})", flush=True)
            self._start(child)
        return None

    def tasks_alive(self) -> bool:
        return any(c.process is not None and c.process.poll() is None for c in self.tasks)

    def stop(self, timeout: float = 60.0) -> None:
        """Cameras first (they hand over open events), then task workers (they finish what was sent)."""
        self._stopping.set()
        for group in (self.cameras, self.tasks):
            for child in group:
                if child.process is not None and child.process.poll() is None:
                    child.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for child in group:
                if child.process is None:
                    continue
                try:
                    child.process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    logger.error("%s did not stop within %.0f s; killing it", child.name, timeout)
                    child.process.kill()
                    child.process.wait()
            if group is self.cameras:
                self._drain()

    def _drain(self, timeout: float = 60.0) -> None:
        """Give the task workers time to file what the cameras handed over last."""
        staging = StagingArea(self.config.runtime.staging_dir)
        deadline = time.monotonic() + timeout
        while staging.pending() and self.tasks_alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        if staging.pending():
            print(f"{len(staging.pending())} staged violation(s) not yet filed; the next start files them")


class RunError(Exception):
    """The deployment cannot start or keep running; the message says why."""


def _serve(app: FastAPI, runtime: Runtime) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(
        uvicorn.Config(app, host=runtime.api_host, port=runtime.api_port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        server.should_exit = True
        raise RunError(f"the API cannot listen on {runtime.api_host}:{runtime.api_port} (in use? choose --port)")
    return server, thread


@contextlib.contextmanager
def _one_run(var: Path) -> Iterator[None]:
    """Only one `nonsite run` per state folder: two would drive the same cameras and staging."""
    var.mkdir(parents=True, exist_ok=True)
    with (var / "run.lock").open("a") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise RunError(f"another nonsite run is using {var} (its lock is {var / 'run.lock'})") from e
        yield


def run(config_path: Path | None, *, duration_s: float | None, port: int | None = None, verbose: int = 0) -> int:
    """The main job; returns when SIGTERM/SIGINT arrives or `duration_s` has passed."""
    if config_path is None:
        config_path = demo_config(Runtime().var)
    config = load_run_config(config_path)
    if port is not None:
        config = config.model_copy(update={"runtime": config.runtime.model_copy(update={"api_port": port})})
    with _one_run(config.runtime.var):
        return _run(config_path, config, duration_s=duration_s, verbose=verbose)


def api_app(config: RunConfig, db: Database, monitors: MonitorService) -> FastAPI:
    """The API and console for this run; its accounts are made first (in development, the demo
    officers too, with the development password, which the console's login page names)."""
    from api.accounts import seed_accounts
    from api.app import create_app
    from api.settings import ApiSettings

    try:
        settings = ApiSettings()
    except ValidationError as e:
        raise RunError(f"API settings: {'; '.join(err['msg'] for err in e.errors())}") from e
    made = seed_accounts(
        db, admin_password=settings.admin_password.get_secret_value(), development=settings.development
    )
    if made:
        print(f"nonsite run: made accounts {', '.join(made)}", flush=True)
    runtime = config.runtime
    return create_app(
        db,
        monitors.book.vault,
        runtime.health_dir,
        settings=settings,
        casebook=monitors.book,
        monitors=monitors,
        model_path=deployed_model(runtime),
        registry=model_registry(runtime),
        surveys=survey_service(runtime, monitors.book),
    )


def survey_service(runtime: Runtime, casebook: Casebook) -> SurveyService:
    """Drone surveys the API starts (`var/surveys/incoming` is the drop folder); any cut off by a
    restart are taken up again."""
    from nonsite.survey_cli import default_model
    from vision.detectors import create_detector

    def detector() -> Detector:
        path, warning = default_model()
        if warning:
            logger.warning("surveys: %s", warning)
        return create_detector({"type": "onnx_yolo", "path": path})

    service = SurveyService(runtime.var / "surveys", detector=detector, casebook=casebook)
    resumed = service.resume()
    if resumed:
        logger.info("taking up surveys cut off by a restart: %s", ", ".join(resumed))
    return service


def start_monitors(config: RunConfig, db: Database) -> tuple[MonitorService, Callable[[], None]]:
    """The fume-monitor service of this run: the run file's monitors registered, recent readings
    replayed, and readings taken from MQTT when `runtime.mqtt` is set (and over HTTP always);
    returns the service and what stops it."""
    from pipelines.fume import MonitorService, MonitorServiceError
    from pipelines.mqtt import MonitorSubscriber

    runtime = config.runtime
    service = MonitorService(Casebook(db, Vault(runtime.evidence_dir, runtime.keys_dir)))
    for monitor in config.monitors:
        try:
            service.register(monitor)
        except MonitorServiceError as e:
            raise RunError(f"{e} (import the premises first: nonsite cases import-premises FILE)") from e
    service.replay()
    if runtime.mqtt is not None:
        host, _, port = runtime.mqtt.removeprefix("mqtt://").rstrip("/").partition(":")
        subscriber = MonitorSubscriber(
            host,
            int(port or 1883),
            service,
            on_episode=lambda episode: logger.info("monitor %s: %s episode", episode.monitor_id, episode.kind),
            client_id=f"nonsite-{runtime.queue}",
        )
        subscriber.start()
        print(f"nonsite run: {len(config.monitors)} fume monitor(s), readings from {runtime.mqtt}", flush=True)
        return service, subscriber.stop
    stop = threading.Event()

    def sweep() -> None:  # close the episodes of monitors that fell silent (the subscriber does it with MQTT)
        while not stop.wait(MONITOR_SWEEP_S):
            try:
                service.expire(service.clock())
            except Exception:
                logger.exception("fume monitors: the sweep failed")

    threading.Thread(target=sweep, name="monitor-sweep", daemon=True).start()
    return service, stop.set


def _run(config_path: Path, config: RunConfig, *, duration_s: float | None, verbose: int) -> int:
    from pipelines import tasks

    runtime = config.runtime
    print(f"nonsite run: {len(config.cameras)} camera(s) from {config_path}; {runtime.describe()}", flush=True)
    model_slot(config)  # a missing or unfit model stops here, not in a restarting camera worker
    prepare(config)
    tasks.configure(runtime)
    os.environ.update(runtime.to_env())
    staging = StagingArea(runtime.staging_dir)
    db = Database(runtime.database_url, migrate=False)
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        print(f"\nnonsite run: {signal.Signals(signum).name}, stopping (cameras hand over open events first)")
        stop.set()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    supervisor = Supervisor(config_path, config, verbose=verbose)
    server: uvicorn.Server | None = None
    stop_monitors: Callable[[], None] | None = None
    failure, watermark = None, 0
    try:
        monitors, stop_monitors = start_monitors(config, db)
        server, api_thread = _serve(api_app(config, db, monitors), runtime)
        host, bound = server.servers[0].sockets[0].getsockname()[:2]
        print(f"console and API at http://{host}:{bound}/  (metrics at /metrics)", flush=True)
        watermark = _report_new_cases(db, 0, quiet=True)  # cases of earlier runs are not news
        try:
            tasks.heal.delay()  # packages sealed but never filed, before a crash
        except Exception as e:  # the cameras still stage; their sweeps send once the broker is back
            print(f"nonsite run: the broker {mask_credentials(runtime.broker_url)} is unreachable ({e})", flush=True)
        supervisor.start()
        deadline = None if duration_s is None else time.monotonic() + duration_s
        while not stop.wait(1.0):
            failure = supervisor.watch()
            if failure:
                print(f"nonsite run: {failure}; stopping", flush=True)
                break
            watermark = _report_new_cases(db, watermark)
            if deadline is not None and time.monotonic() >= deadline:
                print(f"nonsite run: {duration_s:g} s passed, stopping", flush=True)
                break
    finally:
        supervisor.stop()
        if stop_monitors is not None:
            stop_monitors()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if server is not None:
            _report_new_cases(db, watermark)
            server.should_exit = True
            api_thread.join(5)
        db.close()
    failed = staging.failed()
    if failed:
        print(f"{len(failed)} staged violation(s) could not be filed; see {runtime.staging_dir / 'failed'}")
    if failure:
        raise RunError(failure)
    return 0


def _report_new_cases(db: Database, after_id: int, *, quiet: bool = False) -> int:
    """Print each case filed since the case with id `after_id`; returns the newest id seen."""
    with db.session() as s:
        new = s.scalars(select(Case).where(Case.id > after_id).order_by(Case.id)).all()
        for case in [] if quiet else new:
            zone = case.zone.name if case.zone else "-"
            print(
                f"case {case.number} filed: {case.kind} at {case.camera_id}/{zone}, "
                f"{len(case.evidence)} sealed package(s), {case.state}",
                flush=True,
            )
        return max([after_id, *(c.id for c in new)])


# --- workers ------------------------------------------------------------------------


def _stop_on_sigterm(stop: threading.Event) -> None:
    def _handler(signum: int, _frame: FrameType | None) -> None:
        logger.info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)


def camera_worker(config_path: Path, *, name: str, only: list[str] | None, metrics_port: int | None) -> int:
    """Watch the configured cameras (or `only` those) until SIGTERM."""
    from pipelines import tasks
    from pipelines.worker import CameraWorker

    config = load_run_config(config_path)
    runtime = config.runtime
    cameras = [c for c in config.cameras if only is None or c.id in only]
    unknown = sorted(set(only or ()) - {c.id for c in config.cameras})
    if unknown:
        raise CameraConfigError(f"{config_path} has no camera {', '.join(unknown)}", path=config_path)
    tasks.configure(runtime)
    slot = model_slot(config)
    try:
        db = Database(runtime.database_url, migrate=False)
        try:
            cameras = apply_drawn_zones(cameras, db)
        finally:
            db.close()
    except DatabaseError as e:  # the cameras still watch, with the run file's zones
        logger.error("cannot read the zones drawn in the console (%s); using the run file's", e)
    worker = CameraWorker(
        cameras,
        slot,
        StagingArea(runtime.staging_dir),
        tasks.seal_and_file.delay,
        name=name,
        ring_s=runtime.ring_s,
        health_dir=runtime.health_dir,
        health_interval_s=runtime.health_interval_s,
        shadow_model=models.shadow_path if (models := model_registry(runtime)) else None,
        shadow_reports=models.shadow_reports if models else None,
    )
    if metrics_port is not None:
        from prometheus_client import CollectorRegistry, start_http_server

        from api.health import HealthCollector

        registry = CollectorRegistry()
        registry.register(HealthCollector(runtime.health_dir, cameras={c.id for c in cameras}))
        start_http_server(metrics_port, registry=registry)
    stop = threading.Event()
    _stop_on_sigterm(stop)
    worker.start()
    while not stop.wait(1.0):
        if not any(r.thread.is_alive() for r in worker.runners):
            break
    worker.stop()
    return 0


def task_worker(config_path: Path | None, *, name: str, concurrency: int = 1) -> int:
    """A Celery worker for the runtime's broker; SIGTERM is Celery's warm shutdown."""
    import pipelines.survey_tasks  # noqa: F401  (registers nonsite.survey_image and nonsite.finish_survey)
    from pipelines import tasks

    if config_path is not None:
        config = load_run_config(config_path)
        runtime = config.runtime
        prepare(config)  # the cameras this worker files for are registered, whichever machine it is on
    else:
        runtime = Runtime.from_env()
    os.environ.update(runtime.to_env())
    app = tasks.configure(runtime)
    pool = ["--pool=solo"] if concurrency == 1 else ["--pool=prefork", f"--concurrency={concurrency}"]
    level = "INFO" if logging.getLogger().level <= logging.INFO else "WARNING"
    quiet = ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    argv = ["--quiet", "worker", *pool, "-n", f"{name}@%h", f"--loglevel={level}", "-Q", runtime.queue, *quiet]
    app.worker_main(argv)
    return 0

"""Camera workers against a real MJPEG camera on 127.0.0.1: a violation filed with its clip
from the ring buffer, a camera killed and back, a covered lens, a promoted model swapped in.

The detector is a small colour detector (a red block is a stall), so that what the camera
shows decides what is found, exactly; the model-swap test uses the shipped ONNX model.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from cases.db import Database
from cases.models import Case
from evidence.package import SealedPackage, load_package
from evidence.vault import Vault
from nonsite.run import prepare
from nonsite.starter import starter_model_path
from pipelines import tasks
from pipelines.settings import RunConfig, Runtime
from pipelines.staging import StagingArea
from pipelines.worker import CameraHealth, CameraWorker, ModelSlot, read_health
from tests.conftest import wait_for
from tests.pipelines.mjpeg_server import MjpegServer
from vision.camera import CameraConfig
from vision.detectors import Detector, ModelInfo
from vision.tamper import TamperConfig
from vision.types import Detections
from vision.zones import ZoneConfig

W, H = 160, 90


class Scene:
    """What the camera shows: a textured street, a red stall when `stall` is set, black when covered."""

    def __init__(self) -> None:
        rng = np.random.default_rng(1)
        base = rng.integers(60, 160, (H // 6, W // 8, 3), dtype=np.uint8)  # nothing strongly red
        self.background = cv2.resize(base, (W, H), interpolation=cv2.INTER_NEAREST)
        cv2.line(self.background, (0, 60), (W, 60), (230, 230, 230), 2)
        self.stall = False
        self.covered = False

    def __call__(self, counter: int) -> np.ndarray:
        if self.covered:
            return np.full((H, W, 3), 8, np.uint8)
        image = self.background.copy()
        x = 10 + counter % 40  # a walker keeps the picture alive
        cv2.rectangle(image, (x, 20), (x + 4, 34), (255, 255, 255), -1)
        if self.stall:
            cv2.rectangle(image, (90, 50), (130, 80), (0, 0, 255), -1)
        return image


class RedDetector(Detector):
    """Finds the red stall: a box around pixels that are strongly red."""

    def __init__(self) -> None:
        self.info = ModelInfo(Path("red"), "r" * 64, ("stall",), (H, W), "test", True, ("cpu",), {})

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        out = []
        for image in images:
            mask = (image[:, :, 2] > 180) & (image[:, :, 1] < 90) & (image[:, :, 0] < 90)
            ys, xs = np.nonzero(mask)
            if len(xs) < 50:
                out.append(Detections.empty())
                continue
            box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
            out.append(Detections(xyxy=box, score=np.array([0.9], np.float32), class_id=np.array([0], np.int32)))
        return out


class FixedSlot(ModelSlot):
    """A model slot holding a detector made in the test (no file to watch)."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.swaps = 0

    def check(self) -> bool:
        return False


def camera(url: str, **update: object) -> CameraConfig:
    zone = ZoneConfig(
        name="street",
        polygon=((0, 40), (W, 40), (W, H), (0, H)),
        rule="no_occupation",
        classes=("stall",),
        min_dwell_s=1.0,
        max_gap_s=0.5,
    )
    config = CameraConfig(
        id="cam-1",
        name="Test street",
        source=url,
        fps=10.0,
        detect_fps=5.0,
        zones=(zone,),
        tamper=TamperConfig(learn_s=2.0, hold_s=1.0),
    )
    return config.model_copy(update=update)


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """A runtime in tmp whose tasks run in this process (the task tests cover real workers)."""
    monkeypatch.delenv("NONSITE_DATABASE_URL", raising=False)
    runtime = Runtime(var=tmp_path / "var")
    monkeypatch.setenv("NONSITE_RUNTIME", runtime.model_dump_json())
    tasks._services = None
    yield runtime
    if tasks._services is not None:
        tasks._services.vault.close()
        tasks._services.db.close()
    tasks._services = None


def register(runtime: Runtime, config: CameraConfig) -> None:
    prepare(RunConfig(runtime=runtime, cameras=(config,)))


def first_package(runtime: Runtime) -> tuple[SealedPackage, dict[str, bytes]]:
    """The first sealed package of the one case filed, with its files."""
    db = Database(runtime.database_url, migrate=False)
    vault = Vault(runtime.evidence_dir, runtime.keys_dir)
    try:
        with db.session() as s:
            package_id = s.query(Case).one().evidence[0].package_id
        return load_package(vault.store, package_id)
    finally:
        vault.close()
        db.close()


def make_worker(runtime: Runtime, config: CameraConfig, slot: ModelSlot) -> CameraWorker:
    lock = threading.Lock()

    def file_now(item_id: str) -> None:  # the task, run here instead of on a broker
        with lock:
            tasks.seal_and_file.run(item_id)

    return CameraWorker(
        [config],
        slot,
        StagingArea(runtime.staging_dir),
        file_now,
        name="test-worker",
        ring_s=10.0,
        health_dir=runtime.health_dir,
        health_interval_s=0.3,
    )


def health(worker: CameraWorker) -> CameraHealth:
    (report,) = worker.health()
    return report


def test_a_stall_on_a_live_camera_is_filed_with_its_clip_from_the_ring_buffer(runtime: Runtime) -> None:
    scene = Scene()
    with MjpegServer(fps=10.0, render=scene) as server:
        config = camera(server.url)
        register(runtime, config)
        worker = make_worker(runtime, config, FixedSlot(RedDetector()))
        worker.start()
        try:
            wait_for(lambda: health(worker).frames >= 10, 15, "the camera to come up")
            scene.stall = True
            wait_for(lambda: len(worker.sent) >= 1, 15, "the stall to be confirmed and filed")
            time.sleep(1.0)
            scene.stall = False
            wait_for(lambda: len(worker.sent) >= 2, 20, "the stall's end to be sealed after its post-roll")
        finally:
            worker.stop()
    db = Database(runtime.database_url, migrate=False)
    vault = Vault(runtime.evidence_dir, runtime.keys_dir)
    try:
        with db.session() as s:
            (case,) = s.query(Case).all()
            assert (case.kind, case.camera_id, case.zone.name) == ("occupation", "cam-1", "street")
            packages = [e.package_id for e in case.evidence]
        assert len(packages) == 2, "the confirmation and the close, one case"
        package, files = load_package(vault.store, packages[-1])
        clip = package.manifest["capture"]["clip_frames"]
        assert package.manifest["capture"]["clock_source"] == "system"
        assert "clip.mp4" in files and any(name.startswith("keyframe-") for name in files)
        first, last = clip[0], clip[-1]
        violation = package.manifest["violation"]
        assert first < violation["start_frame"], "the clip has pre-roll from the ring buffer"
        assert last > violation["end_frame"], "the clip has post-roll"
        assert package.manifest["device"]["source"] == server.url
    finally:
        vault.close()
        db.close()
    reports = read_health(runtime.health_dir)
    assert [r.camera_id for r in reports] == ["cam-1"] and reports[0].state == "stopped"
    snapshot = cv2.imread(str(runtime.health_dir / "cam-1.jpg"))
    assert snapshot is not None and snapshot.shape == (H, W, 3), "the console's snapshot, in the zones' pixels"


def test_a_camera_killed_and_back_reconnects_and_keeps_counting(runtime: Runtime) -> None:
    scene = Scene()
    with MjpegServer(fps=10.0, render=scene) as server:
        config = camera(server.url.replace("http://", "http://user:secret@"))
        worker = make_worker(runtime, config, FixedSlot(RedDetector()))
        worker.start()
        try:
            wait_for(lambda: health(worker).state == "live", 15, "the camera to be live")
            before = health(worker).frames
            server.kill()
            wait_for(lambda: health(worker).state == "reconnecting", 15, "the worker to notice the camera is gone")
            server.restart()
            wait_for(lambda: health(worker).state == "live" and health(worker).frames > before + 10, 30, "reconnect")
            report = health(worker)
        finally:
            worker.stop()
    assert report.reconnects >= 1
    kinds = [e.kind for e in report.events]
    assert "disconnected" in kinds and kinds[-1] == "connected"
    text = json.dumps([r.model_dump(mode="json") for r in read_health(runtime.health_dir)])
    assert "secret" not in text and "user:***@" in text


def test_a_covered_lens_is_a_health_event_not_a_violation(runtime: Runtime) -> None:
    scene = Scene()
    with MjpegServer(fps=10.0, render=scene) as server:
        worker = make_worker(runtime, camera(server.url), FixedSlot(RedDetector()))
        worker.start()
        try:
            wait_for(lambda: health(worker).frames >= 20, 15, "the tamper check to learn the scene")
            scene.covered = True
            wait_for(lambda: health(worker).state == "tampered", 15, "the covered lens to be reported")
            covered = health(worker)
            scene.covered = False

            def uncovered() -> bool:
                report = health(worker)
                cleared = any(e.kind == "tamper:covered" and not e.active for e in report.events)
                return report.state == "live" and cleared

            wait_for(uncovered, 15, "the lens uncovered and the condition cleared")
            cleared = health(worker)
        finally:
            worker.stop()
    assert covered.tamper == ["covered"]
    assert [(e.kind, e.active) for e in cleared.events if e.kind.startswith("tamper")] == [
        ("tamper:covered", True),
        ("tamper:covered", False),
    ]
    assert list(worker.sent) == [] and cleared.violations == 0


def test_a_promoted_model_is_swapped_in_without_dropping_a_frame(runtime: Runtime, tmp_path: Path) -> None:
    import onnx

    model = tmp_path / "current.onnx"
    shutil.copy(starter_model_path(), model)
    promoted = onnx.load(str(starter_model_path()))
    promoted.metadata_props.add(key="promoted", value="yes")  # same weights, another file: another sha256
    scene = Scene()
    with MjpegServer(fps=10.0, render=scene) as server:
        slot = ModelSlot(model)
        worker = make_worker(runtime, camera(server.url), slot)
        worker.start()
        try:
            wait_for(lambda: health(worker).frames >= 10, 20, "the camera to run")
            first_sha = health(worker).model_sha256
            (tmp_path / "staged.onnx").write_bytes(promoted.SerializeToString())
            os.replace(tmp_path / "staged.onnx", model)  # promotion is an atomic rename
            wait_for(lambda: health(worker).model_sha256 != first_sha, 20, "the promoted model to be swapped in")
            (tmp_path / "broken.onnx").write_bytes(b"not a model")
            os.replace(tmp_path / "broken.onnx", model)  # a bad promotion keeps the running model
            wait_for(lambda: slot.rejected == 1, 20, "the broken model to be refused")
            frames = health(worker).frames
            wait_for(lambda: health(worker).frames > frames + 5, 20, "the camera to go on with the running model")
            report = health(worker)
            stats = worker.runners[0].source.stats
        finally:
            worker.stop()
    assert slot.swaps == 1 and report.model_sha256 != first_sha
    assert stats.dropped == 0, "the camera thread kept up through the swap"
    assert report.state == "live"


def test_items_an_earlier_run_staged_but_never_filed_are_sent_at_start(runtime: Runtime) -> None:
    from tests.pipelines.test_tasks import stage_violations

    staging = StagingArea(runtime.staging_dir)
    left_over = stage_violations(staging, 2)  # staged, then the broker lost their messages
    sent: list[str] = []
    worker = CameraWorker([camera("rtsp://127.0.0.1:9/none")], FixedSlot(RedDetector()), staging, sent.append)
    worker.start()
    try:
        wait_for(lambda: len(sent) == 2, 10, "the pending items to be sent again")
    finally:
        worker.stop(timeout=5)
    assert sorted(sent) == sorted(left_over)


def test_a_camera_with_a_substream_detects_on_it_and_seals_the_full_resolution_stream(runtime: Runtime) -> None:
    scene = Scene()

    def full(counter: int) -> np.ndarray:
        return cv2.resize(scene(counter), (2 * W, 2 * H), interpolation=cv2.INTER_NEAREST)

    with MjpegServer(fps=10.0, render=scene) as sub, MjpegServer(fps=10.0, render=full) as main:
        config = camera(sub.url, evidence_source=main.url.replace("http://", "http://cam:pw@"))
        register(runtime, config)
        worker = make_worker(runtime, config, FixedSlot(RedDetector()))
        worker.start()
        try:
            wait_for(lambda: health(worker).frames >= 10, 15, "both streams to come up")
            scene.stall = True
            wait_for(lambda: len(worker.sent) >= 1, 15, "the stall to be confirmed and filed")
        finally:
            worker.stop()
    package, files = first_package(runtime)
    keyframe = next(name for name in files if name.startswith("keyframe-"))
    image = cv2.imdecode(np.frombuffer(files[keyframe], np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (2 * H, 2 * W), "evidence is the full-resolution stream"
    violation = package.manifest["violation"]
    assert violation["detect_stream"] == {"width": W, "height": H}
    x1, y1, x2, y2 = violation["bbox"]
    assert abs(x1 - 180) <= 4 and abs(y1 - 100) <= 4 and abs(x2 - 262) <= 4 and abs(y2 - 162) <= 4
    assert "pw" not in repr(config) and "cam:***@" in repr(config)


def test_a_camera_that_changes_resolution_goes_on_with_a_fresh_engine(runtime: Runtime) -> None:
    scene = Scene()
    size = {"scale": 1}

    def render(counter: int) -> np.ndarray:
        image = scene(counter)
        k = size["scale"]
        return image if k == 1 else cv2.resize(image, (W * k, H * k), interpolation=cv2.INTER_NEAREST)

    with MjpegServer(fps=10.0, render=render) as server:
        worker = make_worker(runtime, camera(server.url), FixedSlot(RedDetector()))
        worker.start()
        try:
            wait_for(lambda: health(worker).frames >= 10, 15, "the camera to run")
            size["scale"] = 2  # the camera was reconfigured to a larger picture
            wait_for(lambda: any(e.kind == "resolution_changed" for e in health(worker).events), 15, "the change")
            frames = health(worker).frames
            wait_for(lambda: health(worker).frames > frames + 10, 15, "the camera to go on")
            report = health(worker)
        finally:
            worker.stop()
    assert report.state == "live" and report.errors == 0


def test_with_its_evidence_stream_down_a_camera_seals_the_substreams_frames(runtime: Runtime) -> None:
    scene = Scene()
    with MjpegServer(fps=10.0, render=scene) as sub:
        config = camera(sub.url, evidence_source="http://127.0.0.1:9/never.mjpg")
        register(runtime, config)
        worker = make_worker(runtime, config, FixedSlot(RedDetector()))
        worker.start()
        try:
            wait_for(lambda: health(worker).frames >= 10, 15, "the detect stream to come up")
            assert health(worker).evidence in ("starting", "reconnecting")
            scene.stall = True
            wait_for(lambda: len(worker.sent) >= 1, 15, "the stall to be filed all the same")
        finally:
            worker.stop()
    package, files = first_package(runtime)
    assert package.manifest["violation"]["evidence_stream"].startswith("unavailable")
    assert "clip.mp4" in files


class BlindDetector(RedDetector):
    """A candidate that misses the stall (finds nothing at all)."""

    def __init__(self) -> None:
        super().__init__()
        self.info = ModelInfo(Path("blind"), "b" * 64, ("stall",), (H, W), "test", True, ("cpu",), {})

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        return [Detections.empty() for _ in images]


class CandidateSlot(FixedSlot):
    """Loads whatever the shadow file is as a blind candidate (the file only marks the run)."""

    def load_candidate(self, path: Path) -> Detector:
        if path.read_bytes() != b"blind":
            raise ValueError(f"{path} is not a model")
        return BlindDetector()


def test_a_shadow_candidate_runs_beside_the_deployed_model_and_files_nothing(runtime: Runtime, tmp_path: Path) -> None:
    scene = Scene()
    shadow_file, reports = tmp_path / "shadow.onnx", tmp_path / "shadow"
    with MjpegServer(fps=10.0, render=scene) as server:
        config = camera(server.url)
        register(runtime, config)
        worker = make_worker(runtime, config, CandidateSlot(RedDetector()))
        worker.shadow_model, worker.shadow_reports = shadow_file, reports
        worker.start()
        try:
            wait_for(lambda: health(worker).frames >= 10, 15, "the camera to run")
            shadow_file.write_bytes(b"blind")
            wait_for(lambda: worker.runners[0].shadow is not None, 10, "the shadow run to start")
            scene.stall = True
            wait_for(lambda: len(worker.sent) >= 1, 15, "the deployed model's stall to be filed")
            wait_for(
                lambda: json.loads((reports / "cam-1.json").read_text()).get("only_current", 0) >= 1,
                20,
                "the shadow report to show what the candidate missed",
            )
            shadow_file.unlink()
            wait_for(lambda: worker.runners[0].shadow is None, 10, "the shadow run to end")
        finally:
            worker.stop()
    report = json.loads((reports / "cam-1.json").read_text())
    assert report["candidate_sha256"] == "b" * 64
    assert report["only_current_by_class"]["stall"] >= 1 and report["only_candidate"] == 0
    assert report["events"]["current"] == {"occupation": 1} and report["events"]["candidate"] == {}
    assert report["examples"][-1]["only"] == "current"
    db, vault = Database(runtime.database_url, migrate=False), Vault(runtime.evidence_dir, runtime.keys_dir)
    try:
        with db.session() as s:
            package_ids = [e.package_id for case in s.query(Case) for e in case.evidence]
        models = {load_package(vault.store, p)[0].manifest["model"]["sha256"] for p in package_ids}
    finally:
        vault.close()
        db.close()
    assert package_ids and models == {"r" * 64}, "only the deployed model's findings were sealed and filed"

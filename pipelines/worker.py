"""Camera workers: a long-running process that watches a group of cameras.

Each camera runs in its own thread: frames come from a `LiveSource` at the decode rate
into a ring buffer (the evidence clip's pre-roll), the engine looks at them at the
detect rate, and tampering checks run beside it. A violation is handed over twice, each
time with the ring buffer's frames of its clip, to a staging thread that encodes the
evidence and stages it: when it is confirmed (its clip ends at the confirming frame, so
the case is filed while the violation goes on) and when it ends (its clip runs to the
post-roll; the case gains that package). A dispatch thread then sends each staged id to
the task queue. Neither can stall a camera: they have their own threads and queues.
Frames never leave the process; what leaves is a staged item's id. One bad frame, a
change of resolution or an error in staging is logged and counted; it never stops a
camera or the worker.

Health (decode and detect rates, lag, gated fraction, reconnects, tampering) is reported
as `CameraHealth` to a callback (the worker writes it to the health folder, which the API
and the Prometheus endpoint read). A `ModelSlot` watches the model file: when a new model
is promoted there, it is loaded beside the running one and swapped in between two frames,
so no frame is dropped.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, Field

from pipelines.sealing import violation_package
from pipelines.shadow import ShadowRun, write_report
from pipelines.staging import StagingArea
from pipelines.streams import LiveSource, StreamEvent, StreamEventKind
from vision.camera import CameraConfig
from vision.detectors import Detector, create_detector
from vision.detectors.onnx import sniff_backend
from vision.engine import Engine
from vision.errors import ModelLoadError
from vision.tamper import TamperDetector, TamperEvent
from vision.types import Frame, Violation

logger = logging.getLogger(__name__)

#: most violations waiting for their post-roll or for staging before a camera drops the oldest
MAX_WAITING = 64
#: how much longer than its post-roll a closed violation waits for the post-roll's frames
POST_ROLL_MARGIN_S = 5.0
#: farthest in time an evidence frame may be from the detect frame it stands for
MATCH_WITHIN_S = 1.0
#: how often staged items whose message was lost are sent again
SWEEP_EVERY_S = 60.0
SNAPSHOT_EVERY_S = 10.0  # how often the console's camera snapshot is renewed


class HealthEvent(BaseModel):
    """A camera health event: connection, frozen feed, tampering; never a violation."""

    camera_id: str
    kind: str
    active: bool = True
    at: datetime
    detail: str = ""


class CameraHealth(BaseModel):
    """One camera's state as its worker last reported it; crosses processes as JSON."""

    camera_id: str
    name: str
    source: str = Field(description="The source URL with credentials masked.")
    worker: str
    state: str = Field(description="starting, live, reconnecting, frozen, tampered or stopped.")
    frames: int = 0
    inferred: int = 0
    decode_fps: float = 0.0
    detect_fps: float = 0.0
    lag_s: float = 0.0
    gated_fraction: float = 0.0
    reconnects: int = 0
    corrupt: int = 0
    dropped: int = 0
    violations: int = 0
    staged: int = 0
    tamper: list[str] = Field(default_factory=list)
    errors: int = Field(default=0, description="Frames the engine failed on (logged; the camera goes on).")
    evidence: str | None = Field(default=None, description="State of the full-resolution evidence stream, if any.")
    model_sha256: str = ""
    last_frame_at: datetime | None = None
    updated_at: datetime
    interval_s: float = Field(default=2.0, description="How often the worker reports; older reports are stale.")
    events: list[HealthEvent] = Field(default_factory=list, description="The latest events, newest last.")


class RingBuffer:
    """The last `seconds` of decoded frames of one camera, by frame index; safe across threads
    (a camera's evidence stream fills it from its own thread)."""

    def __init__(self, seconds: float, max_frames: int) -> None:
        self.seconds = seconds
        self.max_frames = max_frames  # a stream running faster than configured cannot grow it
        self._frames: OrderedDict[int, Frame] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, frame: Frame) -> None:
        horizon = frame.captured_at.timestamp() - self.seconds
        with self._lock:
            self._frames[frame.index] = frame
            while len(self._frames) > self.max_frames:
                self._frames.popitem(last=False)
            while self._frames:
                oldest = next(iter(self._frames.values()))
                if oldest.captured_at.timestamp() >= horizon:
                    break
                self._frames.popitem(last=False)

    def between(self, first: float, last: float) -> dict[int, Frame]:
        """Frames captured from `first` to `last` (POSIX seconds, inclusive)."""
        with self._lock:
            return {i: f for i, f in self._frames.items() if first <= f.captured_at.timestamp() <= last}

    @property
    def newest_at(self) -> float:
        with self._lock:
            return next(reversed(self._frames.values())).captured_at.timestamp() if self._frames else -1.0


class ModelSlot:
    """The model the cameras run, reloaded when its file changes (a promotion).

    A promoted file is loaded beside the running model and swapped in only if it loads and
    knows every class the cameras' zones watch; otherwise the running model stays and the
    refusal is logged and counted.
    """

    def __init__(
        self,
        path: Path,
        *,
        conf: float | None = None,
        imgsz: int | None = None,
        intra_op_threads: int = 1,
        required_classes: frozenset[str] = frozenset(),
    ) -> None:
        self.path = Path(path)
        self._conf, self._imgsz, self._threads = conf, imgsz, intra_op_threads
        self.required_classes = required_classes
        self._lock = threading.Lock()
        try:
            self._stamp = self._file_stamp()
        except OSError as e:
            raise ModelLoadError(f"model {self.path} cannot be read: {e.strerror or e}") from e
        self.detector = self._load()
        self.swaps = 0
        self.rejected = 0

    def _file_stamp(self) -> tuple[int, int, int]:
        st = os.stat(self.path)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _load(self, path: Path | None = None) -> Detector:
        path = path or self.path
        config: dict[str, Any] = {
            "type": sniff_backend(path),
            "path": path,
            "intra_op_threads": self._threads,
            "spin_threads": False,
        }
        if self._conf is not None:
            config["conf"] = self._conf
        if self._imgsz is not None:
            config["imgsz"] = self._imgsz
        detector = create_detector(config)
        missing = sorted(self.required_classes - set(detector.names))
        if missing:
            raise ModelLoadError(
                f"model {path} does not know the classes {', '.join(missing)} that the zones watch "
                f"(it knows {', '.join(detector.names)})"
            )
        return detector

    def load_candidate(self, path: Path) -> Detector:
        """Another model file loaded as this slot loads its own (for a shadow run)."""
        return self._load(path)

    def check(self) -> bool:
        """Load the file again if it changed; True when a new model was swapped in."""
        try:
            stamp = self._file_stamp()
        except OSError as e:
            logger.warning("model %s cannot be read (%s); keeping the running model", self.path, e)
            return False
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            detector = self._load()
        except Exception as e:  # a half-copied or wrong file must never stop the cameras
            self.rejected += 1
            logger.error("model %s changed but is refused (%s); keeping the running model", self.path, e)
            return False
        with self._lock:
            old, self.detector = self.detector, detector
            self.swaps += 1
        logger.info("model swapped: %s -> %s", old.info.sha256[:12], detector.info.sha256[:12])
        return True


@dataclass
class _Waiting:
    record: dict[str, Any]
    frames: dict[int, Frame]
    until: float  # POSIX time of the clip's last frame
    deadline: float  # monotonic time after which it is staged with what there is
    seen: float = 0.0  # capture time of the newest ring frame already looked at


@dataclass
class _Rates:
    window_s: float = 10.0
    times: list[float] = field(default_factory=list)

    def tick(self, now: float) -> None:
        self.times.append(now)
        cutoff = now - self.window_s
        while self.times and self.times[0] < cutoff:
            self.times.pop(0)

    def rate(self, now: float) -> float:
        recent = [t for t in self.times if t >= now - self.window_s]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(1e-6, recent[-1] - recent[0])


class CameraRunner:
    """One camera inside a worker: source -> ring buffer -> engine -> staged violations.

    Frames are counted again at the decode rate (a source's own index also counts frames it
    skipped), which is the unit of the engine's frame indices and of the clips. The ring
    buffer holds the frames evidence is cut from: the camera's own frames, or those of its
    full-resolution stream when it has one. When the engine looks at other frames than the
    ring holds (a substream, or frames resized to `detect_size`), a violation's frame
    indices and boxes are carried over to the evidence frames by capture time.
    """

    def __init__(
        self,
        camera: CameraConfig,
        slot: ModelSlot,
        stage: Callable[[CameraConfig, dict[str, Any], dict[int, Frame], float], None],
        *,
        worker_name: str,
        ring_s: float,
        source: LiveSource | None = None,
        replay_loop: bool = True,
        on_violation: Callable[[Violation, Frame], None] | None = None,
        health_interval_s: float = 2.0,
    ) -> None:
        self.camera = camera
        self.slot = slot
        self._stage = stage
        self.worker_name = worker_name
        self.health_interval_s = health_interval_s
        self.fps = camera.fps
        self.detect_fps = camera.detect_fps or camera.fps
        seconds = max(ring_s, camera.rules.pre_roll_s + 1.0)
        self.ring = RingBuffer(seconds, max_frames=int(seconds * camera.fps * 1.5) + 8)
        # a second of frames between decoder and engine: a moment of contention for the cores
        # (several cameras inferring at once) delays frames instead of dropping them
        buffer = max(2, round(camera.fps))
        self.source = source or LiveSource(
            camera.source,
            source_id=camera.id,
            fps=camera.fps,
            replay_loop=replay_loop,
            buffer=buffer,
            on_event=self._stream_event,
        )
        # a camera with a full-resolution stream beside its detect stream: evidence comes from it,
        # and from the detect frames (kept in a second ring) while it is down
        self.evidence_source = (
            LiveSource(
                camera.evidence_source,
                source_id=f"{camera.id}/evidence",
                fps=camera.fps,
                replay_loop=replay_loop,
                buffer=buffer,
                on_event=self._stream_event,
            )
            if camera.evidence_source
            else None
        )
        self.detect_ring = (
            RingBuffer(seconds, max_frames=int(seconds * camera.fps * 1.5) + 8) if self.evidence_source else None
        )
        self._resize = (camera.detect_size.width, camera.detect_size.height) if camera.detect_size else None
        self._mapped = self.evidence_source is not None or self._resize is not None
        self._detect_hw: tuple[int, int] | None = None
        self._detect_times: OrderedDict[int, float] = OrderedDict()
        self._decoded = 0
        self.last_image: np.ndarray | None = None
        self._evidence_decoded = 0
        self.engine = Engine(camera, slot.detector, fps=camera.fps)
        self.shadow: ShadowRun | None = None  # a candidate model beside the deployed one, filing nothing
        self.tamper = TamperDetector(camera.tamper)
        self._on_violation = on_violation
        self._waiting: list[_Waiting] = []
        self._pinned: dict[tuple[str, tuple[int, ...]], dict[int, Frame]] = {}
        self._evidence_thread = threading.Thread(target=self._fill_ring, name=f"evidence-{camera.id}", daemon=True)
        self._events: list[HealthEvent] = []
        self._events_lock = threading.Lock()
        self._next_detect = 0.0
        self._decode_rate, self._detect_rate = _Rates(), _Rates()
        self._lag = 0.0
        self._staged = 0
        self._errors = 0
        self._last_error_log = -float("inf")
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"camera-{camera.id}", daemon=True)

    # --- health ---------------------------------------------------------------------

    def _event(self, kind: str, *, active: bool = True, detail: str = "", at: datetime | None = None) -> None:
        event = HealthEvent(
            camera_id=self.camera.id, kind=kind, active=active, at=at or datetime.now(UTC), detail=detail
        )
        level = logging.WARNING if active and kind not in ("connected",) else logging.INFO
        logger.log(level, "camera %s: %s%s %s", self.camera.id, kind, "" if active else " cleared", detail)
        with self._events_lock:
            self._events = [*self._events[-19:], event]

    def _stream_event(self, event: StreamEvent) -> None:
        self._event(event.kind.value, active=event.kind != StreamEventKind.UNFROZEN, detail=event.detail, at=event.at)

    def _tamper_event(self, event: TamperEvent) -> None:
        self._event(f"tamper:{event.kind.value}", active=event.active, detail=event.detail, at=event.at)

    @staticmethod
    def _stream_state(source: LiveSource) -> str:
        stats = source.stats
        if not stats.connected:
            return "reconnecting" if stats.reconnects or stats.frames else "starting"
        return "frozen" if stats.frozen else "live"

    def health(self) -> CameraHealth:
        stats = self.source.stats
        now = time.monotonic()
        tamper = sorted(k.value for k in self.tamper.active)
        state = self._stream_state(self.source)
        if not self.thread.is_alive():
            state = "stopped"
        elif state == "live" and tamper:
            state = "tampered"
        with self._events_lock:
            events = list(self._events)
        return CameraHealth(
            camera_id=self.camera.id,
            name=self.camera.name,
            source=self.camera.masked_source,
            worker=self.worker_name,
            state=state,
            frames=self.engine.stats.frames,
            inferred=self.engine.stats.inferred,
            decode_fps=round(self._decode_rate.rate(now), 2),
            detect_fps=round(self._detect_rate.rate(now), 2),
            lag_s=round(self._lag, 3),
            gated_fraction=round(self.engine.stats.gated_fraction, 3),
            reconnects=stats.reconnects,
            corrupt=stats.corrupt,
            dropped=stats.dropped,
            violations=self.engine.stats.violations_closed,
            staged=self._staged,
            tamper=tamper,
            errors=self._errors,
            evidence=self._stream_state(self.evidence_source) if self.evidence_source else None,
            model_sha256=self.engine.detector.info.sha256,
            last_frame_at=stats.last_frame_at,
            updated_at=datetime.now(UTC),
            interval_s=self.health_interval_s,
            events=events,
        )

    # --- the loop -------------------------------------------------------------------

    def start(self) -> None:
        self.source.start()
        if self.evidence_source is not None:
            self.evidence_source.start()
            self._evidence_thread.start()
        self.thread.start()

    def stop(self) -> None:
        """Ask the camera to stop, without waiting (`join` waits); violations still open are
        closed at the last frame and staged."""
        self._stopping.set()
        self.source.stop(timeout=0.0)
        if self.evidence_source is not None:
            self.evidence_source.stop(timeout=0.0)

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def _fill_ring(self) -> None:
        assert self.evidence_source is not None
        while not self._stopping.is_set():
            frame = self.evidence_source.read(timeout=0.5)
            if frame is not None:
                self.ring.add(replace(frame, index=self._evidence_decoded))
                self._evidence_decoded += 1
            elif self.evidence_source.ended:
                return

    def _run(self) -> None:
        while not self._stopping.is_set():
            frame = self.source.read(timeout=0.5)
            if frame is None:
                if self.source.ended:
                    break
                self._flush_waiting(force=False)
                continue
            try:
                self._step(frame)
            except Exception:  # one bad frame never stops a camera; a steady stream of them shows in health
                self._errors += 1
                if time.monotonic() - self._last_error_log > 60.0:
                    self._last_error_log = time.monotonic()
                    logger.exception(
                        "camera %s: frame %d failed (%d so far)", self.camera.id, frame.index, self._errors
                    )
        for violation in self.engine.finish():
            self._closed(violation, None)
        self._flush_waiting(force=True)

    def _step(self, frame: Frame) -> None:
        now = time.monotonic()
        self._decode_rate.tick(now)
        frame = replace(frame, index=self._decoded)
        self._decoded += 1
        if self.evidence_source is None:
            self.ring.add(frame)
        elif self.detect_ring is not None:
            self.detect_ring.add(frame)
        if self._resize is not None and frame.image.shape[1::-1] != self._resize:
            frame = replace(frame, image=cv2.resize(frame.image, self._resize, interpolation=cv2.INTER_AREA))
        self.last_image = frame.image  # in the zones' pixels, for the console's snapshot
        hw = (frame.image.shape[0], frame.image.shape[1])
        if self._detect_hw is not None and hw != self._detect_hw:
            self._restart_engine(
                f"frame size changed from {self._detect_hw[1]}x{self._detect_hw[0]} to {hw[1]}x{hw[0]}"
            )
        self._detect_hw = hw
        detector = self.slot.detector
        if detector is not self.engine.detector:  # a promoted model, swapped between two frames
            self.engine.detector = detector
        # the detect rate is kept on the monotonic clock: a wall clock stepped back must not stop detection
        if now >= self._next_detect:
            self._next_detect = max(self._next_detect + 1.0 / self.detect_fps, now - 0.5 / self.detect_fps)
            self._detect_rate.tick(now)
            at = frame.captured_at.timestamp()
            self._detect_times[frame.index] = at
            while len(self._detect_times) > self.ring.max_frames:
                self._detect_times.popitem(last=False)
            for event in self.tamper.update(frame.image, frame.captured_at):
                self._tamper_event(event)
            result = self.engine.process(frame)
            shadow = self.shadow
            if shadow is not None:
                try:
                    shadow.step(frame, result, detector.names)
                except Exception:  # a candidate must never stop the camera it shadows
                    logger.exception("camera %s: the shadow model failed; shadow run ended here", self.camera.id)
                    self.shadow = None
            for violation in result.violations:
                if violation.closed:
                    self._closed(violation, frame)
                else:
                    self._opened(violation)
                    if self._on_violation is not None:
                        self._on_violation(violation, frame)
        self._lag = max(0.0, datetime.now(UTC).timestamp() - frame.captured_at.timestamp())
        self._flush_waiting(force=False)

    def _restart_engine(self, why: str) -> None:
        """The camera's picture changed shape: close what is open, start the engine and tamper checks afresh."""
        self._event("resolution_changed", detail=why)
        for violation in self.engine.finish():
            self._closed(violation, None)
        self.engine = Engine(self.camera, self.slot.detector, fps=self.camera.fps)
        self.tamper = TamperDetector(self.camera.tamper)

    def _key(self, violation: Violation) -> tuple[str, tuple[int, ...]]:
        return (violation.zone, violation.track_ids)

    def _clip_window(self, violation: Violation) -> tuple[float, float]:
        """The clip's first and last capture times: pre-roll before the start, post-roll after the end."""
        rules = self.camera.rules
        return (
            violation.started_at.timestamp() - rules.pre_roll_s,
            violation.ended_at.timestamp() + (rules.post_roll_s if violation.closed else 0.0),
        )

    def _opened(self, violation: Violation) -> None:
        """Seal what confirmed the event now, so that its case is filed while it goes on, and keep
        the frames of its start, which a long event would push out of the ring, for its close."""
        first, last = self._clip_window(violation)
        frames = self.ring.between(first, last)
        self._pinned[self._key(violation)] = dict(frames)
        while len(self._pinned) > MAX_WAITING:
            self._pinned.pop(next(iter(self._pinned)))
        self._hand_over(_Waiting(violation.to_record(), frames, last, 0.0))

    def _closed(self, violation: Violation, frame: Frame | None) -> None:
        if self._on_violation is not None and frame is not None:
            self._on_violation(violation, frame)
        first, last = self._clip_window(violation)
        frames = self._pinned.pop(self._key(violation), {})
        frames.update(self.ring.between(first, last))
        deadline = time.monotonic() + max(0.0, last - time.time()) + POST_ROLL_MARGIN_S
        self._waiting.append(_Waiting(violation.to_record(), frames, last, deadline, self.ring.newest_at))
        if len(self._waiting) > MAX_WAITING:
            dropped = self._waiting.pop(0)
            logger.error("camera %s: too many violations waiting; staging the oldest now", self.camera.id)
            self._hand_over(dropped)

    def _flush_waiting(self, *, force: bool) -> None:
        if not self._waiting:
            return
        now, newest = time.monotonic(), self.ring.newest_at
        keep = []
        for w in self._waiting:
            if newest > w.seen:  # only frames that came since the last look
                w.frames.update(self.ring.between(w.seen + 1e-6, w.until))
                w.seen = newest
            if force or newest >= w.until or now >= w.deadline:
                self._hand_over(w)
            else:
                keep.append(w)
        self._waiting = keep

    def _hand_over(self, waiting: _Waiting) -> None:
        record, frames = waiting.record, waiting.frames
        if self._mapped and frames:
            record = self._in_evidence_frames(record, frames)
        elif self.detect_ring is not None:  # the evidence stream gave nothing: the detect frames stand in
            started = datetime.fromisoformat(record["started_at"]).timestamp()
            frames = self.detect_ring.between(started - self.camera.rules.pre_roll_s, waiting.until)
            record = {**record, "evidence_stream": "unavailable; frames of the detect stream"}
            logger.warning("camera %s: evidence stream has no frames of %s; sealing the detect stream's",
                           self.camera.id, record["started_at"])  # fmt: skip
        self._stage(self.camera, record, frames, self.fps)
        self._staged += 1

    def _in_evidence_frames(self, record: dict[str, Any], frames: dict[int, Frame]) -> dict[str, Any]:
        """The record with frame indices and boxes of the evidence frames instead of the detect frames.

        A detect frame's capture time comes from the engine's own record of it; the evidence
        frame nearest in time stands for it. A keyframe with no evidence frame within
        `MATCH_WITHIN_S` is left out rather than shown at the wrong moment. Boxes and the
        zone are scaled by the ratio of the two frame sizes.
        """
        indices = sorted(frames)
        times = np.array([frames[i].captured_at.timestamp() for i in indices])
        started = datetime.fromisoformat(record["started_at"]).timestamp()
        start = record["start_frame"]

        def nearest(index: int) -> tuple[int, float]:
            at = self._detect_times.get(index, started + (index - start) / self.fps)
            k = int(np.argmin(np.abs(times - at)))
            return indices[k], float(abs(times[k] - at))

        eh, ew = frames[indices[0]].image.shape[:2]
        dh, dw = self._detect_hw or (eh, ew)
        sx, sy = ew / dw, eh / dh

        def scaled(box: list[float]) -> list[float]:
            return [round(box[0] * sx, 1), round(box[1] * sy, 1), round(box[2] * sx, 1), round(box[3] * sy, 1)]

        keyframes = sorted({i for i, gap in map(nearest, record["keyframes"]) if gap <= MATCH_WITHIN_S})
        return {
            **record,
            "start_frame": nearest(start)[0],
            "end_frame": nearest(record["end_frame"])[0],
            "confirmed_frame": nearest(record["confirmed_frame"])[0],
            "keyframes": keyframes,
            "clip_span": [indices[0], indices[-1]],
            "bbox": scaled(record["bbox"]),
            "boxes": [{**b, "frame": nearest(b["frame"])[0], "xyxy": scaled(b["xyxy"])} for b in record["boxes"]],
            "detect_stream": {"width": dw, "height": dh},
        }


class CameraWorker:
    """A group of cameras in one process, with its staging and dispatch threads."""

    def __init__(
        self,
        cameras: Sequence[CameraConfig],
        slot: ModelSlot,
        staging: StagingArea,
        dispatch: Callable[[str], None],
        *,
        name: str = "camera-worker",
        ring_s: float = 20.0,
        replay_loop: bool = True,
        health_dir: Path | None = None,
        health_interval_s: float = 2.0,
        on_violation: Callable[[Violation, Frame], None] | None = None,
        sources: dict[str, LiveSource] | None = None,
        shadow_model: Path | None = None,
        shadow_reports: Path | None = None,
    ) -> None:
        self.name = name
        self.slot = slot
        self.shadow_model, self.shadow_reports = shadow_model, shadow_reports
        self._shadow_stamp: tuple[int, int, int] | None = None
        self._shadow_sha = ""
        self.staging = staging
        self._dispatch = dispatch
        self.health_dir = health_dir
        self.health_interval_s = health_interval_s
        self.runners = [
            CameraRunner(
                camera,
                slot,
                self._enqueue_stage,
                worker_name=name,
                ring_s=ring_s,
                source=(sources or {}).get(camera.id),
                replay_loop=replay_loop,
                on_violation=on_violation,
                health_interval_s=health_interval_s,
            )
            for camera in cameras
        ]
        self._to_stage: queue.Queue[tuple[CameraConfig, dict[str, Any], dict[int, Frame], float] | None] = queue.Queue()
        self._to_send: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self._next_snapshot = 0.0
        self._threads = [
            threading.Thread(target=self._stager, name="stager", daemon=True),
            threading.Thread(target=self._sender, name="dispatch", daemon=True),
            threading.Thread(target=self._housekeeping, name="health", daemon=True),
        ]
        self.sent: deque[str] = deque(maxlen=1000)  # the latest ids sent, for health and tests

    def start(self) -> None:
        self.sweep(older_than_s=0.0)  # what an earlier run staged but did not get filed
        for thread in self._threads:
            thread.start()
        for runner in self.runners:
            runner.start()
        logger.info("%s watching %s", self.name, ", ".join(r.camera.id for r in self.runners))

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the cameras, then stage and send every violation they closed; nothing is dropped."""
        for runner in self.runners:
            runner.stop()
        for runner in self.runners:
            runner.join(timeout)
        self._to_stage.put(None)
        self._threads[0].join(timeout)
        self._to_send.put(None)
        self._threads[1].join(timeout)
        self._stop.set()
        self._threads[2].join(timeout)
        self.write_health()

    def _enqueue_stage(
        self, camera: CameraConfig, record: dict[str, Any], frames: dict[int, Frame], fps: float
    ) -> None:
        self._to_stage.put((camera, record, frames, fps))

    def _stager(self) -> None:
        while (job := self._to_stage.get()) is not None:
            camera, record, frames, fps = job
            images = {i: f.image for i, f in frames.items()}
            times = {i: f.captured_at for i, f in frames.items()}
            try:
                finding, files = violation_package(images, record, camera, fps, frames_clock(frames), times=times)
                item_id = self.staging.stage(finding, files)
            except Exception:  # staging must go on for the next violation; this one is in the log
                logger.exception("camera %s: cannot stage the violation at %s", camera.id, record["started_at"])
                continue
            self._to_send.put(item_id)

    def _sender(self) -> None:
        while (item_id := self._to_send.get()) is not None:
            try:
                self.staging.mark_sent(item_id)
                self._dispatch(item_id)
                self.sent.append(item_id)
            except Exception as e:  # the broker is down: the item stays pending and the sweep sends it
                logger.error("cannot send staged item %s to the task queue (%s); it stays pending", item_id[:12], e)

    def _housekeeping(self) -> None:
        next_sweep = time.monotonic() + SWEEP_EVERY_S
        while not self._stop.wait(self.health_interval_s):
            try:
                self.slot.check()
                self.check_shadow()
                self.write_health()
                if time.monotonic() >= next_sweep:
                    self.sweep()
                    next_sweep = time.monotonic() + SWEEP_EVERY_S
            except Exception:  # health and sweeps go on; the cause is in the log
                logger.exception("%s: housekeeping failed", self.name)

    def check_shadow(self) -> None:
        """Start, change or end the shadow run as the candidate file appears, changes or goes;
        write each camera's shadow report."""
        if self.shadow_model is None:
            return
        try:
            st = os.stat(self.shadow_model)
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        if stamp != self._shadow_stamp:
            self._shadow_stamp = stamp
            self._write_shadow_reports()  # what the ending run saw, before it is replaced
            candidate = None
            if stamp is not None:
                try:
                    candidate = self.slot.load_candidate(self.shadow_model)
                except Exception as e:  # a broken candidate is refused; the cameras go on
                    logger.error("shadow model %s is refused (%s)", self.shadow_model, e)
            for runner in self.runners:
                runner.shadow = ShadowRun(runner.camera, candidate) if candidate is not None else None
            self._shadow_sha = candidate.info.sha256 if candidate is not None else ""
            logger.info("shadow run %s", f"of {self._shadow_sha[:12]} started" if candidate else "ended")
        self._write_shadow_reports()

    def _write_shadow_reports(self) -> None:
        if self.shadow_reports is None:
            return
        for runner in self.runners:
            shadow = runner.shadow
            if shadow is not None:
                write_report(self.shadow_reports, shadow.report(self._shadow_sha))

    def sweep(self, older_than_s: float = SWEEP_EVERY_S) -> int:
        """Send again this worker's staged items not sent for `older_than_s` and still pending
        (their message was lost: the broker was down, or died with it); filing is idempotent,
        so one that was merely slow is harmless."""
        cameras = {r.camera.id for r in self.runners}
        pending = self.staging.pending(older_than_s, cameras=cameras)
        for item_id in pending:
            self._to_send.put(item_id)
        if pending:
            logger.info("%s: sending %d pending staged item(s) again", self.name, len(pending))
        return len(pending)

    def health(self) -> list[CameraHealth]:
        return [runner.health() for runner in self.runners]

    def write_health(self) -> None:
        """Each camera's health report, and every `SNAPSHOT_EVERY_S` its latest frame as a JPEG
        (in the zones' pixels), where the API serves them."""
        if self.health_dir is None:
            return
        self.health_dir.mkdir(parents=True, exist_ok=True)
        for report in self.health():
            _replace(self.health_dir / f"{report.camera_id}.json", report.model_dump_json().encode())
        if time.monotonic() < self._next_snapshot:
            return
        self._next_snapshot = time.monotonic() + SNAPSHOT_EVERY_S
        for runner in self.runners:
            image = runner.last_image
            if image is not None:
                ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
                if ok:
                    _replace(self.health_dir / f"{runner.camera.id}.jpg", jpeg.tobytes())


def _replace(path: Path, data: bytes) -> None:
    """Write a report that readers see whole or not at all (no fsync: the next one replaces it)."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def frames_clock(frames: dict[int, Frame]) -> str:
    """The clock source the frames' times came from (the first frame's; a camera has one)."""
    return next(iter(frames.values())).clock_source.value if frames else "system"


def read_health(health_dir: Path) -> list[CameraHealth]:
    """Every camera's last health report in `health_dir`; unreadable reports are skipped.

    A report its worker has not renewed for three of its intervals (the worker died, or its
    machine did) reads as state `stale`, whatever it last said.
    """
    reports = []
    now = datetime.now(UTC)
    for path in sorted(health_dir.glob("*.json")) if health_dir.is_dir() else []:
        try:
            report = CameraHealth.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            logger.warning("skipping health report %s: %s", path, e)
            continue
        age = (now - report.updated_at).total_seconds()
        if report.state != "stopped" and age > 3 * report.interval_s + 1.0:
            report = report.model_copy(update={"state": "stale"})
        reports.append(report)
    return reports

"""Camera streams per box: how many 640×360 streams one machine keeps up with, and how fast cases follow.

Each run starts camera workers (`pipelines.worker.CameraWorker`, spawned processes) on N
rendered street videos replayed as live 10 fps streams (`LiveSource`, replay_loop), the
engine looking at 5 fps with the motion gate on and the starter model (YOLOv8n, ONNX
Runtime, intra-op 1 as `ModelSlot` loads it; dynamic input, run at `--imgsz`), while one
task worker (`nonsite worker tasks`, the embedded file broker) seals and files what they
stage. After a warm-up, every camera process measures the same window. Per N and mode:

- decode and detect rate per stream (frames that reached the camera thread, frames the
  engine looked at), the share of frames the source dropped because the camera thread was
  late, the gated share, and the lag at the end of each engine step (now minus the
  frame's arrival time), median and p99;
- CPU: the camera processes' cores, the task worker's, the rest of the machine's (other
  users of a shared machine), and per kind of thread: decode in the `LiveSource`
  threads, camera threads (engine, tamper checks), the stager thread, and native threads
  (what the process used beyond its Python threads: mostly libx264's encoder threads,
  started for each evidence clip);
- where an engine step's time goes: the detector's CPU, the rest of the engine's CPU,
  waiting for a core (the thread's run-queue time from /proc) and the rest, which is
  waiting for the GIL.

"Sustains": every stream decodes at >= 95% of 10 fps and is looked at >= 95% of 5 fps,
at most 1% of frames are dropped, and the p99 lag is under 1 s. The modes, side by side
for each N: one process with the gate (the product), two processes with the gate
(cameras dealt round-robin), and one process with the detector on every engine frame
(the baseline). A mode that failed at two N in a row is not run at larger N; a run during
which other processes used more than 0.1 core runs again once the machine is quiet.
End-to-end latency runs from the frame that confirms a violation (`on_violation` with
the open violation: that frame's arrival time) to the row that puts its sealed package on
a case (`CaseEvidence.added_at`). A last run profiles one camera process with py-spy
(every thread on a CPU, and the thread holding the GIL).

    .venv/bin/python benchmarks/bench_streams.py                     # about 11 minutes
    .venv/bin/python benchmarks/bench_streams.py --imgsz 640 --counts 4,6,8 --out var/bench/streams-640.json
    .venv/bin/python benchmarks/bench_streams.py --counts 4,8 --seconds 15 --no-profile   # a smoke run

Footage is rendered once into var/bench/streams-footage/; the state of the runs (database,
vault, staging, broker) is made afresh in var/bench/streams-state/; results go to
var/bench/streams.json.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import multiprocessing as mp
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from datasets.synthetic import ActorKind, ActorSpec, DistractorKind, SceneSpec, SyntheticScene, write_video
from nonsite.analyze import synthetic_camera
from nonsite.starter import starter_model_path
from pipelines.settings import Runtime
from vision.camera import CameraConfig
from vision.detectors import Detector
from vision.detectors.base import ModelInfo
from vision.preprocess import LetterboxGeometry
from vision.types import Detections

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "var" / "bench"
FOOTAGE = BENCH / "streams-footage"
STATE = BENCH / "streams-state"
WIDTH, HEIGHT = 640, 360
DECODE_FPS, DETECT_FPS = 10.0, 5.0
#: the zone each camera watches: the sidewalk and the road (a no_occupation rule)
ZONE = "street"
#: what "sustains" means
RATE_SHARE, MAX_DROPPED, MAX_LAG_P99_S = 0.95, 0.01, 1.0
#: other processes on the machine using more cores than this during a run disturb it: it runs again
DISTURBED_CORES = 0.1
SCENE_KINDS = ("stall", "quiet_street", "goods", "night_street")


# --- footage ---------------------------------------------------------------------------


def scene_spec(i: int, seconds: float, fps: float) -> SceneSpec:
    """Stream i's street, one of four kinds in turn, each a fixed view where little moves.

    stall: a vendor stall is set up on the sidewalk and stays; one person walks by.
    quiet_street: one person walks by (sometimes outside the clip); clouds drift.
    goods: an umbrella and goods are put out on the sidewalk and stay; nobody passes.
    night_street: dark, lit windows and street lamps; one person (sometimes outside the clip).
    All have sensor noise. Stalls and goods appear at a time that moves with i, so streams
    do not confirm violations in step; each replay of the clip sets them up again.
    """
    appear = round(2.0 + (i * 5.3) % (0.6 * seconds), 1)
    person = ActorSpec(kind=ActorKind.PERSON)
    noise = DistractorKind.NOISE
    kind = SCENE_KINDS[i % len(SCENE_KINDS)]
    actors: tuple[ActorSpec, ...]
    distractors: tuple[DistractorKind, ...]
    if kind == "stall":
        actors, distractors = (ActorSpec(kind=ActorKind.STALL, appear_s=appear), person), (noise,)
    elif kind == "quiet_street":
        actors, distractors = (person,), (DistractorKind.CLOUDS, noise)
    elif kind == "goods":
        actors = (ActorSpec(kind=ActorKind.UMBRELLA, appear_s=appear), ActorSpec(kind=ActorKind.GOODS, appear_s=appear))
        distractors = (noise,)
    else:
        actors, distractors = (person,), (DistractorKind.NIGHT, noise)
    return SceneSpec(
        name=kind,
        width=WIDTH,
        height=HEIGHT,
        fps=fps,
        duration_s=seconds,
        seed=1000 + i,
        actors=actors,
        distractors=distractors,
    )


def stream_cameras(count: int, seconds: float, fps: float) -> list[CameraConfig]:
    """The cameras of `count` streams, rendering their footage when it is not cached."""
    FOOTAGE.mkdir(parents=True, exist_ok=True)
    cameras = []
    for i in range(count):
        spec = scene_spec(i, seconds, fps)
        video = FOOTAGE / f"{i:02d}-{spec.name}-seed{spec.seed}-{fps:g}fps-{seconds:g}s.mp4"
        if video.is_file():
            truth = SyntheticScene(spec).scene_truth()
        else:
            print(f"rendering {video.relative_to(ROOT)}", flush=True)
            truth = write_video(spec, video)
        camera = synthetic_camera(f"stream-{i:02d}", truth, str(video))
        update = {
            "name": f"{spec.name} {i:02d}",
            "fps": DECODE_FPS,
            "detect_fps": DETECT_FPS,
            "zones": tuple(z for z in camera.zones if z.name == ZONE),
        }
        cameras.append(camera.model_copy(update=update))
    return cameras


# --- inside a camera process -------------------------------------------------------------


class TimedDetector(Detector):
    """The model, timing each call on the calling thread: wall time and that thread's CPU time."""

    def __init__(self, inner: Detector) -> None:
        self.inner = inner
        self.info: ModelInfo = inner.info
        self.calls = threading.local()

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return self.inner.detect(images)
        finally:
            self.calls.wall = getattr(self.calls, "wall", 0.0) + time.perf_counter() - wall
            self.calls.cpu = getattr(self.calls, "cpu", 0.0) + time.thread_time() - cpu


def _schedstat(path: str = "/proc/thread-self/schedstat") -> tuple[float, float]:
    """This thread's time on a CPU and waiting on a run queue for one, in seconds."""
    on_cpu, waiting, _ = open(path).read().split()  # noqa: SIM115 - the cheapest read, 60+ times a second
    return int(on_cpu) / 1e9, int(waiting) / 1e9


def _thread_kind(name: str | None) -> str:
    if name is None:
        return "native"  # threads no Python code started: codecs' own threads, OpenCV's and numba's pools
    for prefix, kind in (("live-source-", "decode"), ("camera-", "camera"), ("stager", "evidence")):
        if name.startswith(prefix):
            return kind
    return "other"


def thread_times() -> dict[str, list[float]]:
    """CPU seconds and run-queue seconds of this process's threads so far, by kind of thread."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for task in Path("/proc/self/task").iterdir():
        try:
            on_cpu, waiting = _schedstat(str(task / "schedstat"))
        except (OSError, ValueError):
            continue  # the thread ended meanwhile
        kind = totals[_thread_kind(names.get(int(task.name)))]
        kind[0] += on_cpu
        kind[1] += waiting
    return dict(totals)


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _counters(worker: Any) -> list[dict[str, Any]]:
    out = []
    for runner in worker.runners:
        stats = runner.source.stats
        out.append(
            {
                "camera": runner.camera.id,
                "produced": stats.frames,
                "delivered": stats.delivered,
                "dropped": stats.dropped,
                "engine_frames": runner.engine.stats.frames,
                "inferred": runner.engine.stats.inferred,
            }
        )
    return out


def camera_process(job: dict[str, Any], barrier: Any, results: Any) -> None:
    """One camera worker on `job["cameras"]`: start, warm up, measure the shared window, stop."""
    logging.basicConfig(level=logging.ERROR, format=f"{job['name']} %(levelname)s %(name)s: %(message)s")
    from pipelines import tasks
    from pipelines.staging import StagingArea
    from pipelines.worker import CameraWorker, ModelSlot
    from vision.engine import Engine
    from vision.types import Frame, Violation

    runtime = Runtime.model_validate_json(job["runtime"])
    tasks.configure(runtime)
    staging = StagingArea(runtime.staging_dir)
    # the model as a worker loads it (intra-op 1, no spinning), at this input size, timed on each call
    slot = ModelSlot(starter_model_path(), imgsz=job["imgsz"])
    detector = TimedDetector(slot.detector)
    slot.detector = detector
    measuring = threading.Event()
    steps: list[tuple[float, ...]] = []
    opened: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []

    def on_violation(violation: Violation, frame: Frame) -> None:
        if not violation.closed:
            key = [violation.source_id, violation.zone, violation.started_at.isoformat(), list(violation.track_ids)]
            opened.append({"key": key, "frame_at": frame.captured_at.timestamp()})

    def dispatch(item_id: str) -> None:
        violation = staging.load(item_id).finding["violation"]
        key = [violation["source"], violation["zone"], violation["started_at"], violation["track_ids"]]
        sent.append({"item": item_id, "key": key, "closed": violation["closed"], "sent_at": time.time()})
        tasks.seal_and_file.delay(item_id)

    cameras = [CameraConfig.model_validate_json(c) for c in job["cameras"]]
    worker = CameraWorker(cameras, slot, staging, dispatch, name=job["name"], on_violation=on_violation)
    for runner in worker.runners:
        if not job["gate"]:
            runner.engine = Engine(runner.camera, detector, fps=runner.camera.fps, motion_gate=False)
        process = runner.engine.process

        def timed(frame: Frame, process: Any = process) -> Any:
            calls = detector.calls
            calls.wall = calls.cpu = 0.0
            cpu0, (_, waited0), wall0 = time.thread_time(), _schedstat(), time.perf_counter()
            result = process(frame)
            wall, cpu, (_, waited) = time.perf_counter() - wall0, time.thread_time() - cpu0, _schedstat()
            if measuring.is_set():
                lag = time.time() - frame.captured_at.timestamp()
                steps.append((lag, wall, cpu, waited - waited0, calls.wall, calls.cpu, float(result.inferred)))
            return result

        runner.engine.process = timed  # type: ignore[method-assign]

    worker.start()
    time.sleep(job["warmup_s"])
    barrier.wait(timeout=300)
    before = (_counters(worker), thread_times(), _process_cpu(), time.perf_counter())
    measuring.set()
    time.sleep(job["seconds"])
    measuring.clear()
    after = (_counters(worker), thread_times(), _process_cpu(), time.perf_counter())
    worker.stop()
    zero = [0.0, 0.0]
    threads = {
        kind: [b - a for a, b in zip(before[1].get(kind, zero), end, strict=True)] for kind, end in after[1].items()
    }
    results.put(
        {
            "name": job["name"],
            "pid": os.getpid(),
            "window_s": after[3] - before[3],
            "cpu_s": after[2] - before[2],
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": threads,
            "start": before[0],
            "end": after[0],
            "steps": steps,
            "opened": opened,
            "sent": sent,
        }
    )


# --- the orchestrating process -----------------------------------------------------------


def _machine_ticks() -> tuple[int, int, int]:
    """(busy, total, steal) jiffies of the whole machine."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields), fields[7] if len(fields) > 7 else 0


def _pid_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: Sequence[float] | np.ndarray, q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if len(values) else float("nan")


class Bench:
    """The runs of one invocation: the footage, the task worker, and what each run measured."""

    def __init__(self, args: argparse.Namespace, cameras: list[CameraConfig], runtime: Runtime) -> None:
        self.args = args
        self.cameras = cameras
        self.runtime = runtime
        self.runs: list[dict[str, Any]] = []
        self.tasks: subprocess.Popen[bytes] | None = None
        self.task_exits: list[dict[str, Any]] = []
        self._exited_tasks_cpu = 0.0

    def start_tasks(self) -> None:
        log = (STATE / "tasks.log").open("ab")
        env = {**os.environ, **self.runtime.to_env()}
        argv = [sys.executable, "-m", "nonsite.cli", "worker", "tasks", "--name", "bench-tasks"]
        self.tasks = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)

    def keep_tasks(self) -> None:
        """Start the task worker again if it exited, as `nonsite run` does."""
        if self.tasks is None:
            return
        pid, status, usage = os.wait4(self.tasks.pid, os.WNOHANG)
        if pid == 0:
            return
        self.tasks.returncode = os.waitstatus_to_exitcode(status)
        self._exited_tasks_cpu += usage.ru_utime + usage.ru_stime
        self.task_exits.append({"at": time.time(), "status": self.tasks.returncode, "run": len(self.runs)})
        print(
            f"|    | the task worker exited with status {self.tasks.returncode} (see {STATE / 'tasks.log'}); "
            "starting it again |",
            flush=True,
        )
        self.start_tasks()

    def tasks_cpu(self) -> float:
        """CPU seconds of the task workers so far, those that exited included."""
        if self.tasks is None:
            return 0.0
        try:
            return self._exited_tasks_cpu + _pid_cpu(self.tasks.pid)
        except OSError:
            return self._exited_tasks_cpu  # it just exited; `keep_tasks` will count it

    def stop_tasks(self) -> None:
        if self.tasks is not None and self.tasks.poll() is None:
            self.tasks.send_signal(signal.SIGTERM)
            try:
                self.tasks.wait(60)
            except subprocess.TimeoutExpired:
                self.tasks.kill()
                self.tasks.wait()

    def wait_quiet(self) -> float:
        """Wait (at most `--quiet-wait` s) until other processes leave the cores alone; returns their cores."""
        deadline = time.monotonic() + self.args.quiet_wait
        while True:
            busy0, total0, _ = _machine_ticks()
            ours0 = self.tasks_cpu()
            time.sleep(2.0)
            busy1, total1, _ = _machine_ticks()
            ours1 = self.tasks_cpu()
            cores = (os.cpu_count() or 1) * (busy1 - busy0) / max(1, total1 - total0) - (ours1 - ours0) / 2.0
            if cores <= DISTURBED_CORES / 2 or time.monotonic() >= deadline:
                return max(0.0, cores)

    def run(self, count: int, processes: int, gate: bool, *, profile: Path | None = None) -> dict[str, Any]:
        """One run: `count` streams over `processes` camera processes; returns its summary.

        A run that other processes disturbed (they used more than `DISTURBED_CORES`) runs
        again, up to `--retries` times, once the machine is quiet.
        """
        retries = 0 if profile is not None else self.args.retries  # py-spy itself is another process
        for attempt in range(retries + 1):
            others = self.wait_quiet()
            run = self._run_once(count, processes, gate, profile=profile)
            run["others_before_s"] = others
            run["disturbed"] = run["others_cores"] > DISTURBED_CORES
            if not run["disturbed"]:
                break
            if attempt < retries:
                print(
                    f"|    | other processes used {run['others_cores']:.2f} cores during {count} streams, "
                    f"{_mode(run)}: running it again |",
                    flush=True,
                )
                self.runs[-1]["superseded"] = True
        return run

    def _run_once(self, count: int, processes: int, gate: bool, *, profile: Path | None) -> dict[str, Any]:
        from nonsite.run import camera_groups

        cameras = self.cameras[:count]
        by_id = {c.id: c for c in cameras}
        groups = camera_groups(tuple(cameras), processes)
        ctx = mp.get_context("spawn")
        barrier = ctx.Barrier(len(groups) + 1)
        results = ctx.Queue()
        jobs = [
            {
                "name": f"cameras-{k}",
                "runtime": self.runtime.model_dump_json(),
                "cameras": [by_id[i].model_dump_json() for i in group],
                "gate": gate,
                "imgsz": self.args.imgsz,
                "warmup_s": self.args.warmup,
                "seconds": self.args.seconds,
            }
            for k, group in enumerate(groups)
        ]
        children = [ctx.Process(target=camera_process, args=(job, barrier, results), daemon=True) for job in jobs]
        for child in children:
            child.start()
        try:
            barrier.wait(timeout=300)
        except threading.BrokenBarrierError:
            for child in children:
                child.terminate()
            raise RuntimeError("a camera process did not reach the measuring window; see its errors above") from None
        machine0, tasks0, exits0 = _machine_ticks(), self.tasks_cpu(), len(self.task_exits)
        spies = self._spy(children[0].pid, profile) if profile is not None else []
        deadline = time.monotonic() + self.args.seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(1.0, left))
            self.keep_tasks()
        machine1, tasks1 = _machine_ticks(), self.tasks_cpu()
        outs = [results.get(timeout=self.args.seconds + 180) for _ in children]
        for child in children:
            child.join(60)
        spies_cpu = 0.0
        for spy in spies:
            _, _, usage = os.wait4(spy.pid, 0)
            spies_cpu += usage.ru_utime + usage.ru_stime
        summary = summarize(outs, count=count, processes=processes, gate=gate)
        busy, total, steal = (b - a for a, b in zip(machine0, machine1, strict=True))
        summary["machine_cpu"] = busy / total if total else float("nan")
        summary["machine_steal"] = steal / total if total else float("nan")
        summary["task_worker_cores"] = (tasks1 - tasks0) / self.args.seconds
        summary["task_worker_exits"] = len(self.task_exits) - exits0
        # what the rest of the machine used meanwhile: other users' processes disturb a run
        machine_cores = summary["machine_cpu"] * (os.cpu_count() or 1)
        summary["py_spy_cores"] = spies_cpu / self.args.seconds
        ours = summary["camera_cores"] + summary["task_worker_cores"] + summary["py_spy_cores"]
        summary["others_cores"] = max(0.0, machine_cores - ours)
        if profile is not None:
            summary["profile"] = read_profile(profile, self.args.seconds, self.args.spy_rate)
        summary["raw"] = outs
        self.runs.append(summary)
        return summary

    def _spy(self, pid: int | None, out: Path) -> list[subprocess.Popen[bytes]]:
        spy = Path(sys.executable).with_name("py-spy")
        if pid is None or not spy.is_file():
            print("py-spy is not installed (.venv/bin/pip install py-spy); no profile", flush=True)
            return []
        common = ["record", "--pid", str(pid), "--duration", str(round(self.args.seconds))]
        common += ["--rate", str(self.args.spy_rate), "--format", "raw", "--nonblocking"]
        return [
            subprocess.Popen(
                [str(spy), *common, "--output", str(out.with_suffix(f".{kind}.txt")), *extra],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for kind, extra in (("all", []), ("gil", ["--gil"]))
        ]

    def drain(self, timeout: float) -> int:
        """Wait until the task worker filed everything staged; returns how many are still pending.

        Items whose message was lost (a task worker that exited) are sent again after 30 s,
        as a camera worker's sweep does every minute.
        """
        from pipelines import tasks
        from pipelines.staging import StagingArea

        tasks.configure(self.runtime)
        staging = StagingArea(self.runtime.staging_dir)
        deadline = time.monotonic() + timeout
        next_sweep = time.monotonic() + 30.0
        while staging.pending() and time.monotonic() < deadline:
            time.sleep(0.5)
            self.keep_tasks()
            if time.monotonic() >= next_sweep:
                for item_id in staging.pending(30.0):
                    staging.mark_sent(item_id)
                    tasks.seal_and_file.delay(item_id)
                next_sweep = time.monotonic() + 30.0
        return len(staging.pending())


def summarize(outs: list[dict[str, Any]], *, count: int, processes: int, gate: bool) -> dict[str, Any]:
    """One run's figures from what its camera processes measured."""
    streams = []
    for out in outs:
        for a, b in zip(out["start"], out["end"], strict=True):
            d = {k: b[k] - a[k] for k in ("produced", "delivered", "dropped", "engine_frames", "inferred")}
            streams.append({"camera": a["camera"], "window_s": out["window_s"], **d})
    decode = [s["delivered"] / s["window_s"] for s in streams]
    detect = [s["engine_frames"] / s["window_s"] for s in streams]
    offered = sum(s["delivered"] + s["dropped"] for s in streams)
    dropped = sum(s["dropped"] for s in streams) / offered if offered else float("nan")
    frames = sum(s["engine_frames"] for s in streams)
    gated = 1.0 - sum(s["inferred"] for s in streams) / frames if frames else float("nan")
    steps = np.asarray([step for out in outs for step in out["steps"]], dtype=np.float64).reshape(-1, 7)
    lag, wall, cpu, queued, det_wall, det_cpu, inferred = steps.T
    window = float(np.mean([out["window_s"] for out in outs]))
    threads: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for out in outs:
        for kind, (on_cpu, waiting) in out["threads"].items():
            threads[kind][0] += on_cpu / window
            threads[kind][1] += waiting / window
    # native threads that come and go between the two snapshots (libx264 starts its own for every
    # evidence clip it encodes) are missed by them: whatever the process used beyond the threads seen goes there
    camera_cores = sum(out["cpu_s"] for out in outs) / window
    seen = sum(v[0] for kind, v in threads.items() if kind != "native")
    threads["native"][0] = max(threads["native"][0], camera_cores - seen)
    inferred_mask = inferred > 0
    sustained = (
        min(decode) >= RATE_SHARE * DECODE_FPS
        and min(detect) >= RATE_SHARE * DETECT_FPS
        and dropped <= MAX_DROPPED
        and _pct(lag, 99) < MAX_LAG_P99_S
    )
    return {
        "streams": count,
        "processes": processes,
        "gate": gate,
        "sustained": bool(sustained),
        "window_s": window,
        "decode_fps_min": min(decode),
        "decode_fps_median": float(np.median(decode)),
        "detect_fps_min": min(detect),
        "detect_fps_median": float(np.median(detect)),
        "inferences_per_s": float(inferred.sum() / window),
        "dropped": dropped,
        "gated": gated,
        "lag_median_s": _pct(lag, 50),
        "lag_p99_s": _pct(lag, 99),
        "camera_cores": camera_cores,
        "camera_rss_mb": sum(out["max_rss_mb"] for out in outs),
        "thread_cores": {kind: round(v[0], 3) for kind, v in sorted(threads.items())},
        "thread_runqueue": {kind: round(v[1], 3) for kind, v in sorted(threads.items())},
        "step_ms": {
            "wall": 1e3 * float(np.mean(wall)),
            "detect_wall_inferred": 1e3 * float(np.mean(det_wall[inferred_mask])) if inferred_mask.any() else 0.0,
            "detect_cpu_inferred": 1e3 * float(np.mean(det_cpu[inferred_mask])) if inferred_mask.any() else 0.0,
            "detect_cpu": 1e3 * float(np.mean(det_cpu)),
            "engine_cpu": 1e3 * float(np.mean(cpu - det_cpu)),
            "core_wait": 1e3 * float(np.mean(queued)),
            "gil_wait": 1e3 * float(np.mean(np.maximum(0.0, wall - cpu - queued))),
        },
        "per_stream": streams,
    }


#: py-spy frames are put in the first kind whose pattern their file matches, leaf first
PROFILE_KINDS = (
    ("inference (ONNX Runtime)", ("onnxruntime",)),
    ("letterbox", ("vision/preprocess.py",)),
    ("postprocess (decode, NMS)", ("vision/postprocess.py",)),
    ("motion gate", ("vision/motion.py",)),
    ("tracker", ("vision/tracking.py",)),
    ("rules and zones", ("vision/rules.py", "vision/zones.py")),
    ("tamper checks", ("vision/tamper.py",)),
    ("evidence encode (stager)", ("pipelines/sealing.py", "pipelines/staging.py", "evidence/")),
    ("decode and frame hand-over (LiveSource)", ("pipelines/sources.py", "pipelines/streams.py")),
    ("task queue (dispatch)", ("celery/", "kombu/")),
    ("engine, detector and worker glue", ("vision/", "pipelines/", "bench_streams.py")),
)


def _profile_kind(stack: list[str]) -> str:
    for frame in reversed(stack):
        for kind, patterns in PROFILE_KINDS:
            if any(p in frame for p in patterns):
                return kind
    return "other (threading, queues, logging)"


def read_profile(prefix: Path, seconds: float, rate: int) -> dict[str, Any]:
    """py-spy's samples by kind of work: all threads on a CPU, and the thread holding the GIL."""
    profile: dict[str, Any] = {"ticks": seconds * rate}
    for name in ("all", "gil"):
        path = prefix.with_suffix(f".{name}.txt")
        kinds: dict[str, int] = defaultdict(int)
        if path.is_file():
            for line in path.read_text().splitlines():
                stack, _, n = line.rpartition(" ")
                if stack:
                    kinds[_profile_kind(stack.split(";")[1:])] += int(n)
        profile[name] = dict(sorted(kinds.items(), key=lambda kv: -kv[1]))
    return profile


def latencies(bench: Bench) -> dict[str, Any]:
    """From each confirming frame to its package's row on a case, over every run."""
    from sqlalchemy import select

    from cases.db import Database
    from cases.models import CaseEvidence
    from pipelines.staging import StagingArea

    staging = StagingArea(bench.runtime.staging_dir)
    db = Database(bench.runtime.database_url, migrate=False)
    try:
        with db.session() as s:
            added = {p: at.timestamp() for p, at in s.execute(select(CaseEvidence.package_id, CaseEvidence.added_at))}
    finally:
        db.close()
    samples = []
    for run in bench.runs:
        for out in run["raw"]:
            items = {json.dumps(s["key"]): s for s in out["sent"] if not s["closed"]}
            for violation in out["opened"]:
                sent = items.get(json.dumps(violation["key"]))
                done = staging.done(sent["item"]) if sent else None
                filed = added.get(done["package"]) if done and "package" in done else None
                samples.append(
                    {
                        "run": f"{run['streams']} streams, {run['processes']} process(es), gate {run['gate']}",
                        "sustained": run["sustained"],
                        "staged_s": sent["sent_at"] - violation["frame_at"] if sent else None,
                        "total_s": filed - violation["frame_at"] if filed else None,
                        "created_case": bool(done and done.get("created")),
                    }
                )

    def stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
        total = [r["total_s"] for r in rows if r["total_s"] is not None]
        staged = [r["staged_s"] for r in rows if r["staged_s"] is not None]
        return {
            "violations": len(rows),
            "filed": len(total),
            "median_s": _pct(total, 50),
            "p99_s": _pct(total, 99),
            "max_s": max(total, default=float("nan")),
            "staged_median_s": _pct(staged, 50),
            "staged_p99_s": _pct(staged, 99),
            "new_cases": sum(r["created_case"] for r in rows),
        }

    return {
        "all": stats(samples),
        "sustained_runs": stats([r for r in samples if r["sustained"]]),
        "samples": samples,
    }


# --- output ------------------------------------------------------------------------------


def _mode(run: dict[str, Any]) -> str:
    return f"{run['processes']} proc, {'gate' if run['gate'] else 'no gate'}"


def print_run(run: dict[str, Any]) -> None:
    step = run["step_ms"]
    print(
        f"| {run['streams']:>2} | {_mode(run):17} | {run['decode_fps_min']:5.2f} / {run['decode_fps_median']:5.2f} "
        f"| {run['detect_fps_min']:4.2f} / {run['detect_fps_median']:4.2f} | {run['dropped']:6.2%} "
        f"| {run['gated']:4.0%} | {run['inferences_per_s']:5.1f} "
        f"| {1e3 * run['lag_median_s']:5.0f} / {1e3 * run['lag_p99_s']:5.0f} "
        f"| {run['camera_cores']:4.2f} | {run['task_worker_cores']:4.2f} | {run['others_cores']:4.2f} "
        f"| {step['detect_cpu_inferred']:5.1f} | {step['engine_cpu']:4.1f} | {step['core_wait']:5.1f} "
        f"| {step['gil_wait']:5.1f} | {'yes' if run['sustained'] else 'no'} |",
        flush=True,
    )


HEADER = (
    "| N | mode | decode fps min / median | detect fps min / median | dropped | gated | inferences/s "
    "| lag ms median / p99 | camera processes, cores | task worker, cores | rest of the machine, cores "
    "| detector CPU ms per inference "
    "| rest of engine CPU ms per step | waiting for a core ms per step | waiting for the GIL ms per step "
    "| sustains |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="8,16,20,24", help="stream counts to run (default 8,16,20,24)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window of each run (default 30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds each run runs before it is measured")
    parser.add_argument("--scene-seconds", type=float, default=30.0, help="length of each rendered clip (30)")
    parser.add_argument(
        "--imgsz",
        type=int,
        default=320,
        help="side of the square the dynamic-size model fits frames into; 640x360 frames then run as "
        "imgsz x (360/640 of it, up to a multiple of 32): 320 -> 320x192, 640 -> 640x384 (default 320)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="leave out the runs without the motion gate")
    parser.add_argument("--no-two", action="store_true", help="leave out the runs with two camera processes")
    parser.add_argument(
        "--keep-going", action="store_true", help="run a mode at larger N after it failed twice in a row"
    )
    parser.add_argument("--no-profile", action="store_true", help="leave out the py-spy profile run")
    parser.add_argument(
        "--profile-streams",
        type=int,
        default=None,
        help="N of the profile run (default: the largest N one process sustained with the gate)",
    )
    parser.add_argument("--retries", type=int, default=1, help="reruns of a run other processes disturbed (1)")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="most seconds to wait before a run for other processes to leave the cores alone (default 60)",
    )
    parser.add_argument("--spy-rate", type=int, default=20, help="py-spy samples per second (default 20)")
    parser.add_argument("--out", type=Path, default=BENCH / "streams.json", help="where the JSON goes")
    args = parser.parse_args(argv)
    counts = sorted({int(c) for c in args.counts.split(",")})
    if args.imgsz < 32 or args.imgsz % 32:
        parser.error(f"--imgsz must be a positive multiple of the model's stride 32, but got {args.imgsz}")
    started = time.monotonic()
    for name in ("NONSITE_DATABASE_URL", "NONSITE_BROKER_URL", "NONSITE_RUNTIME"):
        os.environ.pop(name, None)  # the runs get their own database and broker, never a deployment's

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    versions = ", ".join(
        f"{p} {importlib.metadata.version(p)}"
        for p in ("numpy", "onnxruntime", "opencv-python-headless", "av", "celery")
    )
    print(f"camera streams benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine   {cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.machine()}")
    print(f"versions  Python {platform.python_version()}, {versions}")
    # the starter model is exported with a dynamic input size: frames are fitted into imgsz x imgsz and padded
    # only to the stride (rect), as `OnnxYoloDetector` does
    input_hw = LetterboxGeometry.letterbox((HEIGHT, WIDTH), (args.imgsz, args.imgsz), stride=32)
    print(
        f"model     {starter_model_path().name} at imgsz {args.imgsz}: {WIDTH}x{HEIGHT} frames run as "
        f"{input_hw.dst_w}x{input_hw.dst_h}; ONNX Runtime intra-op 1 per process"
    )
    print(
        f"streams   {WIDTH}x{HEIGHT} at {DECODE_FPS:g} fps, engine at {DETECT_FPS:g} fps; clips of "
        f"{args.scene_seconds:g} s, kinds in turn: {', '.join(SCENE_KINDS)}"
    )
    print(
        f"runs      {args.warmup:g} s warm-up, {args.seconds:g} s measured; sustains = decode >= "
        f"{RATE_SHARE * DECODE_FPS:g} fps and detect >= {RATE_SHARE * DETECT_FPS:g} fps on every stream, "
        f"dropped <= {MAX_DROPPED:.0%}, lag p99 < {MAX_LAG_P99_S:g} s\n",
        flush=True,
    )

    cameras = stream_cameras(max(counts), args.scene_seconds, DECODE_FPS)
    shutil.rmtree(STATE, ignore_errors=True)
    STATE.mkdir(parents=True)
    runtime = Runtime(var=STATE)
    from nonsite.run import RunConfig, prepare

    prepare(RunConfig(runtime=runtime, cameras=tuple(cameras)))
    bench = Bench(args, cameras, runtime)
    bench.start_tasks()
    modes = [(1, True)] + ([] if args.no_two else [(2, True)]) + ([] if args.no_baseline else [(1, False)])
    failures: dict[tuple[int, bool], int] = defaultdict(int)  # in a row
    print(HEADER, flush=True)
    try:
        for count in counts:
            for processes, gate in modes:
                if failures[(processes, gate)] >= 2 and not args.keep_going:
                    continue
                run = bench.run(count, processes, gate)
                print_run(run)
                failures[(processes, gate)] = 0 if run["sustained"] else failures[(processes, gate)] + 1
        best = {
            mode: max(
                (
                    r["streams"]
                    for r in bench.runs
                    if (r["processes"], r["gate"]) == mode and r["sustained"] and not r.get("superseded")
                ),
                default=0,
            )
            for mode in modes
        }
        profile = None
        if not args.no_profile:
            n = args.profile_streams or best[(1, True)] or counts[0]
            print(f"\nprofile run: {n} streams, one process, gate on, py-spy at {args.spy_rate} Hz", flush=True)
            run = bench.run(n, 1, True, profile=STATE / "profile")
            print_run(run)
            print(f"(py-spy used {run['py_spy_cores']:.2f} cores of the machine)")
            profile = run["profile"]
        pending = bench.drain(timeout=120.0)
    finally:
        bench.stop_tasks()
    lat = latencies(bench)

    print("\nmost streams sustained:")
    for (processes, gate), n in best.items():
        print(f"  {processes} process(es), gate {'on' if gate else 'off'}: {n or f'fewer than {counts[0]}'}")
    for name, figures in (("every run", lat["all"]), ("sustained runs", lat["sustained_runs"])):
        print(
            f"confirming frame -> case row ({name}): {figures['filed']} of {figures['violations']} violations filed, "
            f"median {figures['median_s']:.2f} s, p99 {figures['p99_s']:.2f} s, max {figures['max_s']:.2f} s; "
            f"staged and sent after median {figures['staged_median_s']:.2f} s (p99 {figures['staged_p99_s']:.2f} s); "
            f"{figures['new_cases']} opened a case, the rest joined one"
        )
    if pending:
        print(f"{pending} staged item(s) were still pending after the runs")
    if bench.task_exits:
        print(
            f"the task worker exited {len(bench.task_exits)} time(s) and was started again; see {STATE / 'tasks.log'}"
        )
    if profile:
        ticks = profile["ticks"]
        print(f"\nprofile ({ticks:.0f} sample ticks): share of on-CPU samples of all threads | GIL held, share of time")
        total = sum(profile["all"].values()) or 1
        for kind in dict.fromkeys([*profile["all"], *profile["gil"]]):
            gil = profile["gil"].get(kind, 0)
            print(f"  {kind:42} {profile['all'].get(kind, 0) / total:6.1%} | {gil / ticks:6.1%}")
        print(f"  {'GIL held, all kinds':42} {'':6} | {sum(profile['gil'].values()) / ticks:6.1%}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu, "logical_cpus": os.cpu_count(), "python": platform.python_version()},
        "versions": versions,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "input_hw": [input_hw.dst_h, input_hw.dst_w],
        "criteria": {"rate_share": RATE_SHARE, "max_dropped": MAX_DROPPED, "max_lag_p99_s": MAX_LAG_P99_S},
        "max_sustained": {f"{p}proc_{'gate' if g else 'nogate'}": n for (p, g), n in best.items()},
        "runs": [{k: v for k, v in run.items() if k != "raw"} for run in bench.runs],
        "latency": lat,
        "task_worker_exits": bench.task_exits,
        "wall_s": time.monotonic() - started,
    }
    args.out.write_text(json.dumps(document, indent=1, default=float), encoding="utf-8")
    print(
        f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}; "
        f"{(time.monotonic() - started) / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

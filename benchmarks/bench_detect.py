"""Detection-core benchmark (issue 2): nonsite against ultralytics on the same frames and model.

Issue 2 sets floors for the detection core on a CPU. Each is measured here side by side
with what a team would otherwise run, on the same 1920×1080 BGR frames and the same ONNX
model (a fresh-weight YOLOv8n built from ultralytics' bundled `yolov8n.yaml`, exported at
640 with a dynamic batch and cached under var/bench/):

1. Preprocessing a frame to the 640×640 input, on one thread: `letterbox_into` vs
   ultralytics' predict path (`LetterBox`, then what `BasePredictor.preprocess` does) vs
   `cv2.dnn.blobFromImage` (a stretch, not a letterbox: OpenCV's one-call floor).
   Floor: nonsite ≤ 1.0 ms median.
2. Decode + NMS on identical synthetic (1, 84, 8400) heads with 100, 1,000 and 8,400
   candidates above the threshold: `decode_yolo` + `finish` vs ultralytics'
   `non_max_suppression` + `scale_boxes` vs torchvision `batched_nms` behind a minimal torch
   decode; the kept sets are checked to agree. Floor: nonsite ≥ 3× faster than ultralytics.
3. A whole frame: the `onnx_yolo` detector vs `YOLO(onnx).predict`, their ONNX Runtime
   sessions built with the same thread settings, and `session.run` alone on the same input.
   Floor: nonsite's time outside `session.run` ≤ 5% of `session.run`.

Everything is timed with `time.perf_counter` after untimed warm-ups; medians and p90 are
shown. Parts 1 and 2 interleave the competitors call by call, in a rotating order, so that
drift and cache disturbance fall on all of them alike; part 2 also times each back to back
(caches hot), since its kernels are small enough for the difference to matter. Part 3 runs
one case at a time, because idle ONNX Runtime sessions' spinning workers would otherwise
steal the cores from the running one. Pre- and postprocessing run on one thread (numba,
torch and OpenCV pinned to one), as does part 3's everything but `session.run`.
Nothing reaches the network: the model is never fetched by name.

    .venv/bin/python benchmarks/bench_detect.py [--quick] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import importlib.metadata
import itertools
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    import torch

    from vision.preprocess import LetterboxGeometry
    from vision.types import Detections

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = REPO / "var" / "bench"
MODEL_YAML = "yolov8n.yaml"

SRC_HW = (1080, 1920)
INPUT = 640
CONF, IOU, MAX_DET = 0.25, 0.45, 300
NC = 80
STRIDES = (8, 16, 32)
CANDIDATE_COUNTS = (100, 1_000, 8_400)
#: COCO classes a street camera sees most (person, bicycle, car, motorcycle, bus, truck,
#: traffic light, backpack, umbrella, suitcase, chair, potted plant) and how often
STREET_CLASSES = np.array([0, 1, 2, 3, 5, 7, 9, 24, 25, 28, 56, 58])
STREET_WEIGHTS = np.array([30, 6, 25, 8, 3, 6, 4, 4, 3, 3, 4, 4], np.float64) / 100

PREPROCESS_FLOOR_MS = 1.0
POSTPROCESS_FLOOR_SPEEDUP = 3.0
OUTSIDE_RUN_FLOOR = 0.05


@dataclass(frozen=True, slots=True)
class Repetitions:
    """Untimed warm-up rounds and timed rounds for each part."""

    preprocess: tuple[int, int]
    postprocess: tuple[int, int]
    frame: tuple[int, int]


FULL = Repetitions(preprocess=(20, 500), postprocess=(20, 300), frame=(3, 100))
QUICK = Repetitions(preprocess=(5, 60), postprocess=(3, 30), frame=(2, 8))


# --- timing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timing:
    """Milliseconds per call of one case."""

    samples_ms: np.ndarray

    @property
    def median(self) -> float:
        return float(np.median(self.samples_ms))

    @property
    def p90(self) -> float:
        return float(np.percentile(self.samples_ms, 90))


def warm_up(cases: dict[str, Callable[[], object]], rounds: int) -> None:
    for _ in range(rounds):
        for run in cases.values():
            run()


def time_rounds(cases: dict[str, Callable[[], object]], reps: int) -> dict[str, Timing]:
    """Time each case `reps` times, one call of each case per round.

    The order rotates from round to round, so no case always runs just after the one that
    warmed (or flushed) the caches for it. The garbage collector is off while timing, as
    `timeit` does, so one case does not pay for another's garbage.
    """
    names = list(cases)
    samples = {name: np.empty(reps) for name in names}
    clock = time.perf_counter
    gc.collect()
    gc.disable()
    try:
        for i in range(reps):
            for j in range(len(names)):
                name = names[(i + j) % len(names)]
                run = cases[name]
                start = clock()
                run()
                samples[name][i] = (clock() - start) * 1e3
    finally:
        gc.enable()
    return {name: Timing(s) for name, s in samples.items()}


def time_interleaved(cases: dict[str, Callable[[], object]], *, warmup: int, reps: int) -> dict[str, Timing]:
    warm_up(cases, warmup)
    return time_rounds(cases, reps)


def time_back_to_back(cases: dict[str, Callable[[], object]], *, warmup: int, reps: int) -> dict[str, Timing]:
    """Time each case `reps` times in a row after its own warm-up: the steady state, caches hot."""
    timings: dict[str, Timing] = {}
    for name, run in cases.items():
        warm_up({name: run}, warmup)
        timings |= time_rounds({name: run}, reps)
    return timings


class TimedSession:
    """An ONNX Runtime session that remembers how long each `run` took and what it was fed."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.runs_ms: list[float] = []
        self.input_shape: tuple[int, ...] = ()

    def run(self, output_names: Any, feed: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        self.input_shape = tuple(next(iter(feed.values())).shape)
        start = time.perf_counter()
        out = self.session.run(output_names, feed, *args, **kwargs)
        self.runs_ms.append((time.perf_counter() - start) * 1e3)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)


# --- inputs ------------------------------------------------------------------------------


def synthetic_frames(count: int, seed: int = 0) -> list[np.ndarray]:
    """1080p BGR frames: smooth gradients, blocky "objects" and sensor noise (content does not change timings)."""
    rng = np.random.default_rng(seed)
    h, w = SRC_HW
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for _ in range(count):
        base = np.stack([xx / w * 200, yy / h * 180, (xx + yy) / (w + h) * 160], axis=-1)
        for _ in range(12):
            y0, x0 = int(rng.integers(0, h - 200)), int(rng.integers(0, w - 200))
            base[y0 : y0 + int(rng.integers(40, 200)), x0 : x0 + int(rng.integers(40, 200))] = rng.uniform(0, 255, 3)
        base += rng.normal(0, 6, base.shape)
        frames.append(np.clip(base, 0, 255).astype(np.uint8))
    return frames


def anchor_grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre x, centre y and stride of each anchor, in the order an ultralytics head lists them."""
    xs, ys, ss = [], [], []
    for s in STRIDES:
        g = INPUT // s
        gy, gx = np.mgrid[0:g, 0:g]
        xs.append((gx.ravel() + 0.5) * s)
        ys.append((gy.ravel() + 0.5) * s)
        ss.append(np.full(g * g, s, np.float64))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ss)


def _unique_scores(score: np.ndarray) -> np.ndarray:
    """Nudge equal scores apart by one ulp, so every implementation sorts candidates alike."""
    score = score.copy()
    while True:
        order = np.argsort(score, kind="stable")
        same = np.flatnonzero(np.diff(score[order]) == 0) + 1
        if same.size == 0:
            return score
        score[order[same]] = np.nextafter(score[order[same]], np.float32(np.inf))


def synthetic_head(n_candidates: int, geometry: LetterboxGeometry, *, seed: int) -> np.ndarray:
    """A plausible (1, 4 + NC, 8400) YOLOv8 head with exactly `n_candidates` anchors above CONF.

    Objects (one per 25 candidates, street classes) lie in the letterboxed picture. The
    candidates are the anchors nearest an object relative to its size, and each regresses a
    jittered copy of its object's box, looser farther from the centre, with a score that
    falls off with that distance: a cluster of overlapping boxes per object, as a trained
    head gives. Every other anchor regresses a small box at its own cell, with background
    class scores well below CONF.
    """
    rng = np.random.default_rng(seed)
    cx, cy, stride = anchor_grid()
    n = cx.size
    head = np.empty((4 + NC, n), np.float32)
    head[0] = cx + rng.normal(0, 0.3, n) * stride
    head[1] = cy + rng.normal(0, 0.3, n) * stride
    head[2] = stride * rng.lognormal(np.log(2.0), 0.4, n)
    head[3] = stride * rng.lognormal(np.log(2.0), 0.4, n)
    head[4:] = rng.uniform(0.0, 0.03, (NC, n))

    x0, y0 = geometry.left, geometry.top
    x1, y1 = x0 + geometry.new_w, y0 + geometry.new_h
    n_obj = max(1, round(n_candidates / 25))
    ow = np.clip(rng.lognormal(np.log(60), 0.6, n_obj), 12, 0.8 * (x1 - x0))
    oh = np.clip(ow * rng.lognormal(np.log(1.2), 0.5, n_obj), 12, 0.8 * (y1 - y0))
    ox = rng.uniform(x0 + ow / 2, x1 - ow / 2)
    oy = rng.uniform(y0 + oh / 2, y1 - oh / 2)
    ocls = rng.choice(STREET_CLASSES, n_obj, p=STREET_WEIGHTS)
    peak = rng.uniform(0.5, 0.95, n_obj)

    # distance of each anchor to each object's centre, in half-sizes of that object
    d = np.hypot((cx[:, None] - ox) / (ow / 2), (cy[:, None] - oy) / (oh / 2))
    owner = d.argmin(axis=1)
    dist = d[np.arange(n), owner]
    chosen = np.argsort(dist, kind="stable")[:n_candidates]
    o, dd, k = owner[chosen], dist[chosen], chosen.size
    spread = 0.04 + 0.06 * np.minimum(dd, 3.0)
    head[0, chosen] = ox[o] + rng.normal(0, 1, k) * spread * ow[o]
    head[1, chosen] = oy[o] + rng.normal(0, 1, k) * spread * oh[o]
    head[2, chosen] = ow[o] * np.exp(rng.normal(0, 1, k) * spread)
    head[3, chosen] = oh[o] * np.exp(rng.normal(0, 1, k) * spread)
    score = CONF + (peak[o] - CONF) * np.exp(-dd) * rng.uniform(0.7, 1.0, k)
    head[4 + ocls[o], chosen] = _unique_scores(np.maximum(score, CONF + 1e-3).astype(np.float32))
    # a confusable second class that stays below the threshold
    second = rng.choice(STREET_CLASSES, k, p=STREET_WEIGHTS)
    second_ok = second != ocls[o]
    head[4 + second[second_ok], chosen[second_ok]] = np.minimum(0.5 * score[second_ok], 0.2)

    got = int((head[4:].max(axis=0) > CONF).sum())
    if got != n_candidates:
        raise RuntimeError(f"synthetic head has {got} candidates above {CONF}, wanted {n_candidates}")
    return head[None]


# --- part 1: preprocessing -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreprocessResult:
    timings: dict[str, Timing]
    max_abs_diff: float


def bench_preprocess(frames: Sequence[np.ndarray], warmup: int, reps: int) -> PreprocessResult:
    import cv2
    import torch
    from ultralytics.data.augment import LetterBox

    from vision.preprocess import letterbox_into

    out = np.empty((3, INPUT, INPUT), np.float32)
    letterbox = LetterBox(INPUT, auto=False)
    device = torch.device("cpu")

    def ultralytics_preprocess(frame: np.ndarray) -> torch.Tensor:
        # BasePredictor.pre_transform, then BasePredictor.preprocess, which for a batch of one
        # adds the batch axis without the copy np.stack would make
        image = cast(np.ndarray, letterbox(image=frame))
        im = torch.from_numpy(image).unsqueeze(0)
        im = im.to(device)
        im = im.permute(0, 3, 1, 2).contiguous()
        im = im.flip(1)
        return im.float().div_(255)

    streams = {name: itertools.cycle(frames) for name in ("nonsite", "ultralytics", "opencv")}
    cases: dict[str, Callable[[], object]] = {
        "nonsite": lambda: letterbox_into(next(streams["nonsite"]), out),
        "ultralytics": lambda: ultralytics_preprocess(next(streams["ultralytics"])),
        "opencv": lambda: cv2.dnn.blobFromImage(next(streams["opencv"]), 1 / 255, (INPUT, INPUT), swapRB=True),
    }
    timings = time_interleaved(cases, warmup=warmup, reps=reps)

    letterbox_into(frames[0], out)
    reference = ultralytics_preprocess(frames[0])[0].numpy()
    return PreprocessResult(timings, float(np.abs(out - reference).max()))


# --- part 2: decode + NMS ------------------------------------------------------------------


def nonsite_postprocess(head: np.ndarray, geometry: LetterboxGeometry) -> Detections:
    """What `OnnxYoloDetector` does per image with a `(B, 4 + nc, N)` head."""
    from vision.postprocess import decode_yolo, finish

    xyxy, score, class_id = decode_yolo(head[0], CONF)
    return finish(xyxy, score, class_id, geometry, iou=IOU, max_det=MAX_DET)


def ultralytics_postprocess(head: torch.Tensor) -> torch.Tensor:
    """`DetectionPredictor.postprocess` for one image: NMS, then boxes back to the frame."""
    from ultralytics.utils import nms, ops

    det = nms.non_max_suppression(head, CONF, IOU, None, False, max_det=MAX_DET, nc=0)[0]
    det[:, :4] = ops.scale_boxes((INPUT, INPUT), det[:, :4], SRC_HW)
    return det


def torchvision_postprocess(head: torch.Tensor, geometry: LetterboxGeometry) -> torch.Tensor:
    """The least torch can do: best class, threshold, xywh → xyxy, `batched_nms`, unletterbox."""
    import torch
    from torchvision.ops import batched_nms

    pred = head[0]
    score, class_id = pred[4:].max(dim=0)
    keep = score > CONF
    xywh = pred[:4, keep].T
    xyxy = torch.cat((xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2), dim=1)
    kept = batched_nms(xyxy, score[keep], class_id[keep], IOU)[:MAX_DET]
    offset = torch.tensor([geometry.left, geometry.top] * 2, dtype=torch.float32)
    scale = torch.tensor([geometry.scale_x, geometry.scale_y] * 2, dtype=torch.float32)
    limit = torch.tensor([geometry.src_w, geometry.src_h] * 2, dtype=torch.float32)
    boxes = ((xyxy[kept] - offset) / scale).clamp(min=torch.zeros(4), max=limit)
    return torch.cat((boxes, score[keep][kept, None], class_id[keep][kept, None].float()), dim=1)


def compare_kept(ours: Detections, theirs: np.ndarray) -> tuple[bool, str]:
    """Whether two implementations kept the same boxes: count, classes, scores, boxes within 1e-2 px."""
    if len(ours.score) != len(theirs):
        return False, f"count {len(ours.score)} vs {len(theirs)}"
    a = np.argsort(-ours.score, kind="stable")
    b = np.argsort(-theirs[:, 4], kind="stable")
    same_class = np.array_equal(ours.class_id[a], theirs[b, 5].astype(np.int32))
    same_score = np.allclose(ours.score[a], theirs[b, 4], rtol=0, atol=1e-6)
    box_diff = float(np.abs(ours.xyxy[a] - theirs[b, :4]).max()) if len(theirs) else 0.0
    ok = same_class and same_score and box_diff <= 1e-2
    detail = f"{len(theirs)} kept, max box diff {box_diff:.1e} px"
    if not (same_class and same_score):
        detail += ", classes or scores differ"
    return ok, detail


@dataclass(frozen=True, slots=True)
class PostprocessCase:
    candidates: int
    warm: dict[str, Timing]
    interleaved: dict[str, Timing]
    agree_ultralytics: tuple[bool, str]
    agree_torchvision: tuple[bool, str]


def bench_postprocess(geometry: LetterboxGeometry, warmup: int, reps: int) -> list[PostprocessCase]:
    import torch
    import torchvision  # noqa: F401 - ultralytics' NMS uses torchvision's kernel only once it is imported, as predict does

    results = []
    for count in CANDIDATE_COUNTS:
        head = synthetic_head(count, geometry, seed=count)
        tensor = torch.from_numpy(head)
        cases: dict[str, Callable[[], object]] = {
            "nonsite": partial(nonsite_postprocess, head, geometry),
            "ultralytics": partial(ultralytics_postprocess, tensor),
            "torchvision": partial(torchvision_postprocess, tensor, geometry),
        }
        warm = time_back_to_back(cases, warmup=warmup, reps=reps)
        interleaved = time_interleaved(cases, warmup=warmup, reps=reps)
        ours = nonsite_postprocess(head, geometry)
        results.append(
            PostprocessCase(
                count,
                warm,
                interleaved,
                compare_kept(ours, ultralytics_postprocess(tensor).numpy()),
                compare_kept(ours, torchvision_postprocess(tensor, geometry).numpy()),
            )
        )
    return results


# --- part 3: a whole frame -----------------------------------------------------------------


@dataclass(slots=True)
class FrameResult:
    threads: int
    timings: dict[str, Timing]
    outside_ms: dict[str, Timing] = field(default_factory=dict)
    inside_ms: dict[str, Timing] = field(default_factory=dict)
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    detections: dict[str, int] = field(default_factory=dict)
    ultralytics_default_threads: int = 0


def session_options(threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


def _predict(model: Any, kwargs: dict[str, Any], frames: Iterator[np.ndarray]) -> Any:
    return model.predict(next(frames), **kwargs)


def bench_frame(model_path: Path, frames: Sequence[np.ndarray], threads: int, warmup: int, reps: int) -> FrameResult:
    import onnxruntime as ort
    from ultralytics import YOLO

    from vision.detectors.base import create_detector
    from vision.preprocess import LetterboxGeometry, letterbox_into

    providers = ["CPUExecutionProvider"]
    detector = create_detector(
        {"type": "onnx_yolo", "path": str(model_path), "conf": CONF, "iou": IOU, "max_det": MAX_DET,
         "intra_op_threads": threads, "providers": providers}
    )  # fmt: skip
    # the detector's own session, timed in place, so "outside session.run" is measured per call
    nonsite_session = TimedSession(detector._session)  # type: ignore[attr-defined]
    detector._session = nonsite_session  # type: ignore[attr-defined]

    predict: dict[str, Any] = {"imgsz": INPUT, "conf": CONF, "iou": IOU, "max_det": MAX_DET, "verbose": False}
    ultralytics_models: dict[str, tuple[Any, dict[str, Any], TimedSession]] = {}
    default_threads = 0
    for name, use_rect in (("ultralytics rect", True), ("ultralytics square", False)):
        model = YOLO(str(model_path), task="detect")
        model.predict(frames[0], rect=use_rect, **predict)  # builds the predictor and its session
        if model.predictor is None:
            raise RuntimeError("ultralytics built no predictor on the first predict call")
        backend = model.predictor.model.backend
        # AutoBackend builds its session with no SessionOptions (ORT's defaults) and offers no
        # way to pass any, so the benchmark swaps in one built like nonsite's
        default_threads = backend.session.get_session_options().intra_op_num_threads
        backend.session = TimedSession(
            ort.InferenceSession(str(model_path), session_options(threads), providers=providers)
        )
        ultralytics_models[name] = (model, {"rect": use_rect, **predict}, backend.session)

    bare = ort.InferenceSession(str(model_path), session_options(threads), providers=providers)
    input_name = bare.get_inputs()[0].name
    square = np.empty((1, 3, INPUT, INPUT), np.float32)
    letterbox_into(frames[0], square[0])
    # ultralytics' rect input (LetterBox auto=True): the resized frame padded to a multiple of the stride
    new_h = LetterboxGeometry.letterbox(SRC_HW, (INPUT, INPUT)).new_h
    rect_hw = (-(-new_h // STRIDES[-1]) * STRIDES[-1], INPUT)
    rect = np.empty((1, 3, *rect_hw), np.float32)
    letterbox_into(frames[0], rect[0], LetterboxGeometry.letterbox(SRC_HW, rect_hw))

    streams = {name: itertools.cycle(frames) for name in ("nonsite", *ultralytics_models)}
    cases: dict[str, Callable[[], object]] = {"nonsite": lambda: detector.detect_one(next(streams["nonsite"]))}
    for name, (model, kwargs, _) in ultralytics_models.items():
        cases[name] = partial(_predict, model, kwargs, streams[name])
    cases["session.run square"] = lambda: bare.run(None, {input_name: square})
    cases["session.run rect"] = lambda: bare.run(None, {input_name: rect})

    # Blocks of one case at a time, not interleaved calls: an idle ONNX Runtime session's
    # workers spin for a while after each run, so with several sessions in turn they steal
    # the cores from the one that is running (on this 2-core machine, 2-thread runs took 2-4x
    # as long). The blocks go round several times so that a passing disturbance hits all.
    timed = {"nonsite": nonsite_session} | {name: entry[2] for name, entry in ultralytics_models.items()}
    passes = max(1, min(4, reps // 10))
    samples: dict[str, list[np.ndarray]] = {name: [] for name in cases}
    runs: dict[str, list[float]] = {name: [] for name in timed}
    for p in range(passes):
        block = reps // passes + (p < reps % passes)
        for name, run in cases.items():
            warm_up({name: run}, warmup)
            if name in timed:
                timed[name].runs_ms.clear()
            samples[name].append(time_rounds({name: run}, block)[name].samples_ms)
            if name in timed:
                runs[name] += timed[name].runs_ms
    timings = {name: Timing(np.concatenate(parts)) for name, parts in samples.items()}

    result = FrameResult(threads, timings, ultralytics_default_threads=default_threads)
    for name, session in timed.items():
        if len(runs[name]) != reps:
            raise RuntimeError(f"{name} ran its session {len(runs[name])} times in {reps} frames")
        result.inside_ms[name] = Timing(np.asarray(runs[name]))
        result.outside_ms[name] = Timing(timings[name].samples_ms - result.inside_ms[name].samples_ms)
        result.input_shapes[name] = session.input_shape
    result.input_shapes["session.run square"] = square.shape
    result.input_shapes["session.run rect"] = rect.shape
    result.detections["nonsite"] = len(detector.detect_one(frames[0]).score)
    for name, (model, kwargs, _) in ultralytics_models.items():
        result.detections[name] = len(model.predict(frames[0], **kwargs)[0].boxes)
    return result


# --- the report ----------------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_lines(model_path: Path) -> list[str]:
    packages = ("numpy", "numba", "opencv-python-headless", "torch", "torchvision", "ultralytics", "onnxruntime")
    versions = ", ".join(f"{p.removesuffix('-python-headless')} {_version(p)}" for p in packages)
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()[:12]
    return [
        f"date      {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}",
        f"machine   {_cpu_model()}, {os.cpu_count()} logical cores ({len(os.sched_getaffinity(0))} usable), "
        f"{platform.system()} {platform.machine()}",
        f"versions  python {platform.python_version()}, nonsite {_version('nonsite')}, {versions}",
        f"model     {model_path.relative_to(REPO) if model_path.is_relative_to(REPO) else model_path} "
        f"(sha256 {digest}…), {MODEL_YAML} with fresh weights, exported at {INPUT}, dynamic batch",
    ]


def _row(label: str, t: Timing, baseline: Timing | None, width: int = 58) -> str:
    ratio = f"{t.median / baseline.median:7.2f}×" if baseline is not None else ""
    return f"  {label:<{width}}{t.median:10.3f}{t.p90:10.3f}  {ratio}"


def _header(title: str, width: int = 58) -> str:
    return f"{title:<{width + 2}}{'median ms':>10}{'p90 ms':>10}  vs nonsite"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report_preprocess(result: PreprocessResult) -> tuple[list[str], bool]:
    t = result.timings
    ok = t["nonsite"].median <= PREPROCESS_FLOOR_MS
    lines = [
        _header("1. preprocess 1920×1080 BGR → 640×640 float32 RGB, one thread"),
        _row("nonsite letterbox_into (preallocated buffer)", t["nonsite"], t["nonsite"]),
        _row("ultralytics LetterBox + BasePredictor.preprocess", t["ultralytics"], t["nonsite"]),
        _row("cv2.dnn.blobFromImage (stretch, no letterbox)", t["opencv"], t["nonsite"]),
        f"  nonsite vs ultralytics tensors: max |diff| {result.max_abs_diff:.1e}",
        f"  floor nonsite ≤ {PREPROCESS_FLOOR_MS} ms median: {_verdict(ok)} ({t['nonsite'].median:.3f} ms)",
    ]
    return lines, ok


def report_postprocess(cases: Sequence[PostprocessCase]) -> tuple[list[str], bool]:
    width = 50
    lines = [
        "2. decode + NMS + boxes back to 1080p on a (1, 84, 8400) head, conf .25, iou .45, max_det 300, one thread",
        f"  {'':<{width}}{'back-to-back (caches hot)':>32}{'interleaved (caches disturbed)':>34}",
        f"  {'':<{width}}" + f"{'median ms':>12}{'p90 ms':>9}{'vs nonsite':>11}  " * 2,
    ]
    labels = {
        "nonsite": "nonsite decode_yolo + finish",
        "ultralytics": "ultralytics non_max_suppression + scale_boxes",
        "torchvision": "torch decode + torchvision batched_nms",
    }
    all_ok = True
    for case in cases:
        lines.append(f"  {case.candidates:,} candidates above conf")
        for name, label in labels.items():
            cells = ""
            for timings in (case.warm, case.interleaved):
                t, base = timings[name], timings["nonsite"]
                cells += f"{t.median:12.3f}{t.p90:9.3f}{t.median / base.median:10.2f}×  "
            lines.append(f"    {label:<{width - 2}}{cells.rstrip()}")
        speedups = [t["ultralytics"].median / t["nonsite"].median for t in (case.warm, case.interleaved)]
        ok = min(speedups) >= POSTPROCESS_FLOOR_SPEEDUP
        all_ok &= ok and case.agree_ultralytics[0]
        lines += [
            f"    kept sets, nonsite vs ultralytics: {'agree' if case.agree_ultralytics[0] else 'DIFFER'} "
            f"({case.agree_ultralytics[1]}); vs torchvision: "
            f"{'agree' if case.agree_torchvision[0] else 'DIFFER'} ({case.agree_torchvision[1]})",
            f"    floor nonsite ≥ {POSTPROCESS_FLOOR_SPEEDUP:.0f}× faster than ultralytics: {_verdict(ok)} "
            f"(back-to-back {speedups[0]:.2f}×, interleaved {speedups[1]:.2f}×)",
        ]
    return lines, all_ok


def report_frame(result: FrameResult, post: Sequence[PostprocessCase]) -> tuple[list[str], bool]:
    t, outside, shapes = result.timings, result.outside_ms, result.input_shapes
    run = t["session.run square"]
    # the smaller of the two session.run figures, so that a slow patch cannot flatter the share
    run_ms = min(run.median, result.inside_ms["nonsite"].median)
    share = outside["nonsite"].median / run_ms
    ok = share <= OUTSIDE_RUN_FLOOR
    default = result.ultralytics_default_threads
    lines = [
        _header(f"3. whole 1080p frame, ONNX Runtime intra-op threads {result.threads} (pre/post on one thread)"),
        _row("nonsite create_detector(onnx_yolo).detect_one", t["nonsite"], t["nonsite"]),
        _row("ultralytics YOLO(onnx).predict, default rect=True", t["ultralytics rect"], t["nonsite"]),
        _row("ultralytics YOLO(onnx).predict, rect=False", t["ultralytics square"], t["nonsite"]),
        _row("session.run alone, 640×640 (nonsite's input)", run, t["nonsite"]),
        _row("session.run alone, 384×640 (ultralytics rect's input)", t["session.run rect"], t["nonsite"]),
        _row("session.run inside nonsite's detect_one calls", result.inside_ms["nonsite"], t["nonsite"]),
        "  time outside session.run, per call (total − that call's session.run):",
        _row("  nonsite", outside["nonsite"], outside["nonsite"]),
        _row("  ultralytics rect=True", outside["ultralytics rect"], outside["nonsite"]),
        _row("  ultralytics rect=False", outside["ultralytics square"], outside["nonsite"]),
        "  inputs fed: " + ", ".join(f"{name} {shapes[name]}" for name in ("nonsite", *_ULTRA)),
        "  detections on the frame (fresh weights find next to nothing): "
        + ", ".join(f"{name} {result.detections[name]}" for name in ("nonsite", *_ULTRA)),
        f"  ultralytics' own session had intra_op_num_threads={default} "
        f"({'ORT default: one per physical core' if default == 0 else 'set'}); replaced by one with {result.threads}",
        f"  floor nonsite outside session.run ≤ {OUTSIDE_RUN_FLOOR:.0%} of session.run: {_verdict(ok)} "
        f"({outside['nonsite'].median:.3f} ms = {share:.1%} of {run_ms:.1f} ms, the smaller session.run median)",
    ]
    loaded = next((c for c in post if c.candidates == 1_000), None)
    if loaded is not None:
        extra = loaded.interleaved["nonsite"].median
        lines.append(
            f"  with a loaded head (part 2, 1,000 candidates, +{extra:.3f} ms at most): "
            f"{(outside['nonsite'].median + extra) / run_ms:.1%} of session.run"
        )
    return lines, ok


_ULTRA = ("ultralytics rect", "ultralytics square")


# --- entry -----------------------------------------------------------------------------------


def ensure_model(cache: Path) -> Path:
    """The benchmark's ONNX model, exported once from `yolov8n.yaml` and reused."""
    path = cache / f"yolov8n-{INPUT}-dynamic.onnx"
    if not path.is_file():
        from models.export import export_onnx

        export_onnx(MODEL_YAML, path, imgsz=INPUT, dynamic=True)
    return path


def _thread_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"threads must be comma-separated integers such as 1,2, but got {text!r}"
        ) from e
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"threads must be positive, but got {text!r}")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    cores = len(os.sched_getaffinity(0))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run, not for the record)")
    parser.add_argument(
        "--threads",
        type=_thread_counts,
        default=sorted({1, cores}),
        help=f"ONNX Runtime intra-op threads for part 3, comma-separated (default: 1,{cores})",
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the exported model is kept")
    args = parser.parse_args(argv)

    # before numba, torch or ultralytics load: one numba thread, no network, quiet ultralytics
    os.environ["NUMBA_NUM_THREADS"] = "1"
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_VERBOSE"] = "False"
    import cv2
    import torch

    from vision.preprocess import LetterboxGeometry

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    reps = QUICK if args.quick else FULL

    model_path = ensure_model(args.cache)
    geometry = LetterboxGeometry.letterbox(SRC_HW, (INPUT, INPUT))
    frames = synthetic_frames(4)
    started = time.perf_counter()

    print("nonsite detection-core benchmark (issue 2)" + (" — QUICK run" if args.quick else ""))
    print("\n".join(machine_lines(model_path)))
    print(f"threads   numba {os.environ['NUMBA_NUM_THREADS']}, torch {torch.get_num_threads()}, opencv "
          f"{cv2.getNumThreads()}; part 3 ONNX Runtime intra-op {','.join(map(str, args.threads))}")  # fmt: skip
    print()

    verdicts: dict[str, bool] = {}
    lines, verdicts["preprocess ≤ 1.0 ms"] = report_preprocess(bench_preprocess(frames, *reps.preprocess))
    print("\n".join(lines), end="\n\n", flush=True)
    post = bench_postprocess(geometry, *reps.postprocess)
    lines, verdicts["postprocess ≥ 3× ultralytics, same kept sets"] = report_postprocess(post)
    print("\n".join(lines), end="\n\n", flush=True)
    for threads in args.threads:
        lines, ok = report_frame(bench_frame(model_path, frames, threads, *reps.frame), post)
        verdicts[f"outside session.run ≤ 5% ({threads} thread{'s' if threads > 1 else ''})"] = ok
        print("\n".join(lines), end="\n\n", flush=True)

    print("floors: " + "; ".join(f"{name} {_verdict(ok)}" for name, ok in verdicts.items()))
    print(f"took {time.perf_counter() - started:.0f} s")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())

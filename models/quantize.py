"""Static INT8 quantization of a detector, kept only when it costs less than a point of mAP50.

`onnxruntime.quantization.quantize_static` calibrates activation ranges on real frames
(letterboxed exactly as the detection core feeds the model) and writes a QDQ model with
per-channel INT8 weights. The detection head (the model's last module: box distribution,
sigmoid scores and the concatenation of boxes in pixels with scores in [0, 1]) stays in
float: one INT8 scale cannot hold both ranges, and quantizing it costs far more accuracy
than it saves time. `quantize_and_compare` measures the INT8 model against the FP32 one on
the same evaluation set (speed ratio and mAP50 side by side) and deletes the INT8 file unless
it loses less than `max_map50_loss`.
"""

from __future__ import annotations

import logging
import re
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.errors import ModelsError
from models.evaluate_detect import EvalSet, evaluate_detector
from vision.preprocess import LetterboxGeometry, letterbox_into

logger = logging.getLogger(__name__)

MAX_MAP50_LOSS = 0.01


@dataclass(frozen=True)
class QuantizationReport:
    fp32: Path
    int8: Path | None  # None: measured, then dropped for losing too much
    fp32_map50: float
    int8_map50: float
    fp32_ms: float  # median latency of one image, ONNX Runtime on this machine's CPU
    int8_ms: float
    calibration_images: int
    kept: bool
    excluded_nodes: int

    @property
    def speedup(self) -> float:
        return self.fp32_ms / self.int8_ms if self.int8_ms else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "static INT8 (QDQ, per-channel weights, MinMax calibration), detection head in float",
            "calibration_images": self.calibration_images,
            "fp32_mAP50": round(self.fp32_map50, 4),
            "int8_mAP50": round(self.int8_map50, 4),
            "mAP50_loss": round(self.fp32_map50 - self.int8_map50, 4),
            "fp32_ms_median": round(self.fp32_ms, 2),
            "int8_ms_median": round(self.int8_ms, 2),
            "speedup": round(self.speedup, 3),
            "kept": self.kept,
            "int8_model": self.int8.name if self.int8 else None,
        }


class _Calibration:
    """onnxruntime's CalibrationDataReader over letterboxed images."""

    def __init__(self, images: Sequence[Path], input_name: str, imgsz: int) -> None:
        self._paths = list(images)
        self._input_name = input_name
        self._imgsz = imgsz
        self._iter: Iterator[dict[str, np.ndarray]] | None = None

    def _feeds(self) -> Iterator[dict[str, np.ndarray]]:
        for path in self._paths:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise ModelsError(f"calibration image {path} is not readable")
            tensor = np.empty((3, self._imgsz, self._imgsz), np.float32)
            geometry = LetterboxGeometry.letterbox(image.shape[:2], (self._imgsz, self._imgsz))
            letterbox_into(image, tensor, geometry)
            yield {self._input_name: tensor[None]}

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._iter is None:
            self._iter = self._feeds()
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = None


def head_nodes(model_path: Path) -> list[str]:
    """Names of the nodes of the model's last module (`/model.N/...` with the largest N)."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    index = [(int(m.group(1)), node.name) for node in graph.node if (m := re.match(r"^/model\.(\d+)/", node.name))]
    if not index:
        return []
    last = max(i for i, _ in index)
    return [name for i, name in index if i == last]


def quantize_static_int8(fp32: Path, out: Path, calibration: Sequence[Path], *, imgsz: int) -> tuple[Path, int]:
    """Write the INT8 model of `fp32` to `out`, calibrated on `calibration`; returns it and the
    count of head nodes left in float."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise ModelsError("static quantization needs calibration images")
    import onnxruntime

    session = onnxruntime.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    prepared = out.with_name(f".{out.stem}.prep.onnx")
    try:
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        excluded = head_nodes(prepared)
        quantize_static(
            str(prepared),
            str(out),
            _Calibration(calibration, input_name, imgsz),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=excluded,
        )
    except ModelsError:
        raise
    except Exception as e:
        raise ModelsError(f"quantizing {fp32} failed: {e}") from e
    finally:
        prepared.unlink(missing_ok=True)
    _copy_metadata(fp32, out)
    return out, len(excluded)


def _copy_metadata(source: Path, target: Path) -> None:
    """The quantized file keeps the class names and input size the detection core reads."""
    import onnx

    src, dst = onnx.load(str(source)), onnx.load(str(target))
    del dst.metadata_props[:]
    for prop in src.metadata_props:
        dst.metadata_props.add(key=prop.key, value=prop.value)
    onnx.save(dst, str(target))


def _timings(models: Sequence[Path], images: Sequence[np.ndarray], imgsz: int, repeats: int) -> list[float]:
    """Median milliseconds per image of each model, the models taking turns image by image so
    that a busy moment of the machine falls on all of them alike."""
    from vision.detectors import create_detector

    detectors = [
        create_detector({"type": "onnx_yolo", "path": m, "imgsz": imgsz, "rect": False, "max_batch": 1}) for m in models
    ]
    times: list[list[float]] = [[] for _ in detectors]
    for _ in range(repeats):
        for image in images:
            for k, detector in enumerate(detectors):
                started = time.perf_counter()
                detector.detect([image])
                times[k].append((time.perf_counter() - started) * 1000)
    return [statistics.median(t) for t in times]


def quantize_and_compare(
    fp32: Path,
    eval_set: EvalSet,
    *,
    calibration: Sequence[Path],
    imgsz: int,
    model_map: dict[str, list[str]] | None = None,
    max_map50_loss: float = MAX_MAP50_LOSS,
    timing_images: int = 20,
    repeats: int = 3,
) -> QuantizationReport:
    """Quantize `fp32` beside itself (`<stem>.int8.onnx`), evaluate both on `eval_set`, time both
    in the same run; keep the INT8 file only if its mAP50 is less than `max_map50_loss` lower."""
    from vision.detectors import create_detector

    int8 = fp32.with_name(f"{fp32.stem}.int8.onnx")
    _, excluded = quantize_static_int8(fp32, int8, calibration, imgsz=imgsz)
    results = {}
    for name, path in (("fp32", fp32), ("int8", int8)):
        detector = create_detector({"type": "onnx_yolo", "path": path, "conf": 0.001, "imgsz": imgsz})
        results[name] = evaluate_detector(detector, eval_set, model_map=model_map).map50
    sample = [image for i in eval_set.images[:timing_images] if (image := cv2.imread(str(i.path))) is not None]
    fp32_ms, int8_ms = _timings([fp32, int8], sample, imgsz, repeats)
    kept = results["fp32"] - results["int8"] < max_map50_loss
    if not kept:
        logger.warning(
            "INT8 model loses %.3f mAP50 (%.3f -> %.3f): dropped", results["fp32"] - results["int8"],
            results["fp32"], results["int8"],
        )  # fmt: skip
        int8.unlink(missing_ok=True)
    return QuantizationReport(
        fp32, int8 if kept else None, results["fp32"], results["int8"], fp32_ms, int8_ms, len(calibration), kept,
        excluded,
    )  # fmt: skip

"""Training detectors with ultralytics, fully offline, and exporting them to ONNX with a card.

Nothing is fetched: the base model is a yaml that ultralytics ships (fresh weights) or a
local .pt; plots are off (they would fetch fonts); ultralytics' AMP self-check, which
downloads a reference model, is replaced by a local one.
"""

from __future__ import annotations

import ast
import json
import logging
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import onnxruntime

from models.errors import ModelsError
from models.export import export_onnx, load_ultralytics
from vision.detectors.base import file_sha256

logger = logging.getLogger(__name__)


#: ultralytics' metric keys, as the card names them
_METRIC_NAMES = {
    "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall",
    "metrics/mAP50(B)": "mAP50",
    "metrics/mAP50-95(B)": "mAP50-95",
}


@dataclass(frozen=True)
class TrainResult:
    weights: Path
    onnx: Path
    card: Path
    metrics: dict[str, float]
    epochs: int
    seconds: float


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "0" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and not torch.cuda.is_available():
        raise ModelsError(f"device {device!r} asked for, but torch sees no CUDA device here")
    return device


def _local_amp_check(model: Any) -> bool:
    """AMP is usable when a half-precision forward pass of the model itself stays finite."""
    import torch

    device = next(model.parameters()).device
    if device.type != "cuda":
        return False
    with torch.autocast("cuda"), torch.no_grad():
        out = model(torch.zeros(1, 3, 64, 64, device=device))
    first = out[0] if isinstance(out, (list, tuple)) else out
    return bool(torch.isfinite(first).all()) if isinstance(first, torch.Tensor) else True


def train_detector(
    *,
    data: Path,
    out_dir: Path,
    name: str,
    base: str | Path = "yolov8n.yaml",
    epochs: int = 50,
    imgsz: int = 640,
    batch: int = 16,
    device: str = "auto",
    workers: int = 2,
    seed: int = 0,
    time_hours: float | None = None,
    training_data: dict[str, Any] | None = None,
    command: str | None = None,
    metrics_label: str = "synthetic_val",
    **overrides: Any,
) -> TrainResult:
    """Train on the YOLO dataset `data` (its data.yaml), export ONNX, write a model card.

    Writes `<out_dir>/<name>.onnx`, its weights `<name>.pt` and `<name>.card.json`
    (ultralytics' validation figures under `metrics_label`); ultralytics' own run
    folder (weights, results.csv) is `<out_dir>/runs/<name>`. `training_data` goes into the
    card verbatim (the datasets, their licenses and proportions).
    """
    data = Path(data)
    if not data.is_file():
        raise ModelsError(f"dataset file {data} does not exist (expected a YOLO data.yaml)")
    base_path = Path(base)
    if base_path.suffix not in (".yaml", ".yml") and not base_path.is_file():
        raise ModelsError(f"base model {base} does not exist (weights are never fetched by name)")
    ultralytics = load_ultralytics()
    import ultralytics.engine.trainer as trainer_module

    trainer_module.check_amp = _local_amp_check  # the stock check downloads yolo26n.pt
    resolved_device = _resolve_device(device)
    out_dir = Path(out_dir).resolve()
    model = ultralytics.YOLO(str(base))
    started = time.perf_counter()
    args: dict[str, Any] = {
        "data": str(data.resolve()),
        "epochs": epochs,
        "imgsz": imgsz,
        "batch": batch,
        "device": resolved_device,
        "workers": workers,
        "seed": seed,
        "deterministic": True,
        "plots": False,
        "project": str(out_dir / "runs"),
        "name": name,
        "exist_ok": True,
        "verbose": False,
        **overrides,
    }
    if time_hours is not None:
        args["time"] = time_hours
    model.train(**args)
    seconds = time.perf_counter() - started
    trainer = model.trainer
    weights = Path(trainer.best if Path(trainer.best).is_file() else trainer.last)
    raw_metrics = getattr(trainer, "metrics", None) or {}
    metrics = {
        _METRIC_NAMES.get(k, k): round(float(v), 4) for k, v in raw_metrics.items() if isinstance(v, (int, float))
    }
    onnx_path = export_onnx(weights, out_dir / f"{name}.onnx", imgsz=imgsz, dynamic=True)
    shutil.copyfile(weights, out_dir / f"{name}.pt")  # the base of the next fine-tuning
    epochs_done = int(getattr(trainer, "epoch", epochs - 1)) + 1
    card = write_card(
        onnx_path,
        parent=str(base),
        metrics={metrics_label: metrics} if metrics else {},
        training_data=training_data or {"data_yaml": str(data)},
        command=command or shlex.join(sys.argv),
        extra={"epochs": epochs_done, "train_seconds": round(seconds, 1), "device": resolved_device},
    )
    return TrainResult(weights, onnx_path, card, metrics, epochs_done, seconds)


def write_card(
    onnx_path: Path,
    *,
    parent: str,
    metrics: dict[str, Any],
    training_data: dict[str, Any],
    command: str,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write `<model>.card.json` beside an ONNX model: what it is, what made it, how good it is."""
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    meta = dict(session.get_modelmeta().custom_metadata_map)
    names = ast.literal_eval(meta.get("names", "{}"))
    card = {
        "model": onnx_path.name,
        "sha256": file_sha256(onnx_path),
        "classes": [names[k] for k in sorted(names)],
        "input_size": ast.literal_eval(meta.get("imgsz", "None")),
        "parent": parent,
        "training_data": training_data,
        "metrics": metrics,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        **(extra or {}),
    }
    path = onnx_path.with_suffix(".card.json")
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path

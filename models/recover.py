"""Recover trainable ultralytics weights from one of nonsite's own ONNX exports.

ultralytics fuses every convolution with its batch norm before export, so the ONNX file holds,
per `Conv` block, a convolution with a bias and no batch norm. Rebuilding the architecture
from its yaml and setting each block's batch norm to the identity (weight 1, running mean 0,
running variance 1 − eps) with the fused bias as its bias gives a model that computes exactly
what the ONNX file does, and that trains like any other: the starter models are fine-tuned
from the shipped model this way, on machines where its training run's .pt is not at hand.
`recover_weights` checks the outputs agree before it writes anything.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import ModelsError
from models.export import load_ultralytics

logger = logging.getLogger(__name__)

#: the largest difference allowed between the ONNX model's outputs and the recovered model's
MAX_OUTPUT_DIFFERENCE = 1e-3


def _initializers(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as e:
        raise ModelsError(f"{path} is not a readable ONNX model: {e}") from e
    weights = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    metadata = {p.key: p.value for p in model.metadata_props}
    return weights, metadata


def recovered_parent(onnx_path: Path) -> str:
    """How a model card names a parent whose weights were recovered from an ONNX file."""
    from vision.detectors.base import file_sha256

    return f"{Path(onnx_path).name} (sha256 {file_sha256(Path(onnx_path))}), weights recovered by models.recover"


def recover_weights(onnx_path: Path, out: Path, *, cfg: str = "yolov8n.yaml") -> Path:
    """Write `out` (an ultralytics .pt) whose model computes what `onnx_path` computes."""
    import onnxruntime
    import torch
    from torch import nn

    load_ultralytics()
    from ultralytics.nn.modules import Conv
    from ultralytics.nn.tasks import DetectionModel

    weights, metadata = _initializers(Path(onnx_path))
    names = ast.literal_eval(metadata.get("names", "{}"))
    if not isinstance(names, dict) or not names:
        raise ModelsError(f"{onnx_path} carries no class names: it is not an ultralytics export")
    model = DetectionModel(cfg, nc=len(names), verbose=False)
    used: set[str] = set()

    def take(name: str, like: torch.Tensor) -> torch.Tensor:
        if name not in weights:
            raise ModelsError(f"{onnx_path} has no tensor {name}: it was not exported from {cfg}")
        value = torch.from_numpy(np.array(weights[name])).to(like.dtype)
        if value.shape != like.shape:
            raise ModelsError(f"{onnx_path}: {name} is {tuple(value.shape)}, {cfg} wants {tuple(like.shape)}")
        used.add(name)
        return value

    with torch.no_grad():
        for module_name, module in model.named_modules():
            if isinstance(module, Conv):
                module.conv.weight.copy_(take(f"{module_name}.conv.weight", module.conv.weight))
                bn = module.bn
                bn.weight.fill_(1.0)
                bn.bias.copy_(take(f"{module_name}.conv.bias", bn.bias))
                bn.running_mean = torch.zeros_like(bn.bias)
                bn.running_var = torch.full_like(bn.bias, 1.0 - bn.eps)
            elif isinstance(module, nn.Conv2d) and module.bias is not None and f"{module_name}.weight" in weights:
                module.weight.copy_(take(f"{module_name}.weight", module.weight))
                module.bias.copy_(take(f"{module_name}.bias", module.bias))
    model.names = {int(k): str(v) for k, v in names.items()}
    model.eval()
    _check_agreement(model, onnx_path, onnxruntime)
    unused = sorted(n for n in weights if n.startswith("model.") and n not in used and ".dfl." not in n)
    if unused:
        raise ModelsError(f"{onnx_path} has weights {cfg} has no place for: {', '.join(unused[:5])}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    checkpoint: dict[str, Any] = {
        "model": model,
        "ema": None,
        "epoch": -1,
        "optimizer": None,
        "train_args": {"imgsz": ast.literal_eval(metadata.get("imgsz", "[640, 640]"))[0]},
        "recovered_from": str(onnx_path),
    }
    torch.save(checkpoint, out)
    logger.info("recovered %s from %s", out, onnx_path)
    return out


def _check_agreement(model: Any, onnx_path: Path, onnxruntime: Any) -> None:
    import torch

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feed = np.random.default_rng(0).random((1, 3, 320, 320), dtype=np.float32)
    expected = session.run(None, {session.get_inputs()[0].name: feed})[0]
    with torch.no_grad():
        got = model(torch.from_numpy(feed))
    got = (got[0] if isinstance(got, (list, tuple)) else got).numpy()
    if got.shape != expected.shape:
        raise ModelsError(f"recovered model gives {got.shape}, {onnx_path} gives {expected.shape}")
    difference = float(np.abs(got - expected).max())
    if difference > MAX_OUTPUT_DIFFERENCE:
        raise ModelsError(f"recovered model differs from {onnx_path} by up to {difference:.4g}")

"""Tiny ONNX models built in the test, shaped like real detector exports.

Each takes (B, 3, H, W) and returns a fixed raw head output repeated over the batch, so
tests know exactly what the decoder must produce.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def constant_head_model(
    path: Path,
    raw: np.ndarray,
    *,
    metadata: dict[str, str] | None = None,
    input_hw: tuple[int, int] = (64, 64),
    dynamic_batch: bool = True,
    dynamic_hw: bool = False,
    batch_dim: int = 1,
    input_type: int = TensorProto.FLOAT,
) -> Path:
    """Write a model whose output is `raw` (one image's head output) for every image in the batch."""
    raw = raw.astype(np.float32)
    batch: str | int = "batch" if dynamic_batch else batch_dim
    hw: list[str | int] = ["height", "width"] if dynamic_hw else list(input_hw)
    x = helper.make_tensor_value_info("images", input_type, [batch, 3, *hw])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, *raw.shape])
    nodes = []
    source = "images"
    if input_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["images"], ["images_f"], to=TensorProto.FLOAT))
        source = "images_f"
    trailing = [1] * raw.ndim
    nodes += [
        # (B, 1, 1, 1) zeros that depend on the input, so the batch dimension flows through
        helper.make_node("ReduceMean", [source, "axes"], ["mean"], keepdims=1),
        helper.make_node("Mul", ["mean", "zero"], ["zeros"]),
        helper.make_node("Reshape", ["zeros", "shape"], ["zeros_r"]),
        helper.make_node("Add", ["zeros_r", "raw"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "constant_head",
        [x],
        [y],
        initializer=[
            numpy_helper.from_array(np.array([1, 2, 3], np.int64), "axes"),
            numpy_helper.from_array(np.zeros(1, np.float32), "zero"),
            numpy_helper.from_array(np.array([-1, *trailing], np.int64), "shape"),
            numpy_helper.from_array(raw[None], "raw"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def ultralytics_metadata(names: list[str], imgsz: tuple[int, int] = (64, 64), **extra: str) -> dict[str, str]:
    """Metadata as ultralytics' exporter writes it (values are Python literals as strings)."""
    return {
        "task": "detect",
        "stride": "32",
        "imgsz": str(list(imgsz)),
        "names": str(dict(enumerate(names))),
        "batch": "1",
        **extra,
    }

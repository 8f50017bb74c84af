"""Export ultralytics models to ONNX, offline.

Torch and ultralytics come from the `train` extra and are imported only here and in
training; the detection core reads the ONNX files this writes.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from models.errors import ModelsError, TrainingUnavailableError

logger = logging.getLogger(__name__)


def load_ultralytics() -> Any:
    """The `ultralytics` module, configured to never reach the network."""
    os.environ["YOLO_OFFLINE"] = "1"
    try:
        import ultralytics
    except ImportError as e:
        raise TrainingUnavailableError(
            "training and export need the train extra: pip install -e '.[train]' (torch, ultralytics, onnxslim)"
        ) from e
    return ultralytics


def export_onnx(
    model: Any,
    out: Path,
    *,
    imgsz: int | tuple[int, int] = 640,
    dynamic: bool = True,
    simplify: bool = True,
    half: bool = False,
) -> Path:
    """Write `model` (an ultralytics `YOLO`, or a path to a .pt or .yaml) as ONNX at `out`.

    The file carries ultralytics' metadata (class names, input size, stride), which the
    `onnx_yolo` backend reads. A .yaml builds a model with fresh weights, never fetched.
    """
    ultralytics = load_ultralytics()
    if isinstance(model, (str, Path)):
        source = Path(model)
        if source.suffix not in (".yaml", ".yml") and not source.is_file():
            raise ModelsError(f"model {source} does not exist (weights are never fetched by name)")
        model = ultralytics.YOLO(str(source))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = Path(
        model.export(format="onnx", imgsz=imgsz, dynamic=dynamic, simplify=simplify, half=half, device="cpu")
    )
    if written.resolve() != out.resolve():
        shutil.move(str(written), out)
    logger.info("exported %s", out)
    return out

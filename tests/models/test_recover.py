"""Trainable weights recovered from an ONNX export compute what the export computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.errors import ModelsError
from models.recover import recover_weights
from nonsite.starter import starter_model_path
from tests.vision.onnx_models import constant_head_model, ultralytics_metadata

pytestmark = pytest.mark.train


def test_the_shipped_starter_comes_back_as_weights_that_agree_with_it(tmp_path: Path) -> None:
    import torch

    out = recover_weights(starter_model_path(), tmp_path / "starter.pt")
    checkpoint = torch.load(out, weights_only=False)
    model = checkpoint["model"]
    assert model.names[0] == "smoke" and len(model.names) == 8
    batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert batch_norms and all(float(bn.running_mean.abs().max()) == 0.0 for bn in batch_norms)


def test_the_recovered_weights_load_and_detect_in_ultralytics(tmp_path: Path) -> None:
    from models.export import load_ultralytics

    ultralytics = load_ultralytics()
    model = ultralytics.YOLO(str(recover_weights(starter_model_path(), tmp_path / "starter.pt")))
    image = np.full((320, 320, 3), 120, np.uint8)
    results = model.predict(image, imgsz=320, device="cpu", verbose=False)
    assert results[0].boxes is not None  # runs end to end; the agreement itself is checked at recovery


def test_a_model_of_another_architecture_is_refused(tmp_path: Path) -> None:
    raw = np.zeros((6, 8), np.float32)
    other = constant_head_model(tmp_path / "m.onnx", raw, metadata=ultralytics_metadata(["stall", "umbrella"]))
    with pytest.raises(ModelsError, match=r"has no tensor model\.0\.conv\.weight"):
        recover_weights(other, tmp_path / "m.pt")
    with pytest.raises(ModelsError, match="not a readable ONNX model"):
        recover_weights(tmp_path / "missing.onnx", tmp_path / "x.pt")

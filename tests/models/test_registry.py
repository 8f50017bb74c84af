"""The model registry: versions, the promotion gate on real evaluations, forced promotions, hot swap, shadow."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.errors import ModelsError
from models.registry import (
    EvalSetSpec,
    ModelRegistry,
    PromotionRefusedError,
    UnknownVersionError,
    evaluate_on_set,
)
from pipelines.worker import ModelSlot
from tests.vision.onnx_models import constant_head_model, ultralytics_metadata

NAMES = ["stall", "umbrella"]


def model(path: Path, *, finds_stall: bool, score: float = 0.9) -> Path:
    """A 64×64 model that reports the stall in the middle of the picture, or a box far from it."""
    raw = np.zeros((6, 8), np.float32)
    raw[:4] = 1.0
    raw[:, 0] = [32, 32, 16, 16, score, 0.0] if finds_stall else [6, 6, 4, 4, score, 0.0]
    return constant_head_model(path, raw, metadata=ultralytics_metadata(NAMES))


@pytest.fixture
def eval_set(tmp_path: Path) -> EvalSetSpec:
    root = tmp_path / "fixed-set"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(3):
        cv2.imwrite(str(root / "images" / f"{i}.jpg"), np.full((64, 64, 3), 60 + 40 * i, np.uint8))
        (root / "labels" / f"{i}.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    (root / "data.yaml").write_text("path: .\ntrain: images\nval: images\nnames: [stall, umbrella]\n")
    return EvalSetSpec(name="street-fixed", path=str(root / "data.yaml"))


class CountingEvaluator:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, path: Path, spec: EvalSetSpec) -> dict[str, float]:
        self.calls.append(path.parent.name)
        return evaluate_on_set(path, spec)


@pytest.fixture
def registry(tmp_path: Path, eval_set: EvalSetSpec) -> ModelRegistry:
    registry = ModelRegistry(tmp_path / "registry")
    registry.set_eval_sets([eval_set])
    return registry


def test_versions_are_numbered_and_a_file_registers_once(registry: ModelRegistry, tmp_path: Path) -> None:
    good = model(tmp_path / "good.onnx", finds_stall=True)
    (tmp_path / "good.card.json").write_text(json.dumps({"classes": NAMES, "parent": "yolov8n.yaml"}))
    first = registry.register(good, note="first")
    second = registry.register(model(tmp_path / "bad.onnx", finds_stall=False))
    assert (first.version, second.version) == (1, 2)
    assert registry.register(good).version == 1
    assert first.card["parent"] == "yolov8n.yaml" and second.card == {}
    assert [e["event"] for e in registry.history()].count("register") == 2
    with pytest.raises(UnknownVersionError, match="no version 9"):
        registry.get(9)


def test_files_that_are_not_detectors_are_refused(registry: ModelRegistry, tmp_path: Path) -> None:
    (tmp_path / "x.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelsError, match="not a loadable ONNX model"):
        registry.register(tmp_path / "x.onnx")
    raw = np.zeros((6, 8), np.float32)
    with pytest.raises(ModelsError, match="no class names"):
        registry.register(constant_head_model(tmp_path / "anon.onnx", raw))
    with pytest.raises(ModelsError, match="does not exist"):
        registry.register(tmp_path / "missing.onnx")


def test_a_worse_candidate_is_refused_and_a_forced_one_keeps_the_reason(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    evaluator = CountingEvaluator()
    registry.seed(model(tmp_path / "good.onnx", finds_stall=True), note="shipped")
    worse = registry.register(model(tmp_path / "bad.onnx", finds_stall=False))
    with pytest.raises(PromotionRefusedError, match=r"street-fixed: mAP50 0\.000 against 0\.995 deployed") as refused:
        registry.promote(worse.version, evaluator, actor="eng-zhao")
    assert refused.value.gate.failures and registry.deployed().version == 1  # type: ignore[union-attr]
    assert registry.history()[-1]["event"] == "refuse"
    with pytest.raises(ModelsError, match="needs a reason"):
        registry.promote(worse.version, evaluator, actor="eng-zhao", force_reason="  ")
    gate = registry.promote(worse.version, evaluator, actor="eng-zhao", force_reason="rollback drill")
    assert not gate.passed
    assert registry.deployed().version == worse.version  # type: ignore[union-attr]
    assert registry.deployed_path.read_bytes() == worse.path.read_bytes()
    last = registry.history()[-1]
    assert (last["event"], last["forced"], last["reason"], last["actor"]) == (
        "promote",
        True,
        "rollback drill",
        "eng-zhao",
    )
    assert sorted(evaluator.calls) == ["v0001", "v0002"]  # each version measured once, then cached
    assert registry.get(1).metrics["street-fixed"]["mAP50"] == pytest.approx(0.995)


def test_a_candidate_within_the_tolerance_passes(registry: ModelRegistry, tmp_path: Path) -> None:
    registry.seed(model(tmp_path / "a.onnx", finds_stall=True, score=0.9), note="shipped")
    same = registry.register(model(tmp_path / "b.onnx", finds_stall=True, score=0.8))
    gate = registry.promote(same.version, evaluate_on_set, actor="eng-zhao")
    assert gate.passed and gate.rows[0][1] == pytest.approx(gate.rows[0][2])


def test_promotion_replaces_the_file_workers_watch_and_their_slot_swaps(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    registry.seed(model(tmp_path / "a.onnx", finds_stall=False), note="shipped")
    slot = ModelSlot(registry.deployed_path)
    better = registry.register(model(tmp_path / "b.onnx", finds_stall=True))
    assert not slot.check()
    registry.promote(better.version, evaluate_on_set, actor="eng-zhao")
    assert slot.check()
    assert slot.detector.info.sha256 == better.sha256


def test_seeding_is_idempotent_and_restores_a_lost_deployed_file(registry: ModelRegistry, tmp_path: Path) -> None:
    first = registry.seed(model(tmp_path / "a.onnx", finds_stall=True), note="shipped")
    again = registry.seed(model(tmp_path / "b.onnx", finds_stall=False), note="shipped")
    assert again.version == first.version and len(registry.versions()) == 1
    registry.deployed_path.unlink()
    registry.seed(tmp_path / "a.onnx", note="shipped")
    assert registry.deployed_path.read_bytes() == first.path.read_bytes()


def test_shadow_runs_start_stop_and_sum_their_camera_reports(registry: ModelRegistry, tmp_path: Path) -> None:
    registry.seed(model(tmp_path / "a.onnx", finds_stall=True), note="shipped")
    candidate = registry.register(model(tmp_path / "b.onnx", finds_stall=False))
    registry.start_shadow(candidate.version, actor="eng-zhao")
    assert registry.shadow_path.read_bytes() == candidate.path.read_bytes()
    registry.shadow_reports.mkdir(exist_ok=True)
    for cam, only in (("cam-1", 3), ("cam-2", 1)):
        report = {"frames": 10, "matched": 2, "only_current": only, "only_candidate": 0}
        (registry.shadow_reports / f"{cam}.json").write_text(json.dumps(report))
    summary = registry.shadow_summary()
    assert summary["version"] == candidate.version
    assert summary["total"]["only_current"] == 4 and summary["total"]["frames"] == 20
    registry.stop_shadow(actor="eng-zhao")
    assert not registry.shadow_path.exists() and registry.shadow_version() is None


def test_a_corrupt_registry_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "registry.json").write_text("{not json")
    with pytest.raises(ModelsError, match=r"registry\.json cannot be read"):
        ModelRegistry(tmp_path).versions()

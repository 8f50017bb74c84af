"""The learning loop from the command line, as an engineer runs it on a fresh machine: a synthetic
day of review decisions -> dataset -> training -> evaluation -> registry, gate, forced promotion ->
the cameras' model slot swaps to the promoted file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cases.db import Database
from cases.models import Detection, Transition
from models.registry import ModelRegistry
from nonsite.cli import main
from nonsite.day import run_synthetic_day
from nonsite.starter import starter_model_path
from pipelines.worker import ModelSlot
from vision.detectors import create_detector


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    detector = create_detector({"type": "onnx_yolo", "path": starter_model_path()})
    return run_synthetic_day(detector, tmp_path_factory.mktemp("loop") / "day", hours=(14, 17)).out_dir


def store_args(day: Path) -> list[str]:
    return ["--db", f"sqlite:///{day / 'cases.db'}", "--evidence", str(day / "evidence"), "--keys", str(day / "keys")]


def test_the_days_officers_correct_boxes_before_they_confirm(day: Path) -> None:
    db = Database(f"sqlite:///{day / 'cases.db'}", migrate=False)
    try:
        with db.session() as s:
            corrected = s.query(Detection).filter(Detection.corrected_by.is_not(None)).all()
            decisions = {t.action for t in s.query(Transition)}
    finally:
        db.close()
    assert corrected, "the synthetic officers fixed at least one box or label"
    assert all(d.corrected_by in ("officer-li", "officer-wang") for d in corrected)
    assert "confirm" in decisions


def test_a_dataset_is_built_from_the_days_decisions(
    day: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ds"
    assert main(["dataset", "build", *store_args(day), "--out", str(out), "--registry", str(tmp_path / "none")]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"] == list(create_detector({"type": "onnx_yolo", "path": starter_model_path()}).names)
    decisions = manifest["sources"][0]
    assert decisions["kind"] == "decisions" and decisions["images"] > 0
    assert manifest["counts"]["val"]["images"] > 0
    assert f"dataset {manifest['version']}" in capsys.readouterr().out
    assert main(["dataset", "build", *store_args(day), "--out", str(out)]) == 1  # a version is never overwritten


@pytest.mark.train
def test_train_evaluate_register_gate_promote_and_the_cameras_switch(day: Path, tmp_path: Path) -> None:
    dataset, models, registry_dir = tmp_path / "ds", tmp_path / "models", tmp_path / "registry"
    registry = ModelRegistry(registry_dir)
    shipped = registry.seed(
        starter_model_path(), note="the starter model shipped with nonsite"
    )  # as `nonsite run` does
    slot = ModelSlot(registry.deployed_path)  # what a camera worker holds
    build = ["dataset", "build", *store_args(day), "--out", str(dataset), "--synthetic", "16", "--registry"]
    assert main([*build, str(registry_dir)]) == 0
    assert main(
        ["train", "--data", str(dataset), "--epochs", "1", "--imgsz", "64", "--batch", "8", "--device", "cpu",
         "--workers", "0", "--out", str(models), "--register", str(registry_dir)]
    ) == 0  # fmt: skip
    manifest = json.loads((dataset / "manifest.json").read_text())
    (onnx,) = models.glob("*.onnx")
    card = json.loads(onnx.with_suffix(".card.json").read_text())
    assert card["training_data"]["dataset_version"] == manifest["version"]
    assert {s["kind"] for s in card["training_data"]["sources"]} == {"decisions", "synthetic"}
    assert f"dataset {manifest['version']} val" in card["metrics"]
    assert card["command"].startswith("nonsite train --data")
    assert onnx.with_suffix(".pt").is_file(), "the weights are kept to fine-tune from"

    report = tmp_path / "eval.json"
    assert main(["eval", "detect", "--model", str(onnx), "--data", str(dataset), "--json", str(report)]) == 0
    assert json.loads(report.read_text())["images"] == manifest["counts"]["val"]["images"]

    candidate = registry.versions()[-1]
    assert candidate.version == 2 and candidate.sha256 == card["sha256"]
    assert main(["models", "eval-sets", "--registry", str(registry_dir), "--set", f"name=day-val;path={dataset}"]) == 0
    # one epoch at 64 px is far worse than the shipped model on the day's own frames: refused
    assert main(["models", "promote", "2", "--registry", str(registry_dir)]) == 1
    assert registry.deployed().version == shipped.version  # type: ignore[union-attr]
    assert not slot.check()
    assert main(["models", "promote", "2", "--force", "--registry", str(registry_dir)]) == 1  # no reason given
    assert main(
        ["models", "promote", "2", "--force", "--reason", "loop test", "--actor", "eng-zhao", "--registry",
         str(registry_dir)]
    ) == 0  # fmt: skip
    assert slot.check(), "the camera worker's slot swapped to the promoted file"
    assert slot.detector.info.sha256 == candidate.sha256
    last = registry.history()[-1]
    assert (last["event"], last["forced"], last["reason"]) == ("promote", True, "loop test")


@pytest.mark.train
@pytest.mark.parametrize(
    ("asked", "cuda", "resolved"),
    [("auto", True, "0"), ("auto", False, "cpu"), ("cpu", True, "cpu"), ("1", True, "1"), ("0", False, None)],
)
def test_training_runs_on_cuda_when_torch_sees_it_and_says_so_when_asked_for_a_missing_one(
    monkeypatch: pytest.MonkeyPatch, asked: str, cuda: bool, resolved: str | None
) -> None:
    import torch

    from models.errors import ModelsError
    from models.train import _resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    if resolved is None:
        with pytest.raises(ModelsError, match="device '0' asked for, but torch sees no CUDA device here"):
            _resolve_device(asked)
    else:
        assert _resolve_device(asked) == resolved


def test_training_settings_are_checked_by_name_and_read_as_values() -> None:
    from nonsite.cli import CommandError
    from nonsite.learning_cli import parse_hyp

    known = {"mosaic", "hsv_h", "fliplr", "optimizer", "cos_lr"}
    assert parse_hyp(["mosaic=0", "hsv_h=0.015", "optimizer=AdamW", "cos_lr=true"], known) == {
        "mosaic": 0, "hsv_h": 0.015, "optimizer": "AdamW", "cos_lr": True
    }  # fmt: skip
    with pytest.raises(CommandError, match="--hyp mosiac is not an ultralytics setting"):
        parse_hyp(["mosiac=0"], known)
    for managed in ("epochs", "cfg", "save"):  # cfg= would replace every setting nonsite passes
        with pytest.raises(CommandError, match=f"--hyp {managed} is set by nonsite train itself"):
            parse_hyp([f"{managed}=x"], known | {managed})
    with pytest.raises(CommandError, match="--hyp takes KEY=VALUE, got 'mosaic'"):
        parse_hyp(["mosaic"], known)


@pytest.mark.train
def test_a_shipped_onnx_model_is_fine_tuned_from_its_recovered_weights_with_settings_in_the_card(
    day: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset, models = tmp_path / "ds", tmp_path / "models"
    assert main(["dataset", "build", *store_args(day), "--out", str(dataset)]) == 0
    train = ["train", "--data", str(dataset), "--epochs", "1", "--imgsz", "64", "--batch", "8", "--device", "cpu",
             "--workers", "0", "--out", str(models), "--name", "tuned",
             "--base", str(starter_model_path())]  # fmt: skip
    assert main([*train, "--hyp", "mosaic=0", "--hyp", "fliplr=0.0"]) == 0
    card = json.loads((models / "tuned.card.json").read_text())
    assert card["parent"].startswith("starter.onnx (sha256 ") and "recovered by models.recover" in card["parent"]
    assert card["hyperparameters"] == {"mosaic": 0, "fliplr": 0.0}
    assert (models / "tuned.base.pt").is_file() and (models / "tuned.onnx").is_file()
    capsys.readouterr()
    assert main([*train, "--name", "again", "--hyp", "mosaik=0"]) == 1
    assert "--hyp mosaik is not an ultralytics setting" in capsys.readouterr().err
    assert not (models / "again.onnx").exists()

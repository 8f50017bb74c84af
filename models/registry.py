"""The model registry: numbered versions of one deployment's detector, promotion gates, shadow.

A registry is a folder:

    registry.json          versions, the deployed one, the evaluation sets that gate promotion
    history.jsonl          every registration, evaluation, promotion (forced or not), shadow start/stop
    versions/v0003/model.onnx, model.card.json
    deployed.onnx          the file camera workers run; replaced atomically on promotion, which
                           their `ModelSlot` notices and hot-swaps
    shadow.onnx            a candidate the workers run beside the deployed model, filing nothing
    shadow/<camera>.json   what the shadow run saw differently, per camera

Promotion evaluates the candidate and the deployed model on the registry's fixed evaluation
sets (cached per version and set in registry.json) and refuses a candidate whose mAP50 is
lower than the deployed model's on any set by more than the tolerance, unless it is forced
with a reason; a forced promotion keeps the refusal's figures in the history.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.errors import ModelsError
from vision.detectors.base import file_sha256

logger = logging.getLogger(__name__)

FORMAT = "nonsite.registry/1"
DEFAULT_TOLERANCE = 0.01  # one point of mAP50


class UnknownVersionError(ModelsError):
    """The registry has no such version."""


class PromotionRefusedError(ModelsError):
    """The candidate does worse than the deployed model on a fixed evaluation set."""

    def __init__(self, message: str, gate: GateResult) -> None:
        super().__init__(message)
        self.gate = gate


@dataclass(frozen=True)
class EvalSetSpec:
    """A fixed evaluation set: where it is and how its classes meet the model's."""

    name: str
    path: str
    split: str = "val"
    label_map: dict[str, str] | None = None
    model_map: dict[str, list[str]] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "path": self.path, "split": self.split}
        if self.label_map:
            out["label_map"] = self.label_map
        if self.model_map:
            out["model_map"] = self.model_map
        return out

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> EvalSetSpec:
        return cls(
            name=str(doc["name"]),
            path=str(doc["path"]),
            split=str(doc.get("split", "val")),
            label_map=dict(doc["label_map"]) if doc.get("label_map") else None,
            model_map={k: list(v) for k, v in doc["model_map"].items()} if doc.get("model_map") else None,
        )


@dataclass(frozen=True)
class ModelVersion:
    version: int
    sha256: str
    path: Path
    card: dict[str, Any]
    registered_at: str
    note: str
    metrics: dict[str, dict[str, float]]  # eval set name -> figures

    @property
    def label(self) -> str:
        return f"v{self.version:04d}"


@dataclass(frozen=True)
class GateResult:
    """Candidate against the deployed model, set by set (mAP50)."""

    candidate: int
    deployed: int | None
    tolerance: float
    rows: tuple[tuple[str, float, float | None], ...]  # set, candidate mAP50, deployed mAP50

    @property
    def failures(self) -> list[str]:
        return [
            f"{name}: mAP50 {cand:.3f} against {dep:.3f} deployed"
            for name, cand, dep in self.rows
            if dep is not None and cand < dep - self.tolerance
        ]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "deployed": self.deployed,
            "tolerance": self.tolerance,
            "sets": [{"set": n, "candidate_mAP50": c, "deployed_mAP50": d} for n, c, d in self.rows],
            "passed": self.passed,
        }


#: evaluates a model file on an evaluation set; returns figures with at least "mAP50"
Evaluator = Callable[[Path, EvalSetSpec], dict[str, float]]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _atomic_copy(source: Path, target: Path) -> None:
    """Copy so that a reader sees the old file or the whole new one, never half of it."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, target)


class ModelRegistry:
    """One deployment's models, in a folder (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._doc_path = self.root / "registry.json"

    # -- the document ------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        if not self._doc_path.is_file():
            return {"format": FORMAT, "versions": [], "deployed": None, "eval_sets": []}
        try:
            doc = json.loads(self._doc_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ModelsError(f"the registry file {self._doc_path} cannot be read: {e}") from e
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ModelsError(f"{self._doc_path} is not a nonsite model registry (format {FORMAT})")
        return doc

    def _save(self, doc: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._doc_path.with_name(".registry.json.tmp")
        tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, self._doc_path)

    def _log(self, event: str, **fields: Any) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "history.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"at": _now(), "event": event, **fields}, ensure_ascii=False) + "\n")

    def history(self) -> list[dict[str, Any]]:
        path = self.root / "history.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    @property
    def deployed_path(self) -> Path:
        return self.root / "deployed.onnx"

    @property
    def shadow_path(self) -> Path:
        return self.root / "shadow.onnx"

    @property
    def shadow_reports(self) -> Path:
        return self.root / "shadow"

    # -- versions ----------------------------------------------------------------------

    def _version(self, entry: Mapping[str, Any]) -> ModelVersion:
        folder = self.root / "versions" / f"v{int(entry['version']):04d}"
        card_path = folder / "model.card.json"
        card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
        return ModelVersion(
            version=int(entry["version"]),
            sha256=str(entry["sha256"]),
            path=folder / "model.onnx",
            card=card,
            registered_at=str(entry["registered_at"]),
            note=str(entry.get("note", "")),
            metrics={k: dict(v) for k, v in (entry.get("metrics") or {}).items()},
        )

    def versions(self) -> list[ModelVersion]:
        return [self._version(e) for e in self._load()["versions"]]

    def get(self, version: int) -> ModelVersion:
        for entry in self._load()["versions"]:
            if int(entry["version"]) == version:
                return self._version(entry)
        known = ", ".join(f"v{int(e['version'])}" for e in self._load()["versions"]) or "none"
        raise UnknownVersionError(f"the registry at {self.root} has no version {version} (it has {known})")

    def deployed(self) -> ModelVersion | None:
        number = self._load().get("deployed")
        return self.get(int(number)) if number is not None else None

    def register(self, model: Path, *, note: str = "", card: Path | None = None) -> ModelVersion:
        """Add `model` (and its card, `<stem>.card.json` beside it unless named) as the next
        version; a file already registered gives its existing version."""
        model = Path(model)
        if not model.is_file():
            raise ModelsError(f"model file {model} does not exist")
        _check_onnx(model)
        sha = file_sha256(model)
        doc = self._load()
        for entry in doc["versions"]:
            if entry["sha256"] == sha:
                return self._version(entry)
        number = max((int(e["version"]) for e in doc["versions"]), default=0) + 1
        folder = self.root / "versions" / f"v{number:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model, folder / "model.onnx")
        card = card or model.with_name(f"{model.stem}.card.json")
        if card.is_file():
            shutil.copyfile(card, folder / "model.card.json")
        weights = model.with_suffix(".pt")
        if weights.is_file():  # kept so that the next training can start from this version
            shutil.copyfile(weights, folder / "model.pt")
        doc["versions"].append(
            {"version": number, "sha256": sha, "registered_at": _now(), "note": note, "source": str(model)}
        )
        self._save(doc)
        self._log("register", version=number, sha256=sha, source=str(model), note=note)
        logger.info("registered %s as v%04d", model, number)
        return self.get(number)

    # -- evaluation sets and gates ----------------------------------------------------

    def eval_sets(self) -> list[EvalSetSpec]:
        return [EvalSetSpec.from_json(d) for d in self._load().get("eval_sets", [])]

    def set_eval_sets(self, sets: list[EvalSetSpec]) -> None:
        """Fix the evaluation sets promotion is gated on (changing them clears cached figures)."""
        names = [s.name for s in sets]
        if len(set(names)) != len(names):
            raise ModelsError(f"evaluation set names must be unique, got {names}")
        doc = self._load()
        doc["eval_sets"] = [s.to_json() for s in sets]
        for entry in doc["versions"]:
            entry.pop("metrics", None)
        self._save(doc)
        self._log("eval_sets", sets=doc["eval_sets"])

    def evaluate(self, version: int, evaluator: Evaluator, *, refresh: bool = False) -> dict[str, dict[str, float]]:
        """The version's figures on every fixed set, measured once and cached."""
        doc = self._load()
        entry = next((e for e in doc["versions"] if int(e["version"]) == version), None)
        if entry is None:
            raise UnknownVersionError(f"the registry at {self.root} has no version {version}")
        metrics = dict(entry.get("metrics") or {})
        path = self._version(entry).path
        for spec in self.eval_sets():
            if refresh or spec.name not in metrics:
                metrics[spec.name] = {k: round(float(v), 4) for k, v in evaluator(path, spec).items()}
                self._log("evaluate", version=version, set=spec.name, figures=metrics[spec.name])
        doc = self._load()  # the evaluation took a while: merge into the latest document
        for e in doc["versions"]:
            if int(e["version"]) == version:
                e["metrics"] = metrics
        self._save(doc)
        return metrics

    def gate(self, version: int, evaluator: Evaluator, *, tolerance: float = DEFAULT_TOLERANCE) -> GateResult:
        """Compare `version` with the deployed model on the fixed sets (no sets: nothing to refuse on)."""
        current = self.deployed()
        candidate = self.evaluate(version, evaluator)
        baseline = self.evaluate(current.version, evaluator) if current and current.version != version else None
        rows = tuple(
            (
                spec.name,
                float(candidate[spec.name]["mAP50"]),
                float(baseline[spec.name]["mAP50"]) if baseline else None,
            )
            for spec in self.eval_sets()
        )
        return GateResult(version, current.version if current else None, tolerance, rows)

    # -- promotion and shadow ------------------------------------------------------------

    def promote(
        self,
        version: int,
        evaluator: Evaluator,
        *,
        actor: str,
        tolerance: float = DEFAULT_TOLERANCE,
        force_reason: str | None = None,
    ) -> GateResult:
        """Deploy `version` if it passes the gate (or is forced with a reason); raise
        `PromotionRefusedError` naming the sets it failed otherwise."""
        if force_reason is not None and not force_reason.strip():
            raise ModelsError("a forced promotion needs a reason in words")
        chosen = self.get(version)
        result = self.gate(version, evaluator, tolerance=tolerance)
        if not result.passed and force_reason is None:
            self._log("refuse", version=version, actor=actor, gate=result.to_json())
            raise PromotionRefusedError(
                f"v{version} does worse than the deployed v{result.deployed} by more than {tolerance:.3f} mAP50 on "
                + "; ".join(result.failures)
                + " (promote it anyway with a reason to override)",
                result,
            )
        _atomic_copy(chosen.path, self.deployed_path)
        if (chosen.path.with_name("model.card.json")).is_file():
            _atomic_copy(chosen.path.with_name("model.card.json"), self.root / "deployed.card.json")
        doc = self._load()
        previous = doc.get("deployed")
        doc["deployed"] = version
        self._save(doc)
        self._log(
            "promote", version=version, previous=previous, actor=actor, gate=result.to_json(),
            forced=not result.passed, reason=force_reason,
        )  # fmt: skip
        logger.info("promoted v%04d (was %s) by %s", version, previous, actor)
        return result

    def seed(self, model: Path, *, note: str) -> ModelVersion:
        """An empty registry starts with `model` registered and deployed (the shipped starter)."""
        current = self.deployed()
        if current is not None:
            if not self.deployed_path.is_file():  # someone removed the file the workers run: restore it
                _atomic_copy(current.path, self.deployed_path)
            return current
        version = self.register(model, note=note)
        _atomic_copy(version.path, self.deployed_path)
        doc = self._load()
        doc["deployed"] = version.version
        self._save(doc)
        self._log("promote", version=version.version, previous=None, actor="system", forced=False, reason=note)
        return version

    def start_shadow(self, version: int, *, actor: str) -> ModelVersion:
        """Run `version` beside the deployed model on the live cameras (workers pick it up)."""
        chosen = self.get(version)
        shutil.rmtree(self.shadow_reports, ignore_errors=True)
        _atomic_copy(chosen.path, self.shadow_path)
        doc = self._load()
        doc["shadow"] = version
        self._save(doc)
        self._log("shadow_start", version=version, actor=actor)
        return chosen

    def stop_shadow(self, *, actor: str) -> None:
        doc = self._load()
        version = doc.pop("shadow", None)
        self.shadow_path.unlink(missing_ok=True)
        self._save(doc)
        self._log("shadow_stop", version=version, actor=actor)

    def shadow_version(self) -> int | None:
        value = self._load().get("shadow")
        return int(value) if value is not None else None

    def shadow_summary(self) -> dict[str, Any]:
        """The workers' shadow reports, per camera and in total."""
        cameras = {}
        for path in sorted(self.shadow_reports.glob("*.json")) if self.shadow_reports.is_dir() else []:
            try:
                cameras[path.stem] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
        keys = ("frames", "current_boxes", "candidate_boxes", "matched", "only_current", "only_candidate")
        total = {k: sum(int(c.get(k, 0)) for c in cameras.values()) for k in keys}
        return {"version": self.shadow_version(), "total": total, "cameras": cameras}


def _check_onnx(path: Path) -> None:
    """A file that is not an ONNX detector with class names is refused before it is registered."""
    import ast

    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ModelsError(f"{path} is not a loadable ONNX model: {e}") from e
    names = session.get_modelmeta().custom_metadata_map.get("names")
    try:
        parsed = ast.literal_eval(names) if names else None
    except (ValueError, SyntaxError):
        parsed = None
    if not isinstance(parsed, dict) or not parsed:
        raise ModelsError(f"{path} carries no class names in its metadata (export it with nonsite train)")


def evaluate_on_set(model: Path, spec: EvalSetSpec) -> dict[str, float]:
    """How promotion gates measure a version on one fixed set (the detection core, no torch)."""
    from models.evaluate_detect import evaluate_model

    report = evaluate_model(
        model, Path(spec.path), split=spec.split, label_map=spec.label_map, model_map=spec.model_map
    )
    return {"mAP50": report.map50, "mAP50-95": report.map50_95, "precision": report.precision, "recall": report.recall}

"""`nonsite dataset`, `nonsite train`, `nonsite eval detect` and `nonsite models`: the learning loop.

Review decisions become a versioned dataset; a model is trained on it offline and exported
to ONNX with a card; it is evaluated on fixed sets, registered, and promoted past a gate
(or run in shadow first); camera workers hot-swap the promoted file.
"""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.evaluate_detect import DetectionReport
    from models.registry import EvalSetSpec, ModelRegistry

DEFAULT_REGISTRY = Path("var/models")
DB_HELP = "case database URL (default: $NONSITE_DATABASE_URL, else sqlite:///var/nonsite.db)"


def parse_map(text: str | None, *, many: bool = False) -> dict[str, Any]:
    """'0:smoke,1:smoke' -> {'0': 'smoke', '1': 'smoke'}; with `many`, 'vendor:stall+umbrella'
    -> {'vendor': ['stall', 'umbrella']}."""
    from nonsite.cli import CommandError

    out: dict[str, Any] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition(":")
        if not sep or not key.strip() or not value.strip():
            raise CommandError(f"a map entry is 'key:value', got {part!r} in {text!r}")
        out[key.strip()] = [v.strip() for v in value.split("+") if v.strip()] if many else value.strip()
    return out


def _external(text: str) -> Any:
    """--external 'path=DIR;map=0:stall,1:umbrella;license=CC BY 4.0[;share=0.5][;val=0.25][;name=NAME]'.

    `val` holds that share of the set out for validation (near-duplicates kept together)."""
    from datasets.build import ExternalSet
    from nonsite.cli import CommandError

    fields = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if not sep:
            raise CommandError(f"--external fields are key=value separated by ';', got {part!r}")
        fields[key.strip()] = value.strip()
    unknown = set(fields) - {"path", "map", "license", "share", "name", "val"}
    if unknown or "path" not in fields or "map" not in fields or "license" not in fields:
        raise CommandError(
            f"--external needs path=, map= and license= (and may give share=, val=, name=), got {text!r}"
        )
    path = Path(fields["path"])
    if not path.is_dir():
        raise CommandError(f"external set {path} does not exist")
    return ExternalSet(
        name=fields.get("name") or path.name,
        path=path,
        license=fields["license"],
        label_map=parse_map(fields["map"]),
        share=float(fields["share"]) if "share" in fields else None,
        val_fraction=float(fields.get("val", 0.0)),
    )


def add_commands(sub: Any, vault_arguments: Any, positive_int: Any) -> None:
    dataset = sub.add_parser("dataset", help="training datasets built from officers' review decisions")
    dataset_sub = dataset.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    build = dataset_sub.add_parser("build", help="turn review decisions into a versioned YOLO dataset")
    build.add_argument("--db", help=DB_HELP)
    vault_arguments(build)
    build.add_argument(
        "--no-decisions", action="store_true", help="external and synthetic sets only (needs an external val=)"
    )
    build.add_argument("--out", type=Path, required=True, help="new folder for the dataset (never overwritten)")
    build.add_argument(
        "--classes", help="comma-separated class names (default: those of the deployed model, else the starter's)"
    )
    build.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY, help="model registry (for --classes)")
    build.add_argument("--negative-ratio", type=float, default=0.5, help="hard negatives per labelled image at most")
    build.add_argument(
        "--reasons",
        default="false_detection,steam,fog,shadow,reflection",
        help="rejection reason codes kept as hard negatives",
    )
    build.add_argument("--dedupe", type=int, default=4, help="near-duplicate distance, bits of a 64-bit dHash")
    build.add_argument("--val-fraction", type=float, default=0.2)
    build.add_argument("--split", choices=["auto", "camera", "time"], default="auto")
    build.add_argument("--guard-minutes", type=float, default=10.0, help="time split: gap dropped before val")
    build.add_argument("--external", action="append", default=[], type=str, help="path=DIR;map=0:cls;license=...")
    build.add_argument("--synthetic", type=int, default=0, help="synthetic images rendered into training")
    build.add_argument("--seed", type=int, default=0)
    show = dataset_sub.add_parser("show", help="a dataset's manifest: sources, counts, version")
    show.add_argument("path", type=Path)

    train = sub.add_parser("train", help="train a detector on a dataset offline, export ONNX with a card")
    train.add_argument("--data", type=Path, required=True, help="dataset folder (or its data.yaml)")
    train.add_argument(
        "--base",
        default="yolov8n.yaml",
        help="a .pt to fine-tune, one of nonsite's ONNX models (its weights are recovered), or an ultralytics .yaml",
    )
    train.add_argument("--out", type=Path, default=Path("var/train/models"), help="where the model and card go")
    train.add_argument("--name", default=None, help="model name (default: from the dataset version)")
    train.add_argument("--epochs", type=positive_int, default=50)
    train.add_argument("--imgsz", type=positive_int, default=640)
    train.add_argument("--batch", type=positive_int, default=16)
    train.add_argument("--device", default="auto", help="auto, cpu, or a CUDA device index")
    train.add_argument("--workers", type=int, default=2)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--time-hours", type=float, default=None, help="stop training after this long")
    train.add_argument("--quantize", action="store_true", help="also make a static INT8 model; kept if it loses <1pt")
    train.add_argument("--register", type=Path, default=None, help="register the result in this model registry")
    train.add_argument(
        "--hyp",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an ultralytics training setting, e.g. --hyp mosaic=0 --hyp fliplr=0 (augmentation off); repeatable",
    )

    models = sub.add_parser("models", help="the model registry: versions, gates, promotion, shadow runs")
    models_sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = models_sub.add_parser(name, help=help_text)
        parser.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY, help="registry folder")
        return parser

    command("list", "versions, their figures, the deployed one and the one in shadow")
    register = command("register", "add an ONNX model (and its card) as the next version")
    register.add_argument("model", type=Path)
    register.add_argument("--note", default="")
    sets = command("eval-sets", "fix the evaluation sets promotion is gated on")
    sets.add_argument(
        "--set",
        action="append",
        default=[],
        dest="sets",
        help="name=NAME;path=DIR|data.yaml[;split=val][;labels=0:smoke,1:smoke][;classes=vendor:stall+umbrella]",
    )
    promote = command("promote", "deploy a version if it does no worse than the deployed one on the fixed sets")
    promote.add_argument("version", type=int)
    promote.add_argument("--tolerance", type=float, default=0.01, help="mAP50 a candidate may lose per set")
    promote.add_argument("--force", action="store_true", help="deploy even when the gate refuses (needs --reason)")
    promote.add_argument("--reason", default=None, help="why a refused candidate is deployed anyway")
    promote.add_argument("--actor", default=None, help="who promotes (default: the login name)")
    shadow = command("shadow", "run a version beside the deployed model on live cameras, filing nothing")
    shadow.add_argument("version", nargs="?", type=int)
    shadow.add_argument("--stop", action="store_true", help="end the shadow run")
    shadow.add_argument("--report", action="store_true", help="what the shadow run saw differently so far")


def cmd_dataset(args: argparse.Namespace) -> int:
    from nonsite.cli import CommandError

    if args.dataset_command == "show":
        from datasets.build import read_manifest

        manifest = read_manifest(args.path)
        doc = dict(manifest.document)
        doc["files"] = f"{len(doc.get('files', {}))} files"
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    from cases.db import Database
    from datasets.build import build_dataset
    from nonsite.cli import open_vault
    from pipelines.learning import review_decisions

    classes = [c.strip() for c in (args.classes or "").split(",") if c.strip()] or _deployed_classes(args.registry)
    external = [_external(text) for text in args.external]
    if not 0.0 < args.val_fraction < 1.0:
        raise CommandError(f"--val-fraction must lie in (0, 1), got {args.val_fraction}")
    if args.no_decisions and not any(e.val_fraction for e in external):
        raise CommandError("--no-decisions needs an --external set with val= to validate on")
    db = None if args.no_decisions else Database(args.db)
    vault = None if args.no_decisions else open_vault(args)
    try:
        from datasets.build import SyntheticMix

        manifest = build_dataset(
            review_decisions(db, vault.store) if db is not None and vault is not None else [],
            args.out,
            classes=classes,
            negative_ratio=args.negative_ratio,
            reasons=[r.strip() for r in args.reasons.split(",") if r.strip()],
            dedupe_distance=args.dedupe,
            val_fraction=args.val_fraction,
            split=args.split,
            guard=timedelta(minutes=args.guard_minutes),
            external=external,
            synthetic=SyntheticMix(args.synthetic, args.seed) if args.synthetic else None,
            seed=args.seed,
            command=args.command_line,
        )
    except ValueError as e:
        raise CommandError(str(e)) from e
    finally:
        if vault is not None:
            vault.close()
        if db is not None:
            db.close()
    doc = manifest.document
    print(f"dataset {manifest.version} at {manifest.path} ({doc['split']['method']} split)")
    for split in ("train", "val"):
        counts = doc["counts"][split]
        per_class = ", ".join(f"{k} {v}" for k, v in counts["per_class"].items()) or "none"
        negatives = ", ".join(f"{k} {v}" for k, v in counts["negatives_by_reason"].items()) or "none"
        print(f"  {split}: {counts['images']} images, boxes: {per_class}; hard negatives: {negatives}")
    for source in doc["sources"]:
        print(f"  source {source['kind']}: {source['name']}, {source['images']} images, "
              f"{source['share_of_train']:.0%} of train, licence: {source['license']}")  # fmt: skip
    return 0


def _deployed_classes(registry_root: Path) -> list[str]:
    from models.registry import ModelRegistry
    from nonsite.starter import starter_model_path
    from vision.detectors import create_detector

    deployed = ModelRegistry(registry_root).deployed()
    path = deployed.path if deployed else starter_model_path()
    return list(create_detector({"type": "onnx_yolo", "path": path}).names)


#: training settings `nonsite train` decides itself (its own options, or the offline rules)
MANAGED_SETTINGS = frozenset(
    {"data", "epochs", "imgsz", "batch", "device", "workers", "seed", "time", "project", "name", "exist_ok",
     "plots", "model", "resume", "deterministic", "verbose", "mode", "task", "cfg", "save", "format"}
)  # fmt: skip


def parse_hyp(items: list[str], known: set[str]) -> dict[str, Any]:
    """['mosaic=0', 'hsv_h=0.0'] -> {'mosaic': 0, 'hsv_h': 0.0}; values read as YAML scalars.

    A key ultralytics does not know, or one `nonsite train` sets itself, is refused by name."""
    import yaml

    from nonsite.cli import CommandError

    settings: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise CommandError(f"--hyp takes KEY=VALUE, got {item!r}")
        if key in MANAGED_SETTINGS:
            raise CommandError(f"--hyp {key} is set by nonsite train itself; use its own option (see --help)")
        if key not in known:
            raise CommandError(f"--hyp {key} is not an ultralytics setting")
        try:
            settings[key] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise CommandError(f"--hyp {key}: {value!r} is not a value: {e}") from e
    return settings


def _base_weights(base: str, out: Path, name: str) -> tuple[str, str]:
    """The weights to start from, and how the card names the parent: an ONNX model's are recovered."""
    from nonsite.cli import CommandError

    path = Path(base)
    if path.suffix.lower() != ".onnx":
        return base, base
    from models.errors import ModelsError
    from models.recover import recover_weights, recovered_parent

    if not path.is_file():
        raise CommandError(f"base model {path} does not exist")
    recovered = out / f"{name}.base.pt"
    out.mkdir(parents=True, exist_ok=True)
    try:
        recover_weights(path, recovered)
    except ModelsError as e:
        raise CommandError(f"cannot fine-tune from {path}: {e}") from e
    return str(recovered), recovered_parent(path)


def cmd_train(args: argparse.Namespace) -> int:
    from datasets.build import read_manifest
    from models.evaluate_detect import evaluate_model, load_eval_set
    from models.train import train_detector, write_card

    data_yaml = args.data / "data.yaml" if args.data.is_dir() else args.data
    manifest = read_manifest(data_yaml)
    doc = manifest.document
    name = args.name or f"nonsite-{manifest.version}"
    hyp: dict[str, Any] = {}
    if args.hyp:
        from models.export import load_ultralytics

        load_ultralytics()
        from ultralytics.cfg import DEFAULT_CFG_DICT

        hyp = parse_hyp(args.hyp, set(DEFAULT_CFG_DICT))
    base, parent = _base_weights(args.base, args.out, name)
    training_data = {
        "dataset": str(manifest.path),
        "dataset_version": manifest.version,
        "dataset_sha256": doc["sha256"],
        "sources": [
            {k: s[k] for k in ("kind", "name", "license", "images", "share_of_train") if k in s} for s in doc["sources"]
        ],
        "counts": doc["counts"],
        "classes": doc["classes"],
    }
    result = train_detector(
        data=data_yaml,
        out_dir=args.out,
        name=name,
        base=base,
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        device=args.device,
        workers=args.workers,
        seed=args.seed,
        time_hours=args.time_hours,
        training_data=training_data,
        command=args.command_line,
        metrics_label=f"dataset {manifest.version} val (ultralytics)",
        **hyp,
    )
    print(f"trained {result.epochs} epochs in {result.seconds:.0f} s on {args.device}")
    report = evaluate_model(result.onnx, data_yaml, imgsz=args.imgsz)
    print(report.table())
    card = json.loads(result.card.read_text(encoding="utf-8"))
    metrics = {**card["metrics"], f"dataset {manifest.version} val": report.to_json()}
    extra = {k: card[k] for k in ("epochs", "train_seconds", "device") if k in card}
    if hyp:
        extra["hyperparameters"] = hyp
    if args.quantize:
        from models.quantize import quantize_and_compare

        eval_set = load_eval_set(data_yaml)
        calibration = sorted((manifest.path / "images" / "train").glob("*.jpg"))[:64]
        quant = quantize_and_compare(result.onnx, eval_set, calibration=calibration, imgsz=args.imgsz)
        extra["int8"] = quant.to_json()
        verdict = "kept" if quant.kept else "dropped"
        print(f"INT8: mAP50 {quant.int8_map50:.3f} against {quant.fp32_map50:.3f} FP32, "
              f"{quant.speedup:.2f}x faster on this CPU: {verdict}")  # fmt: skip
    write_card(
        result.onnx, parent=parent, metrics=metrics, training_data=training_data,
        command=card["command"], extra=extra,
    )  # fmt: skip
    print(f"wrote {result.onnx} and {result.card}")
    if args.register is not None:
        from models.registry import ModelRegistry

        version = ModelRegistry(args.register).register(result.onnx, note=f"trained on dataset {manifest.version}")
        print(f"registered as {version.label} in {args.register}")
    return 0


def cmd_eval_detect(args: argparse.Namespace) -> int:
    from models.evaluate_detect import evaluate_model

    report = evaluate_model(
        args.model,
        args.data,
        split=args.split,
        label_map=parse_map(args.labels) or None,
        model_map=parse_map(args.classes, many=True) or None,
        imgsz=args.imgsz,
        limit=args.limit,
    )
    _print_report(report, args.data)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    if args.events:
        from nonsite.analyze import SUITE_SEED, run_synthetic_suite
        from vision.detectors import create_detector

        detector = create_detector({"type": "onnx_yolo", "path": args.model})
        events = run_synthetic_suite(detector, Path("var/eval/events"), scenes=args.events, seed=SUITE_SEED)
        print(f"violation events on {events.scenes} synthetic scenes (synthetic figures, not real footage):")
        for kind, score in events.by_kind.items():
            print(f"  {kind:<13} P {score.precision:.3f}  R {score.recall:.3f}  F1 {score.f1:.3f}")
    return 0


def _print_report(report: DetectionReport, data: Path) -> None:
    print(f"{report.model} on {data}: {report.images} images, {report.instances} boxes, "
          f"{report.seconds_per_image * 1000:.0f} ms/image")  # fmt: skip
    print(report.table())
    for note in report.notes:
        print(f"note: {note}")


def _eval_set_spec(text: str) -> EvalSetSpec:
    from models.registry import EvalSetSpec
    from nonsite.cli import CommandError

    fields = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if not sep:
            raise CommandError(f"--set fields are key=value separated by ';', got {part!r}")
        fields[key.strip()] = value.strip()
    if "name" not in fields or "path" not in fields or set(fields) - {"name", "path", "split", "labels", "classes"}:
        raise CommandError(f"--set needs name= and path= (and may give split=, labels=, classes=), got {text!r}")
    if not Path(fields["path"]).exists():
        raise CommandError(f"evaluation set {fields['path']} does not exist")
    return EvalSetSpec(
        name=fields["name"],
        path=str(Path(fields["path"]).resolve()),
        split=fields.get("split", "val"),
        label_map=parse_map(fields.get("labels")) or None,
        model_map=parse_map(fields.get("classes"), many=True) or None,
    )


def cmd_models(args: argparse.Namespace) -> int:
    from models.registry import ModelRegistry

    registry = ModelRegistry(args.registry)
    actions = {
        "list": _list,
        "register": _register,
        "eval-sets": _eval_sets,
        "promote": _promote,
        "shadow": _shadow,
    }
    return actions[args.models_command](registry, args)


def _register(registry: ModelRegistry, args: argparse.Namespace) -> int:
    version = registry.register(args.model, note=args.note)
    print(f"{version.label} {version.sha256[:12]} {args.model}")
    return 0


def _eval_sets(registry: ModelRegistry, args: argparse.Namespace) -> int:
    if args.sets:
        registry.set_eval_sets([_eval_set_spec(text) for text in args.sets])
    for spec in registry.eval_sets():
        print(json.dumps(spec.to_json(), ensure_ascii=False))
    return 0


def _promote(registry: ModelRegistry, args: argparse.Namespace) -> int:
    from models.registry import PromotionRefusedError, evaluate_on_set
    from nonsite.cli import CommandError

    if args.force and not (args.reason or "").strip():
        raise CommandError("--force needs --reason: say why a refused candidate is deployed anyway")
    actor = args.actor or getpass.getuser()
    try:
        gate = registry.promote(
            args.version, evaluate_on_set, actor=actor, tolerance=args.tolerance,
            force_reason=args.reason if args.force else None,
        )  # fmt: skip
    except PromotionRefusedError as e:
        _print_gate(e.gate)
        raise CommandError(str(e)) from e
    _print_gate(gate)
    forced = " (forced: the gate refused it)" if not gate.passed else ""
    print(f"deployed v{args.version:04d}{forced} at {registry.deployed_path}; workers switch within seconds")
    return 0


def _shadow(registry: ModelRegistry, args: argparse.Namespace) -> int:
    if args.stop:
        registry.stop_shadow(actor=getpass.getuser())
        print("shadow run stopped")
    elif args.report or args.version is None:
        print(json.dumps(registry.shadow_summary(), indent=2, ensure_ascii=False))
    else:
        version = registry.start_shadow(args.version, actor=getpass.getuser())
        print(f"{version.label} runs in shadow beside the deployed model; reports in {registry.shadow_reports}")
    return 0


def _print_gate(gate: Any) -> None:
    for name, cand, dep in gate.rows:
        against = f"{dep:.3f} deployed" if dep is not None else "nothing deployed"
        print(f"  {name}: mAP50 {cand:.3f} against {against}")


def _list(registry: ModelRegistry, args: argparse.Namespace) -> int:
    deployed = registry.deployed()
    shadow = registry.shadow_version()
    versions = registry.versions()
    if not versions:
        print(f"no versions in {registry.root}")
    for version in versions:
        marks = []
        if deployed and deployed.version == version.version:
            marks.append("deployed")
        if shadow == version.version:
            marks.append("shadow")
        figures = "; ".join(f"{k} mAP50 {v.get('mAP50', 0):.3f}" for k, v in version.metrics.items())
        print(f"{version.label} {version.sha256[:12]} {version.registered_at} {' '.join(marks):<16} "
              f"{version.note}{'  ' + figures if figures else ''}")  # fmt: skip
    return 0

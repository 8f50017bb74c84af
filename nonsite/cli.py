"""The `nonsite` command line.

Failures a user can fix (a missing file, a model that is not a detector, bad arguments)
end with a one-line reason on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nonsite import __version__

if TYPE_CHECKING:
    from evidence.bundle import Check
    from evidence.vault import Vault
    from vision.camera import CameraConfig

logger = logging.getLogger("nonsite")

EXIT_USAGE = 2
EXIT_FAILED = 1


class CommandError(Exception):
    """A command cannot go on; the message says why in one line."""


def _unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _vault_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--evidence", type=Path, default=Path("var/evidence"), help="evidence root (store and log)")
    parser.add_argument(
        "--keys", type=Path, default=Path("var/keys"), help="signing key ring, outside the evidence root"
    )


def open_vault(args: argparse.Namespace) -> Vault:
    """The vault the command names; checkpoints are stamped by $NONSITE_TSA_URL (with the roots in
    $NONSITE_TSA_ROOTS) when set, else by the local authority kept beside the signing keys."""
    from evidence.vault import Vault

    url = os.environ.get("NONSITE_TSA_URL") or None
    roots = os.environ.get("NONSITE_TSA_ROOTS")
    if url and not roots:
        raise CommandError("NONSITE_TSA_URL needs NONSITE_TSA_ROOTS: a PEM file of the authority's root certificates")
    return Vault(args.evidence, args.keys, tsa_url=url, tsa_roots=Path(roots) if url and roots else None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nonsite", description="Computer vision for non-site enforcement.")
    parser.add_argument("--version", action="version", version=f"nonsite {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    detect = sub.add_parser("detect", help="detect objects in an image, a folder of images or a video")
    detect.add_argument("source", type=Path, help="image file, folder of images, or video file")
    detect.add_argument("--model", type=Path, required=True, help="ONNX detection model")
    detect.add_argument(
        "--backend",
        choices=("auto", "onnx_yolo", "yolo_fastestv2"),
        default="auto",
        help="detector backend; auto reads the model's metadata (default: auto)",
    )
    detect.add_argument("--names", type=Path, help="class names file (one a line) for a model that carries none")
    detect.add_argument("--out", type=Path, help="output folder (default: var/detect/<source name>)")
    detect.add_argument("--conf", type=_unit_interval, default=0.25, help="minimum score (default: 0.25)")
    detect.add_argument("--iou", type=_unit_interval, default=0.45, help="NMS IoU threshold (default: 0.45)")
    detect.add_argument("--batch", type=_positive_int, default=4, help="frames per model run (default: 4)")
    detect.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads, 0 = one per core")
    detect.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to run the model (default: auto)"
    )
    detect.add_argument("--no-annotate", action="store_true", help="write detections.jsonl only")
    detect.add_argument("--no-progress", action="store_true", help="no progress bar")

    demo = sub.add_parser(
        "demo", help="the main job on the embedded default: render demo street footage and detect in it"
    )
    demo.add_argument("--out", type=Path, default=Path("var/demo"), help="output folder (default: var/demo)")
    demo.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped starter model)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")

    analyze = sub.add_parser(
        "analyze", help="run one camera's engine (motion gate, detector, tracker, zone rules) over footage"
    )
    analyze.add_argument("source", type=Path, help="video file or folder of images")
    analyze.add_argument("--cameras", type=Path, required=True, help="camera configuration YAML (a cameras: list)")
    analyze.add_argument("--camera", help="id of the camera in the file (default: the only one)")
    analyze.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped starter model)")
    analyze.add_argument("--backend", choices=("auto", "onnx_yolo", "yolo_fastestv2"), default="auto")
    analyze.add_argument("--conf", type=_unit_interval, default=0.25, help="minimum detection score")
    analyze.add_argument("--no-motion-gate", action="store_true", help="run the detector on every frame")
    analyze.add_argument("--out", type=Path, help="output folder (default: var/analyze/<source name>)")
    _vault_arguments(analyze)
    analyze.add_argument("--no-seal", action="store_true", help="do not seal violations as evidence")

    evidence = sub.add_parser("evidence", help="sealed evidence: export bundles")
    evidence_sub = evidence.add_subparsers(dest="evidence_command", required=True, metavar="WHAT")
    export = evidence_sub.add_parser(
        "export", help="write a package's offline-verifiable bundle, or a case's file with every bundle"
    )
    export.add_argument("package", help="package id (the SHA-256 of its manifest) or case number (CG-2026-000123)")
    export.add_argument("--out", type=Path, required=True, help="bundle .zip to write (a folder for a case)")
    export.add_argument(
        "--db", help="case database URL (default: $NONSITE_DATABASE_URL, else sqlite:///var/nonsite.db)"
    )
    export.add_argument("--actor", default=None, help="who exports, for the custody log (default: $USER)")
    export.add_argument("--reason", default="", help="why, for the custody log")
    _vault_arguments(export)
    checkpoint = evidence_sub.add_parser(
        "checkpoint", help="write a signed, time-stamped checkpoint of the log (size, root, time)"
    )
    checkpoint.add_argument("--out", type=Path, required=True, help="checkpoint .json to write")
    _vault_arguments(checkpoint)
    publish = evidence_sub.add_parser(
        "publish", help="publish signed, time-stamped checkpoints (now, or at an interval with --every)"
    )
    publish.add_argument("--every", type=float, help="seconds between checkpoints; without it, publish once")
    publish.add_argument("--count", type=_positive_int, help="stop after this many (default: run until stopped)")
    publish.add_argument("--copy-to", type=Path, help="also copy each checkpoint file here (a folder others read)")
    _vault_arguments(publish)
    consistency = evidence_sub.add_parser(
        "consistency", help="prove from this log that a newer checkpoint only appended to an older one"
    )
    consistency.add_argument("old", type=Path, help="the earlier checkpoint file")
    consistency.add_argument("new", type=Path, help="the later checkpoint file")
    _vault_arguments(consistency)

    evaluate = sub.add_parser("eval", help="evaluate detection and violation quality")
    eval_sub = evaluate.add_subparsers(dest="eval_command", required=True, metavar="WHAT")
    events = eval_sub.add_parser(
        "events", help="event-level precision, recall, F1, time to detect, false events per distractor hour"
    )
    events.add_argument("--truth", type=Path, help="a <scene>.truth.json or a folder of them")
    events.add_argument("--pred", type=Path, help="violations.jsonl, or a folder with <scene>/violations.jsonl")
    events.add_argument(
        "--synthetic", action="store_true", help="render, analyse and score the fixed synthetic suite instead"
    )
    events.add_argument("--scenes", type=_positive_int, default=30, help="synthetic suite size (default: 30)")
    events.add_argument(
        "--distractor-minutes", type=float, default=6.0, help="length of each distractor-only scene (default: 6)"
    )
    events.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped starter model)")
    events.add_argument("--out", type=Path, default=Path("var/eval/events"), help="where the suite's files go")
    events.add_argument("--seed", type=int, default=None, help="first scene seed of the suite (default: the fixed one)")
    detect_eval = eval_sub.add_parser(
        "detect", help="box-level mAP50, mAP50-95, precision and recall per class of a model on a YOLO dataset"
    )
    detect_eval.add_argument("--model", type=Path, required=True, help="ONNX model")
    detect_eval.add_argument("--data", type=Path, required=True, help="data.yaml, or a folder with images/ and labels/")
    detect_eval.add_argument("--split", default="val", help="the data.yaml split (default: val)")
    detect_eval.add_argument("--labels", help="label id to class name, e.g. '0:smoke,1:smoke'")
    detect_eval.add_argument(
        "--classes", help="dataset class to model classes, e.g. 'vendedor_ambulante:stall+umbrella'"
    )
    detect_eval.add_argument("--imgsz", type=_positive_int, default=None, help="input size (default: the model's)")
    detect_eval.add_argument("--limit", type=_positive_int, default=None, help="first N images only")
    detect_eval.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    detect_eval.add_argument(
        "--events", type=int, default=0, help="also run the event-level suite on this many synthetic scenes"
    )
    structures = eval_sub.add_parser(
        "structures",
        help="structural-change rule: recall on structures going up, false events on distractor-only footage",
    )
    structures.add_argument(
        "--scenes", type=_positive_int, default=12, help="structure_going_up scenes, seeds 0 up (default: 12)"
    )
    structures.add_argument(
        "--distractor-minutes",
        type=_non_negative_float,
        default=60.0,
        help="distractor-only footage, in scenes of up to 6 min from seed 100 (default: 60)",
    )
    structures.add_argument(
        "--fps",
        type=_positive_float,
        default=5.0,
        help="decode rate of the distractor footage; structure scenes keep their preset's 15 fps (default: 5)",
    )

    verify = sub.add_parser(
        "verify", help="verify an evidence bundle offline: hashes, signatures, log proof, timestamp"
    )
    verify.add_argument("bundle", type=Path, help="bundle .zip")
    verify.add_argument(
        "--tsa-roots", type=Path, help="PEM roots of the time-stamping authority to trust (default: the bundle's own)"
    )

    starter = sub.add_parser(
        "starter-model", help="train the shipped starter model from synthetic scenes (needs the train extra)"
    )
    starter.add_argument(
        "--kind",
        choices=["starter", "smoke", "street", "construction"],
        default="starter",
        help="the all-class starter (from fresh weights), or a specialist fine-tuned from it (default: starter)",
    )
    starter.add_argument(
        "--out", type=Path, default=None, help="where the ONNX model and card go (default: models/zoo)"
    )
    starter.add_argument("--ground-images", type=int, default=None, help="specialists: synthetic street scenes")
    starter.add_argument("--aerial-images", type=int, default=None, help="specialists: synthetic drone chips")
    starter.add_argument("--work", type=Path, default=Path("var/train"), help="dataset and run folder")
    starter.add_argument("--images", type=_positive_int, default=4000, help="synthetic images to render")
    starter.add_argument("--seed", type=int, default=0, help="seed of the synthetic dataset and training")
    starter.add_argument("--epochs", type=_positive_int, default=60)
    starter.add_argument("--time-hours", type=float, default=None, help="stop training after this long")
    starter.add_argument("--imgsz", type=_positive_int, default=640)
    starter.add_argument("--batch", type=_positive_int, default=32)
    starter.add_argument("--workers", type=int, default=4)
    starter.add_argument("--device", default="auto", help="auto, cpu, or a CUDA device index")

    run = sub.add_parser(
        "run",
        help="the main job: camera workers, task workers, API and console (the demo cameras when no --config)",
    )
    run.add_argument("--config", type=Path, help="run file: runtime settings and cameras (see examples/run.yaml)")
    run.add_argument("--for", dest="duration", type=float, help="stop after this many seconds (default: until SIGTERM)")
    run.add_argument("--port", type=int, help="API and console port (default: the run file's, else 8470; 0: any)")

    worker = sub.add_parser("worker", help="one worker of the distributed mode: cameras or tasks")
    worker_sub = worker.add_subparsers(dest="worker_kind", required=True, metavar="KIND")
    cameras = worker_sub.add_parser("cameras", help="watch cameras of a run file until SIGTERM")
    cameras.add_argument("--config", type=Path, required=True, help="run file")
    cameras.add_argument("--only", help="comma-separated camera ids to watch (default: all in the file)")
    cameras.add_argument("--name", default=f"cameras@{socket.gethostname()}", help="worker name in health reports")
    cameras.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    tasks = worker_sub.add_parser("tasks", help="seal, file and heal from the task queue until SIGTERM")
    tasks.add_argument("--config", type=Path, help="run file (default: the runtime $NONSITE_RUNTIME carries)")
    tasks.add_argument("--name", default="tasks", help="worker name")
    tasks.add_argument("--concurrency", type=_positive_int, default=1, help="task processes in this worker")

    from nonsite.cases_cli import add_commands
    from nonsite.learning_cli import add_commands as add_learning_commands
    from nonsite.survey_cli import add_commands as add_survey_commands

    add_commands(sub, _vault_arguments)
    add_learning_commands(sub, _vault_arguments, _positive_int)
    add_survey_commands(sub, _vault_arguments)
    return parser


def _detector_config(args: argparse.Namespace) -> dict[str, object]:
    from vision.detectors.onnx import sniff_backend

    backend = sniff_backend(args.model) if args.backend == "auto" else args.backend
    providers = {
        "auto": ["auto"],
        "cpu": ["CPUExecutionProvider"],
        "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    }[args.device]
    config: dict[str, object] = {
        "type": backend,
        "path": args.model,
        "conf": args.conf,
        "iou": args.iou,
        "providers": providers,
        "intra_op_threads": args.threads,
        "max_batch": args.batch,
    }
    if args.names is not None:
        if backend == "yolo_fastestv2":
            config["names_file"] = args.names
        else:
            if not args.names.is_file():
                raise CommandError(f"names file {args.names} does not exist")
            config["names"] = [n.strip() for n in args.names.read_text().splitlines() if n.strip()]
    return config


def cmd_detect(args: argparse.Namespace) -> int:
    from nonsite.detect import run_detect
    from pipelines.sources import FileSource
    from vision.detectors import create_detector

    source = FileSource(args.source)
    detector = create_detector(_detector_config(args))
    out = args.out or Path("var") / "detect" / (args.source.stem or "source")
    report = run_detect(
        source,
        detector,
        out,
        batch=args.batch,
        annotate_output=not args.no_annotate,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    fps = report.frames / report.seconds if report.seconds else 0.0
    found = ", ".join(f"{name} {count}" for name, count in report.per_class.most_common()) or "nothing"
    print(f"{report.frames} frames in {report.seconds:.1f} s ({fps:.1f} frames/s) with {detector.info.path.name}")
    print(f"found: {found}")
    if report.skipped:
        print(f"skipped {report.skipped} unreadable frames")
    for path in report.outputs[:3]:
        print(f"wrote {path}")
    if len(report.outputs) > 3:
        print(f"wrote {len(report.outputs) - 3} more files to {out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from nonsite.demo import run_demo
    from nonsite.starter import starter_model_path
    from vision.detectors import create_detector

    model = args.model or starter_model_path()
    detector = create_detector({"type": "onnx_yolo", "path": model})
    print(f"nonsite demo: three synthetic camera scenes, model {model.name} ({', '.join(detector.names)})")
    results = run_demo(detector, args.out, progress=not args.no_progress and sys.stderr.isatty())
    for r in results:
        found = ", ".join(f"{name} {count}" for name, count in r.report.per_class.most_common()) or "nothing"
        share = r.found / r.truth_boxes if r.truth_boxes else 0.0
        print(f"  {r.name}: {r.report.frames} frames at {r.report.frames / r.report.seconds:.0f} frames/s; {found}")
        print(
            f"    against the scene's exact truth (synthetic): {r.found} of {r.truth_boxes} objects found "
            f"({share:.0%}), {r.extra} boxes matching nothing"
        )
        for v in r.violations:
            extra = f", Ringelmann {v['attributes']['ringelmann']}" if "ringelmann" in v["attributes"] else ""
            print(
                f"    violation: {v['kind']} in zone {v['zone']}, frames {v['start_frame']}-{v['end_frame']}, "
                f"confirmed at frame {v['confirmed_frame']}{extra}"
            )
        if r.bundle is not None:
            verdict = "verifies offline" if r.bundle_verified else "FAILED verification"
            print(f"    sealed as evidence; bundle {r.bundle} {verdict} (nonsite verify {r.bundle})")
        if r.cases:
            where = (
                f"--db sqlite:///{args.out / 'cases.db'} --evidence {args.out / 'evidence'} --keys {args.out / 'keys'}"
            )
            print(f"    filed as case {', '.join(r.cases)}, awaiting review (nonsite cases show NUMBER {where})")
        print(f"    wrote {r.report.outputs[-1]}, {r.report.outputs[0]} and violations.jsonl")
    return 0


def _pick_camera(path: Path, camera_id: str | None) -> CameraConfig:
    from vision.camera import load_camera_configs

    cameras = load_camera_configs(path)
    if camera_id is None:
        if len(cameras) != 1:
            ids = ", ".join(c.id for c in cameras)
            raise CommandError(f"{path} has {len(cameras)} cameras ({ids}): choose one with --camera")
        return cameras[0]
    for camera in cameras:
        if camera.id == camera_id:
            return camera
    raise CommandError(f"{path} has no camera {camera_id!r} (it has {', '.join(c.id for c in cameras)})")


def cmd_analyze(args: argparse.Namespace) -> int:
    from nonsite.analyze import analyze_source
    from nonsite.starter import starter_model_path
    from pipelines.sources import FileSource
    from vision.detectors import create_detector
    from vision.detectors.onnx import sniff_backend

    camera = _pick_camera(args.cameras, args.camera)
    model = args.model or starter_model_path()
    backend = sniff_backend(model) if args.backend == "auto" else args.backend
    detector = create_detector({"type": backend, "path": model, "conf": args.conf})
    source = FileSource(args.source, source_id=camera.id)
    out = args.out or Path("var") / "analyze" / (args.source.stem or "source")
    vault = None if args.no_seal else open_vault(args)
    try:
        report = analyze_source(source, camera, detector, out, motion_gate=not args.no_motion_gate, vault=vault)
    finally:
        if vault is not None:
            vault.close()
    stats = report.stats
    print(
        f"{stats.frames} frames, detector ran on {stats.inferred} ({stats.gated_fraction:.0%} skipped by the "
        f"motion gate); {stats.violations_opened} violations confirmed, {report.closed} closed"
    )
    print(f"wrote {report.violations_path}")
    for package in report.packages:
        print(f"sealed evidence package {package} in {args.evidence}")
    return 0


def cmd_evidence(args: argparse.Namespace) -> int:
    from evidence.bundle import export_bundle
    from evidence.checkpoints import checkpoint_timestamp, read_checkpoint, verify_append_only, write_checkpoint

    vault = open_vault(args)
    if args.evidence_command == "checkpoint":
        try:
            stamped = vault.publish_checkpoint()
            path = write_checkpoint(stamped, args.out, vault.keys.public_keys())
        finally:
            vault.close()
        print(f"wrote {path}: tree size {stamped.checkpoint.tree_size}, time-stamped by the authority")
        return 0
    if args.evidence_command == "publish":
        return _publish(vault, args)
    if args.evidence_command == "consistency":
        try:
            (old, old_keys), (new, new_keys) = read_checkpoint(args.old), read_checkpoint(args.new)
            stamps = [c for c in (checkpoint_timestamp(args.old), checkpoint_timestamp(args.new)) if c is not None]
            if new.tree_size > vault.log.size or old.tree_size > new.tree_size:
                proof: list[bytes] = []
            else:
                proof = vault.log.consistency_proof(old.tree_size, new.tree_size)
        except ValueError as e:
            raise CommandError(str(e)) from e
        finally:
            vault.close()
        checks = verify_append_only(old, new, proof, {**old_keys, **new_keys}) + stamps
        if not _report_checks(checks, "nonsite evidence consistency"):
            return EXIT_FAILED
        print("consistent: the later log only appended to the earlier one")
        return 0
    from cases.casebook import Casebook
    from cases.casefile import CASE_NUMBER, export_case_file
    from cases.db import Database

    actor = args.actor or os.environ.get("USER") or "command line"
    db = None
    try:
        db = Database(args.db)
        book = Casebook(db, vault)
        if CASE_NUMBER.match(args.package):
            result = export_case_file(book, args.package, args.out, actor=actor)
            print(f"wrote {result.html} and {len(result.bundles)} bundle(s); verify each with: nonsite verify BUNDLE")
            return 0 if result.verified else EXIT_FAILED
        try:
            vault.leaf_index(args.package)
        except KeyError as e:
            raise CommandError(f"no logged package {args.package} in {args.evidence}") from e
        path = export_bundle(vault, args.package, args.out)
        book.record_custody(args.package, actor=actor, action="export", reason=args.reason)
    finally:
        vault.close()
        if db is not None:
            db.close()
    print(f"wrote {path}; verify it anywhere with: nonsite verify {path}")
    return 0


def _publish(vault: Vault, args: argparse.Namespace) -> int:
    """Publish a signed, time-stamped checkpoint now, then every `--every` seconds (`--count` times)."""
    import shutil
    import time

    try:
        published = 0
        while True:
            stamped = vault.publish_checkpoint()
            name = f"{stamped.checkpoint.tree_size:012d}.json"
            if args.copy_to is not None:
                args.copy_to.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(args.evidence / "checkpoints" / name, args.copy_to / name)
            print(f"checkpoint {name}: tree size {stamped.checkpoint.tree_size}, {stamped.checkpoint.body['time']}",
                  flush=True)  # fmt: skip
            published += 1
            if args.every is None or (args.count is not None and published >= args.count):
                return 0
            time.sleep(args.every)
    finally:
        vault.close()


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from models.evaluate_events import evaluate_files

    if args.eval_command == "structures":
        return cmd_eval_structures(args)
    if args.eval_command == "detect":
        from nonsite.learning_cli import cmd_eval_detect

        return cmd_eval_detect(args)
    if args.synthetic:
        from nonsite.analyze import run_synthetic_suite
        from nonsite.starter import starter_model_path
        from vision.detectors import create_detector

        detector = create_detector({"type": "onnx_yolo", "path": args.model or starter_model_path()})
        from nonsite.analyze import SUITE_SEED

        report = run_synthetic_suite(
            detector,
            args.out,
            scenes=args.scenes,
            distractor_s=60.0 * args.distractor_minutes,
            distractor_fps=5.0,
            seed=SUITE_SEED if args.seed is None else args.seed,
        )
        label = f"synthetic suite, {report.scenes} scenes (all synthetic: no real footage in these figures)"
    elif args.truth is not None and args.pred is not None:
        report = evaluate_files(args.truth, args.pred)
        label = f"{report.scenes} scenes from {args.truth}"
    else:
        raise CommandError("give --truth and --pred, or --synthetic")
    print(label)
    print(f"distractor-only footage: {report.distractor_hours * 60:.1f} min")
    print(f"{'kind':14} {'TP':>4} {'FP':>4} {'FN':>4} {'precision':>9} {'recall':>7} {'F1':>6} ", end="")
    print(f"{'ttd s':>6} {'false/h':>8}")
    for kind, s in report.by_kind.items():
        ttd = "-" if s.median_delay_s is None else f"{s.median_delay_s:.1f}"
        per_hour = report.false_per_hour(kind)
        print(
            f"{kind:14} {s.true_positives:4d} {s.false_positives:4d} {s.false_negatives:4d} "
            f"{s.precision:9.3f} {s.recall:7.3f} {s.f1:6.3f} {ttd:>6} {per_hour:8.2f}"
        )
    if args.synthetic:
        (args.out / "report.json").write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out / 'report.json'}")
    return 0


def cmd_eval_structures(args: argparse.Namespace) -> int:
    from nonsite.structures import evaluate_structures, format_report

    report = evaluate_structures(
        structure_scenes=args.scenes, distractor_minutes=args.distractor_minutes, distractor_fps=args.fps
    )
    for line in format_report(report):
        print(line)
    return 0


def _report_checks(checks: Sequence[Check], failure_prefix: str) -> bool:
    """Print one line per check; on failure name the first failed check on stderr. True if all passed."""
    for c in checks:
        print(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
    failed = [c for c in checks if not c.ok]
    if failed:
        print(f"{failure_prefix} FAILED at {failed[0].name}: {failed[0].detail}", file=sys.stderr)
    return not failed


def cmd_verify(args: argparse.Namespace) -> int:
    from evidence.bundle import key_fingerprints, tsa_fingerprints, verify_bundle

    roots = None
    if args.tsa_roots is not None:
        try:
            roots = args.tsa_roots.read_bytes()
        except OSError as e:
            raise CommandError(f"cannot read the TSA roots {args.tsa_roots}: {e.strerror}") from e
    if not _report_checks(verify_bundle(args.bundle, tsa_roots=roots), f"nonsite verify: {args.bundle}"):
        return EXIT_FAILED
    keys = ", ".join(f"{k} {v[:16]}…" for k, v in key_fingerprints(args.bundle).items())
    print(f"verified: every check passed; signed by keys {keys} (compare with the agency's published keys)")
    if roots is None:
        for subject, fingerprint in tsa_fingerprints(args.bundle).items():
            print(f"  time-stamped under root {subject}, SHA-256 {fingerprint[:32]}… (compare with the authority's,"
                  " or pass --tsa-roots)")  # fmt: skip
    return 0


def cmd_starter_model(args: argparse.Namespace) -> int:
    from nonsite.starter import ZOO, train_specialist, train_starter

    common = {
        "out_dir": args.out or ZOO, "work_dir": args.work, "seed": args.seed, "epochs": args.epochs,
        "imgsz": args.imgsz, "batch": args.batch, "device": args.device, "workers": args.workers,
        "time_hours": args.time_hours, "command": args.command_line,
    }  # fmt: skip
    if args.kind == "starter":
        result = train_starter(images=args.images, **common)
    else:
        result = train_specialist(
            args.kind, ground_images=args.ground_images, aerial_images=args.aerial_images, **common
        )
    print(f"trained {result.epochs} epochs in {result.seconds:.0f} s; metrics {result.metrics}")
    print(f"wrote {result.onnx} and {result.card}")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from nonsite.cases_cli import cmd_db as run

    return run(args)


def cmd_cases(args: argparse.Namespace) -> int:
    from nonsite.cases_cli import cmd_cases as run

    return run(args)


def cmd_day(args: argparse.Namespace) -> int:
    from nonsite.cases_cli import cmd_day as run

    return run(args)


def cmd_district(args: argparse.Namespace) -> int:
    from nonsite.cases_cli import cmd_district as run

    return run(args)


def cmd_run(args: argparse.Namespace) -> int:
    from nonsite.run import RunError, run

    if args.config is not None and not args.config.is_file():
        raise CommandError(f"run file {args.config} does not exist")
    try:
        return run(args.config, duration_s=args.duration, port=args.port, verbose=args.verbose)
    except RunError as e:
        raise CommandError(str(e)) from e


def cmd_worker(args: argparse.Namespace) -> int:
    from nonsite.run import camera_worker, task_worker

    if args.config is not None and not args.config.is_file():
        raise CommandError(f"run file {args.config} does not exist")
    if args.worker_kind == "cameras":
        only = [c.strip() for c in args.only.split(",") if c.strip()] if args.only else None
        return camera_worker(args.config, name=args.name, only=only, metrics_port=args.metrics_port)
    return task_worker(args.config, name=args.name, concurrency=args.concurrency)


def _survey(args: argparse.Namespace) -> int:
    from nonsite.survey_cli import cmd_survey

    return cmd_survey(args)


COMMANDS = {
    "run": cmd_run,
    "worker": cmd_worker,
    "db": cmd_db,
    "cases": cmd_cases,
    "district": cmd_district,
    "day": cmd_day,
    "detect": cmd_detect,
    "demo": cmd_demo,
    "analyze": cmd_analyze,
    "eval": cmd_eval,
    "verify": cmd_verify,
    "evidence": cmd_evidence,
    "starter-model": cmd_starter_model,
    "dataset": lambda args: _learning("cmd_dataset", args),
    "train": lambda args: _learning("cmd_train", args),
    "models": lambda args: _learning("cmd_models", args),
    "survey": _survey,
}


def _learning(name: str, args: argparse.Namespace) -> int:
    from nonsite import learning_cli

    command: Callable[[argparse.Namespace], int] = getattr(learning_cli, name)
    return command(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["nonsite", *(sys.argv[1:] if argv is None else argv)])  # for model cards
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from cases.errors import CaseError
    from datasets.errors import DatasetError
    from evidence.errors import EvidenceError
    from models.errors import ModelsError
    from pipelines.sources import SourceError
    from vision.errors import VisionError

    try:
        return COMMANDS[args.command](args)
    except (CommandError, SourceError, VisionError, ModelsError, DatasetError, CaseError, EvidenceError) as e:
        print(f"nonsite {args.command}: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"nonsite {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

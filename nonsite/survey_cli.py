"""`nonsite survey`: run a drone survey batch from the command line.

    nonsite survey FOLDER [--baseline PREVIOUS_SURVEY | ORTHOMOSAIC.tif] [--permits permits.geojson]
                   [--streets streets.geojson] [--out DIR] [--model ONNX] [--db URL]
                   [--evidence DIR --keys DIR] [--no-file] [--config survey.yaml]

Prints progress and a summary; the findings, the report and each image's result are
written under `--out`. Running it again carries on where a crashed run stopped, and
files nothing twice.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.survey import SurveyConfig, SurveyProgress, SurveyReport
    from vision.detectors.base import Detector

#: the street specialist, trained on street scenes and nadir drone chips (`nonsite starter-model --kind street`)
AERIAL_MODEL = Path(__file__).resolve().parents[1] / "models" / "zoo" / "street.onnx"
DB_HELP = "case database URL (default: $NONSITE_DATABASE_URL, else sqlite:///var/nonsite.db)"
EXIT_FAILED = 1


def add_commands(sub: Any, vault_arguments: Any) -> None:
    """Add `nonsite survey` to the top-level subparsers; `vault_arguments` adds --evidence and --keys."""
    survey = sub.add_parser(
        "survey",
        help="a drone flight's images: street occupation and (against a baseline) new structures, as cases",
        description="Detect street occupation in a folder of geotagged drone photos (or videos with their .SRT), "
        "find new structures against a baseline survey, and seal and file each finding as a case.",
    )
    survey.add_argument("folder", type=Path, help="folder of drone JPEGs (and/or videos with their .SRT files)")
    survey.add_argument(
        "--baseline",
        type=Path,
        help="folder of an earlier survey of the same area, or its orthomosaic (a GeoTIFF from ODM, DJI Terra, Pix4D)",
    )
    survey.add_argument("--permits", type=Path, help="GeoJSON of permitted parcels (permit_no, holder, valid_until)")
    survey.add_argument("--streets", type=Path, help="GeoJSON of street and sidewalk polygons")
    survey.add_argument("--out", type=Path, help="output folder (default: var/surveys/<folder name>)")
    survey.add_argument(
        "--model", type=Path, help="ONNX detector (default: models/zoo/street.onnx if present, else the starter)"
    )
    survey.add_argument("--conf", type=float, default=0.25, help="least detection score the model reports")
    survey.add_argument("--config", type=Path, help="YAML file of survey settings (pipelines.survey.SurveyConfig)")
    survey.add_argument("--db", help=DB_HELP)
    vault_arguments(survey)
    survey.add_argument("--no-file", action="store_true", help="find and report only: seal and file nothing")
    survey.add_argument("--no-progress", action="store_true", help="no progress bar")


def default_model() -> tuple[Path, str | None]:
    """The model a survey uses when none is named, and a warning about it if there is one."""
    if AERIAL_MODEL.is_file():
        return AERIAL_MODEL, None
    from nonsite.starter import starter_model_path

    return starter_model_path(), (
        "using the starter model, trained on street-level scenes: it does not recognise stalls from the air "
        f"(train one with `nonsite starter-model --kind street` into {AERIAL_MODEL}, or pass --model)"
    )


def load_config(path: Path | None) -> SurveyConfig:
    """Survey settings from a YAML file (unknown keys are errors), or the defaults."""
    from nonsite.cli import CommandError
    from pipelines.survey import SurveyConfig

    if path is None:
        return SurveyConfig()
    import yaml
    from pydantic import ValidationError

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise CommandError(f"cannot read survey config {path}: {e}") from e
    try:
        return SurveyConfig.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise CommandError(f"survey config {path}: {where}: {first['msg']}") from e


def load_detector(model: Path, conf: float) -> Detector:
    """The ONNX detector of `model`, its backend sniffed from the file."""
    from vision.detectors import create_detector
    from vision.detectors.onnx import sniff_backend

    return create_detector({"type": sniff_backend(model), "path": model, "conf": conf})


def _summary(report: SurveyReport) -> list[str]:
    c = report.counts
    lines = [
        f"{c['images_processed']} of {c['images']} images processed; {c['images_unusable']} unusable",
        f"street occupation: {c['occupation_findings']} finding(s); "
        f"{c['occupation_objects_off_street']} object(s) off the streets",
    ]
    if report.baseline:
        lines.append(
            f"new structures: {c['construction_findings']} finding(s); {c['skipped_permitted']} covered by a "
            f"permit; {c['rejected_candidates']} change(s) judged no structure; "
            f"{c['images_without_change_analysis']} image(s) not compared"
        )
    for f in report.findings:
        what = f"{f.size_m[0]:.1f} x {f.size_m[1]:.1f} m" if f.size_m else f"{f.area_m2:.0f} m²"
        filed = f"case {f.case_number}" if f.case_number else (f"NOT FILED: {f.filing_error}" if f.filing_error else "")
        lines.append(f"  {f.id} {f.kind} {f.class_name} at {f.lat:.7f}, {f.lon:.7f} ({what}) {filed}".rstrip())
    for s in report.skipped_permitted:
        lines.append(f"  skipped {s.area_m2:.0f} m² at {s.lat:.7f}, {s.lon:.7f}: permit {s.permit_no}")
    for u in report.unusable:
        lines.append(f"  unusable {u.name}: {u.reason}")
    for note in report.notes:
        lines.append(f"note: {note}")
    if c["filing_errors"]:
        lines.append(f"{c['filing_errors']} finding(s) could not be filed; run the survey again to retry them")
    out = Path(report.out_dir)
    lines.append(f"wrote {out / 'findings.geojson'}, {out / 'report.md'} and {out / 'report.json'}")
    return lines


def cmd_survey(args: argparse.Namespace) -> int:
    """Run `nonsite survey` as parsed by a parser `add_commands` built."""
    from nonsite.cli import CommandError, open_vault
    from pipelines.survey import SurveyError, run_survey

    model, warning = (args.model, None) if args.model is not None else default_model()
    if not Path(model).is_file():
        raise CommandError(f"model file {model} does not exist")
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    config = load_config(args.config)
    out = args.out or Path("var") / "surveys" / (args.folder.resolve().name or "survey")
    detector = load_detector(Path(model), args.conf)

    bar: Any = None
    if not args.no_progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(unit="image", leave=False)

    def progress(step: SurveyProgress) -> None:
        if bar is not None:
            bar.total = step.total
            bar.set_postfix_str(f"{step.image} {step.status}")
            bar.update(1)

    vault = db = None
    try:
        casebook = None
        if not args.no_file:
            from cases.casebook import Casebook
            from cases.db import Database

            vault = open_vault(args)
            db = Database(args.db)
            casebook = Casebook(db, vault)
        report = run_survey(
            args.folder,
            out_dir=out,
            detector=detector,
            baseline=args.baseline,
            permits=args.permits,
            streets=args.streets,
            casebook=casebook,
            vault=vault,
            config=config,
            progress=progress,
        )
    except SurveyError as e:
        print(f"nonsite survey: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if bar is not None:
            bar.close()
        if db is not None:
            db.close()
        if vault is not None:
            vault.close()
    for line in _summary(report):
        print(line)
    return EXIT_FAILED if report.counts["filing_errors"] else 0

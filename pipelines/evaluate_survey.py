"""Survey accuracy on synthetic two-flight surveys with exact truth, the model left out.

    python -m pipelines.evaluate_survey [--seeds 11,12,13] [--size 1200x800]
                                        [--baseline images,orthomosaic] [--json OUT]

Each seed's town is rendered by `datasets.synthetic.survey.write_two_flight_survey`
(a baseline flight, the later survey flight, the baseline's orthomosaic, permits and
streets) and surveyed with `run_survey` against each baseline named, through the oracle
detector of `datasets.synthetic.survey_oracle`. The figures therefore measure what the
survey pipeline adds to a model (geo-referencing, merging across tiles and views,
registration, change detection, the permit check), not a model: they are synthetic.

Scoring (`score_survey`; `tests/pipelines/test_survey.py` holds the pipeline to the same tolerances):

- a new structure without a permit is *found* when a construction finding lies within 3
  ground sample distances of its roof's centre, each finding matched to one structure at
  most, nearest pairs first; every other construction finding is *false* (a second
  finding of one structure, one at a permitted structure, one where nothing was built);
  a permitted structure is *skipped* when its permit number is in the report's skipped
  list and no construction finding lies within 5 m of it;
- a stall or umbrella is *found* when an occupation finding of its class lies within 1
  GSD of its centre, matched the same way; every other occupation finding is *false*;
- position errors are metres on the ground, area errors a share of the true roof area;
- `change_s` is the median seconds per image spent registering and comparing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from datasets.errors import DatasetError
from datasets.synthetic.survey import StallTruth, StructureTruth, SurveyTruth, write_two_flight_survey
from datasets.synthetic.survey_oracle import TruthDetector
from pipelines.survey import SurveyConfig, SurveyError, SurveyFinding, SurveyReport, TilingConfig, run_survey
from vision.geo import latlon_to_enu_array

#: a structure's finding lies within this many ground sample distances of its roof's true centre
STRUCTURE_TOLERANCE_GSD = 3.0
#: a stall's finding lies within this many ground sample distances of its true centre
STALL_TOLERANCE_GSD = 1.0
PERMIT_CLEAR_M = 5.0
BASELINES = ("images", "orthomosaic")


@dataclass
class SurveyScore:
    """One survey's findings against its truth."""

    structures: int  # new structures without a permit
    structures_found: int
    construction_false: int
    permitted: int
    permitted_skipped: int
    stalls: int
    stalls_found: int
    occupation_false: int
    structure_errors_m: list[float] = field(default_factory=list)
    area_errors: list[float] = field(default_factory=list)  # |measured - true| / true
    stall_errors_m: list[float] = field(default_factory=list)
    change_s: float | None = None


def _match(pairs: list[tuple[float, str, str]]) -> dict[str, tuple[str, float]]:
    """One-to-one matching of (distance, truth id, finding id) pairs, nearest first: truth id → (finding, distance)."""
    matched: dict[str, tuple[str, float]] = {}
    used: set[str] = set()
    for distance, truth_id, finding_id in sorted(pairs):
        if truth_id not in matched and finding_id not in used:
            matched[truth_id] = (finding_id, distance)
            used.add(finding_id)
    return matched


def score_survey(truth: SurveyTruth, report: SurveyReport) -> SurveyScore:
    """Match a survey report's findings to what the synthetic survey really holds."""

    places: list[StructureTruth | StallTruth | SurveyFinding] = [*truth.structures, *truth.stalls, *report.findings]
    points = latlon_to_enu_array(*truth.origin, [(p.lat, p.lon) for p in places])
    enu = {id(p): point for p, point in zip(places, points, strict=True)}

    def distance(a: object, b: object) -> float:
        return float(np.hypot(*(enu[id(a)] - enu[id(b)])))

    unpermitted = [s for s in truth.structures if not s.permitted]
    found = _match([
        (d, s.id, f.id)
        for s in unpermitted
        for f in report.construction
        if (d := distance(f, s)) <= STRUCTURE_TOLERANCE_GSD * f.gsd_m
    ])  # fmt: skip
    areas = {f.id: f.area_m2 for f in report.construction}
    area_errors = [
        round(abs(area - s.area_m2) / s.area_m2, 3)
        for s in unpermitted
        if s.id in found and (area := areas[found[s.id][0]]) is not None
    ]

    permitted = [s for s in truth.structures if s.permitted]
    skipped_numbers = {s.permit_no for s in report.skipped_permitted}
    skipped = sum(
        s.permit_no in skipped_numbers and not any(distance(f, s) < PERMIT_CLEAR_M for f in report.construction)
        for s in permitted
    )

    stalls = _match([
        (d, s.id, f.id)
        for s in truth.stalls
        for f in report.occupation
        if f.class_name == s.kind and (d := distance(f, s)) <= STALL_TOLERANCE_GSD * f.gsd_m
    ])  # fmt: skip

    change = [i.seconds["change"] for i in report.images if "change" in i.seconds]
    return SurveyScore(
        structures=len(unpermitted),
        structures_found=len(found),
        construction_false=len(report.construction) - len(found),
        permitted=len(permitted),
        permitted_skipped=skipped,
        stalls=len(truth.stalls),
        stalls_found=len(stalls),
        occupation_false=len(report.occupation) - len(stalls),
        structure_errors_m=[round(d, 3) for _, d in found.values()],
        area_errors=area_errors,
        stall_errors_m=[round(d, 3) for _, d in stalls.values()],
        change_s=round(statistics.median(change), 3) if change else None,
    )


def evaluate(
    seeds: Sequence[int],
    *,
    image_size: tuple[int, int] = (1200, 800),
    baselines: Sequence[str] = BASELINES,
    work: Path,
    tile: int = 640,
) -> dict[str, dict[int, SurveyScore]]:
    """Render each seed's survey under `work` and score a run against each baseline."""
    config = SurveyConfig(tiling=TilingConfig(tile=tile))
    scores: dict[str, dict[int, SurveyScore]] = {b: {} for b in baselines}
    for seed in seeds:
        truth = write_two_flight_survey(work / f"town-{seed}", seed=seed, image_size=image_size, orthomosaic=True)
        detector = TruthDetector.for_survey(truth, tile=tile)
        for name in baselines:
            baseline = truth.orthomosaic_path if name == "orthomosaic" else truth.baseline.images[0].parent
            report = run_survey(
                truth.survey.images[0].parent,
                out_dir=work / f"out-{seed}-{name}",
                detector=detector,
                baseline=baseline,
                permits=truth.permits_path,
                streets=truth.streets_path,
                config=config,
            )
            scores[name][seed] = score_survey(truth, report)
    return scores


def _summary(scores: dict[int, SurveyScore]) -> str:
    all_scores = list(scores.values())

    def total(attr: str) -> int:
        return sum(getattr(s, attr) for s in all_scores)

    def median(attr: str) -> str:
        values = [v for s in all_scores for v in getattr(s, attr)]
        return f"{statistics.median(values):.2f}" if values else "-"

    change = [s.change_s for s in all_scores if s.change_s is not None]
    return (
        f"structures found {total('structures_found')}/{total('structures')}, "
        f"false {total('construction_false')}, permitted skipped {total('permitted_skipped')}/{total('permitted')}; "
        f"stalls found {total('stalls_found')}/{total('stalls')}, false {total('occupation_false')}; "
        f"median error: structure {median('structure_errors_m')} m, area {median('area_errors')}, "
        f"stall {median('stall_errors_m')} m; change s/image median "
        + (f"{statistics.median(change):.2f}" if change else "-")
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.evaluate_survey", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="11,12,13", help="comma-separated generator seeds")
    parser.add_argument("--size", default="1200x800", help="image size, WIDTHxHEIGHT")
    parser.add_argument("--baseline", default=",".join(BASELINES), help="images, orthomosaic or both")
    parser.add_argument("--work", type=Path, default=None, help="folder for the rendered surveys (default: temporary)")
    parser.add_argument("--json", type=Path, default=None, help="write every score here")
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--seeds takes integers and --size WIDTHxHEIGHT, got {args.seeds!r} and {args.size!r}")
    baselines = [b.strip() for b in args.baseline.split(",") if b.strip()]
    if unknown := sorted(set(baselines) - set(BASELINES)):
        parser.error(f"--baseline: unknown {', '.join(unknown)}; choose from {', '.join(BASELINES)}")
    if len(set(seeds)) != len(seeds):
        parser.error(f"--seeds names a seed twice: {args.seeds}")
    with tempfile.TemporaryDirectory(prefix="nonsite-survey-eval-") as tmp:
        work = args.work or Path(tmp)
        try:
            scores = evaluate(seeds, image_size=(width, height), baselines=baselines, work=work)
        except (DatasetError, SurveyError, ValueError) as exc:
            print(f"python -m pipelines.evaluate_survey: {exc}", file=sys.stderr)
            return 1
    for name, per_seed in scores.items():
        for seed, score in per_seed.items():
            print(f"{name} seed {seed}: {_summary({seed: score})}")
        print(f"{name} all seeds: {_summary(per_seed)}")
    if args.json:
        document = {name: {str(seed): asdict(s) for seed, s in per_seed.items()} for name, per_seed in scores.items()}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

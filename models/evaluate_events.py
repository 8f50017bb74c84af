"""Event-level evaluation: did the engine report the violations that happened, and only those?

Truth comes from synthetic scenes' `<stem>.truth.json` (format `nonsite.synthetic.truth/1`,
documented in `datasets/synthetic/export.py`); predictions from the `violations.jsonl` an
analysis run writes (one `Violation.to_record()` a line). A predicted event matches a true
one when the kinds agree, their frame spans overlap and the predicted box overlaps the
true event's region. Matching is one-to-one, largest temporal overlap first.

Per kind: precision, recall, F1, median time to detect (from the true start to the frame
the engine confirmed it), and false events per hour on footage that holds no event of any
kind (distractor-only scenes).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.errors import ModelsError

KINDS = ("fume", "occupation", "construction")


@dataclass(frozen=True)
class Event:
    kind: str
    start_frame: int
    end_frame: int
    box: tuple[float, float, float, float]
    confirmed_frame: int | None = None


@dataclass(frozen=True)
class Scene:
    """One scene's truth and predictions."""

    name: str
    fps: float
    frame_count: int
    truth: tuple[Event, ...]
    predicted: tuple[Event, ...]

    @property
    def hours(self) -> float:
        return self.frame_count / self.fps / 3600.0

    @property
    def distractor_only(self) -> bool:
        return not self.truth


@dataclass
class KindScore:
    kind: str
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    detect_delays_s: list[float] = field(default_factory=list)
    false_on_distractors: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        real = self.true_positives + self.false_negatives
        return self.true_positives / real if real else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def median_delay_s(self) -> float | None:
        return statistics.median(self.detect_delays_s) if self.detect_delays_s else None


@dataclass
class EventReport:
    scenes: int
    distractor_hours: float
    by_kind: dict[str, KindScore]

    def false_per_hour(self, kind: str) -> float:
        if self.distractor_hours == 0:
            return math.nan
        return self.by_kind[kind].false_on_distractors / self.distractor_hours

    def to_json(self) -> dict[str, Any]:
        return {
            "scenes": self.scenes,
            "distractor_hours": round(self.distractor_hours, 4),
            "kinds": {
                k: {
                    "true_positives": s.true_positives,
                    "false_positives": s.false_positives,
                    "false_negatives": s.false_negatives,
                    "precision": round(s.precision, 4),
                    "recall": round(s.recall, 4),
                    "f1": round(s.f1, 4),
                    "median_time_to_detect_s": None if s.median_delay_s is None else round(s.median_delay_s, 2),
                    "false_events_per_distractor_hour": round(self.false_per_hour(k), 3)
                    if self.distractor_hours
                    else None,
                }
                for k, s in self.by_kind.items()
            },
        }


def _box_of(points: Sequence[Sequence[float]]) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return (min(xs), min(ys), max(xs), max(ys))


def load_truth(path: Path) -> tuple[float, int, list[Event]]:
    """(fps, frame count, events) from a synthetic scene's truth file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != "nonsite.synthetic.truth/1":
            raise ModelsError(f"{path}: not a nonsite truth file (format {data.get('format')!r})")
        events = [
            Event(e["kind"], int(e["start_frame"]), int(e["end_frame"]), _box_of(e["region"])) for e in data["events"]
        ]
        return float(data["fps"]), int(data["frame_count"]), events
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelsError(f"{path}: cannot read truth: {e}") from e


def load_predictions(path: Path) -> list[Event]:
    """Events from a `violations.jsonl` (closed records; an open one is superseded by its close)."""
    events = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ModelsError(f"{path}: cannot read predictions: {e}") from e
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            if not r.get("closed", True):
                continue
            events.append(
                Event(
                    r["kind"],
                    int(r["start_frame"]),
                    int(r["end_frame"]),
                    tuple(float(v) for v in r["bbox"]),  # type: ignore[arg-type]
                    int(r["confirmed_frame"]),
                )
            )
        except (ValueError, KeyError, TypeError) as e:
            raise ModelsError(f"{path}:{number}: malformed violation record: {e}") from e
    return events


def _boxes_overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def _overlap(a: Event, b: Event) -> int:
    return min(a.end_frame, b.end_frame) - max(a.start_frame, b.start_frame) + 1


def score_scene(scene: Scene, scores: dict[str, KindScore]) -> None:
    """Add one scene's matches to `scores` (one entry per kind)."""
    for kind in KINDS:
        truth = [e for e in scene.truth if e.kind == kind]
        predicted = [e for e in scene.predicted if e.kind == kind]
        pairs = sorted(
            (
                (_overlap(t, p), i, j)
                for i, t in enumerate(truth)
                for j, p in enumerate(predicted)
                if _overlap(t, p) > 0 and _boxes_overlap(t.box, p.box)
            ),
            reverse=True,
        )
        used_truth: set[int] = set()
        used_pred: set[int] = set()
        score = scores[kind]
        for _, i, j in pairs:
            if i in used_truth or j in used_pred:
                continue
            used_truth.add(i)
            used_pred.add(j)
            score.true_positives += 1
            confirmed = predicted[j].confirmed_frame
            if confirmed is not None:
                score.detect_delays_s.append(max(0, confirmed - truth[i].start_frame) / scene.fps)
        score.false_negatives += len(truth) - len(used_truth)
        unmatched = len(predicted) - len(used_pred)
        score.false_positives += unmatched
        if scene.distractor_only:
            score.false_on_distractors += unmatched


def evaluate(scenes: Iterable[Scene]) -> EventReport:
    scores = {kind: KindScore(kind) for kind in KINDS}
    count = 0
    distractor_hours = 0.0
    for scene in scenes:
        score_scene(scene, scores)
        count += 1
        if scene.distractor_only:
            distractor_hours += scene.hours
    return EventReport(count, distractor_hours, scores)


def pair_files(truth: Path, predictions: Path) -> list[tuple[str, Path, Path]]:
    """Truth and prediction files that belong together.

    Either two files, or two folders: `<name>.truth.json` in `truth` pairs with
    `<name>/violations.jsonl` or `<name>.violations.jsonl` in `predictions`.
    """
    if truth.is_file():
        return [(truth.name.removesuffix(".truth.json"), truth, predictions)]
    pairs = []
    for t in sorted(truth.glob("*.truth.json")):
        name = t.name.removesuffix(".truth.json")
        for candidate in (predictions / name / "violations.jsonl", predictions / f"{name}.violations.jsonl"):
            if candidate.is_file():
                pairs.append((name, t, candidate))
                break
        else:
            raise ModelsError(f"no predictions for {t.name} in {predictions}")
    if not pairs:
        raise ModelsError(f"{truth}: no *.truth.json files")
    return pairs


def evaluate_files(truth: Path, predictions: Path) -> EventReport:
    scenes = []
    for name, t, p in pair_files(Path(truth), Path(predictions)):
        fps, frames, events = load_truth(t)
        scenes.append(Scene(name, fps, frames, tuple(events), tuple(load_predictions(p))))
    return evaluate(scenes)

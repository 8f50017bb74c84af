"""Box-level evaluation: matching, AP, and whole reports from a fake detector on a tiny YOLO set."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.errors import ModelsError
from models.evaluate_detect import (
    average_precision,
    box_iou,
    evaluate_detector,
    evaluate_model,
    load_eval_set,
    match_predictions,
)
from tests.vision.onnx_models import constant_head_model, ultralytics_metadata
from vision.detectors import Detector, ModelInfo
from vision.types import Detections

W, H = 200, 100


def write_set(root: Path, labels: dict[str, list[str]], names: list[str] | None = ("stall", "umbrella")) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for stem, lines in labels.items():
        cv2.imwrite(str(root / "images" / f"{stem}.jpg"), np.full((H, W, 3), 90, np.uint8))
        (root / "labels" / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    if names:
        (root / "data.yaml").write_text(f"path: {root}\ntrain: images\nval: images\nnames: {list(names)}\n")
    return root


class ScriptedDetector(Detector):
    """Returns, for the i-th image it is shown, the i-th scripted result."""

    def __init__(
        self, results: list[list[tuple[float, float, float, float, float, int]]], names: Sequence[str]
    ) -> None:
        self.results = results
        self.calls = 0
        self.info = ModelInfo(Path("scripted.onnx"), "s" * 64, tuple(names), (64, 64), "test", True, ("cpu",), {})

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        out = []
        for _ in images:
            rows = self.results[self.calls]
            self.calls += 1
            if not rows:
                out.append(Detections.empty())
                continue
            a = np.array(rows, np.float32)
            out.append(Detections(xyxy=a[:, :4], score=a[:, 4], class_id=a[:, 5].astype(np.int32)))
        return out


def test_iou_of_known_boxes() -> None:
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0]])


def test_each_true_box_is_matched_once_and_only_within_its_class() -> None:
    true = np.array([[0, 0, 10, 10]], float)
    preds = np.array([[0, 0, 10, 10], [0, 0, 10, 9], [0, 0, 10, 10]], float)
    correct = match_predictions(preds, np.array([0, 0, 1]), true, np.array([0]))
    assert correct[:, 0].tolist() == [True, False, False]  # the duplicate is a false positive, the wrong class too


def test_iou_thresholds_decide_which_levels_count() -> None:
    true = np.array([[0, 0, 100, 10]], float)
    pred = np.array([[0, 0, 62, 10]], float)  # IoU 0.62: counts at 0.50, 0.55, 0.60
    correct = match_predictions(pred, np.array([0]), true, np.array([0]))
    assert correct[0].tolist() == [True] * 3 + [False] * 7


#: what ultralytics (and this module) report for a perfect class: the curve is closed at recall 1
#: with precision 0, and the last of the 101 trapezoids averages the two
PERFECT = 0.995


def test_average_precision_of_a_perfect_and_of_a_half_found_class() -> None:
    assert average_precision(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == pytest.approx(PERFECT)
    # one of two found, at precision 1, nothing more: the envelope is 1 up to recall 0.5 and falls
    # linearly to 0 at recall 1, as ultralytics interpolates it (COCO's step would give 0.5)
    assert average_precision(np.array([0.5]), np.array([1.0])) == pytest.approx(0.75, abs=0.01)


def test_a_perfect_detector_scores_one(tmp_path: Path) -> None:
    data = write_set(tmp_path / "set", {"a": ["0 0.25 0.5 0.2 0.4"], "b": ["1 0.5 0.5 0.1 0.2", "0 0.8 0.5 0.2 0.4"]})
    eval_set = load_eval_set(data / "data.yaml")
    detector = ScriptedDetector(
        [[(30, 30, 70, 70, 0.9, 0)], [(90, 40, 110, 60, 0.8, 1), (140, 30, 180, 70, 0.7, 0)]], ["stall", "umbrella"]
    )
    report = evaluate_detector(detector, eval_set)
    assert (report.map50, report.map50_95, report.precision, report.recall) == pytest.approx((PERFECT, PERFECT, 1, 1))
    assert [(c.name, c.instances, c.images) for c in report.per_class] == [("stall", 2, 2), ("umbrella", 1, 1)]


def test_a_loose_box_and_a_miss_lower_the_figures_as_they_should(tmp_path: Path) -> None:
    data = write_set(tmp_path / "set", {"a": ["0 0.25 0.5 0.5 0.1"], "b": ["0 0.75 0.5 0.2 0.4"]})
    eval_set = load_eval_set(data / "data.yaml")
    # image a: a box of IoU 0.62 with the truth (x 0..100 → 0..62); image b: nothing found
    detector = ScriptedDetector([[(0, 45, 62, 55, 0.9, 0)], []], ["stall", "umbrella"])
    report = evaluate_detector(detector, eval_set)
    assert report.recall == pytest.approx(0.5)
    assert report.precision == pytest.approx(1.0)
    assert report.map50 == pytest.approx(0.75, abs=0.01)  # see the AP test above
    # at 3 of the 10 thresholds AP is 0.75; at the other 7 nothing is found (AP 0 there)
    assert report.map50_95 == pytest.approx(0.75 * 0.3, abs=0.01)
    assert report.notes == ("no true boxes of 'umbrella' in this set",)


def test_model_classes_map_onto_the_sets_classes(tmp_path: Path) -> None:
    data = write_set(tmp_path / "vendors", {"a": ["0 0.25 0.5 0.2 0.4", "0 0.75 0.5 0.2 0.4"]}, names=["vendor"])
    eval_set = load_eval_set(data / "data.yaml")
    rows = [[(30, 30, 70, 70, 0.9, 0), (130, 30, 170, 70, 0.8, 1), (0, 0, 5, 5, 0.7, 2)]]
    report = evaluate_detector(
        ScriptedDetector(rows, ["stall", "umbrella", "person"]), eval_set, model_map={"vendor": ["stall", "umbrella"]}
    )
    assert report.map50 == pytest.approx(PERFECT)  # the person box is not evaluated at all
    with pytest.raises(ModelsError, match="share none"):
        evaluate_detector(ScriptedDetector(rows, ["stall", "umbrella", "person"]), eval_set)


def test_label_maps_merge_label_ids(tmp_path: Path) -> None:
    data = write_set(tmp_path / "smoke", {"a": ["0 0.25 0.5 0.2 0.4", "1 0.75 0.5 0.2 0.4"]}, names=None)
    eval_set = load_eval_set(data, label_map={"0": "smoke", "1": "smoke"})
    assert eval_set.classes == ("smoke",)
    assert eval_set.instances == 2
    with pytest.raises(ModelsError, match="names no classes"):
        load_eval_set(data)


@pytest.mark.parametrize(
    ("line", "message"),
    [("0 0.5 0.5 0.2", "expected 5 fields"), ("0 1.5 0.5 0.2 0.2", "normalised"), ("7 0.5 0.5 0.1 0.1", "class id 7"),
     ("a b c d e", "expected 'class cx cy w h'")],
)  # fmt: skip
def test_bad_label_lines_are_named_by_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    data = write_set(tmp_path / "set", {"a": ["0 0.5 0.5 0.1 0.1", line]})
    with pytest.raises(ModelsError, match=rf"a\.txt:2: .*{message}"):
        load_eval_set(data / "data.yaml")


def test_an_onnx_model_is_evaluated_through_the_detection_core(tmp_path: Path) -> None:
    raw = np.zeros((6, 8), np.float32)
    raw[:4] = 1.0
    raw[:, 0] = [32, 32, 16, 16, 0.9, 0.0]  # one stall in the middle of the 64×64 input
    model = constant_head_model(tmp_path / "m.onnx", raw, metadata=ultralytics_metadata(["stall", "umbrella"]))
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    cv2.imwrite(str(root / "images" / "a.jpg"), np.full((64, 64, 3), 90, np.uint8))
    (root / "labels" / "a.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    (root / "data.yaml").write_text("path: .\ntrain: images\nval: images\nnames: [stall, umbrella]\n")
    report = evaluate_model(model, root / "data.yaml")
    assert report.map50 == pytest.approx(PERFECT)
    assert report.model == "m.onnx"
    with pytest.raises(ModelsError, match="does not exist"):
        evaluate_model(tmp_path / "missing.onnx", root / "data.yaml")

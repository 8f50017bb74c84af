import json

import cv2
import numpy as np
import pytest

from models.errors import ModelsError
from models.evaluate_change import ZERO, PixelCounts, cva_otsu_mask, evaluate_change_dataset, main

# Measured on the 11 labelled LEVIR-CD sample pairs (2026-12-07): change_mask F1 0.338,
# structures F1 0.323 (precision 0.529), CVA + Otsu F1 0.231. The margin is the spread
# that small implementation details moved these figures by while the method was built.
MEASURED_CHANGE_F1 = 0.338
MEASURED_STRUCTURES_F1 = 0.323
MEASURED_STRUCTURES_PRECISION = 0.529
MARGIN = 0.03


def masks(*rows: str) -> np.ndarray:
    return np.array([[c == "#" for c in row] for row in rows])


def test_counts_precision_recall_f1_and_iou_by_hand():
    predicted = masks("##.", ".#.")
    truth = masks("#..", ".##")
    counts = PixelCounts.from_masks(predicted, truth)
    assert counts == PixelCounts(true_positives=2, false_positives=1, false_negatives=1, true_negatives=2)
    assert counts.precision == pytest.approx(2 / 3)
    assert counts.recall == pytest.approx(2 / 3)
    assert counts.f1 == pytest.approx(2 / 3)
    assert counts.iou == pytest.approx(2 / 4)


@pytest.mark.parametrize(
    ("predicted", "truth", "precision", "recall", "f1", "iou"),
    [
        (masks("...", "..."), masks("...", "..."), 1.0, 1.0, 1.0, 1.0),  # nothing changed, nothing marked
        (masks("#..", "..."), masks("...", "..."), 0.0, 1.0, 0.0, 0.0),  # a false alarm on a quiet pair
        (masks("...", "..."), masks(".#.", "..."), 1.0, 0.0, 0.0, 0.0),  # a change missed
        (masks("###", "###"), masks("###", "###"), 1.0, 1.0, 1.0, 1.0),
    ],
)
def test_edge_cases_of_the_scores(predicted, truth, precision, recall, f1, iou):
    counts = PixelCounts.from_masks(predicted, truth)
    assert (counts.precision, counts.recall, counts.f1, counts.iou) == (precision, recall, f1, iou)


def test_overall_scores_sum_pixels_over_pairs():
    small = PixelCounts.from_masks(masks("#."), masks("##"))  # tp 1, fn 1
    large = PixelCounts.from_masks(masks("####", "...."), masks("....", "...."))  # fp 4
    total = sum((small, large), ZERO)
    assert total == PixelCounts(1, 4, 1, 4)
    assert total.f1 == pytest.approx(2 * 1 / (2 * 1 + 4 + 1))  # not the mean of the pairs' F1 (0.33 and 0)


def test_masks_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match=r"one shape, but got bool \(1, 2\) and bool \(2, 1\)"):
        PixelCounts.from_masks(masks("##"), masks("#", "#"))


def test_change_vector_analysis_marks_the_brighter_square():
    before = np.full((40, 40, 3), 100, np.uint8)
    after = before.copy()
    after[10:20, 10:20] = 200
    np.testing.assert_array_equal(cva_otsu_mask(before, after), after[..., 0] == 200)


def textured(seed: int, h: int = 96, w: int = 128) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.full((h, w, 3), 120, np.float32) + rng.normal(0, 4, (h, w, 1))
    for _ in range(12):
        x, y = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
        image[y : y + 20, x : x + 20] = rng.uniform(60, 200, 3)
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture
def dataset(tmp_path):
    """Three pairs: a new rooftop structure, a pair without a label, and a pair whose images differ in size."""
    for folder in ("A", "B", "label"):
        (tmp_path / folder).mkdir()
    before = textured(0)
    after = before.copy()
    after[30:60, 40:80] = (40, 110, 220)
    label = np.zeros(before.shape[:2], np.uint8)
    label[30:60, 40:80] = 255
    cv2.imwrite(str(tmp_path / "A" / "new.png"), before)
    cv2.imwrite(str(tmp_path / "B" / "new.png"), after)
    cv2.imwrite(str(tmp_path / "label" / "new.png"), label)
    cv2.imwrite(str(tmp_path / "A" / "unlabelled.png"), textured(1))
    cv2.imwrite(str(tmp_path / "B" / "unlabelled.png"), textured(1))
    cv2.imwrite(str(tmp_path / "A" / "shifted.png"), textured(2))
    cv2.imwrite(str(tmp_path / "B" / "shifted.png"), textured(2, h=95))
    cv2.imwrite(str(tmp_path / "label" / "shifted.png"), label)
    return tmp_path


def test_a_folder_is_scored_and_what_cannot_be_scored_is_listed(dataset):
    report = evaluate_change_dataset(dataset, gsd_m=0.25)
    assert [p.name for p in report.pairs] == ["new"]
    assert dict(report.skipped) == {
        "shifted": "before is 128x96 but after 128x95: not co-registered",
        "unlabelled": "no label in label/",
    }
    (pair,) = report.pairs
    assert pair.change.f1 > 0.9 and pair.structures.f1 > 0.9
    assert report.change == pair.change
    assert pair.mask_seconds > 0 and pair.regions_seconds > 0


def test_the_command_prints_a_table_and_writes_json(dataset, capsys):
    out = dataset / "report.json"
    assert main([str(dataset), "--gsd-m", "0.25", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| new |" in table and "**overall (1 pairs" in table and "skipped unlabelled: no label" in table
    data = json.loads(out.read_text())
    assert data["pairs"][0]["name"] == "new"
    assert data["overall"]["change"]["f1"] == data["pairs"][0]["change"]["f1"]
    assert {s["name"] for s in data["skipped"]} == {"unlabelled", "shifted"}


def test_a_folder_without_a_before_folder_is_named(tmp_path):
    (tmp_path / "B").mkdir()
    with pytest.raises(ModelsError, match=r"A is not a folder: a change dataset holds A/, B/ and label/"):
        evaluate_change_dataset(tmp_path)


def test_an_unreadable_image_is_named(dataset):
    (dataset / "A" / "new.png").write_bytes(b"not a png")
    with pytest.raises(ModelsError, match=r"new\.png: cannot read the image"):
        evaluate_change_dataset(dataset)


@pytest.mark.shared_data
def test_levir_cd_samples_keep_the_measured_level(shared_data):
    report = evaluate_change_dataset(shared_data / "change" / "levir_cd")
    assert len(report.pairs) == 11
    assert dict(report.skipped) == {"test_113_0256": "no label in label/"}
    assert report.change.f1 >= MEASURED_CHANGE_F1 - MARGIN
    assert report.structures.f1 >= MEASURED_STRUCTURES_F1 - MARGIN
    assert report.structures.precision >= MEASURED_STRUCTURES_PRECISION - MARGIN
    # and the method beats the classical baseline measured in the same run
    assert report.change.f1 > report.baseline.f1 + 0.05

import json

import pytest

from models.errors import ModelsError
from models.evaluate_events import Event, Scene, evaluate, evaluate_files


def truth_file(path, events, frames=300, fps=15.0):
    path.write_text(
        json.dumps(
            {
                "format": "nonsite.synthetic.truth/1",
                "fps": fps,
                "frame_count": frames,
                "events": [
                    {"kind": k, "start_frame": s, "end_frame": e, "region": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]}
                    for k, s, e, (x0, y0, x1, y1) in events
                ],
            }
        )
    )
    return path


def predictions_file(path, events):
    lines = [
        json.dumps(
            {"kind": k, "start_frame": s, "end_frame": e, "confirmed_frame": c, "bbox": list(box), "closed": True}
        )
        for k, s, e, c, box in events
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_matches_need_the_same_kind_overlapping_time_and_place():
    truth = (Event("occupation", 10, 100, (0, 0, 50, 50)),)
    scene = lambda *pred: Scene("s", 10.0, 300, truth, tuple(pred))  # noqa: E731
    hit = evaluate([scene(Event("occupation", 40, 120, (10, 10, 60, 60), confirmed_frame=40))])
    assert (hit.by_kind["occupation"].true_positives, hit.by_kind["occupation"].f1) == (1, 1.0)
    assert hit.by_kind["occupation"].median_delay_s == pytest.approx(3.0)
    for wrong in (
        Event("fume", 40, 120, (10, 10, 60, 60), 40),  # kind
        Event("occupation", 150, 200, (10, 10, 60, 60), 150),  # time
        Event("occupation", 40, 120, (100, 100, 160, 160), 40),  # place
    ):
        miss = evaluate([scene(wrong)])
        assert miss.by_kind["occupation"].false_negatives == 1


def test_one_prediction_matches_one_truth_and_duplicates_are_false():
    truth = (Event("fume", 0, 100, (0, 0, 50, 50)),)
    preds = (Event("fume", 0, 50, (0, 0, 50, 50), 5), Event("fume", 60, 100, (0, 0, 50, 50), 60))
    score = evaluate([Scene("s", 10.0, 300, truth, preds)]).by_kind["fume"]
    assert (score.true_positives, score.false_positives, score.false_negatives) == (1, 1, 0)
    assert score.precision == 0.5 and score.recall == 1.0


def test_false_events_per_hour_count_only_distractor_footage():
    distractor = Scene("d", 10.0, 36_000, (), (Event("fume", 0, 10, (0, 0, 1, 1), 0),))  # one hour
    report = evaluate([distractor])
    assert report.distractor_hours == pytest.approx(1.0)
    assert report.false_per_hour("fume") == pytest.approx(1.0)
    assert report.false_per_hour("occupation") == 0.0


def test_evaluates_folders_of_truth_and_predictions(tmp_path):
    (tmp_path / "truth").mkdir()
    (tmp_path / "pred" / "a").mkdir(parents=True)
    truth_file(tmp_path / "truth" / "a.truth.json", [("construction", 30, 299, (100, 50, 200, 250))])
    predictions_file(tmp_path / "pred" / "a" / "violations.jsonl", [("construction", 45, 299, 90, (110, 60, 190, 240))])
    report = evaluate_files(tmp_path / "truth", tmp_path / "pred")
    assert report.scenes == 1
    assert report.by_kind["construction"].f1 == 1.0
    assert report.to_json()["kinds"]["construction"]["median_time_to_detect_s"] == pytest.approx(4.0)


def test_bad_files_name_what_is_wrong(tmp_path):
    bad_truth = tmp_path / "x.truth.json"
    bad_truth.write_text("{}")
    with pytest.raises(ModelsError, match="not a nonsite truth file"):
        evaluate_files(bad_truth, tmp_path / "none.jsonl")
    good = truth_file(tmp_path / "y.truth.json", [])
    broken = tmp_path / "p.jsonl"
    broken.write_text('{"kind": "fume"}\n')
    with pytest.raises(ModelsError, match=r"p.jsonl:1: malformed violation record"):
        evaluate_files(good, broken)
    (tmp_path / "t").mkdir()
    truth_file(tmp_path / "t" / "z.truth.json", [])
    with pytest.raises(ModelsError, match=r"no predictions for z\.truth\.json"):
        evaluate_files(tmp_path / "t", tmp_path)

"""`nonsite eval structures`: the structural-change rule's figures, reproduced on a small setting."""

from __future__ import annotations

import math

import pytest

from datasets.synthetic import SceneSpec, SyntheticScene
from nonsite.cli import main
from nonsite.structures import (
    DISTRACTOR_SCENE_S,
    distractor_specs,
    evaluate_structures,
    run_rule,
    site_zone,
    structure_specs,
)


@pytest.fixture(scope="module")
def small_report():
    return evaluate_structures(structure_scenes=2, distractor_minutes=1.0, distractor_fps=5.0)


def test_the_small_setting_finds_both_structures_where_they_stand(small_report):
    assert small_report.found == 2
    assert small_report.truth_events == 2
    assert small_report.recall == 1.0
    assert small_report.precision == 1.0


def test_the_short_distractor_run_raises_no_event(small_report):
    assert small_report.distractor_scenes == 1
    assert small_report.distractor_events == 0
    assert small_report.false_per_distractor_hour == 0.0


def test_structures_are_confirmed_after_building_starts_and_the_dwell_passes(small_report):
    # a 3 s build, 2 s of holding still, then the zone's 2 s dwell; within the 12 s scene
    low, high = small_report.confirm_range_s
    assert 2.0 <= low <= high <= 12.0
    assert low <= small_report.median_confirm_s <= high


def test_the_same_arguments_give_the_same_figures(small_report):
    again = evaluate_structures(structure_scenes=2, distractor_minutes=0.0)
    assert again.score.detect_delays_s == small_report.score.detect_delays_s
    assert math.isnan(again.false_per_distractor_hour)


def test_a_structure_scene_holds_one_true_event_and_the_rule_raises_one_over_it():
    scene = SyntheticScene(SceneSpec.structure_going_up(seed=0))
    scored = run_rule(scene, with_truth_boxes=True)
    (truth,) = scored.truth
    (event,) = scored.predicted
    assert truth.kind == event.kind == "construction"
    assert event.start_frame <= truth.end_frame and event.end_frame >= truth.start_frame


def test_the_zone_is_the_suites_site_zone_over_the_whole_view():
    zone = site_zone(SyntheticScene(SceneSpec.structure_going_up(seed=0)))
    assert zone.name == "site"
    assert zone.rule.value == "construction_watch"
    assert zone.min_dwell_s == 2.0


@pytest.mark.parametrize(
    ("minutes", "scenes", "scene_s"),
    [(0.0, 0, None), (1.0, 1, 60.0), (6.0, 1, 360.0), (7.0, 2, 210.0), (60.0, 10, 360.0)],
)
def test_distractor_footage_is_split_into_equal_scenes_of_at_most_six_minutes(minutes, scenes, scene_s):
    specs = distractor_specs(minutes, 5.0)
    assert len(specs) == scenes
    assert [s.seed for s in specs] == list(range(100, 100 + scenes))
    assert all(s.duration_s == scene_s <= DISTRACTOR_SCENE_S and s.fps == 5.0 for s in specs)


def test_structure_scenes_are_the_preset_from_seed_zero():
    specs = structure_specs(3)
    assert [(s.name, s.seed, s.fps, s.duration_s) for s in specs] == [
        ("structure_going_up", i, 15.0, 12.0) for i in range(3)
    ]


@pytest.mark.parametrize("bad", [-1.0, math.inf, math.nan])
def test_bad_distractor_lengths_are_refused(bad):
    with pytest.raises(ValueError, match="minutes must be"):
        distractor_specs(bad, 5.0)


def test_the_command_prints_recall_precision_false_events_and_time_to_confirm(capsys):
    assert main(["eval", "structures", "--scenes", "1", "--distractor-minutes", "0.5", "--fps", "5"]) == 0
    out = capsys.readouterr().out
    assert "recall:                  1.000 (1/1)" in out
    assert "precision:               1.000 (1/1)" in out
    assert "false events:            0 on distractors, 0.00 per distractor hour" in out
    assert "time to confirm:         median" in out


@pytest.mark.parametrize("argv", [["--fps", "0"], ["--distractor-minutes", "-1"], ["--scenes", "0"]])
def test_the_command_refuses_bad_settings(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "structures", *argv])
    assert exit_info.value.code == 2

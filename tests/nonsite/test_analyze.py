import json
import zipfile

import yaml

from datasets.synthetic import SceneSpec, write_video
from nonsite.analyze import suite_specs, synthetic_camera
from nonsite.cli import main


def test_analyze_then_evaluate_a_rendered_stall_scene(tmp_path, capsys):
    video = tmp_path / "stall.mp4"
    truth = write_video(SceneSpec.sidewalk_stall(seed=4), video)
    camera = synthetic_camera("cam-stall", truth, str(video))
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text(yaml.safe_dump({"cameras": [camera.model_dump(mode="json", exclude_none=True)]}))
    out = tmp_path / "out"
    vault = ["--evidence", str(tmp_path / "evidence"), "--keys", str(tmp_path / "keys")]
    assert main(["analyze", str(video), "--cameras", str(cameras), "--out", str(out), *vault]) == 0
    sealed = [line.split()[3] for line in capsys.readouterr().out.splitlines() if line.startswith("sealed")]
    records = [json.loads(line) for line in (out / "violations.jsonl").read_text().splitlines()]
    closed = [r for r in records if r["closed"]]
    assert [r["kind"] for r in closed] == ["occupation"] * len([e for e in truth.events if e.kind == "occupation"])
    assert all(r["source"] == "cam-stall" and r["model_id"] for r in records)
    # every closed violation became a sealed package whose bundle verifies offline
    assert len(sealed) == len(closed)
    bundle = tmp_path / "bundle.zip"
    assert main(["evidence", "export", sealed[0], "--out", str(bundle), *vault]) == 0
    assert main(["verify", str(bundle)]) == 0
    with zipfile.ZipFile(bundle) as z:
        names = z.namelist()
    assert "files/clip.mp4" in names and any(n.startswith("files/keyframe-") for n in names)
    assert any(n.startswith("files/annotated-") for n in names)
    capsys.readouterr()
    truth_file = tmp_path / "stall.truth.json"
    assert main(["eval", "events", "--truth", str(truth_file), "--pred", str(out / "violations.jsonl")]) == 0
    report = capsys.readouterr().out
    occupation = next(line for line in report.splitlines() if line.startswith("occupation"))
    assert occupation.split()[3] == "0"  # no false negatives
    assert occupation.split()[2] == "0"  # no false positives


def test_analyze_names_an_unknown_camera(tmp_path, capsys):
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n  - {id: a, name: A, source: x.mp4}\n  - {id: b, name: B, source: y.mp4}\n")
    video = tmp_path / "v.mp4"
    write_video(SceneSpec.distractor_only(seed=1, duration_s=1.0), video)
    assert main(["analyze", str(video), "--cameras", str(cameras), "--camera", "c"]) == 1
    assert "has no camera 'c' (it has a, b)" in capsys.readouterr().err
    assert main(["analyze", str(video), "--cameras", str(cameras)]) == 1
    assert "choose one with --camera" in capsys.readouterr().err


def test_a_mistyped_camera_key_is_refused_with_its_path(tmp_path, capsys):
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n  - {id: a, name: A, source: x.mp4, fsp: 5}\n")
    assert main(["analyze", str(tmp_path), "--cameras", str(cameras)]) == 1
    assert "cameras.0.fsp" in capsys.readouterr().err


def test_the_suite_is_a_third_distractor_only():
    specs = suite_specs(30, distractor_s=60.0, distractor_fps=5.0)
    distractors = [s for s in specs if s.name == "distractor_only"]
    assert len(distractors) == 10
    assert all(s.duration_s == 60.0 and s.fps == 5.0 for s in distractors)
    assert len({s.seed for s in specs}) == 30


def test_eval_events_needs_truth_and_predictions_or_the_suite(tmp_path, capsys):
    assert main(["eval", "events"]) == 1
    assert "give --truth and --pred, or --synthetic" in capsys.readouterr().err
    assert main(["eval", "events", "--truth", str(tmp_path), "--pred", str(tmp_path)]) == 1
    assert "no *.truth.json files" in capsys.readouterr().err

"""Tables, chairs (with people sitting on them) and construction materials in street scenes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from datasets.synthetic import (
    SYNTHETIC_CLASSES,
    ActorKind,
    ActorSpec,
    SceneSpec,
    SyntheticScene,
    sample_scene_spec,
    scene_truth,
    write_yolo_dataset,
    yolo_label_lines,
)
from datasets.synthetic.actors import Chair, Materials, SeatedPerson, Table
from datasets.synthetic.spec import EVENT_KIND_OF, EventKind

CLEAN: dict[str, Any] = {"width": 320, "height": 180, "fps": 10.0, "duration_s": 3.0, "distractors": ()}
NEW = ("table", "chair", "materials")


def furniture_spec(seed: int, **extra: Any) -> SceneSpec:
    actors = (
        ActorSpec(kind=ActorKind.TABLE, count=1, appear_s=0.0),
        ActorSpec(kind=ActorKind.CHAIR, count=4, appear_s=0.0),
        ActorSpec(kind=ActorKind.MATERIALS, count=3, appear_s=0.0),
    )
    return SceneSpec(**{**CLEAN, "seed": seed, "actors": actors, **extra})


def test_new_classes_come_after_the_old_ones_whose_ids_stay() -> None:
    old = ("smoke", "stall", "umbrella", "goods", "person", "vehicle", "scaffolding", "machinery")
    assert SYNTHETIC_CLASSES[: len(old)] == old
    assert [ActorKind(name).class_id for name in old] == list(range(8))
    assert (ActorKind.TABLE.class_id, ActorKind.CHAIR.class_id, ActorKind.MATERIALS.class_id) == (8, 9, 10)


@pytest.mark.parametrize("seed", range(6))
def test_each_new_object_changes_pixels_only_inside_its_box(seed: int) -> None:
    scene = SyntheticScene(furniture_spec(seed))
    image, truth = scene.render(20)
    checked = set()
    for o in truth.objects:
        without, _ = scene.render(20, hidden={o.object_id})
        ys, xs = np.nonzero(np.any(image != without, axis=2))
        x0, y0, x1, y1 = o.xyxy
        assert (len(xs) > 0) == (o.visible_fraction > 0), f"{o.class_name} {o.object_id}"  # hidden ones show nothing
        assert np.all((xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)), f"{o.class_name} {o.object_id}"
        if o.visible_fraction == 1.0:  # unhidden, it shows to the very edges of its box
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == pytest.approx(o.xyxy, abs=1.0)
        assert SYNTHETIC_CLASSES[o.class_id] == o.class_name
        checked.add(o.class_name)
    assert set(NEW) <= checked


def test_every_style_is_drawn_somewhere() -> None:
    styles: dict[str, set[str]] = {"Table": set(), "Chair": set(), "Materials": set()}
    facings = set()
    for seed in range(12):
        for actor in SyntheticScene(furniture_spec(seed)).actors:
            if isinstance(actor, Table | Chair | Materials):
                styles[type(actor).__name__].add(actor.style)
            if isinstance(actor, Chair):
                facings.add(actor.facing)
    assert styles["Table"] == {"folding", "square", "round", "low"}
    assert styles["Chair"] == {"stool", "monobloc", "folding", "low_stool"}
    assert styles["Materials"] == set(Materials.STYLES)
    assert facings == {"left", "right", "front", "back"}


def test_chairs_stand_round_their_table_and_face_it() -> None:
    for seed in range(6):
        scene = SyntheticScene(furniture_spec(seed))
        (table,) = [a for a in scene.actors if isinstance(a, Table)]
        chairs = [a for a in scene.actors if isinstance(a, Chair)]
        assert len(chairs) == 4
        sides = set()
        for chair in chairs:
            assert abs(chair.cx - table.cx) < table.w / 2 + chair.seat * 1.5 + abs(table.back[0])
            assert abs(chair.depth - table.depth) < 0.5 * table.m
            if chair.cx < table.cx - table.w / 2:
                assert chair.facing == "right"
            elif chair.cx > table.cx + table.w / 2 + abs(table.back[0]):
                assert chair.facing == "left"
            sides.add(chair.facing)
        assert len(sides) == 4  # four chairs, one on each side


def test_people_sitting_on_chairs_are_persons_that_stay_put_and_make_no_event() -> None:
    sitters = 0
    for seed in range(6):
        spec = furniture_spec(seed)
        scene = SyntheticScene(spec)
        seated = [a for a in scene.actors if isinstance(a, SeatedPerson)]
        sitters += len(seated)
        truth = scene.scene_truth()
        for person in seated:
            assert truth.objects[person.object_id] == "person"
            assert person.object_id > sum(a.count for a in spec.actors)  # after every listed actor
            boxes = {o.xyxy for ft in truth.frames if (o := ft.by_id(person.object_id)) is not None}
            assert len(boxes) == 1  # from the moment they sit down
        assert not {p.object_id for p in seated} & {i for e in truth.events for i in e.object_ids}
    assert sitters > 0


def test_seating_is_occupation_and_materials_are_construction() -> None:
    assert EVENT_KIND_OF[ActorKind.TABLE] is EventKind.OCCUPATION
    assert EVENT_KIND_OF[ActorKind.CHAIR] is EventKind.OCCUPATION
    assert EVENT_KIND_OF[ActorKind.MATERIALS] is EventKind.CONSTRUCTION
    truth = scene_truth(furniture_spec(2))
    kinds: dict[str, set[str]] = {v: set() for v in NEW}
    for event in truth.events:
        (object_id,) = event.object_ids
        kinds[truth.objects[object_id]].add(event.kind)
        assert event.zone == "sidewalk" and event.start_frame == 0
    assert kinds == {"table": {"occupation"}, "chair": {"occupation"}, "materials": {"construction"}}
    counted = [o for o, name in truth.objects.items() if name in NEW]
    assert sorted(i for e in truth.events for i in e.object_ids) == sorted(counted)


def test_an_appearing_table_starts_its_event_when_it_appears() -> None:
    spec = SceneSpec(**CLEAN, seed=4, actors=(ActorSpec(kind=ActorKind.TABLE, appear_s=1.5),))
    truth = scene_truth(spec)
    (event,) = truth.events
    assert (event.kind, event.start_frame, event.end_frame) == ("occupation", 15, 29)


def test_presets_with_extras_set_out_seating_sometimes_and_sites_always_have_materials() -> None:
    def kinds(spec: SceneSpec) -> set[str]:
        return {a.kind.value for a in spec.actors}

    for preset in (SceneSpec.restaurant_street, SceneSpec.sidewalk_stall):
        with_seating = [s for s in range(20) if {"table", "chair"} <= kinds(preset(s, extras=True))]
        assert 2 <= len(with_seating) <= 18, preset.__name__
        assert not any(kinds(preset(s)) & set(NEW) for s in range(20)), "without extras a preset is as it was"
    assert all("materials" in kinds(SceneSpec.construction_site(s, extras=True)) for s in range(20))
    assert not any("materials" in kinds(SceneSpec.construction_site(s)) for s in range(20))
    truth = scene_truth(SceneSpec.construction_site(1, extras=True, **CLEAN))
    assert any(name == "materials" for name in truth.objects.values())
    assert {e.kind for e in truth.events} == {"construction"}


@pytest.mark.parametrize(
    "make",
    [lambda s: SceneSpec.sidewalk_stall(s, extras=True, **CLEAN), lambda s: sample_scene_spec(s, extras=True)],
)
def test_added_furniture_leaves_every_other_object_where_it_was(make: Any) -> None:
    """The new actors come last, from their own random stream: the old actors keep their draws."""
    specs = (make(s) for s in range(40))
    spec = next(spec for spec in specs if {"table", "chair"} <= {a.kind.value for a in spec.actors})
    bare = spec.model_copy(update={"actors": tuple(a for a in spec.actors if a.kind.value not in NEW)})
    full, old = SyntheticScene(spec), SyntheticScene(bare)
    for t in (0, spec.frame_count // 2, spec.frame_count - 1):
        before = {o.object_id: o.xyxy for o in old.frame_truth(t).objects}
        after = {o.object_id: o.xyxy for o in full.frame_truth(t).objects if o.object_id in before}
        assert after == before


def test_the_sampler_draws_every_new_kind_but_keeps_distractor_scenes_bare() -> None:
    specs = [sample_scene_spec(s, extras=True) for s in range(60)]
    assert {ActorKind.TABLE, ActorKind.CHAIR, ActorKind.MATERIALS} <= {a.kind for spec in specs for a in spec.actors}
    assert not any(a.kind.value in NEW for s in range(60) for a in sample_scene_spec(s).actors)
    for spec in specs:
        if all(a.kind.value in NEW for a in spec.actors):
            assert spec.actors == ()


def test_yolo_labels_carry_the_new_class_ids() -> None:
    scene = SyntheticScene(furniture_spec(0))
    _, truth = scene.render(10)
    ids = {int(line.split()[0]) for line in yolo_label_lines(truth, 320, 180)}
    assert {8, 9, 10} <= ids


def test_a_yolo_dataset_counts_boxes_of_the_new_classes(tmp_path: Any) -> None:
    summary = write_yolo_dataset(tmp_path / "ds", n_images=45, seed=3, width=320, height=180, extras=True)
    assert set(summary.boxes_per_class) <= set(SYNTHETIC_CLASSES)
    assert sum(summary.boxes_per_class.values()) == summary.n_boxes
    assert {"table", "chair", "materials"} <= set(summary.boxes_per_class)
    lines = [line for p in (tmp_path / "ds").glob("labels/*/*.txt") for line in p.read_text().splitlines()]
    assert {8, 9, 10} <= {int(line.split()[0]) for line in lines}


def test_a_focused_dataset_draws_its_share_of_scenes_from_the_named_presets(tmp_path: Any) -> None:
    write_yolo_dataset(tmp_path / "ds", n_images=24, seed=5, width=320, height=180, frames_per_scene=2,
                       focus=("restaurant_street",), focus_share=0.5)  # fmt: skip
    import json

    images = json.loads((tmp_path / "ds" / "scenes.json").read_text())["images"]
    scenes = {i["scene_seed"]: i["scene"] for i in images}
    assert list(scenes.values()).count("restaurant_street") * 2 == len(scenes)
    with pytest.raises(ValueError, match="unknown presets"):
        write_yolo_dataset(tmp_path / "other", n_images=4, seed=5, focus=("nowhere",))

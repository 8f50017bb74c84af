"""SyntheticScene: determinism, exact truth boxes, events and distractors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from datasets.synthetic import (
    SYNTHETIC_CLASSES,
    ActorKind,
    ActorSpec,
    DistractorKind,
    SceneSpec,
    SyntheticScene,
    iter_scene,
    sample_scene_spec,
    scene_truth,
)
from datasets.synthetic.spec import StructureSpec, StructureStyle

SMALL: dict[str, Any] = {"width": 320, "height": 180, "fps": 10.0, "duration_s": 3.0}
CLEAN: dict[str, Any] = {**SMALL, "distractors": ()}  # no noise or JPEG, so pixel differences come from objects only


def _frames(spec: SceneSpec, indices: list[int]) -> list[tuple[np.ndarray, object]]:
    scene = SyntheticScene(spec)
    return [scene.render(t) for t in indices]


def test_same_seed_renders_identical_frames_and_truth() -> None:
    spec = SceneSpec.restaurant_street(3, **SMALL, distractors=tuple(DistractorKind))
    a, b = _frames(spec, [0, 7, 29]), _frames(spec, [0, 7, 29])
    for (img_a, truth_a), (img_b, truth_b) in zip(a, b, strict=True):
        assert np.array_equal(img_a, img_b)
        assert truth_a == truth_b


def test_different_seeds_render_different_scenes() -> None:
    a = SyntheticScene(SceneSpec.sidewalk_stall(1, **SMALL)).render(20)
    b = SyntheticScene(SceneSpec.sidewalk_stall(2, **SMALL)).render(20)
    assert not np.array_equal(a[0], b[0])
    assert a[1] != b[1]


def test_frames_can_be_rendered_in_any_order() -> None:
    scene = SyntheticScene(SceneSpec.restaurant_street(5, **SMALL))
    late = scene.render(25)[0]
    for t in range(5):
        scene.render(t)
    assert np.array_equal(scene.render(25)[0], late)


def test_images_are_bgr_uint8_of_the_spec_size() -> None:
    for index, image, truth in iter_scene(SceneSpec.restaurant_street(0, **{**SMALL, "duration_s": 0.3})):
        assert image.shape == (180, 320, 3) and image.dtype == np.uint8
        assert truth.index == index


@pytest.mark.parametrize("seed", range(12))
def test_truth_boxes_lie_inside_the_frame_with_known_classes(seed: int) -> None:
    spec = sample_scene_spec(seed, width=320, height=180, duration_s=3.0)
    for ft in SyntheticScene(spec).scene_truth().frames:
        for o in ft.objects:
            x0, y0, x1, y1 = o.xyxy
            assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 180
            assert SYNTHETIC_CLASSES[o.class_id] == o.class_name
            assert 0.0 <= o.visible_fraction <= 1.0 and 0.0 < o.in_frame_fraction <= 1.0


@pytest.mark.parametrize("preset", ["restaurant_street", "sidewalk_stall", "construction_site"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_object_changes_pixels_only_inside_its_box(preset: str, seed: int) -> None:
    scene = SyntheticScene(getattr(SceneSpec, preset)(seed, **CLEAN))
    checked = 0
    for t in (5, 15, 29):
        image, truth = scene.render(t)
        for o in truth.objects:
            without, _ = scene.render(t, hidden={o.object_id})
            changed = np.any(image != without, axis=2)
            ys, xs = np.nonzero(changed)
            x0, y0, x1, y1 = o.xyxy
            assert np.all((xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)), f"{o.class_name} {o.object_id} at {t}"
            if o.visible_fraction == 1.0 and o.class_name != "smoke":
                # an unhidden solid object shows to its very edges: the box is tight
                assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == pytest.approx(o.xyxy, abs=1.0)
            checked += 1
    assert checked > 0


def test_hidden_objects_leave_no_truth_and_others_keep_theirs() -> None:
    scene = SyntheticScene(SceneSpec.sidewalk_stall(4, **CLEAN))
    _, full = scene.render(20)
    stall = next(o for o in full.objects if o.class_name == "stall")
    _, partial = scene.render(20, hidden={stall.object_id})
    assert partial.by_id(stall.object_id) is None
    assert {o.object_id for o in partial.objects} == {o.object_id for o in full.objects} - {stall.object_id}


def test_truth_without_images_equals_truth_while_rendering() -> None:
    scene = SyntheticScene(SceneSpec.restaurant_street(8, **SMALL))
    for t in (0, 12, 29):
        assert scene.frame_truth(t) == scene.render(t)[1]


def test_distractor_only_scenes_have_no_objects_and_no_events() -> None:
    spec = SceneSpec.distractor_only(6, **SMALL, distractors=tuple(DistractorKind))
    truth = scene_truth(spec)
    assert truth.events == ()
    assert all(ft.objects == () for ft in truth.frames)
    # ...although the distractors do change the picture over time
    scene = SyntheticScene(spec)
    assert not np.array_equal(scene.render(0)[0], scene.render(20)[0])


def test_an_appearing_stall_starts_its_event_at_the_appearance_frame() -> None:
    spec = SceneSpec(
        **CLEAN, seed=9, actors=(ActorSpec(kind=ActorKind.STALL, appear_s=1.2), ActorSpec(kind=ActorKind.PERSON))
    )
    truth = scene_truth(spec)
    assert len(truth.events) == 1
    event = truth.events[0]
    stall_id = next(k for k, v in truth.objects.items() if v == "stall")
    assert (event.kind, event.object_ids, event.start_frame, event.end_frame) == ("occupation", (stall_id,), 12, 29)
    assert event.zone == "sidewalk"
    assert truth.frames[11].by_id(stall_id) is None and truth.frames[12].by_id(stall_id) is not None


def test_smoke_makes_a_fume_event_with_a_ringelmann_level() -> None:
    truth = scene_truth(SceneSpec.restaurant_street(2, **SMALL))
    (event,) = [e for e in truth.events if e.kind == "fume"]
    assert event.attributes["ringelmann"] in range(6)
    assert 0 <= event.start_frame < 10 and event.end_frame == 29  # visible within a second
    xs = [p[0] for p in event.region]
    assert len(event.region) >= 3 and 0 <= min(xs) < max(xs) <= 320


def test_construction_site_has_growing_scaffolding_and_construction_events() -> None:
    truth = scene_truth(SceneSpec.construction_site(1, **SMALL))
    assert {e.kind for e in truth.events} == {"construction"}
    scaffold_id = next(k for k, v in truth.objects.items() if v == "scaffolding")
    heights = [b.xyxy[3] - b.xyxy[1] for ft in truth.frames if (b := ft.by_id(scaffold_id)) is not None]
    assert heights == sorted(heights) and heights[-1] > heights[0]


def test_passers_by_make_no_events() -> None:
    spec = SceneSpec(**SMALL, actors=(ActorSpec(kind=ActorKind.PERSON, count=5), ActorSpec(kind=ActorKind.VEHICLE)))
    truth = scene_truth(spec)
    assert truth.events == ()
    assert any(ft.objects for ft in truth.frames)


def test_a_parking_car_comes_to_rest() -> None:
    spec = SceneSpec(**{**SMALL, "duration_s": 8.0}, seed=3, actors=(ActorSpec(kind=ActorKind.VEHICLE, parks=True),))
    truth = scene_truth(spec)
    last = [ft.objects[0].xyxy for ft in truth.frames[-10:]]
    assert all(box == last[0] for box in last)


def test_truth_converts_to_detections_with_track_ids() -> None:
    _, truth = SyntheticScene(SceneSpec.sidewalk_stall(0, **SMALL)).render(25)
    det = truth.to_detections()
    assert len(det) == len(truth.objects)
    assert det.track_id is not None and list(det.track_id) == [o.object_id for o in truth.objects]


@pytest.mark.parametrize("index", [-1, 30])
def test_rendering_outside_the_scene_is_an_error(index: int) -> None:
    with pytest.raises(ValueError, match=r"frame index must lie in \[0, 30\)"):
        SyntheticScene(SceneSpec(**SMALL)).render(index)


# --- structures without a detector class ------------------------------------------------


@pytest.mark.parametrize("style", list(StructureStyle))
def test_a_structure_is_a_construction_event_without_labels(style):
    structure = StructureSpec(style=style, appear_s=0.5, build_s=1.0)
    spec = SceneSpec.structure_going_up(seed=3, **CLEAN, structures=(structure,))
    scene = SyntheticScene(spec)
    truth = scene.scene_truth()
    (event,) = [e for e in truth.events if e.attributes.get("structure")]
    assert event.kind == "construction" and event.attributes == {"structure": style.value, "labelled": False}
    assert (event.start_frame, event.end_frame) == (5, spec.frame_count - 1)
    assert all(o.object_id not in event.object_ids for f in truth.frames for o in f.objects)  # no class, no label
    # it goes up part by part, then stands; every pixel it changes lies inside its region
    bare = SyntheticScene(spec.model_copy(update={"structures": ()}))
    xs, ys = [p[0] for p in event.region], [p[1] for p in event.region]
    inside = np.zeros((spec.height, spec.width), bool)
    inside[int(min(ys)) : int(np.ceil(max(ys))), int(min(xs)) : int(np.ceil(max(xs)))] = True
    changed = []
    for t in (4, 6, 12, 20, 29):
        with_it, without = scene.render(t)[0], bare.render(t)[0]
        differs = (with_it != without).any(axis=2)
        assert not (differs & ~inside).any()
        changed.append(int(differs.sum()))
    assert changed[0] == 0 and 0 < changed[1] < changed[3] and changed[3] == changed[4]


def test_structures_leave_the_rest_of_the_scene_as_it_was():
    spec = SceneSpec.construction_site(seed=5, **SMALL)
    built = spec.model_copy(update={"structures": (StructureSpec(appear_s=1.0),)})
    a, b = SyntheticScene(spec).scene_truth(), SyntheticScene(built).scene_truth()
    assert a.frames == b.frames and a.events == b.events[: len(a.events)]
    assert len(b.events) == len(a.events) + 1


def test_a_structure_taken_down_ends_its_event():
    structure = StructureSpec(appear_s=0.5, build_s=0.5, remove_s=2.0)
    truth = scene_truth(SceneSpec.structure_going_up(seed=1, **CLEAN, structures=(structure,)))
    (event,) = truth.events
    assert (event.start_frame, event.end_frame) == (5, 19)


def test_structure_timing_is_checked():
    with pytest.raises(ValueError, match="remove_s must be > appear_s"):
        StructureSpec(appear_s=3.0, remove_s=2.0)
    with pytest.raises(ValueError, match="structure appear_s must be < duration_s"):
        SceneSpec(duration_s=2.0, structures=(StructureSpec(appear_s=2.5),))

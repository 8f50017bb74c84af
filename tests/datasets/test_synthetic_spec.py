"""SceneSpec: validation, presets and the random sampler."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from datasets.synthetic import (
    PRESETS,
    SYNTHETIC_CLASSES,
    ActorKind,
    ActorSpec,
    DistractorKind,
    SceneSpec,
    sample_scene_spec,
)


def test_classes_are_in_the_documented_order() -> None:
    documented = ("smoke", "stall", "umbrella", "goods", "person", "vehicle", "scaffolding", "machinery")
    documented += ("table", "chair", "materials")  # appended later: the ids before them never change
    assert documented == SYNTHETIC_CLASSES
    assert [k.class_id for k in ActorKind] == list(range(len(SYNTHETIC_CLASSES)))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"widht": 640}, "Extra inputs"),
        ({"width": 100}, "greater than or equal to 160"),
        ({"fps": 0}, "greater than 0"),
        ({"seed": -1}, "greater than or equal to 0"),
        ({"distractors": ("fog", "fog")}, "must not repeat"),
        ({"distractors": ("snow",)}, "Input should be"),
        ({"duration_s": 2.0, "actors": ({"kind": "stall", "appear_s": 2.0},)}, "appear_s must be < duration_s"),
    ],
)
def test_bad_spec_fields_are_rejected_with_a_reason(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SceneSpec(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "person", "appear_s": 1.0}, "appear_s applies to staying objects"),
        ({"kind": "stall", "parks": True}, "parks applies to vehicle only"),
        ({"kind": "stall", "count": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_actor_fields_are_rejected(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ActorSpec(**fields)  # type: ignore[arg-type]


def test_spec_is_frozen() -> None:
    spec = SceneSpec()
    with pytest.raises(ValidationError):
        spec.seed = 3


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_and_round_trip_through_json(name: str) -> None:
    spec = PRESETS[name](7, width=320, height=180)
    assert spec.name == name and spec.seed == 7 and spec.width == 320
    assert SceneSpec.model_validate_json(spec.model_dump_json()) == spec


def test_distractor_only_preset_has_no_actors() -> None:
    spec = SceneSpec.distractor_only()
    assert spec.actors == () and not spec.has_events
    assert DistractorKind.STEAM in spec.distractors


def test_frame_count_is_fps_times_duration() -> None:
    assert SceneSpec(fps=10, duration_s=2.5).frame_count == 25


def test_sampler_is_deterministic_by_seed_and_varies_across_seeds() -> None:
    assert sample_scene_spec(11) == sample_scene_spec(11)
    specs = [sample_scene_spec(s, extras=True) for s in range(40)]
    assert len({s.model_dump_json() for s in specs}) == 40
    kinds = {a.kind for s in specs for a in s.actors}
    assert kinds == set(ActorKind)
    assert any(not s.actors for s in specs), "some sampled scenes should be pure distractors"


def test_sampler_rejects_negative_seed() -> None:
    with pytest.raises(ValueError, match="seed must be >= 0"):
        sample_scene_spec(-1)

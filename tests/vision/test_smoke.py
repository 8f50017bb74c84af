import numpy as np
import pytest

from datasets.synthetic import SceneSpec, SyntheticScene
from vision.smoke import ringelmann_level, smoke_appearance


@pytest.mark.parametrize(
    ("blackness", "level"), [(0.0, 0), (0.09, 0), (0.11, 1), (0.2, 1), (0.5, 3), (0.69, 3), (0.71, 4), (1.0, 5)]
)
def test_ringelmann_level_is_blackness_in_fifths(blackness, level):
    assert ringelmann_level(blackness) == level


def test_ringelmann_rejects_out_of_range():
    with pytest.raises(ValueError, match=r"blackness must lie in \[0, 1\]"):
        ringelmann_level(1.2)


def plume_measurements(seeds):
    for seed in seeds:
        scene = SyntheticScene(SceneSpec.restaurant_street(seed=seed))
        event = next(e for e in scene.scene_truth().events if e.kind == "fume")
        plume = event.object_ids[0]
        t = (event.start_frame + event.end_frame) // 2
        image, truth = scene.render(t)
        previous, _ = scene.render(t - 1)
        background, _ = scene.render(t, hidden=(plume,))
        yield event.attributes["ringelmann"], smoke_appearance(image, previous, background, truth.by_id(plume).xyxy)


def test_ringelmann_estimate_is_within_one_level_on_held_out_synthetic_plumes():
    # the assumed opacity was chosen on seeds 0-11; these seeds were not looked at
    results = list(plume_measurements(range(12, 36)))
    errors = [abs(level - a.ringelmann) for level, a in results]
    assert max(errors) <= 1
    assert np.mean(errors) <= 0.6


def test_plumes_are_grey_moving_and_add_no_texture():
    for _, a in plume_measurements(range(12, 20)):
        assert a.looks_like_smoke(max_saturation=0.35, min_motion=0.02, max_contrast_ratio=4.0)


def test_a_saturated_opaque_object_is_not_smoke():
    rng = np.random.default_rng(0)
    background = rng.integers(90, 110, (120, 160, 3), dtype=np.uint8)
    previous = background.copy()
    image = background.copy()
    image[30:90, 40:100] = (20, 30, 220)  # a red banner moved in
    a = smoke_appearance(image, previous, background, (40, 30, 100, 90))
    assert a is not None
    assert a.saturation > 0.6
    assert not a.looks_like_smoke(max_saturation=0.35, min_motion=0.02, max_contrast_ratio=4.0)


def test_tiny_boxes_are_not_measured_and_shapes_must_agree():
    image = np.zeros((10, 10, 3), np.uint8)
    assert smoke_appearance(image, image, image, (3, 3, 4, 4)) is None
    with pytest.raises(ValueError, match="must have one shape"):
        smoke_appearance(image, np.zeros((5, 5, 3), np.uint8), image, (0, 0, 5, 5))

"""Aerial chips of the synthetic town: exact truth boxes, sizes in metres, shadows, the YOLO dataset."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from datasets.synthetic import SYNTHETIC_CLASSES, yolo_label_lines
from datasets.synthetic.aerial import (
    AERIAL_CLASSES,
    AerialWorld,
    ChipLook,
    ChipView,
    sample_look,
    write_aerial_yolo_dataset,
)

LOOK = ChipLook(
    sun_azimuth_deg=135.0,
    sun_elevation_deg=45.0,
    shadow_darkness=0.5,
    gain_bgr=(1.0, 1.0, 1.0),
    contrast=1.0,
    haze=0.0,
    blur_px=0.5,
    noise_sigma=2.0,
    noise_seed=7,
    jpeg_quality=90,
)
SHADOWLESS = replace(LOOK, shadow_darkness=0.0)
BLUR_REACH = 2  # pixels the lens blur (sigma 0.5) spreads a change


@pytest.fixture(scope="module")
def world() -> AerialWorld:
    return AerialWorld(3)


def view_on(world: AerialWorld, k: int, *, gsd: float = 0.03, rotation: float = 30.0, size: int = 256) -> ChipView:
    c = world.things[k].centre
    return ChipView(centre_en=(float(c[0]) + 0.4, float(c[1]) - 0.3), gsd_m=gsd, rotation_deg=rotation, size_px=size)


def things_of(world: AerialWorld, kind: str, n: int) -> list[int]:
    return [k for k, t in enumerate(world.things) if t.kind == kind][:n]


def outside(box: tuple[float, float, float, float], shape: tuple[int, ...], margin: int) -> np.ndarray:
    mask = np.ones(shape[:2], bool)
    x0, y0, x1, y1 = box
    mask[max(int(y0) - margin, 0) : int(y1) + margin, max(int(x0) - margin, 0) : int(x1) + margin] = False
    return mask


def test_a_world_holds_every_aerial_class(world: AerialWorld) -> None:
    kinds = [t.kind for t in world.things]
    assert set(kinds) == set(AERIAL_CLASSES)
    assert kinds.count("stall") >= 5 and kinds.count("umbrella") >= 2 and kinds.count("person") >= 10


@pytest.mark.parametrize("kind", ["stall", "umbrella", "person", "vehicle"])
def test_an_object_changes_pixels_only_inside_its_box_and_fills_it(world: AerialWorld, kind: str) -> None:
    checked = 0
    for k in things_of(world, kind, 40):
        if checked == 3:
            break
        view = view_on(world, k)
        image, truth = world.render(view, SHADOWLESS)
        o = truth.by_id(k + 1)
        assert o is not None and o.class_name == kind and SYNTHETIC_CLASSES[o.class_id] == kind
        if o.visible_fraction < 1.0 or o.in_frame_fraction < 1.0:
            continue  # under a tree or an umbrella: its box holds pixels that are not its own
        without, rest = world.render(view, SHADOWLESS, hidden={o.object_id})
        changed = np.any(image != without, axis=2)
        assert not changed[outside(o.xyxy, image.shape, BLUR_REACH)].any()
        ys, xs = np.nonzero(changed)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == pytest.approx(o.xyxy, abs=BLUR_REACH)
        assert rest.by_id(o.object_id) is None
        checked += 1
    assert checked == 3


@pytest.mark.parametrize("kind", ["stall", "umbrella"])
def test_an_objects_shadow_only_darkens_what_lies_outside_its_box(world: AerialWorld, kind: str) -> None:
    shadows = checked = 0
    for k in things_of(world, kind, 40):
        if checked == 6:
            break
        view = view_on(world, k)
        image, truth = world.render(view, LOOK)
        o = truth.by_id(k + 1)
        assert o is not None
        if o.visible_fraction < 1.0:
            continue
        checked += 1
        without, _ = world.render(view, LOOK, hidden={o.object_id})
        away = outside(o.xyxy, image.shape, BLUR_REACH)
        assert np.all(image[away] <= without[away])
        shadows += int(np.any(image[away] < without[away]))  # none when it stands in a building's shadow
    assert shadows >= 2


def test_hiding_an_object_leaves_the_other_boxes_as_they_were(world: AerialWorld) -> None:
    (k,) = things_of(world, "stall", 1)
    view = view_on(world, k, size=384)
    _, full = world.render(view, LOOK)
    _, rest = world.render(view, LOOK, hidden={k + 1})
    assert {o.object_id for o in rest.objects} == {o.object_id for o in full.objects} - {k + 1}
    assert {o.object_id: o.xyxy for o in rest.objects} == {
        o.object_id: o.xyxy for o in full.objects if o.object_id != k + 1
    }


@pytest.mark.parametrize(
    ("kind", "low_m", "high_m"),
    [("umbrella", 1.7, 5.2), ("person", 0.35, 0.6), ("vehicle", 1.5, 12.5)],  # a square umbrella's diagonal: 5 m
)
def test_objects_have_their_real_size_at_any_ground_sample_distance(
    world: AerialWorld, kind: str, low_m: float, high_m: float
) -> None:
    for k in things_of(world, kind, 4):
        sizes = []
        for gsd in (0.02, 0.05):
            _, truth = world.render(view_on(world, k, gsd=gsd, rotation=0.0, size=512), SHADOWLESS)
            o = truth.by_id(k + 1)
            assert o is not None and o.in_frame_fraction == 1.0
            x0, y0, x1, y1 = o.xyxy
            sizes.append(max(x1 - x0, y1 - y0) * gsd)
            assert low_m <= sizes[-1] <= high_m, f"{kind} {k}: {sizes[-1]:.2f} m across at {gsd} m/px"
        assert sizes[0] == pytest.approx(sizes[1], rel=0.15)


def test_rendering_is_deterministic(world: AerialWorld) -> None:
    view = view_on(world, things_of(world, "umbrella", 1)[0])
    a, truth_a = world.render(view, LOOK)
    b, truth_b = AerialWorld(3).render(view, LOOK)
    assert np.array_equal(a, b) and truth_a == truth_b
    c, _ = AerialWorld(4).render(view, LOOK)
    assert not np.array_equal(a, c)


def test_sampled_views_and_looks_vary(world: AerialWorld) -> None:
    rng = np.random.default_rng(0)
    views = [world.sample_view(rng, size_px=256, gsd_range=(0.02, 0.06)) for _ in range(30)]
    looks = [sample_look(rng) for _ in range(30)]
    gsds = [v.gsd_m for v in views]
    assert min(gsds) >= 0.02 and max(gsds) <= 0.06 and max(gsds) / min(gsds) > 2
    assert np.ptp([v.rotation_deg for v in views]) > 180
    assert len({lk.sun_azimuth_deg for lk in looks}) == 30 and np.ptp([lk.shadow_darkness for lk in looks]) > 0.3


@pytest.mark.parametrize(
    ("fields", "message"), [({"gsd_m": 0.0}, "gsd_m must lie in"), ({"size_px": 8}, "size_px must lie in")]
)
def test_bad_views_are_refused(fields: dict[str, float], message: str) -> None:
    args = {"centre_en": (0.0, 0.0), "gsd_m": 0.03, "rotation_deg": 0.0, "size_px": 256} | fields
    with pytest.raises(ValueError, match=message):
        ChipView(**args)  # type: ignore[arg-type]


# --- the dataset ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("aerial") / "ds"
    summary = write_aerial_yolo_dataset(root, 12, 2, chip=256, chips_per_world=3, val_fraction=0.25)
    assert (summary.n_train, summary.n_val) == (9, 3)
    assert sum(summary.boxes_per_class.values()) == summary.n_boxes > 0
    return root


def test_the_dataset_has_the_yolo_layout_and_the_street_scenes_class_ids(dataset: Path) -> None:
    data = yaml.safe_load((dataset / "data.yaml").read_text())
    assert data["names"] == dict(enumerate(SYNTHETIC_CLASSES))
    assert (data["train"], data["val"]) == ("images/train", "images/val")
    for split in ("train", "val"):
        images = sorted(p.stem for p in (dataset / "images" / split).iterdir())
        assert images == sorted(p.stem for p in (dataset / "labels" / split).iterdir()) and images
    image = cv2.imread(str(next(dataset.glob("images/train/*.jpg"))))
    assert image is not None and image.shape == (256, 256, 3)
    allowed = {SYNTHETIC_CLASSES.index(c) for c in AERIAL_CLASSES}
    for label in dataset.glob("labels/*/*.txt"):
        for line in label.read_text().splitlines():
            cls, *xywh = line.split()
            assert int(cls) in allowed and all(0.0 <= float(v) <= 1.0 for v in xywh), line


def test_the_split_is_by_world(dataset: Path) -> None:
    chips = json.loads((dataset / "chips.json").read_text())["chips"]
    train = {c["world_seed"] for c in chips if c["split"] == "train"}
    val = {c["world_seed"] for c in chips if c["split"] == "val"}
    assert len(train) == 3 and len(val) == 1 and not train & val
    assert all(c["image"].startswith(f"images/{c['split']}/{c['world_seed']}_") for c in chips)


def test_each_label_file_is_the_truth_of_its_chip(dataset: Path) -> None:
    chips = json.loads((dataset / "chips.json").read_text())["chips"]
    for c in chips[::4]:
        view = ChipView(**{**c["view"], "centre_en": tuple(c["view"]["centre_en"])})
        look = ChipLook(**{**c["look"], "gain_bgr": tuple(c["look"]["gain_bgr"])})
        _, truth = AerialWorld(c["world_seed"]).render(view, look, index=c["chip"])
        label = dataset / c["image"].replace("images/", "labels/").replace(".jpg", ".txt")
        assert label.read_text().splitlines() == yolo_label_lines(truth, 256, 256)


def test_labelled_umbrellas_and_stalls_stand_out_from_their_surroundings(dataset: Path) -> None:
    """In the written JPEGs, the middle of an umbrella or stall box differs in colour from a ring around the box."""
    yy, xx = (np.mgrid[0:256, 0:256] + 0.5) / 256
    contrasts = []
    for label in dataset.glob("labels/*/*.txt"):
        image = cv2.imread(str(dataset / "images" / label.parent.name / f"{label.stem}.jpg"))
        assert image is not None
        for line in label.read_text().splitlines():
            cls, cx, cy, w, h = (float(v) for v in line.split())
            if SYNTHETIC_CLASSES[int(cls)] not in ("stall", "umbrella") or min(w, h) * 256 < 12:
                continue
            reach = np.maximum(np.abs(xx - cx) / (w / 2), np.abs(yy - cy) / (h / 2))  # 1 on the box's edge
            core, ring = reach < 0.5, (reach > 1.2) & (reach < 1.6)
            if ring.sum() > 20:
                contrasts.append(math.dist(image[core].mean(axis=0), image[ring].mean(axis=0)))
    assert len(contrasts) >= 5
    assert np.median(contrasts) > 25


def test_the_dataset_is_deterministic_by_seed(dataset: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    write_aerial_yolo_dataset(again, 12, 2, chip=256, chips_per_world=3, val_fraction=0.25)
    files = sorted(p.relative_to(dataset) for p in dataset.rglob("*") if p.is_file() and p.name != "data.yaml")
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file() and p.name != "data.yaml")
    assert all((dataset / f).read_bytes() == (again / f).read_bytes() for f in files)


def test_only_the_chosen_classes_are_labelled(tmp_path: Path) -> None:
    summary = write_aerial_yolo_dataset(tmp_path / "u", 6, 1, chip=256, chips_per_world=3, classes=("umbrella",))
    assert set(summary.boxes_per_class) <= {"umbrella"}
    ids = {line.split()[0] for p in (tmp_path / "u").glob("labels/*/*.txt") for line in p.read_text().splitlines()}
    assert ids <= {str(SYNTHETIC_CLASSES.index("umbrella"))}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images": 0}, "images must be >= 1"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"chip": 32}, "chip must lie in"),
        ({"gsd_range": (0.06, 0.02)}, "gsd_range must be"),
        ({"classes": ("smoke",)}, "classes must be distinct names from"),
        ({"classes": ("stall", "stall")}, "classes must be distinct names from"),
        ({"val_fraction": 1.0}, r"val_fraction must lie in \[0, 1\)"),
        ({"image_ext": ".gif"}, "image_ext must be"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"images": 2, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=message):
        write_aerial_yolo_dataset(tmp_path / "x", **args)  # type: ignore[arg-type]


def test_a_folder_with_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(ValueError, match="must be empty or absent"):
        write_aerial_yolo_dataset(tmp_path, 2, 0)

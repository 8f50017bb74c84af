"""Files from synthetic scenes: a video with its truth, and a YOLO detection dataset.

`write_video(spec, path)` writes `path` (mp4, codec 'mp4v') and `<stem>.truth.json` beside
it. The truth file is plain JSON:

    {
      "format": "nonsite.synthetic.truth/1",
      "spec": {...},                      # the SceneSpec, enough to render the scene again
      "width": 640, "height": 360, "fps": 15.0, "frame_count": 120,
      "classes": ["smoke", "stall", ...], # class_id indexes this list
      "objects": [{"object_id": 1, "class_name": "smoke"}, ...],
      "zones": {"facade": [[x, y], ...], "sidewalk": [...], "road": [...], "sky": [...]},
      "frames": [
        {"index": 0, "objects": [
          {"object_id": 1, "class_name": "smoke", "class_id": 0,
           "xyxy": [x0, y0, x1, y1],      # pixel edges: covers x0 <= x < x1, y0 <= y < y1
           "visible_fraction": 0.93,      # share of its in-frame pixels not hidden by nearer objects
           "in_frame_fraction": 1.0}]},   # share of its pixels inside the frame
        ...],
      "events": [
        {"event_id": 1, "kind": "fume",   # fume | occupation | construction
         "object_ids": [1], "start_frame": 4, "end_frame": 119,   # inclusive
         "region": [[x, y], ...],         # convex polygon around every box of the event
         "zone": "facade",                # the scene zone it happened in
         "attributes": {"ringelmann": 3, "vent": [x, y]}}]       # per kind; {} when none
    }

`write_yolo_dataset` samples a few frames far apart from each of many random scenes and
writes images/{train,val}, labels/{train,val} (one `class cx cy w h` line per object,
normalized to [0, 1]), data.yaml and scenes.json (which scene seed and frame each image
came from). Train and val never share a scene.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from datasets.errors import DatasetError, ImageWriteError, VideoWriteError
from datasets.synthetic.scene import SyntheticScene
from datasets.synthetic.spec import FURNISHED_PRESETS, PRESETS, SYNTHETIC_CLASSES, SceneSpec, sample_scene_spec
from datasets.synthetic.truth import FrameTruth, SceneTruth
from datasets.yolo import write_data_yaml

logger = logging.getLogger(__name__)


def truth_path_for(video_path: str | os.PathLike[str]) -> Path:
    """Where the truth of `video_path` goes: `<stem>.truth.json` in the same folder."""
    p = Path(video_path)
    return p.with_name(f"{p.stem}.truth.json")


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(payload, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)


def write_video(spec: SceneSpec, path: str | os.PathLike[str], *, fourcc: str = "mp4v") -> SceneTruth:
    """Render `spec` into a video at `path` and its truth into `<stem>.truth.json`; returns the truth.

    Both files are written under temporary names and moved into place at the end, so a
    crash never leaves a video without its truth.
    """
    out = Path(path)
    if out.suffix.lower() not in (".mp4", ".avi", ".mkv", ".mov"):
        raise ValueError(f"path must end in .mp4, .avi, .mkv or .mov, but got {out.name!r}")
    if len(fourcc) != 4:
        raise ValueError(f"fourcc must have 4 characters, but got {fourcc!r}")
    if not out.parent.is_dir():
        raise ValueError(f"the folder of path must exist, but got {str(out.parent)!r}")
    scene = SyntheticScene(spec)
    tmp = out.with_name(f".{out.stem}.partial{out.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*fourcc), spec.fps, (spec.width, spec.height))
    if not writer.isOpened():
        raise VideoWriteError(f"OpenCV cannot open a {fourcc!r} video writer for {str(out)!r}")
    frames: list[FrameTruth] = []
    try:
        for _, image, truth in scene.frames():
            writer.write(image)
            frames.append(truth)
    except Exception as e:
        writer.release()
        tmp.unlink(missing_ok=True)
        raise VideoWriteError(f"rendering {spec.name!r} (seed {spec.seed}) into {str(out)!r} failed") from e
    writer.release()
    scene_truth = scene.scene_truth(frames)
    _write_json_atomic(truth_path_for(out), scene_truth.to_json())
    os.replace(tmp, out)
    logger.info("wrote %s: %d frames, %d events", out, len(frames), len(scene_truth.events))
    return scene_truth


def yolo_label_lines(
    truth: FrameTruth,
    width: int,
    height: int,
    *,
    min_box_px: float = 4.0,
    min_visible: float = 0.4,
    min_in_frame: float = 0.5,
) -> list[str]:
    """YOLO label lines (`class cx cy w h`, normalized) for the objects a detector should find.

    Drops boxes under `min_box_px` on a side, objects mostly hidden (`visible_fraction`
    below `min_visible`) and objects mostly out of frame (`in_frame_fraction` below `min_in_frame`).
    """
    lines = []
    for o in truth.objects:
        x0, y0, x1, y1 = o.xyxy
        if x1 - x0 < min_box_px or y1 - y0 < min_box_px:
            continue
        if o.visible_fraction < min_visible or o.in_frame_fraction < min_in_frame:
            continue
        cx, cy = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height
        w, h = (x1 - x0) / width, (y1 - y0) / height
        lines.append(f"{o.class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return lines


@dataclass(frozen=True, slots=True)
class YoloDatasetSummary:
    """What `write_yolo_dataset` (or `aerial.write_aerial_yolo_dataset`) wrote."""

    root: Path
    data_yaml: Path
    n_train: int
    n_val: int
    n_boxes: int
    train_seeds: tuple[int, ...]  # the scenes (or aerial worlds) of each split
    val_seeds: tuple[int, ...]
    boxes_per_class: dict[str, int] = field(default_factory=dict)  # labelled boxes by class name


def _sparse_frames(rng: np.random.Generator, frame_count: int, k: int) -> list[int]:
    """`k` frame indices, one drawn from each of `k` equal stretches: never near-duplicates."""
    k = min(k, frame_count)
    edges = np.linspace(0, frame_count, k + 1)
    return [int(rng.integers(int(edges[i]), max(int(edges[i + 1]), int(edges[i]) + 1))) for i in range(k)]


def prepare_yolo_folder(out_dir: str | os.PathLike[str], val_fraction: float, image_ext: str) -> Path:
    """Check a dataset writer's common arguments and make the empty images/ and labels/ folders."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in [0, 1), but got {val_fraction}")
    if image_ext not in (".jpg", ".png"):
        raise ValueError(f"image_ext must be '.jpg' or '.png', but got {image_ext!r}")
    root = Path(out_dir)
    if root.exists() and any(root.iterdir()):
        raise ValueError(f"out_dir must be empty or absent, but {str(root)!r} holds files")
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    return root


def split_seeds(
    seed: int, salt: int, count: int, val_fraction: float, rng: np.random.Generator
) -> tuple[list[int], set[int]]:
    """`count` distinct scene (or world) seeds drawn from `seed`, and those of them that go to val:
    whole scenes fall on one side, so nothing leaks across the split."""
    state = np.random.SeedSequence([seed, salt]).generate_state(2 * count + 8, dtype=np.uint64)
    seeds = list(dict.fromkeys(int(s) & (2**62 - 1) for s in state))[:count]
    n_val = round(val_fraction * count)
    if val_fraction > 0 and count >= 2:
        n_val = min(max(n_val, 1), count - 1)
    return seeds, {seeds[int(i)] for i in rng.permutation(count)[:n_val]}


def write_yolo_dataset(
    out_dir: str | os.PathLike[str],
    n_images: int,
    seed: int,
    val_fraction: float = 0.2,
    *,
    width: int = 640,
    height: int = 360,
    frames_per_scene: int = 3,
    min_box_px: float = 4.0,
    min_visible: float = 0.4,
    image_ext: str = ".jpg",
    extras: bool = False,
    focus: tuple[str, ...] = (),
    focus_share: float = 0.5,
) -> YoloDatasetSummary:
    """Write a YOLO detection dataset of `n_images` frames from random synthetic scenes.

    Each scene (`sample_scene_spec` of a seed drawn from `seed`) gives `frames_per_scene`
    frames spread over its length; whole scenes go to train or val, so no scene leaks
    across the split. Classes are `SYNTHETIC_CLASSES` in order. `extras` adds tables,
    chairs and materials to the scenes; `focus` names presets (`PRESETS`) that make up
    `focus_share` of the scenes, in turn (a specialist's dataset: restaurant streets for smoke).
    """
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, but got {n_images}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, but got {seed}")
    if frames_per_scene < 1:
        raise ValueError(f"frames_per_scene must be >= 1, but got {frames_per_scene}")
    root = prepare_yolo_folder(out_dir, val_fraction, image_ext)
    n_scenes = math.ceil(n_images / frames_per_scene)
    rng = np.random.default_rng([seed, 0x5B17])
    scene_seeds, val_set = split_seeds(seed, 0xD5E7, n_scenes, val_fraction, rng)
    manifest: list[dict[str, Any]] = []
    counts = {"train": 0, "val": 0}
    per_class: Counter[str] = Counter()
    n_boxes = 0
    remaining = n_images
    unknown = [f for f in focus if f not in PRESETS]
    if unknown:
        raise ValueError(f"focus names unknown presets {unknown}; known: {sorted(PRESETS)}")
    for number, scene_seed in enumerate(scene_seeds):
        if focus and int((number + 1) * focus_share) > int(number * focus_share):  # evenly, focus_share of them
            preset = focus[number % len(focus)]
            options = {"extras": extras} if preset in FURNISHED_PRESETS else {}
            spec = PRESETS[preset](scene_seed, width=width, height=height, **options)
        else:
            spec = sample_scene_spec(scene_seed, width=width, height=height, extras=extras)
        scene = SyntheticScene(spec)
        split = "val" if scene_seed in val_set else "train"
        for t in _sparse_frames(rng, scene.frame_count, min(frames_per_scene, remaining)):
            image, truth = scene.render(t)
            stem = f"{scene_seed}_{t:05d}"
            image_path = root / "images" / split / f"{stem}{image_ext}"
            try:
                ok = cv2.imwrite(str(image_path), image)
            except cv2.error as e:
                raise ImageWriteError(f"cannot write {str(image_path)!r}") from e
            if not ok:
                raise ImageWriteError(f"OpenCV refused to write {str(image_path)!r}")
            lines = yolo_label_lines(truth, width, height, min_box_px=min_box_px, min_visible=min_visible)
            (root / "labels" / split / f"{stem}.txt").write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
            manifest.append({"image": f"images/{split}/{stem}{image_ext}", "split": split, "scene_seed": scene_seed,
                             "scene": spec.name, "frame": t, "boxes": len(lines)})  # fmt: skip
            counts[split] += 1
            n_boxes += len(lines)
            per_class.update(SYNTHETIC_CLASSES[int(line.split()[0])] for line in lines)
            remaining -= 1
        if remaining == 0:
            break
    if remaining:
        raise DatasetError(f"wrote {n_images - remaining} of {n_images} images: too few frames per scene")
    data_yaml = write_data_yaml(root, SYNTHETIC_CLASSES)
    _write_json_atomic(root / "scenes.json", {"seed": seed, "classes": list(SYNTHETIC_CLASSES), "images": manifest})
    used = {m["scene_seed"] for m in manifest}
    logger.info("wrote YOLO dataset %s: %d train, %d val, %d boxes", root, counts["train"], counts["val"], n_boxes)
    return YoloDatasetSummary(
        root=root,
        data_yaml=data_yaml,
        n_train=counts["train"],
        n_val=counts["val"],
        n_boxes=n_boxes,
        train_seeds=tuple(s for s in scene_seeds if s in used and s not in val_set),
        val_seeds=tuple(s for s in scene_seeds if s in used and s in val_set),
        boxes_per_class=dict(sorted(per_class.items())),
    )

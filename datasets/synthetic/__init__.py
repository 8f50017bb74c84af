"""Synthetic street scenes with exact ground truth: specs, rendering, videos, YOLO datasets."""

from datasets.synthetic.export import (
    YoloDatasetSummary,
    truth_path_for,
    write_video,
    write_yolo_dataset,
    yolo_label_lines,
)
from datasets.synthetic.scene import SyntheticScene, iter_scene, scene_truth
from datasets.synthetic.spec import (
    PRESETS,
    SYNTHETIC_CLASSES,
    ActorKind,
    ActorSpec,
    DistractorKind,
    EventKind,
    SceneSpec,
    sample_scene_spec,
)
from datasets.synthetic.truth import EventTruth, FrameTruth, ObjectTruth, SceneTruth

__all__ = [
    "PRESETS",
    "SYNTHETIC_CLASSES",
    "ActorKind",
    "ActorSpec",
    "DistractorKind",
    "EventKind",
    "EventTruth",
    "FrameTruth",
    "ObjectTruth",
    "SceneSpec",
    "SceneTruth",
    "SyntheticScene",
    "YoloDatasetSummary",
    "iter_scene",
    "sample_scene_spec",
    "scene_truth",
    "truth_path_for",
    "write_video",
    "write_yolo_dataset",
    "yolo_label_lines",
]

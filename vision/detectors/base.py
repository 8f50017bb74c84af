"""The detector interface, its configuration types, and the registry of backends.

A backend is chosen by the `type` field of its configuration (a pydantic discriminated
union, as Frigate does), so a camera's YAML names its detector and a mistyped key is an
error rather than a silent default.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from vision.errors import ModelLoadError
from vision.types import Detections

logger = logging.getLogger(__name__)

Provider = Literal["auto", "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _OnnxConfig(_Strict):
    path: Path = Field(title="Model file", description="Path to the ONNX model file.")
    conf: float = Field(0.25, ge=0.0, le=1.0, description="Minimum score for a detection to be reported.")
    iou: float = Field(0.45, ge=0.0, le=1.0, description="IoU above which NMS suppresses a lower-scoring box.")
    max_det: int = Field(300, ge=1, le=30000, description="Most detections reported per image.")
    providers: tuple[Provider, ...] = Field(
        ("auto",),
        min_length=1,
        description="ONNX Runtime execution providers in order of preference; 'auto' takes TensorRT, then "
        "CUDA, then CPU, whichever this machine has.",
    )
    strict_providers: bool = Field(
        True,
        description="Refuse to run when a named provider is missing or ONNX Runtime fell back from it; "
        "when false, log a warning and carry on with what loaded.",
    )
    intra_op_threads: int = Field(
        0, ge=0, le=256, description="ONNX Runtime intra-op threads; 0 lets ONNX Runtime choose (one per core)."
    )
    max_batch: int = Field(8, ge=1, le=256, description="Most frames sent to the model in one run.")
    preprocess_threads: int = Field(
        1,
        ge=1,
        le=256,
        description="Threads each frame's letterbox is split over; worth it when the detector has the cores "
        "to itself between runs (then match intra_op_threads).",
    )
    spin_threads: bool = Field(
        True,
        description="Let ONNX Runtime's idle threads spin for the next run: lowest latency for one model per "
        "process; turn off when several detectors share the cores.",
    )


class OnnxYoloConfig(_OnnxConfig):
    """An object detector exported by ultralytics to ONNX (YOLOv8, YOLO11, YOLO26...)."""

    type: Literal["onnx_yolo"] = "onnx_yolo"
    names: tuple[str, ...] | None = Field(
        None, description="Class names, only for a model whose metadata carries none."
    )
    rect: bool = Field(
        True,
        description="For models exported with a dynamic input size: letterbox a batch of same-size frames to "
        "the smallest rectangle with sides a multiple of the stride, as ultralytics' predict does, instead of "
        "the full square. Fewer pixels to run, same objects found.",
    )
    imgsz: int | None = Field(
        None,
        ge=32,
        le=4096,
        description="For models exported with a dynamic input size: the side of the square frames are "
        "letterboxed into (before `rect` trims it), instead of the size the model was exported at. Smaller runs "
        "faster and misses more small objects; a multiple of the model's stride. The export size when omitted.",
    )


class FastestV2Config(_OnnxConfig):
    """The Yolo-FastestV2 COCO detector (raw anchor-grid head, BGR stretched input)."""

    type: Literal["yolo_fastestv2"] = "yolo_fastestv2"
    names_file: Path | None = Field(
        None, description="Class names, one a line; defaults to coco.names beside the model."
    )


DetectorConfig = Annotated[OnnxYoloConfig | FastestV2Config, Field(discriminator="type")]
_config_adapter: TypeAdapter[OnnxYoloConfig | FastestV2Config] = TypeAdapter(DetectorConfig)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What a loaded model is: enough for a model card and for evidence manifests."""

    path: Path
    sha256: str
    names: tuple[str, ...]
    input_hw: tuple[int, int]
    head: str
    dynamic_batch: bool
    providers: tuple[str, ...]
    metadata: dict[str, str]


class Detector(ABC):
    """Turns BGR images into `Detections` in their own pixel coordinates."""

    info: ModelInfo

    @abstractmethod
    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detect in each image (H×W×3 uint8 BGR; sizes may differ); one result per image."""

    def detect_one(self, image: np.ndarray) -> Detections:
        return self.detect([image])[0]

    @property
    def names(self) -> tuple[str, ...]:
        return self.info.names


D = TypeVar("D", bound=type[Detector])
_BACKENDS: dict[str, Callable[[Any], Detector]] = {}


def register_backend(type_name: str) -> Callable[[D], D]:
    """Class decorator: the backend built for configurations whose `type` is `type_name`."""

    def wrap(cls: D) -> D:
        if type_name in _BACKENDS:
            raise ValueError(f"detector backend {type_name!r} is registered twice")
        _BACKENDS[type_name] = cls
        return cls

    return wrap


def parse_detector_config(data: dict[str, Any] | OnnxYoloConfig | FastestV2Config) -> OnnxYoloConfig | FastestV2Config:
    """Validate a detector configuration; errors name the offending key."""
    if isinstance(data, (OnnxYoloConfig, FastestV2Config)):
        return data
    try:
        return _config_adapter.validate_python(data)
    except ValidationError as e:
        raise ModelLoadError(f"invalid detector configuration: {e}") from e


def create_detector(config: dict[str, Any] | OnnxYoloConfig | FastestV2Config) -> Detector:
    """Build the backend that `config['type']` names, loaded and warmed up."""
    parsed = parse_detector_config(config)
    # importing the backends registers them; done here so `vision.detectors.base` stays light
    import vision.detectors.onnx  # noqa: F401

    return _BACKENDS[parsed.type](parsed)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

"""Detector backends behind one interface, chosen by configuration."""

from vision.detectors.base import (
    Detector,
    DetectorConfig,
    FastestV2Config,
    ModelInfo,
    OnnxYoloConfig,
    create_detector,
    parse_detector_config,
    register_backend,
)

__all__ = [
    "Detector",
    "DetectorConfig",
    "FastestV2Config",
    "ModelInfo",
    "OnnxYoloConfig",
    "create_detector",
    "parse_detector_config",
    "register_backend",
]

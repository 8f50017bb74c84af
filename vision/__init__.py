"""The detection core: frames in, detections (and later violations) out.

`vision` imports nothing of the rest of nonsite; everything else builds on it.
"""

from vision.errors import BackendUnavailableError, InferenceError, ModelLoadError, ProviderFallbackError, VisionError
from vision.preprocess import LetterboxGeometry, letterbox_into
from vision.types import ClockSource, Detections, Frame, GeoTag

__all__ = [
    "BackendUnavailableError",
    "ClockSource",
    "Detections",
    "Frame",
    "GeoTag",
    "InferenceError",
    "LetterboxGeometry",
    "ModelLoadError",
    "ProviderFallbackError",
    "VisionError",
    "letterbox_into",
]

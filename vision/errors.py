"""Errors raised by the detection core.

Every error names what was expected and what came, so that a caller can fix the call or
the file without reading the source.
"""

from __future__ import annotations


class VisionError(Exception):
    """Base of every error raised by `vision`."""


class ModelLoadError(VisionError):
    """A model file cannot serve as a detector: not ONNX, wrong head, no class names..."""


class InferenceError(VisionError):
    """The runtime failed while running a model that loaded; the cause is attached."""


class BackendUnavailableError(ImportError, VisionError):
    """The runtime a backend needs is not installed; the message names the extra to install."""


class ProviderFallbackError(VisionError):
    """ONNX Runtime silently fell back from a requested execution provider."""


class DroneMetadataError(VisionError):
    """A drone image or telemetry file lacks, or garbles, what geo-referencing needs.

    The message names the file and the field (EXIF tag, XMP property or SRT line).
    """


class RegistrationError(VisionError):
    """Two images cannot be registered trustworthily: too few matches or inliers, or a degenerate homography."""


class OrthoError(VisionError):
    """An orthomosaic (GeoTIFF) cannot serve as a baseline; the message names the file and what was wrong."""

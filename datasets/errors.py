"""Errors raised by `datasets`.

Bad arguments raise `ValueError` (pydantic's `ValidationError` is one) naming what was
expected and what came; failures while writing files raise `DatasetError` subclasses with
the cause attached.
"""

from __future__ import annotations


class DatasetError(Exception):
    """Base of every non-argument error raised by `datasets`."""


class VideoWriteError(DatasetError):
    """OpenCV could not open or write a video file (missing codec, unwritable path...)."""


class ImageWriteError(DatasetError):
    """OpenCV could not encode or write an image file."""

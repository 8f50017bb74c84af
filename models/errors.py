"""Errors raised by `models`."""

from __future__ import annotations


class ModelsError(Exception):
    """Base of every error raised by `models`."""


class TrainingUnavailableError(ImportError, ModelsError):
    """Training or export needs the `train` extra (torch, ultralytics), which is not installed."""

"""Errors raised by `evidence`."""

from __future__ import annotations


class EvidenceError(Exception):
    """Base of every error raised by `evidence`."""

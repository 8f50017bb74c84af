"""Errors raised by `evidence`."""

from __future__ import annotations


class EvidenceError(Exception):
    """Base of every error raised by `evidence`."""


class ProofError(EvidenceError):
    """A Merkle inclusion or consistency proof does not prove what it claims."""

"""Canonical JSON (RFC 8785, the JSON Canonicalization Scheme) for manifests and log entries.

Two parties that hold the same data produce the same bytes, so a hash or a signature over
a manifest means one thing. Only JSON's own types are allowed: a datetime or a numpy
number must be turned into a string or a Python number by the caller first.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

from evidence.errors import EvidenceError


class CanonicalJSONError(EvidenceError, ValueError):
    """A value cannot be written as canonical JSON (a non-JSON type, NaN, infinity...)."""


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of `value`."""
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as e:
        raise CanonicalJSONError(f"cannot canonicalize: {e}") from e


def canonical_sha256(value: Any) -> str:
    """Hex SHA-256 of `canonical_json(value)`."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def parse_canonical(data: bytes) -> Any:
    """Parse JSON bytes and check they are already canonical: a re-encoded manifest is tampering."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CanonicalJSONError(f"not JSON: {e}") from e
    if canonical_json(value) != data:
        raise CanonicalJSONError("JSON is not in canonical form (RFC 8785)")
    return value

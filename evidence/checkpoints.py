"""Signed checkpoints as files, and the proof that a log was only ever appended to.

A checkpoint handed out earlier (in a bundle, to a notary, on a public page) pins the log's
size and root at that moment. A later checkpoint is honest only if the log it describes
extends the earlier one: `verify_append_only` checks both signatures and the RFC 6962
consistency proof between them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evidence.bundle import Check
from evidence.canonical import canonical_json
from evidence.merkle import verify_consistency
from evidence.signing import Signature, verify_signature
from evidence.store import write_atomic
from evidence.timestamp import TimestampError, verify_timestamp
from evidence.vault import CHECKPOINT_FORMAT, Checkpoint, StampedCheckpoint


def write_checkpoint(checkpoint: Checkpoint | StampedCheckpoint, path: Path, public_keys: dict[str, bytes]) -> Path:
    """A checkpoint file: the signed body, its signature, the public keys to check it and,
    for a stamped checkpoint, its RFC 3161 token and the authority's roots."""
    document: dict[str, Any] = {"keys": {key_id: key.hex() for key_id, key in public_keys.items()}}
    if isinstance(checkpoint, StampedCheckpoint):
        document.update(checkpoint.to_json())
    else:
        document.update({"checkpoint": checkpoint.body, "signature": checkpoint.signature.to_json()})
    write_atomic(Path(path), canonical_json(document))
    return Path(path)


def read_checkpoint(path: Path) -> tuple[Checkpoint, dict[str, bytes]]:
    try:
        document: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
        body = document["checkpoint"]
        if body.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format {body.get('format')!r} is not {CHECKPOINT_FORMAT}")
        signature = Signature(document["signature"]["key_id"], bytes.fromhex(document["signature"]["signature"]))
        keys = {k: bytes.fromhex(v) for k, v in document["keys"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a checkpoint file: {e}") from e
    return Checkpoint(body, signature), keys


def checkpoint_timestamp(path: Path) -> Check | None:
    """The check of a checkpoint file's RFC 3161 token against the roots it carries (None: unstamped)."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    if "timestamp" not in document:
        return None
    try:
        stamped = StampedCheckpoint.from_json(document)
        verdict = verify_timestamp(stamped.token, canonical_json(stamped.checkpoint.body), stamped.tsa_roots)
    except (ValueError, KeyError, TypeError, TimestampError) as e:
        return Check(f"timestamp of {Path(path).name}", False, f"unreadable: {e}")
    return Check(f"timestamp of {Path(path).name}", verdict.ok, verdict.detail)


def _signed(checkpoint: Checkpoint, keys: dict[str, bytes]) -> bool:
    key = keys.get(checkpoint.signature.key_id)
    return key is not None and verify_signature(key, canonical_json(checkpoint.body), checkpoint.signature.value)


def verify_append_only(old: Checkpoint, new: Checkpoint, proof: list[bytes], keys: dict[str, bytes]) -> list[Check]:
    """Checks that `new` describes the log of `old` with leaves only added after it."""
    checks = [
        Check("old checkpoint signature", _signed(old, keys), f"size {old.tree_size} at {old.body['time']}"),
        Check("new checkpoint signature", _signed(new, keys), f"size {new.tree_size} at {new.body['time']}"),
        Check(
            "order",
            old.tree_size <= new.tree_size,
            f"sizes {old.tree_size} -> {new.tree_size}" + ("" if old.tree_size <= new.tree_size else ": shrank"),
        ),
    ]
    consistent = old.tree_size <= new.tree_size and verify_consistency(
        old.tree_size, new.tree_size, old.root, new.root, proof
    )
    checks.append(Check("consistency proof", consistent, "the new log begins with the old one"))
    return checks

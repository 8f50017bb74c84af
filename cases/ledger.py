"""Case transitions as signed records in the evidence Merkle log.

Each transition is written as a canonical JSON record that names its case, its place in
the case's history and the hash of the record before it (a hash chain per case), signed
with the engine's key, and appended to the same transparency log as the evidence (the
vault also keeps the record beside the log). A rewritten or reordered step shows up as a
broken chain, a bad signature and a leaf that is not in the log; a deleted step, even the
last one, as a logged record with no row (`cases.invariants`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from evidence.canonical import canonical_json
from evidence.merkle import leaf_hash
from evidence.signing import Signature, verify_signature
from evidence.vault import Vault

RECORD_TYPE = "case.transition"


def transition_record(
    *,
    agency: str,
    case_number: str,
    seq: int,
    action: str,
    from_state: str,
    to_state: str,
    actor: str,
    role: str,
    at: datetime,
    reason: str,
    reason_code: str | None,
    evidence: Sequence[str],
    previous: str | None,
) -> dict[str, Any]:
    return {
        "type": RECORD_TYPE,
        "agency": agency,
        "case": case_number,
        "seq": seq,
        "action": action,
        "from": from_state,
        "to": to_state,
        "actor": actor,
        "role": role,
        "at": at.isoformat(timespec="microseconds"),
        "reason": reason,
        "reason_code": reason_code,
        "evidence": list(evidence),
        "previous": previous,
    }


def seal_record(vault: Vault, record: Mapping[str, Any]) -> tuple[str, str, Signature]:
    """The record's canonical text, its SHA-256 and the engine's signature of it."""
    data = canonical_json(record)
    return data.decode(), hashlib.sha256(data).hexdigest(), vault.keys.sign(data)


def check_record(
    vault: Vault,
    record_text: str,
    *,
    record_sha256: str,
    key_id: str,
    signature_hex: str,
    leaf_index: int | None,
    previous: str | None,
) -> list[str]:
    """What is wrong with one stored transition record (nothing: an empty list)."""
    problems = []
    data = record_text.encode()
    try:
        record = json.loads(data)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        return ["record is not a JSON object"]
    if canonical_json(record) != data:
        problems.append("record is not in canonical form")
    if hashlib.sha256(data).hexdigest() != record_sha256:
        problems.append("record hash does not match the record")
    if record.get("previous") != previous:
        problems.append("hash chain broken: 'previous' does not name the step before")
    public = vault.keys.public_keys().get(key_id)
    if public is None:
        problems.append(f"signed by unknown key {key_id}")
    elif not verify_signature(public, data, bytes.fromhex(signature_hex)):
        problems.append("signature does not verify")
    if leaf_index is not None and leaf_index >= vault.log.size:
        vault.log.refresh()  # another process may have appended it
    if leaf_index is None:
        problems.append("not yet in the Merkle log")
    elif leaf_index >= vault.log.size or vault.log.leaf_hash(leaf_index) != leaf_hash(data):
        problems.append(f"log leaf {leaf_index} is not this record")
    return problems

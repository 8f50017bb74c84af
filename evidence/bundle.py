"""Bundles: one package with everything needed to verify it offline, and the verifier.

A bundle is a zip holding the package's files, its canonical manifest and signature, its
log leaf with an inclusion proof, a signed checkpoint of the log with its RFC 3161
timestamp token and the time-stamping authority's root certificates, the public keys, and
a human-readable summary. `verify_bundle` needs nothing but the zip: it checks every
file's hash, that nothing was added or dropped, the manifest signature, the leaf, the
inclusion proof against the checkpoint's root, the checkpoint's signature and its
timestamp, and names the first check that failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from evidence.canonical import CanonicalJSONError, canonical_json, parse_canonical
from evidence.merkle import leaf_hash, verify_inclusion
from evidence.package import load_package
from evidence.signing import verify_signature
from evidence.timestamp import TimestampError, verify_timestamp
from evidence.vault import Checkpoint, StampedCheckpoint, Vault, package_leaf

BUNDLE_FORMAT = "nonsite.bundle/1"
_MEMBERS = ("bundle.json", "manifest.json", "checkpoint.json", "keys.json", "timestamp.tsr", "tsa-roots.pem")
#: how far the engine's checkpoint time may run ahead of the authority's time
CLOCK_SKEW = timedelta(minutes=2)


def export_bundle(vault: Vault, package_id: str, out: Path, *, checkpoint: StampedCheckpoint | None = None) -> Path:
    """Write the bundle of `package_id` to `out` (a .zip).

    The checkpoint is the given one, else the latest published one if it covers the
    package, else a newly published (signed and time-stamped) one.
    """
    package, files = load_package(vault.store, package_id)
    index = vault.leaf_index(package_id)
    stamped = checkpoint or vault.checkpoint_covering(index)
    signed = stamped.checkpoint
    if index >= signed.tree_size:
        raise ValueError(f"checkpoint of size {signed.tree_size} does not cover leaf {index}")
    proof = vault.log.inclusion_proof(index, signed.tree_size)
    bundle = {
        "format": BUNDLE_FORMAT,
        "package_id": package_id,
        "signature": package.signature.to_json(),
        "leaf": {"index": index, "data": package_leaf(package_id).decode()},
        "inclusion_proof": [h.hex() for h in proof],
        "checkpoint_signature": signed.signature.to_json(),
    }
    keys = {key_id: key.hex() for key_id, key in vault.keys.public_keys().items()}
    out = Path(out)
    tmp = out.with_name(f".{out.name}.partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", canonical_json(package.manifest))
        z.writestr("bundle.json", canonical_json(bundle))
        z.writestr("checkpoint.json", canonical_json(signed.body))
        z.writestr("keys.json", canonical_json(keys))
        z.writestr("timestamp.tsr", stamped.token)
        z.writestr("tsa-roots.pem", stamped.tsa_roots)
        for name, data in sorted(files.items()):
            z.writestr(f"files/{name}", data)
        z.writestr("SUMMARY.txt", _summary(package.manifest, package_id, index, signed))
    os.replace(tmp, out)  # a crash leaves the partial file, never a half bundle under the real name
    return out


def _summary(manifest: dict[str, Any], package_id: str, index: int, checkpoint: Checkpoint) -> str:
    v = manifest["violation"]
    lines = [
        f"Evidence package {package_id}",
        f"  device   {json.dumps(manifest['device'], ensure_ascii=False)}",
        f"  place    {json.dumps(manifest['place'], ensure_ascii=False)}",
        f"  capture  {json.dumps(manifest['capture'], ensure_ascii=False)}",
        f"  finding  {v.get('kind')} in zone {v.get('zone')}",
        f"  files    {', '.join(manifest['files'])}",
        f"  log      leaf {index} of {checkpoint.tree_size}, root {checkpoint.body['root']}",
        f"           checkpoint of {checkpoint.body['time']}",
        "Verify offline with: nonsite verify <this bundle>.zip",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def verify_bundle(path: Path, *, tsa_roots: bytes | None = None) -> list[Check]:
    """Every check of the bundle at `path`, in order; the verdict is `all(c.ok for c in checks)`.

    The timestamp is checked against `tsa_roots` (PEM) when given, such as a notary's
    published root; otherwise against the roots the bundle carries, whose fingerprints the
    caller should compare with the published ones (`tsa_fingerprints`).
    """
    checks: list[Check] = []

    def check(name: str, ok: bool, detail: str) -> bool:
        checks.append(Check(name, ok, detail))
        return ok

    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        check("bundle", False, f"{path}: not a readable zip: {e}")
        return checks
    with z:
        names = set(z.namelist())
        missing = [m for m in _MEMBERS if m not in names]
        if not check("bundle", not missing, f"missing {', '.join(missing)}" if missing else "all parts present"):
            return checks
        try:
            manifest_bytes = z.read("manifest.json")
            manifest = parse_canonical(manifest_bytes)
            bundle = parse_canonical(z.read("bundle.json"))
            checkpoint_bytes = z.read("checkpoint.json")
            checkpoint = parse_canonical(checkpoint_bytes)
            keys = {k: bytes.fromhex(v) for k, v in parse_canonical(z.read("keys.json")).items()}
        except (CanonicalJSONError, ValueError, AttributeError) as e:
            check("canonical", False, f"a bundle part is not canonical JSON: {e}")
            return checks
        package_id = hashlib.sha256(manifest_bytes).hexdigest()
        check("package id", package_id == bundle.get("package_id"), f"manifest hashes to {package_id}")
        listed = manifest.get("files", {})
        present = {n.removeprefix("files/") for n in names if n.startswith("files/")}
        for name, entry in sorted(listed.items()):
            if name not in present:
                check(f"file {name}", False, "listed in the manifest but missing from the bundle")
                continue
            digest = hashlib.sha256(z.read(f"files/{name}")).hexdigest()
            check(f"file {name}", digest == entry["sha256"], f"sha256 {digest}")
        for name in sorted(present - set(listed)):
            check(f"file {name}", False, "in the bundle but not in the manifest")
        signature = bundle.get("signature", {})
        key = keys.get(signature.get("key_id", ""))
        check(
            "manifest signature",
            key is not None and verify_signature(key, manifest_bytes, _hex(signature.get("signature"))),
            f"Ed25519 by key {signature.get('key_id')}",
        )
        leaf = bundle.get("leaf", {})
        leaf_data = str(leaf.get("data", "")).encode()
        check("log leaf", leaf_data == package_leaf(package_id), f"leaf {leaf.get('index')} names this package")
        checkpoint_signature = bundle.get("checkpoint_signature", {})
        checkpoint_key = keys.get(checkpoint_signature.get("key_id", ""))
        check(
            "checkpoint signature",
            checkpoint_key is not None
            and verify_signature(checkpoint_key, checkpoint_bytes, _hex(checkpoint_signature.get("signature"))),
            f"tree size {checkpoint.get('tree_size')}, root {checkpoint.get('root')}, time {checkpoint.get('time')}",
        )
        try:
            proof = [bytes.fromhex(h) for h in bundle.get("inclusion_proof", [])]
            included = verify_inclusion(
                leaf_hash(leaf_data),
                int(leaf.get("index", -1)),
                int(checkpoint["tree_size"]),
                proof,
                bytes.fromhex(checkpoint["root"]),
            )
        except (KeyError, ValueError, TypeError) as e:
            check("inclusion proof", False, f"malformed: {e}")
        else:
            check("inclusion proof", included, f"leaf {leaf.get('index')} is in the checkpointed log")
        _check_timestamp(
            check, z.read("timestamp.tsr"), checkpoint_bytes, checkpoint, tsa_roots or z.read("tsa-roots.pem")
        )
    return checks


def _check_timestamp(
    check: Callable[[str, bool, str], bool], token: bytes, checkpoint_bytes: bytes, body: dict[str, Any], roots: bytes
) -> None:
    try:
        verdict = verify_timestamp(token, checkpoint_bytes, roots)
    except TimestampError as e:
        check("timestamp", False, str(e))
        return
    if not check("timestamp", verdict.ok, verdict.detail):
        return
    assert verdict.gen_time is not None
    try:
        claimed = datetime.fromisoformat(str(body.get("time")))
    except ValueError:
        check("timestamp time", False, f"the checkpoint time {body.get('time')!r} is not a time")
        return
    check(
        "timestamp time",
        claimed - CLOCK_SKEW <= verdict.gen_time,
        f"stamped {verdict.gen_time.isoformat()} by {verdict.tsa}; checkpoint says {claimed.isoformat()}",
    )


def tsa_fingerprints(path: Path) -> dict[str, str]:
    """SHA-256 fingerprints of the self-signed TSA roots a bundle carries, by subject."""
    with zipfile.ZipFile(path) as z:
        pem = z.read("tsa-roots.pem")
    roots = [c for c in x509.load_pem_x509_certificates(pem) if c.issuer == c.subject]
    return {c.subject.rfc4514_string(): c.fingerprint(hashes.SHA256()).hex() for c in roots}


def _hex(value: object) -> bytes:
    try:
        return bytes.fromhex(str(value))
    except ValueError:
        return b""


def key_fingerprints(path: Path) -> dict[str, str]:
    """The bundle's public keys by id, to compare with the keys the agency publishes."""
    with zipfile.ZipFile(path) as z:
        return dict(json.loads(z.read("keys.json")))

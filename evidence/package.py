"""Evidence packages: the files of one finding, a canonical manifest, and its signature.

`evidence` knows nothing of cameras or models: the caller hands it the finding as plain
JSON-ready dicts (device, place, capture time, the violation record, the model and rule in
force) and the files as bytes. The manifest lists every file with its SHA-256, size and
media type, is written in canonical JSON (RFC 8785), signed with the engine's key, and
stored with the files in the content-addressed store; its hash is the package's id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evidence.canonical import canonical_json
from evidence.errors import EvidenceError
from evidence.signing import KeyRing, Signature
from evidence.store import ContentStore, sha256_hex, write_atomic

MANIFEST_FORMAT = "nonsite.evidence.manifest/1"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class PackageError(EvidenceError):
    """A package cannot be built or read: a bad file name, a missing field, a missing object."""


@dataclass(frozen=True, slots=True)
class PackageFile:
    """One file of a package: a keyframe, the clip, an annotated copy."""

    name: str
    data: bytes
    media_type: str
    role: str  # keyframe | clip | annotated | other

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise PackageError(
                f"file name must be 1-128 letters, digits, '.', '_' or '-' not starting with a dot, "
                f"but got {self.name!r}"
            )


@dataclass(frozen=True, slots=True)
class SealedPackage:
    package_id: str  # hex SHA-256 of the canonical manifest
    manifest: dict[str, Any]
    signature: Signature


_REQUIRED = ("device", "place", "capture", "violation", "model", "rule", "engine")


def build_manifest(finding: Mapping[str, Any], files: Sequence[PackageFile]) -> dict[str, Any]:
    """The manifest of `files` for `finding` (its device, place, capture, violation, model, rule, engine)."""
    missing = [key for key in _REQUIRED if key not in finding]
    if missing:
        raise PackageError(f"finding must give {', '.join(_REQUIRED)}; missing {', '.join(missing)}")
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise PackageError(f"file names must be unique, but got {sorted(names)}")
    if not files:
        raise PackageError("a package needs at least one file")
    return {
        "format": MANIFEST_FORMAT,
        **{key: finding[key] for key in _REQUIRED},
        "files": {
            f.name: {"sha256": sha256_hex(f.data), "size": len(f.data), "media_type": f.media_type, "role": f.role}
            for f in sorted(files, key=lambda f: f.name)
        },
    }


def seal(store: ContentStore, keys: KeyRing, finding: Mapping[str, Any], files: Sequence[PackageFile]) -> SealedPackage:
    """Store the files and the signed manifest; returns the package. Sealing twice is a no-op.

    Files go in first and the package record last, so a crash in between leaves stray
    objects but never a package whose files are missing.
    """
    manifest = build_manifest(finding, files)
    for f in files:
        store.put(f.data)
    manifest_bytes = canonical_json(manifest)
    package_id = store.put(manifest_bytes)
    record_path = _record_path(store, package_id)
    if record_path.exists():
        record = json.loads(record_path.read_text(encoding="utf-8"))
        signature = Signature(record["signature"]["key_id"], bytes.fromhex(record["signature"]["signature"]))
        return SealedPackage(package_id, manifest, signature)
    signature = keys.sign(manifest_bytes)
    record = {"package_id": package_id, "signature": signature.to_json()}
    write_atomic(record_path, canonical_json(record))
    return SealedPackage(package_id, manifest, signature)


def _record_path(store: ContentStore, package_id: str) -> Path:
    return store.root / "packages" / f"{package_id}.json"


def load_package(store: ContentStore, package_id: str) -> tuple[SealedPackage, dict[str, bytes]]:
    """A sealed package and its files, each checked against its hash."""
    path = _record_path(store, package_id)
    if not path.is_file():
        raise PackageError(f"no package {package_id} in {store.root}")
    record = json.loads(path.read_text(encoding="utf-8"))
    manifest = json.loads(store.get(package_id))
    signature = Signature(record["signature"]["key_id"], bytes.fromhex(record["signature"]["signature"]))
    files = {name: store.get(entry["sha256"]) for name, entry in manifest["files"].items()}
    return SealedPackage(package_id, manifest, signature), files

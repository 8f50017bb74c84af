"""A content-addressed, write-once store of evidence files.

Each object lives at `objects/<first two hex digits>/<sha256>` under the store's root and
is named by its own hash, so a file that was altered no longer matches its name. Writes are
atomic (temporary file in the same folder, fsync, rename, fsync of the folder): a crash
leaves either the whole object or nothing. Writing the same bytes twice is a no-op;
nothing is ever overwritten or deleted through this interface.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from evidence.errors import EvidenceError


class StoreError(EvidenceError):
    """An object is missing, unreadable or no longer matches its hash."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a crash leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class ContentStore:
    """Evidence objects by SHA-256, under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        (self.root / "objects").mkdir(parents=True, exist_ok=True)

    def path_of(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"digest must be 64 lowercase hex digits, but got {digest!r}")
        return self.root / "objects" / digest[:2] / digest

    def put(self, data: bytes) -> str:
        """Store `data`; returns its hex SHA-256. Storing bytes already there changes nothing."""
        digest = sha256_hex(data)
        path = self.path_of(digest)
        if not path.exists():
            write_atomic(path, data)
            path.chmod(0o444)
        return digest

    def get(self, digest: str) -> bytes:
        """The object `digest`, checked against its hash."""
        path = self.path_of(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError as e:
            raise StoreError(f"object {digest} is not in the store at {self.root}") from e
        except OSError as e:
            raise StoreError(f"object {digest}: cannot read {path}: {e}") from e
        if sha256_hex(data) != digest:
            raise StoreError(f"object {digest} at {path} no longer matches its hash: altered or corrupt")
        return data

    def __contains__(self, digest: str) -> bool:
        return self.path_of(digest).is_file()

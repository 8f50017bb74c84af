"""Resumable uploads of field evidence (photos, body-cam video, audio) from officers' devices.

The client declares a file (name, size, media type, optionally its SHA-256), then sends it in
chunks, each at the offset the server holds (`Upload-Offset`, as in the tus protocol); after a
dropped connection it asks for the offset and goes on from there. A finished upload is sealed
into an evidence package and the parts are removed. Parts live under `var/uploads`, one file
and one JSON record per upload, written only by the officer who declared it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

MEDIA_TYPES = {
    "image/jpeg": "photo",
    "image/png": "photo",
    "video/mp4": "video",
    "video/quicktime": "video",
    "audio/mpeg": "audio",
    "audio/mp4": "audio",
    "audio/wav": "audio",
    "audio/x-wav": "audio",
}
_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")


class UploadError(Exception):
    """An upload that cannot go on as asked; the message says why."""


class UnknownUploadError(UploadError):
    pass


class OffsetMismatchError(UploadError):
    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"the upload is at offset {expected}, but this chunk starts at {got}; resume from {expected}")
        self.expected = expected


@dataclass
class Upload:
    id: str
    owner: str
    filename: str
    media_type: str
    size: int
    sha256: str | None
    created_at: str
    expires_at: str
    offset: int = 0

    @property
    def complete(self) -> bool:
        return self.offset == self.size

    @property
    def kind(self) -> str:
        return MEDIA_TYPES[self.media_type]


def safe_name(filename: str) -> str:
    """A file name fit for a package: no folders, no control characters, at most 100 characters."""
    base = re.split(r"[\\/]", filename)[-1]
    base = re.sub(r"[^\w.\-]+", "_", base, flags=re.UNICODE).strip("._") or "file"
    return base[-100:]


class UploadStore:
    def __init__(self, root: Path, *, max_bytes: int, keep: timedelta = timedelta(days=2)) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.keep = keep
        self.root.mkdir(parents=True, exist_ok=True)

    def _paths(self, upload_id: str) -> tuple[Path, Path]:
        if not _ID.match(upload_id):
            raise UnknownUploadError(f"no upload {upload_id!r}")
        return self.root / f"{upload_id}.json", self.root / f"{upload_id}.part"

    @contextmanager
    def _locked(self, upload_id: str) -> Iterator[Upload]:
        meta, _ = self._paths(upload_id)
        if not meta.is_file():
            raise UnknownUploadError(f"no upload {upload_id!r} (finished, expired, or never declared)")
        with (self.root / f"{upload_id}.lock").open("a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield Upload(**json.loads(meta.read_text(encoding="utf-8")))
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _save(self, upload: Upload) -> None:
        meta, _ = self._paths(upload.id)
        tmp = meta.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(upload)), encoding="utf-8")
        os.replace(tmp, meta)

    def create(
        self, *, owner: str, filename: str, media_type: str, size: int, sha256: str | None, now: datetime
    ) -> Upload:
        if media_type not in MEDIA_TYPES:
            raise UploadError(f"media type {media_type!r} is not field evidence; one of {', '.join(MEDIA_TYPES)}")
        if not 0 < size <= self.max_bytes:
            raise UploadError(f"a field evidence file has 1 to {self.max_bytes} bytes, but {size} were declared")
        upload = Upload(
            id=secrets.token_urlsafe(16),
            owner=owner,
            filename=safe_name(filename),
            media_type=media_type,
            size=size,
            sha256=sha256,
            created_at=now.isoformat(),
            expires_at=(now + self.keep).isoformat(),
        )
        self._paths(upload.id)[1].touch()
        self._save(upload)
        return upload

    def get(self, upload_id: str, *, owner: str) -> Upload:
        with self._locked(upload_id) as upload:
            if upload.owner != owner:
                raise UnknownUploadError(f"no upload {upload_id!r} of yours")
            return upload

    def append(self, upload_id: str, *, owner: str, offset: int, chunk: bytes) -> Upload:
        """Write `chunk` at `offset`, which must be where the upload stands."""
        with self._locked(upload_id) as upload:
            if upload.owner != owner:
                raise UnknownUploadError(f"no upload {upload_id!r} of yours")
            if offset != upload.offset:
                raise OffsetMismatchError(upload.offset, offset)
            if upload.offset + len(chunk) > upload.size:
                end = upload.offset + len(chunk)
                raise UploadError(f"the chunk would take the upload to {end} bytes, past its declared {upload.size}")
            _, part = self._paths(upload_id)
            with part.open("r+b") as f:
                f.seek(upload.offset)
                f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            upload.offset += len(chunk)
            self._save(upload)
            return upload

    def read_complete(self, upload_id: str, *, owner: str) -> tuple[Upload, bytes]:
        """The finished upload's bytes, checked against its declared SHA-256."""
        upload = self.get(upload_id, owner=owner)
        if not upload.complete:
            raise UploadError(f"upload {upload_id} has {upload.offset} of {upload.size} bytes; send the rest first")
        data = self._paths(upload_id)[1].read_bytes()
        if upload.sha256 is not None and hashlib.sha256(data).hexdigest() != upload.sha256:
            raise UploadError(f"upload {upload_id} does not match the SHA-256 declared for it; upload it again")
        return upload, data

    def remove(self, upload_id: str) -> None:
        for path in (*self._paths(upload_id), self.root / f"{upload_id}.lock"):
            path.unlink(missing_ok=True)

    def expire(self, now: datetime) -> int:
        """Remove uploads past their keep time; returns how many."""
        removed = 0
        for meta in self.root.glob("*.json"):
            try:
                upload = Upload(**json.loads(meta.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                continue
            if datetime.fromisoformat(upload.expires_at) <= now:
                self.remove(upload.id)
                removed += 1
        return removed

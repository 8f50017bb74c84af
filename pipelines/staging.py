"""The hand-over between a camera worker and the task workers that seal and file.

Frames never cross a process. A camera worker encodes what a violation's evidence needs
(the clip and keyframes from its ring buffer) and writes it, with the finding, as one
staged item: a folder written under a temporary name and renamed into `pending/`, so a
crash leaves either nothing or a whole item. The task that seals and files takes only
the item's id. Its id is the SHA-256 of the finding and files, and sealing is
deterministic in them, so a task that runs twice (a worker killed mid-task, a message
delivered again) seals the same package and files it once.

An item leaves `pending/` only when it is filed: it then moves to `done/` (its files
dropped, since the vault holds them) with the package id and case number. Whatever is
still pending after a crash or a broker outage is sent again by `sweep`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evidence.package import PackageFile

logger = logging.getLogger(__name__)

_FINDING = "finding.json"
_FILES = "files.json"
_SENT = ".sent"
_ATTEMPTS = ".attempts"


class StagingError(Exception):
    """A staged item is missing or damaged; the message names it."""


@dataclass(frozen=True)
class StagedItem:
    item_id: str
    finding: dict[str, Any]
    files: list[PackageFile]


def _item_id(finding: dict[str, Any], files: Sequence[PackageFile]) -> str:
    digest = hashlib.sha256(json.dumps(finding, sort_keys=True, ensure_ascii=False).encode())
    for f in files:
        digest.update(f.name.encode() + b"\0" + hashlib.sha256(f.data).digest())
    return digest.hexdigest()


class StagingArea:
    """Staged violations under `root`: `pending/ID/`, `done/ID.json`, `failed/ID/`, `tmp/`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        for sub in ("pending", "done", "failed", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def stage(self, finding: dict[str, Any], files: Sequence[PackageFile]) -> str:
        """Write one item atomically and return its id; staging the same item again is a no-op."""
        item_id = _item_id(finding, files)
        target = self.root / "pending" / item_id
        if target.exists() or self.done(item_id) is not None:
            return item_id
        tmp = self.root / "tmp" / f"{item_id}.{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            listing = []
            for f in files:
                (tmp / f.name).write_bytes(f.data)
                listing.append({"name": f.name, "media_type": f.media_type, "role": f.role})
            (tmp / _FILES).write_text(json.dumps(listing), encoding="utf-8")
            (tmp / _FINDING).write_text(json.dumps(finding, ensure_ascii=False), encoding="utf-8")
            _fsync_tree(tmp)
            os.rename(tmp, target)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            # another stager won the race with the same content
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return item_id

    def load(self, item_id: str) -> StagedItem:
        folder = self.root / "pending" / item_id
        try:
            finding = json.loads((folder / _FINDING).read_text(encoding="utf-8"))
            listing = json.loads((folder / _FILES).read_text(encoding="utf-8"))
            files = [
                PackageFile(e["name"], (folder / e["name"]).read_bytes(), e["media_type"], e["role"]) for e in listing
            ]
        except FileNotFoundError as e:
            raise StagingError(f"staged item {item_id}: {e.filename} is missing") from e
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise StagingError(f"staged item {item_id}: damaged listing ({e})") from e
        if _item_id(finding, files) != item_id:
            raise StagingError(f"staged item {item_id}: content does not match its id (changed after staging)")
        return StagedItem(item_id, finding, files)

    def mark_done(self, item_id: str, outcome: dict[str, Any]) -> None:
        """Record where the item went (package, case) and drop its files, the vault holds them."""
        marker = self.root / "done" / f"{item_id}.json"
        tmp = marker.with_suffix(f".{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps(outcome, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, marker)
        shutil.rmtree(self.root / "pending" / item_id, ignore_errors=True)

    def is_pending(self, item_id: str) -> bool:
        return (self.root / "pending" / item_id).is_dir()

    def fail(self, item_id: str, reason: str) -> None:
        """Set an item that cannot be filed aside, with the reason, for a person to look at;
        nothing of it is deleted."""
        source = self.root / "pending" / item_id
        target = self.root / "failed" / item_id
        if source.is_dir():
            if target.exists():  # set aside before: same id, same content
                shutil.rmtree(source, ignore_errors=True)
            else:
                os.rename(source, target)
        target.mkdir(parents=True, exist_ok=True)
        (target / "reason.txt").write_text(reason + "\n", encoding="utf-8")

    def failed(self) -> dict[str, str]:
        """Items set aside, with their reasons."""
        return {
            p.name: (p / "reason.txt").read_text(encoding="utf-8").strip() if (p / "reason.txt").is_file() else ""
            for p in sorted((self.root / "failed").iterdir())
        }

    def done(self, item_id: str) -> dict[str, Any] | None:
        marker = self.root / "done" / f"{item_id}.json"
        if not marker.is_file():
            return None
        result: dict[str, Any] = json.loads(marker.read_text(encoding="utf-8"))
        return result

    def mark_sent(self, item_id: str) -> None:
        """Note that the item's id was just sent to the task queue (the sweep waits from there)."""
        with contextlib.suppress(FileNotFoundError):  # filed meanwhile
            (self.root / "pending" / item_id / _SENT).touch()

    def record_attempt(self, item_id: str) -> int:
        """Count one failed attempt to file the item; returns how many there have been."""
        path = self.root / "pending" / item_id / _ATTEMPTS
        try:
            count = int(path.read_text()) + 1 if path.is_file() else 1
            path.write_text(str(count))
        except (OSError, ValueError):
            return 1
        return count

    def pending(self, older_than_s: float = 0.0, *, cameras: set[str] | None = None) -> list[str]:
        """Ids of items not yet filed and not sent within `older_than_s`, oldest first; only
        those of `cameras` when given."""
        cutoff = time.time() - older_than_s
        items = []
        for folder in (self.root / "pending").iterdir():
            try:
                sent = folder / _SENT
                last = sent.stat().st_mtime if sent.exists() else folder.stat().st_mtime
                if cameras is not None:
                    finding = json.loads((folder / _FINDING).read_text(encoding="utf-8"))
                    if finding.get("device", {}).get("id") not in cameras:
                        continue
            except (FileNotFoundError, NotADirectoryError):  # filed while this looked
                continue
            except (OSError, ValueError) as e:
                logger.warning("staged item %s cannot be read: %s", folder.name, e)
                continue
            if last <= cutoff:
                items.append((last, folder.name))
        return [name for _, name in sorted(items)]


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        with path.open("rb") as f:
            os.fsync(f.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

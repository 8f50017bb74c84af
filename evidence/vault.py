"""The evidence vault: the store, the signing keys and the transparency log, together.

Sealing a finding stores its package, then appends the package to the log as a leaf;
checkpoints (tree size, root, time) are signed on demand. Before appending, a seal writes
its intent (the package and the log's size); a crash between the append and the index is
healed by the next seal, which finds the leaf after that size instead of appending it again.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evidence.canonical import canonical_json
from evidence.merkle import MerkleLog, leaf_hash
from evidence.package import PackageFile, SealedPackage, seal
from evidence.signing import KeyRing, Signature
from evidence.store import ContentStore, write_atomic
from evidence.timestamp import (
    HttpTimestampAuthority,
    LocalTimestampAuthority,
    TimestampAuthority,
    mask_url,
    stamp,
)

CHECKPOINT_FORMAT = "nonsite.checkpoint/1"


def package_leaf(package_id: str) -> bytes:
    """The log leaf of a package: canonical JSON naming it."""
    return canonical_json({"type": "evidence.package", "package_id": package_id})


@dataclass(frozen=True, slots=True)
class Checkpoint:
    body: dict[str, Any]  # format, origin, tree_size, root (hex), time
    signature: Signature

    @property
    def tree_size(self) -> int:
        return int(self.body["tree_size"])

    @property
    def root(self) -> bytes:
        return bytes.fromhex(self.body["root"])


@dataclass(frozen=True, slots=True)
class StampedCheckpoint:
    """A signed checkpoint with its RFC 3161 token and the roots the token chains to."""

    checkpoint: Checkpoint
    token: bytes  # DER TimeStampResp over the canonical checkpoint body
    tsa_roots: bytes  # PEM

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint.body,
            "signature": self.checkpoint.signature.to_json(),
            "timestamp": base64.b64encode(self.token).decode(),
            "tsa_roots": self.tsa_roots.decode(),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> StampedCheckpoint:
        signature = Signature(document["signature"]["key_id"], bytes.fromhex(document["signature"]["signature"]))
        return cls(
            Checkpoint(dict(document["checkpoint"]), signature),
            base64.b64decode(document["timestamp"]),
            str(document["tsa_roots"]).encode(),
        )


CUSTODY_ACTIONS = frozenset({"view", "download", "export", "confirm", "reject", "seal"})


@dataclass(frozen=True, slots=True)
class CustodyEvent:
    """Who did what to a package, when and why; each is also a leaf of the log."""

    package_id: str
    actor: str
    action: str
    at: str  # ISO 8601, UTC
    reason: str
    leaf_index: int

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "evidence.custody",
            "package_id": self.package_id,
            "actor": self.actor,
            "action": self.action,
            "at": self.at,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class LoggedPackage:
    package: SealedPackage
    leaf_index: int


class Vault:
    """One deployment's evidence: `store/`, `log/leaves` under `root`; keys in `key_folder`."""

    def __init__(
        self,
        root: Path,
        key_folder: Path,
        *,
        origin: str = "nonsite",
        tsa_url: str | None = None,
        tsa_roots: Path | None = None,
    ) -> None:
        self.root = Path(root)
        if Path(key_folder).resolve().is_relative_to(self.root.resolve()):
            raise ValueError(f"signing keys must live outside the evidence root {self.root}, not in {key_folder}")
        self.store = ContentStore(self.root / "store")
        self.keys = KeyRing.open_or_create(Path(key_folder))
        (self.root / "log").mkdir(parents=True, exist_ok=True)
        self.log = MerkleLog(self.root / "log" / "leaves")
        self.origin = origin
        self._key_folder = Path(key_folder)
        self._tsa_url, self._tsa_roots = tsa_url, tsa_roots
        if tsa_url is not None and tsa_roots is None:
            raise ValueError(
                f"a time-stamping authority at {mask_url(tsa_url)} needs its root certificates (tsa_roots)"
            )
        self._authority: TimestampAuthority | None = None
        self._authority_roots = b""
        self._append_lock = threading.Lock()  # one process may append from several threads

    def close(self) -> None:
        self.log.close()

    def _index_path(self, package_id: str) -> Path:
        return self.store.root / "packages" / f"{package_id}.log.json"

    def seal(self, finding: Mapping[str, Any], files: Sequence[PackageFile]) -> LoggedPackage:
        """Seal the finding's package and log it; sealing again returns the same leaf."""
        package = seal(self.store, self.keys, finding, files)
        index_path = self._index_path(package.package_id)
        if index_path.is_file():
            return LoggedPackage(package, int(json.loads(index_path.read_text())["leaf_index"]))
        with self._append_lock, self._sealing_lock():
            if index_path.is_file():  # another process sealed it while this one waited
                return LoggedPackage(package, int(json.loads(index_path.read_text())["leaf_index"]))
            self.log.refresh()
            self._finish_interrupted_seal()
            if index_path.is_file():  # it was the interrupted one
                return LoggedPackage(package, int(json.loads(index_path.read_text())["leaf_index"]))
            # the intent names the package and where the log ended: a crash after the append but
            # before the index is written is finished by the next seal, however many leaves
            # (custody, transitions) other processes appended in between
            write_atomic(self._intent_path, canonical_json({"package_id": package.package_id, "size": self.log.size}))
            index = self.log.append(package_leaf(package.package_id))
            write_atomic(index_path, canonical_json({"leaf_index": index}))
            self._intent_path.unlink()
        return LoggedPackage(package, index)

    @property
    def _intent_path(self) -> Path:
        return self.root / "log" / "seal-intent.json"

    def _finish_interrupted_seal(self) -> None:
        """Write the index of a package whose seal was interrupted after its leaf was appended."""
        if not self._intent_path.is_file():
            return
        intent = json.loads(self._intent_path.read_text())
        wanted = leaf_hash(package_leaf(intent["package_id"]))
        for index in range(int(intent["size"]), self.log.size):
            if self.log.leaf_hash(index) == wanted:
                write_atomic(self._index_path(intent["package_id"]), canonical_json({"leaf_index": index}))
                break
        self._intent_path.unlink()

    @contextlib.contextmanager
    def _sealing_lock(self) -> Iterator[None]:
        """Held across processes while one package is checked and logged, so two workers
        sealing the same package (a task delivered twice) log it once."""
        with (self.root / "log" / "seal.lock").open("a") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def package_ids(self) -> list[str]:
        """Every package sealed into the log, in no particular order."""
        return [path.name.removesuffix(".log.json") for path in (self.store.root / "packages").glob("*.log.json")]

    def leaf_index(self, package_id: str) -> int:
        path = self._index_path(package_id)
        if not path.is_file():
            raise KeyError(f"package {package_id} is not in the log")
        return int(json.loads(path.read_text())["leaf_index"])

    def _custody_path(self, package_id: str) -> Path:
        return self.store.root / "custody" / f"{package_id}.jsonl"

    def record_custody(
        self, package_id: str, *, actor: str, action: str, reason: str = "", at: datetime | None = None
    ) -> CustodyEvent:
        """Record a view, download, export, confirmation or rejection of a package.

        The event is appended to the log first (the durable, tamper-evident record), then to
        the package's custody file; a crash in between leaves the log the fuller of the two.
        """
        if action not in CUSTODY_ACTIONS:
            raise ValueError(f"action must be one of {sorted(CUSTODY_ACTIONS)}, but got {action!r}")
        if not actor:
            raise ValueError("actor must name who acted")
        self.leaf_index(package_id)  # raises KeyError for a package that was never logged
        when = (at or datetime.now(UTC)).isoformat(timespec="seconds")
        event = CustodyEvent(package_id, actor, action, when, reason, -1)
        with self._append_lock:
            index = self.log.append(canonical_json(event.to_json()))
        event = CustodyEvent(package_id, actor, action, when, reason, index)
        path = self._custody_path(package_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as f:
            f.write(canonical_json({**event.to_json(), "leaf_index": index}) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        return event

    def custody_report(self, package_id: str) -> list[CustodyEvent]:
        """Every custody event of a package, each checked against its leaf in the log."""
        path = self._custody_path(package_id)
        if not path.is_file():
            return []
        self.log.refresh()
        events = []
        for line in path.read_bytes().splitlines():
            record = json.loads(line)
            index = record.pop("leaf_index")
            if self.log.leaf_hash(index) != leaf_hash(canonical_json(record)):
                raise ValueError(f"custody record of leaf {index} for {package_id} does not match the log")
            events.append(
                CustodyEvent(
                    record["package_id"], record["actor"], record["action"], record["at"], record["reason"], index
                )
            )
        return events

    def append_record(self, record: Mapping[str, Any]) -> int:
        """Append another part's signed record (a case transition, say) to the log; returns its leaf index.

        The record is logged as its canonical JSON, so anyone holding the record can find and
        prove its leaf; its `type` must name it and may not pose as a package or custody leaf.
        """
        kind = record.get("type")
        if not isinstance(kind, str) or not kind or kind.startswith("evidence."):
            raise ValueError(f"a logged record needs its own 'type' (not evidence.*), but got {kind!r}")
        data = canonical_json(record)
        with self._append_lock:
            index = self.log.append(data)
            # kept beside the log, which holds only hashes, so that a record whose copy elsewhere
            # (a case database row) is later deleted can still be found and named
            with (self.root / "log" / "records.jsonl").open("ab") as f:
                f.write(canonical_json({"leaf_index": index, "record": record}) + b"\n")
                f.flush()
                os.fsync(f.fileno())
        return index

    def records(self, kind: str) -> list[tuple[int, dict[str, Any]]]:
        """Every logged record of `kind` with its leaf index, each checked against its leaf."""
        path = self.root / "log" / "records.jsonl"
        if not path.is_file():
            return []
        self.log.refresh()
        found = []
        for line in path.read_bytes().splitlines():
            entry = json.loads(line)
            index, record = int(entry["leaf_index"]), entry["record"]
            if index >= self.log.size or self.log.leaf_hash(index) != leaf_hash(canonical_json(record)):
                raise ValueError(f"{path}: the record of leaf {index} does not match the log")
            if record.get("type") == kind:
                found.append((index, record))
        return found

    def timestamp_authority(self) -> tuple[TimestampAuthority, bytes]:
        """The authority that stamps checkpoints and the PEM roots its tokens chain to.

        A configured URL (a notary's TSA) with its roots; otherwise the local authority kept
        beside the signing keys, made on first use.
        """
        if self._authority is None:
            if self._tsa_url is not None and self._tsa_roots is not None:
                self._authority = HttpTimestampAuthority(self._tsa_url)
                self._authority_roots = Path(self._tsa_roots).read_bytes()
            else:
                local = LocalTimestampAuthority.open_or_create(self._key_folder / "tsa")
                self._authority, self._authority_roots = local, local.certificates_pem()
        return self._authority, self._authority_roots

    def publish_checkpoint(self, at: datetime | None = None) -> StampedCheckpoint:
        """Sign a checkpoint of the log as it is now, have it time-stamped (RFC 3161) and keep it.

        Published checkpoints live in `checkpoints/` under the root, one per tree size: when
        the log has not grown since the last one, that one is returned instead.
        """
        latest = self.latest_checkpoint()
        if latest is not None and latest.checkpoint.tree_size == self.log.size:
            return latest
        checkpoint = self.checkpoint(at)
        authority, roots = self.timestamp_authority()
        token = stamp(authority, canonical_json(checkpoint.body))
        stamped = StampedCheckpoint(checkpoint, token, roots)
        folder = self.root / "checkpoints"
        folder.mkdir(exist_ok=True)
        write_atomic(folder / f"{checkpoint.tree_size:012d}.json", canonical_json(stamped.to_json()))
        return stamped

    def latest_checkpoint(self) -> StampedCheckpoint | None:
        """The published checkpoint of the largest tree, if any has been published."""
        paths = sorted((self.root / "checkpoints").glob("*.json"))
        return StampedCheckpoint.from_json(json.loads(paths[-1].read_bytes())) if paths else None

    def checkpoint_covering(self, leaf_index: int) -> StampedCheckpoint:
        """The latest published checkpoint, or a newly published one if it does not cover the leaf yet."""
        latest = self.latest_checkpoint()
        if latest is not None and latest.checkpoint.tree_size > leaf_index:
            return latest
        return self.publish_checkpoint()

    def checkpoint(self, at: datetime | None = None) -> Checkpoint:
        """A signed statement of the log's current size and root."""
        self.log.refresh()
        body = {
            "format": CHECKPOINT_FORMAT,
            "origin": self.origin,
            "tree_size": self.log.size,
            "root": self.log.root().hex(),
            "time": (at or datetime.now(UTC)).isoformat(timespec="seconds"),
        }
        return Checkpoint(body, self.keys.sign(canonical_json(body)))

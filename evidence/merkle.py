"""The transparency log's append-only Merkle tree, hashed as RFC 6962 / RFC 9162 say.

Leaves are hashed as SHA-256(0x00 || data), interior nodes as SHA-256(0x01 || left || right),
and a tree of n leaves splits at the largest power of two below n (RFC 6962 §2.1), so
roots and proofs interoperate with Certificate Transparency and transparency-dev tooling.

Proof verification follows RFC 9162 §2.1.3.2 and §2.1.4.2. A proof binds a leaf (or an
old root) to a root; it does not on its own bind the tree size: two sizes can give the
same proof shape for one leaf, which is why a log publishes size and root together in a
signed checkpoint and verifiers take both from there.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from io import FileIO
from pathlib import Path
from types import TracebackType

from evidence.errors import EvidenceError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

# The hash of leaves [start, start + size) of some tree.
_RangeHash = Callable[[int, int], bytes]


class LogFileError(EvidenceError):
    """The log's file cannot be read or written, or does not hold whole leaf-hash records."""


def leaf_hash(data: bytes) -> bytes:
    """The RFC 6962 hash of one log entry: SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 6962 hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash (MTH) of a list of leaf hashes; SHA-256("") for none."""
    _check_leaf_hashes(leaf_hashes)
    return _sequence_range_hash(leaf_hashes)(0, len(leaf_hashes))


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The audit path (PATH, RFC 6962 §2.1.1) of leaf `index` in the tree of `leaf_hashes`."""
    _check_leaf_hashes(leaf_hashes)
    _check_index(index, len(leaf_hashes))
    return _path(index, len(leaf_hashes), _sequence_range_hash(leaf_hashes))


def consistency_proof(old_size: int, new_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The proof (PROOF, RFC 6962 §2.1.2) that the tree of `old_size` leaves is a prefix of `new_size`'s."""
    _check_leaf_hashes(leaf_hashes)
    _check_sizes(old_size, new_size, len(leaf_hashes))
    return _consistency(old_size, new_size, _sequence_range_hash(leaf_hashes))


def verify_inclusion(leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether `proof` shows `leaf_hash` at `index` in the tree of `tree_size` leaves with `root`.

    RFC 9162 §2.1.3.2. A bad proof, an index past the tree or a proof hash of the wrong
    length gives False; a negative index or size, or a leaf hash or root that is not a
    SHA-256 digest, is a malformed call and raises ValueError.
    """
    _check_digest("leaf_hash", leaf_hash)
    _check_digest("root", root)
    _check_non_negative("index", index)
    _check_non_negative("tree_size", tree_size)
    if index >= tree_size:
        return False
    fn, sn = index, tree_size - 1
    r = bytes(leaf_hash)
    for p in proof:
        if sn == 0 or len(p) != HASH_SIZE:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """Whether `proof` shows the tree (`old_size`, `old_root`) is a prefix of (`new_size`, `new_root`).

    RFC 9162 §2.1.4.2 for 0 < old_size < new_size. Equal sizes need an empty proof and
    equal roots; an old size of 0 needs an empty proof and the empty tree's root. Bad
    proofs and an old size above the new give False; negative sizes, or roots that are
    not SHA-256 digests, raise ValueError.
    """
    _check_digest("old_root", old_root)
    _check_digest("new_root", new_root)
    _check_non_negative("old_size", old_size)
    _check_non_negative("new_size", new_size)
    if old_size > new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof or any(len(c) != HASH_SIZE for c in proof):
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class MerkleLog:
    """An append-only log of leaf hashes, kept in a file of 32-byte records and in memory.

    Every complete, aligned subtree's hash is kept (level k holds the hashes of the
    2^k-leaf subtrees), updated on append, so roots and proofs for any past size cost
    O(log n) hashes. With `path=None` the log lives in memory only.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path = None if path is None else Path(path)
        # _levels[k] is the concatenation of the hashes of complete 2^k-leaf subtrees, left to right.
        self._levels: list[bytearray] = [bytearray()]
        self._file: FileIO | None = None
        if self._path is not None:
            stored = self._read_records(self._path)
            self._add(stored[i : i + HASH_SIZE] for i in range(0, len(stored), HASH_SIZE))
            self._file = self._open_for_append(self._path)

    @property
    def path(self) -> Path | None:
        """The file the log is kept in, or None for a log in memory."""
        return self._path

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return len(self._levels[0]) // HASH_SIZE

    def append(self, data: bytes) -> int:
        """Append one entry, durably (fsync) when the log has a file; returns its leaf index."""
        return self.append_many([data]).start

    def append_many(self, entries: Iterable[bytes]) -> range:
        """Append entries in order with one write and one fsync; returns their leaf indices."""
        hashes = [leaf_hash(data) for data in entries]
        if self._path is None:
            start = self.size
            self._add(hashes)
            return range(start, start + len(hashes))
        if self._file is None:
            raise LogFileError(f"{self._path}: the log is closed")
        try:
            # Several processes may append to one log (camera workers, the API, the command
            # line): an exclusive lock, then the leaves others appended meanwhile, then ours.
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
            try:
                self._catch_up()
                start = self.size
                self._file.write(b"".join(hashes))
                os.fsync(self._file.fileno())
            finally:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        except OSError as e:
            raise LogFileError(f"{self._path}: cannot append {len(hashes)} leaf hashes") from e
        self._add(hashes)
        return range(start, start + len(hashes))

    def refresh(self) -> int:
        """Take in leaves other processes appended to the log's file; returns the new size."""
        if self._path is not None:
            self._catch_up()
        return self.size

    def _catch_up(self) -> None:
        assert self._path is not None
        known = self.size * HASH_SIZE
        with open(self._path, "rb") as f:
            f.seek(known)
            more = f.read()
        whole = len(more) - len(more) % HASH_SIZE  # a record another process is writing right now waits
        self._add(more[i : i + HASH_SIZE] for i in range(0, whole, HASH_SIZE))

    def leaf_hash(self, index: int) -> bytes:
        """The hash of leaf `index`."""
        _check_index(index, self.size)
        return self._node(0, index)

    def root(self, size: int | None = None) -> bytes:
        """The root of the tree of the first `size` leaves (default: all of them)."""
        size = self._size_or_current("size", size)
        return self._range_hash(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The audit path of leaf `index` in the tree of the first `size` leaves (default: all)."""
        size = self._size_or_current("size", size)
        _check_index(index, size)
        return _path(index, size, self._range_hash)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The proof that the tree of `old_size` leaves is a prefix of that of `new_size` (default: all)."""
        new_size = self._size_or_current("new_size", new_size)
        _check_sizes(old_size, new_size, self.size)
        return _consistency(old_size, new_size, self._range_hash)

    def close(self) -> None:
        """Close the log's file; appending afterwards is an error, reading still works."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> MerkleLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MerkleLog(path={self._path!r}, size={self.size})"

    def _add(self, hashes: Iterable[bytes]) -> None:
        levels = self._levels
        for h in hashes:
            levels[0] += h
            level, count = 0, len(levels[0]) // HASH_SIZE
            # An even count means the node just added completed a pair: hash it into its parent.
            while count % 2 == 0:
                pair = bytes(levels[level][-2 * HASH_SIZE :])
                level += 1
                if level == len(levels):
                    levels.append(bytearray())
                levels[level] += node_hash(pair[:HASH_SIZE], pair[HASH_SIZE:])
                count = len(levels[level]) // HASH_SIZE

    def _node(self, level: int, index: int) -> bytes:
        offset = index * HASH_SIZE
        return bytes(self._levels[level][offset : offset + HASH_SIZE])

    def _range_hash(self, start: int, size: int) -> bytes:
        if size == 0:
            return EMPTY_ROOT
        if size & (size - 1) == 0 and start % size == 0:
            return self._node(size.bit_length() - 1, start // size)
        k = _split(size)
        return node_hash(self._range_hash(start, k), self._range_hash(start + k, size - k))

    def _size_or_current(self, name: str, size: int | None) -> int:
        if size is None:
            return self.size
        _check_non_negative(name, size)
        if size > self.size:
            raise ValueError(f"{name} must be at most the log size {self.size}, got {size}")
        return size

    @staticmethod
    def _read_records(path: Path) -> bytes:
        try:
            stored = path.read_bytes()
        except FileNotFoundError:
            return b""
        except OSError as e:
            raise LogFileError(f"{path}: cannot read the log") from e
        partial = len(stored) % HASH_SIZE
        if partial:
            offset = len(stored) - partial
            raise LogFileError(
                f"{path}: truncated record at byte offset {offset}: {partial} of {HASH_SIZE} bytes "
                f"after {offset // HASH_SIZE} whole leaf hashes; the log was cut mid-write and needs repair"
            )
        return stored

    @staticmethod
    def _open_for_append(path: Path) -> FileIO:
        created = not path.exists()
        try:
            file = open(path, "ab", buffering=0)  # noqa: SIM115 - held open for the log's lifetime
            if created:
                # Make the new file's directory entry durable too.
                dir_fd = os.open(path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        except OSError as e:
            raise LogFileError(f"{path}: cannot open the log for appending") from e
        return file


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): where RFC 6962 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def _path(index: int, size: int, range_hash: _RangeHash) -> list[bytes]:
    # PATH(m, D[n]) unrolled: siblings are found root-down, and the proof lists them leaf-up.
    siblings = []
    start = 0
    while size > 1:
        k = _split(size)
        if index < k:
            siblings.append(range_hash(start + k, size - k))
            size = k
        else:
            siblings.append(range_hash(start, k))
            index -= k
            start += k
            size -= k
    siblings.reverse()
    return siblings


def _consistency(old_size: int, new_size: int, range_hash: _RangeHash) -> list[bytes]:
    # SUBPROOF(m, D[n], true) unrolled, collected root-down and returned leaf-up.
    if old_size in (0, new_size):
        return []
    nodes = []
    m, n, start, whole_old_tree = old_size, new_size, 0, True
    while m != n:
        k = _split(n)
        if m <= k:
            nodes.append(range_hash(start + k, n - k))
            n = k
        else:
            nodes.append(range_hash(start, k))
            m -= k
            start += k
            n -= k
            whole_old_tree = False
    if not whole_old_tree:
        nodes.append(range_hash(start, m))
    nodes.reverse()
    return nodes


def _sequence_range_hash(leaf_hashes: Sequence[bytes]) -> _RangeHash:
    def range_hash(start: int, size: int) -> bytes:
        if size == 0:
            return EMPTY_ROOT
        if size == 1:
            return bytes(leaf_hashes[start])
        k = _split(size)
        return node_hash(range_hash(start, k), range_hash(start + k, size - k))

    return range_hash


def _check_digest(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ValueError(f"{name} must be a {HASH_SIZE}-byte SHA-256 digest, got {len(value)} bytes")


def _check_leaf_hashes(leaf_hashes: Sequence[bytes]) -> None:
    for i, h in enumerate(leaf_hashes):
        if len(h) != HASH_SIZE:
            raise ValueError(f"leaf_hashes[{i}] must be a {HASH_SIZE}-byte SHA-256 digest, got {len(h)} bytes")


def _check_non_negative(name: str, value: int) -> None:
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _check_index(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise ValueError(f"index must be in [0, {size}) for a tree of {size} leaves, got {index}")


def _check_sizes(old_size: int, new_size: int, available: int) -> None:
    _check_non_negative("old_size", old_size)
    _check_non_negative("new_size", new_size)
    if new_size > available:
        raise ValueError(f"new_size must be at most {available}, the leaves available, got {new_size}")
    if old_size > new_size:
        raise ValueError(f"old_size must be at most new_size {new_size}, got {old_size}")

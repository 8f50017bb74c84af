"""Ed25519 signing keys for manifests and checkpoints, with rotation.

A key ring is a folder kept outside the evidence store, readable by its owner only: one
`<key id>.key` (PKCS#8 PEM private key, mode 0600) per key ever made, its `<key id>.pub`
(hex of the raw 32-byte public key), and `active` naming the key that signs now.
Rotating makes a new active key and keeps the old ones, so every signature still verifies
against the key id it names. A key id is the first 16 hex digits of the SHA-256 of the
raw public key.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from evidence.errors import EvidenceError

logger = logging.getLogger(__name__)


class SigningKeyError(EvidenceError):
    """A key ring or key cannot be used: missing, unreadable, too widely readable."""


@dataclass(frozen=True, slots=True)
class Signature:
    key_id: str
    value: bytes  # 64 bytes

    def to_json(self) -> dict[str, str]:
        return {"alg": "Ed25519", "key_id": self.key_id, "signature": self.value.hex()}


def read_private_key(path: Path, error: type[EvidenceError], what: str) -> PrivateKeyTypes:
    """A PEM private key kept only for its owner (mode 0600); anything else raises `error`."""
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise error(f"{path}: private key is readable by others (mode {mode:o}); chmod 600 it")
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as e:
        raise error(f"{path}: cannot read {what}: {e}") from e
    except ValueError as e:
        raise error(f"{path}: not a PEM private key: {e}") from e


def key_id_of(public_key: bytes) -> str:
    if len(public_key) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, but got {len(public_key)}")
    return hashlib.sha256(public_key).hexdigest()[:16]


def verify_signature(public_key: bytes, data: bytes, signature: bytes) -> bool:
    """Whether `signature` is `public_key`'s Ed25519 signature of `data`."""
    if len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


class KeyRing:
    """The signing keys of one engine or device, in a folder of their own."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        active = self.folder / "active"
        if not active.is_file():
            raise SigningKeyError(f"{self.folder}: not a key ring (no 'active' file); create one with KeyRing.create")
        self.active_id = active.read_text(encoding="ascii").strip()
        self._private = self._load(self.active_id)

    @classmethod
    def open_or_create(cls, folder: Path) -> KeyRing:
        """The key ring in `folder`, made with a first key when the folder holds none."""
        folder = Path(folder)
        if not (folder / "active").is_file():
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(folder, 0o700)
            cls._add_key(folder)
            logger.info("created a signing key ring in %s", folder)
        return cls(folder)

    @staticmethod
    def _add_key(folder: Path) -> str:
        key = Ed25519PrivateKey.generate()
        key_id = key_id_of(_raw_public(key))
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_private(folder / f"{key_id}.key", pem)
        (folder / f"{key_id}.pub").write_text(_raw_public(key).hex() + "\n", encoding="ascii")
        tmp = folder / ".active.tmp"
        tmp.write_text(key_id + "\n", encoding="ascii")
        os.replace(tmp, folder / "active")
        return key_id

    def rotate(self) -> str:
        """Make a new active key; earlier keys stay for verification. Returns the new key id."""
        self.active_id = self._add_key(self.folder)
        self._private = self._load(self.active_id)
        logger.info("rotated signing key in %s to %s", self.folder, self.active_id)
        return self.active_id

    def _load(self, key_id: str) -> Ed25519PrivateKey:
        path = self.folder / f"{key_id}.key"
        key = read_private_key(path, SigningKeyError, "signing key")
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{path}: not an Ed25519 key")
        return key

    def sign(self, data: bytes) -> Signature:
        return Signature(self.active_id, self._private.sign(data))

    def public_keys(self) -> dict[str, bytes]:
        """Every public key of the ring by key id, old ones included."""
        keys = {}
        for path in sorted(self.folder.glob("*.pub")):
            raw = bytes.fromhex(path.read_text(encoding="ascii").strip())
            if key_id_of(raw) != path.stem:
                raise SigningKeyError(f"{path}: public key does not match its key id")
            keys[path.stem] = raw
        return keys

    def verify(self, data: bytes, signature: Signature) -> bool:
        """Whether `signature` is a valid signature of `data` by the ring key it names."""
        public = self.public_keys().get(signature.key_id)
        return public is not None and verify_signature(public, data, signature.value)

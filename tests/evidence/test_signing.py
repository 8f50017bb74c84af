import stat

import pytest

from evidence.signing import KeyRing, Signature, SigningKeyError, key_id_of, verify_signature


def test_a_ring_is_made_once_with_private_keys_only_its_owner_can_read(tmp_path):
    ring = KeyRing.open_or_create(tmp_path / "keys")
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "keys" / f"{ring.active_id}.key").stat().st_mode) == 0o600
    again = KeyRing.open_or_create(tmp_path / "keys")
    assert again.active_id == ring.active_id


def test_signatures_verify_and_tampering_does_not(tmp_path):
    ring = KeyRing.open_or_create(tmp_path / "keys")
    signature = ring.sign(b"manifest bytes")
    assert ring.verify(b"manifest bytes", signature)
    assert not ring.verify(b"manifest bytez", signature)
    flipped = bytes([signature.value[0] ^ 1]) + signature.value[1:]
    assert not ring.verify(b"manifest bytes", Signature(signature.key_id, flipped))
    public = ring.public_keys()[signature.key_id]
    assert key_id_of(public) == signature.key_id
    assert verify_signature(public, b"manifest bytes", signature.value)
    assert not verify_signature(public, b"manifest bytes", signature.value[:10])


def test_old_signatures_still_verify_after_rotation(tmp_path):
    ring = KeyRing.open_or_create(tmp_path / "keys")
    old = ring.sign(b"before")
    new_id = ring.rotate()
    assert new_id != old.key_id
    new = ring.sign(b"after")
    assert new.key_id == new_id
    reopened = KeyRing(tmp_path / "keys")
    assert reopened.active_id == new_id
    assert reopened.verify(b"before", old) and reopened.verify(b"after", new)
    assert not reopened.verify(b"before", Signature(new_id, old.value))


def test_a_private_key_readable_by_others_is_refused(tmp_path):
    ring = KeyRing.open_or_create(tmp_path / "keys")
    (tmp_path / "keys" / f"{ring.active_id}.key").chmod(0o644)
    with pytest.raises(SigningKeyError, match="readable by others"):
        KeyRing(tmp_path / "keys")


def test_a_folder_that_is_no_ring_says_so(tmp_path):
    with pytest.raises(SigningKeyError, match="not a key ring"):
        KeyRing(tmp_path)

import hashlib
import os

import pytest

from evidence.store import ContentStore, StoreError, write_atomic


def test_objects_are_named_by_their_hash_and_read_back_checked(tmp_path):
    store = ContentStore(tmp_path)
    digest = store.put(b"keyframe")
    assert digest == hashlib.sha256(b"keyframe").hexdigest()
    assert digest in store
    assert store.get(digest) == b"keyframe"
    assert store.path_of(digest).parent.name == digest[:2]


def test_writing_the_same_bytes_twice_changes_nothing(tmp_path):
    store = ContentStore(tmp_path)
    first = store.put(b"clip")
    mtime = store.path_of(first).stat().st_mtime_ns
    assert store.put(b"clip") == first
    assert store.path_of(first).stat().st_mtime_ns == mtime


def test_an_altered_object_is_named_as_such(tmp_path):
    store = ContentStore(tmp_path)
    digest = store.put(b"original")
    path = store.path_of(digest)
    path.chmod(0o644)
    path.write_bytes(b"forged")
    with pytest.raises(StoreError, match="no longer matches its hash"):
        store.get(digest)


def test_a_missing_object_and_a_bad_digest_are_errors(tmp_path):
    store = ContentStore(tmp_path)
    with pytest.raises(StoreError, match="is not in the store"):
        store.get("0" * 64)
    with pytest.raises(ValueError, match="64 lowercase hex digits"):
        store.get("../../etc/passwd")


def test_an_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    target = tmp_path / "manifest.json"

    def crash(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        write_atomic(target, b"{}")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []

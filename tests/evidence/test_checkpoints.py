from datetime import UTC, datetime

import pytest

from evidence.checkpoints import read_checkpoint, verify_append_only, write_checkpoint
from evidence.vault import Checkpoint, Vault
from tests.evidence.test_bundle import finding, package_files

AT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@pytest.fixture
def vault(tmp_path):
    v = Vault(tmp_path / "evidence", tmp_path / "keys")
    yield v
    v.close()


def failed(checks):
    return [c.name for c in checks if not c.ok]


def test_a_later_checkpoint_of_a_grown_log_is_consistent(vault, tmp_path):
    vault.seal(finding(), package_files(b"1"))
    old = vault.checkpoint(AT)
    vault.seal(finding("fume"), package_files(b"2"))
    vault.record_custody(vault.seal(finding(), package_files(b"1")).package.package_id, actor="a", action="view")
    new = vault.checkpoint(AT)
    proof = vault.log.consistency_proof(old.tree_size, new.tree_size)
    assert failed(verify_append_only(old, new, proof, vault.keys.public_keys())) == []


def test_checkpoint_files_round_trip(vault, tmp_path):
    vault.seal(finding(), package_files(b"1"))
    path = write_checkpoint(vault.checkpoint(AT), tmp_path / "cp.json", vault.keys.public_keys())
    checkpoint, keys = read_checkpoint(path)
    assert checkpoint.tree_size == 1 and keys == vault.keys.public_keys()
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a checkpoint file"):
        read_checkpoint(tmp_path / "bad.json")


def test_a_rewritten_history_is_caught(vault, tmp_path):
    vault.seal(finding(), package_files(b"1"))
    vault.seal(finding("fume"), package_files(b"2"))
    old = vault.checkpoint(AT)
    # another log that starts differently but reaches the same size and more
    other = Vault(tmp_path / "other", tmp_path / "other-keys")
    other.seal(finding("construction"), package_files(b"x"))
    other.seal(finding("fume"), package_files(b"2"))
    other.seal(finding(), package_files(b"3"))
    forged = other.checkpoint(AT)
    proof = other.log.consistency_proof(old.tree_size, forged.tree_size)
    keys = {**vault.keys.public_keys(), **other.keys.public_keys()}
    assert failed(verify_append_only(old, forged, proof, keys)) == ["consistency proof"]
    other.close()


def test_a_replayed_older_checkpoint_as_the_new_one_is_caught(vault):
    vault.seal(finding(), package_files(b"1"))
    older = vault.checkpoint(AT)
    vault.seal(finding("fume"), package_files(b"2"))
    newer = vault.checkpoint(AT)
    assert set(failed(verify_append_only(newer, older, [], vault.keys.public_keys()))) == {
        "order",
        "consistency proof",
    }


def test_an_unsigned_or_forged_checkpoint_is_caught(vault):
    vault.seal(finding(), package_files(b"1"))
    good = vault.checkpoint(AT)
    forged = Checkpoint({**good.body, "root": "00" * 32}, good.signature)
    assert "new checkpoint signature" in failed(verify_append_only(good, forged, [], vault.keys.public_keys()))

import json
from datetime import UTC, datetime

import pytest

from evidence.vault import Vault
from tests.evidence.test_bundle import finding, package_files


@pytest.fixture
def vault(tmp_path):
    v = Vault(tmp_path / "evidence", tmp_path / "keys")
    yield v
    v.close()


def test_custody_events_are_log_leaves_and_make_a_report(vault):
    package_id = vault.seal(finding(), package_files(b"c")).package.package_id
    at = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    vault.record_custody(package_id, actor="officer-7", action="view", at=at)
    vault.record_custody(package_id, actor="officer-7", action="confirm", reason="stall on sidewalk", at=at)
    report = vault.custody_report(package_id)
    assert [(e.actor, e.action, e.reason) for e in report] == [
        ("officer-7", "view", ""),
        ("officer-7", "confirm", "stall on sidewalk"),
    ]
    assert [e.leaf_index for e in report] == [1, 2]  # after the package's own leaf
    assert vault.log.size == 3


def test_a_rewritten_custody_record_no_longer_matches_the_log(vault):
    package_id = vault.seal(finding(), package_files(b"d")).package.package_id
    vault.record_custody(package_id, actor="officer-7", action="reject", reason="steam")
    path = vault.store.root / "custody" / f"{package_id}.jsonl"
    record = json.loads(path.read_text())
    record["reason"] = "permitted activity"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(ValueError, match="does not match the log"):
        vault.custody_report(package_id)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"actor": "x", "action": "delete"}, ValueError, "action must be one of"),
        ({"actor": "", "action": "view"}, ValueError, "actor must name who acted"),
    ],
)
def test_bad_custody_events_are_refused(vault, kwargs, error, message):
    package_id = vault.seal(finding(), package_files(b"e")).package.package_id
    with pytest.raises(error, match=message):
        vault.record_custody(package_id, **kwargs)


def test_custody_of_an_unknown_package_is_refused(vault):
    with pytest.raises(KeyError):
        vault.record_custody("ab" * 32, actor="officer-7", action="view")


def test_two_processes_on_one_vault_get_distinct_leaves(tmp_path):
    from evidence.merkle import leaf_hash

    # two vaults on one root stand for two processes (a camera worker and the command line)
    first = Vault(tmp_path / "evidence", tmp_path / "keys")
    second = Vault(tmp_path / "evidence", tmp_path / "keys")
    a = first.append_record({"type": "test.record", "n": 1})
    b = second.append_record({"type": "test.record", "n": 2})
    c = first.append_record({"type": "test.record", "n": 3})
    assert (a, b, c) == (0, 1, 2)
    assert first.checkpoint().body["root"] == second.checkpoint().body["root"]
    assert second.log.leaf_hash(2) == leaf_hash(b'{"n":3,"type":"test.record"}')
    first.close()
    second.close()

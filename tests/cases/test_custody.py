"""Custody: confirmations, rejections and exports are recorded in the vault's log and in the database."""

from __future__ import annotations

from datetime import timedelta

from cases.casefile import export_case_file
from cases.models import CustodyRecord
from tests.cases.conftest import seal_finding


def test_confirming_records_custody_of_every_package_of_the_case(casebook, vault, clock):
    first = seal_finding(vault, started_at=clock.now)
    second = seal_finding(vault, started_at=clock.now + timedelta(minutes=30))
    number = casebook.file_package(first).case_number
    casebook.file_package(second)
    casebook.apply(number, "confirm", actor="li", reason="stall on the sidewalk, plainly visible")
    for package in (first, second):
        logged = vault.custody_report(package)  # each checked against its Merkle leaf
        stored = casebook.custody(package)
        assert [(e.actor, e.action, e.reason) for e in logged] == [
            ("li", "confirm", "stall on the sidewalk, plainly visible")
        ]
        assert [(r.actor, r.action, r.leaf_index) for r in stored] == [("li", "confirm", logged[0].leaf_index)]
        assert stored[0].case_id is not None and stored[0].at == clock.now


def test_a_rejection_records_its_reason_code(casebook, vault, clock):
    package = seal_finding(vault, started_at=clock.now)
    number = casebook.file_package(package).case_number
    casebook.apply(number, "reject", actor="wang", reason_code="steam")
    assert [(r.action, r.reason) for r in casebook.custody(package)] == [("reject", "steam")]


def test_a_case_file_export_is_in_the_custody_records(casebook, vault, clock, tmp_path):
    package = seal_finding(vault, started_at=clock.now)
    number = casebook.file_package(package).case_number
    export_case_file(casebook, number, tmp_path / "file", actor="chen")
    assert [(r.actor, r.action) for r in casebook.custody(package)] == [("chen", "export")]


def test_heal_copies_custody_events_only_the_vault_has(casebook, vault, clock):
    package = seal_finding(vault, started_at=clock.now)
    casebook.file_package(package)
    vault.record_custody(package, actor="li", action="view", reason="checking the plume")  # a crash before the DB
    assert casebook.custody(package) == []
    casebook.heal()
    assert [(r.actor, r.action) for r in casebook.custody(package)] == [("li", "view")]
    casebook.heal()
    with casebook.db.session() as s:
        assert s.query(CustodyRecord).count() == 1


def test_a_custody_event_copied_twice_is_stored_once(casebook, vault, clock):
    package = seal_finding(vault, started_at=clock.now)
    casebook.file_package(package)
    event = vault.record_custody(package, actor="li", action="view")
    casebook.heal()  # copies it in
    with casebook.db.session() as s:
        casebook._store_custody(s, event)  # the writer that recorded it arrives second
    assert len(casebook.custody(package)) == 1


def test_heal_records_a_confirmation_whose_custody_a_crash_lost(casebook, vault, clock, monkeypatch):
    package = seal_finding(vault, started_at=clock.now)
    number = casebook.file_package(package).case_number
    monkeypatch.setattr(type(casebook), "record_custody", lambda *a, **k: None)  # the process dies here
    casebook.apply(number, "confirm", actor="li", reason="seen")
    monkeypatch.undo()
    assert casebook.custody(package) == [] and vault.custody_report(package) == []
    casebook.heal()
    assert [(r.actor, r.action, r.reason) for r in casebook.custody(package)] == [("li", "confirm", "seen")]
    assert [(e.actor, e.action) for e in vault.custody_report(package)] == [("li", "confirm")]
    casebook.heal()
    assert len(casebook.custody(package)) == 1

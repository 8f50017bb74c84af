"""Double random, one public inspections over the database: targets drawn from the premises
registry by stratum and inspectors from the pool, the commitment logged before the draw, the
seed kept inside until publication, recent visits excluded, the fume checklist checked item by
item and judged, and a violation opening a case that names the premises."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from cases import draws
from cases.casebook import Casebook
from cases.errors import PermissionDeniedError
from cases.inspections import (
    CHECKLIST,
    ChecklistError,
    InspectionConflictError,
    InspectionInputError,
    draw_record,
    judge,
    list_inspections,
    make_draw,
    public_draw,
    public_draws,
    publish_draw,
    record_result,
    register_inspector,
    seal_photos,
    validate_checklist,
    verify_published,
)
from cases.models import Case, Inspection, InspectionDraw, Party
from evidence.package import PackageFile, load_package
from tests.cases.conftest import Clock

STREETS = ("文化街道", "东湖街道")
GRADES = ("A", "B", "C")


def add_registry(casebook: Casebook, n: int = 12) -> list[str]:
    """n premises over two streets and three grades (the last one ungraded), and one party outside the registry."""
    codes = []
    with casebook.db.session() as s:
        for i in range(n):
            code = f"R-{i:03d}"
            grade = GRADES[i % 3] if i < n - 1 else None
            s.add(
                Party(
                    kind="restaurant",
                    name=f"餐馆 {i}",
                    code=code,
                    street=STREETS[i % 2],
                    risk_grade=grade,
                    lat=30.25 + i / 1000,
                    lon=120.16,
                    created_at=casebook.clock(),
                )
            )
            codes.append(code)
        s.add(Party(kind="person", name="not premises", created_at=casebook.clock()))
    return codes


def add_pool(casebook: Casebook) -> None:
    """Six inspectors from streets with no premises; E-01 records as officer li, E-02 as officer wang."""
    for k in range(6):
        username = {1: "li", 2: "wang"}.get(k)
        register_inspector(
            casebook.db,
            inspector_id=f"E-{k:02d}",
            name=f"inspector {k}",
            street=("城南街道", "西湖街道", "北山街道")[k % 3],
            username=username,
            at=casebook.clock(),
        )


@pytest.fixture
def book(casebook: Casebook) -> Casebook:
    add_registry(casebook)
    add_pool(casebook)
    return casebook


def answers(fail: tuple[str, ...] = (), na: tuple[str, ...] = ()) -> dict[str, dict[str, str]]:
    """A complete checklist: every item passes except the `domain.item`s named."""
    return {
        d.key: {
            i.key: "fail" if f"{d.key}.{i.key}" in fail else "na" if f"{d.key}.{i.key}" in na else "pass"
            for i in d.items
        }
        for d in CHECKLIST
    }


def drawn(book: Casebook, clock: Clock, purpose: str = "2025 Q3 fume", **kwargs: Any) -> Any:
    spec = kwargs.pop("spec", draws.DrawSpec(targets=6, stratify_by=("grade",)))
    return make_draw(book.db, book.vault, purpose=purpose, spec=spec, by="chen", at=clock.now, **kwargs)


def photos(book: Casebook, clock: Clock, inspection_id: int, by: str = "chen") -> str:
    files = [PackageFile("01-IMG_0001.jpg", b"\xff\xd8jpeg of the purifier", "image/jpeg", "field-photo")]
    return seal_photos(book.db, book.vault, inspection_id=inspection_id, files=files, by=by, at=clock.now)


# --- draws ---------------------------------------------------------------------------------


def test_a_draw_takes_premises_of_the_registry_by_stratum_and_inspectors_from_other_streets(
    book: Casebook, clock: Clock
) -> None:
    record = drawn(book, clock)
    assert record.candidates == 12, "the party without a registry code is not a candidate"
    # 4 A, 4 B, 3 C, 1 ungraded: 6 of 12 by largest remainder, the tie of C and ungraded to C
    assert record.allocation == {"grade=A": 2, "grade=B": 2, "grade=C": 2, "grade=ungraded": 0}
    assert Counter(i.grade for i in record.inspections) == Counter({"A": 2, "B": 2, "C": 2})
    assert [i.state for i in record.inspections] == ["planned"] * 6
    for inspection in record.inspections:
        assert len(inspection.inspectors) == 2
    assert not hasattr(record, "seed")


def test_a_draw_can_be_narrowed_to_one_street_and_grade(book: Casebook, clock: Clock) -> None:
    record = drawn(book, clock, spec=draws.DrawSpec(targets=1), street="文化街道", grade="A")
    assert record.candidates == 2
    assert [i.premises for i in record.inspections] in (["R-000"], ["R-006"])


def test_the_commitment_is_logged_before_the_draw_is_computed(
    book: Casebook, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed: list[bool] = []
    real_draw = draws.draw

    def watched(seed: bytes, *args: Any, **kwargs: Any) -> draws.DrawResult:
        logged = {r["commitment"] for _, r in book.vault.records(draws.COMMITMENT_RECORD)}
        if seed != bytes(draws.SEED_BYTES):  # not the probe that checks the spec can be drawn at all
            computed.append(draws.commit(seed) in logged)
        return real_draw(seed, *args, **kwargs)

    monkeypatch.setattr(draws, "draw", watched)
    drawn(book, clock)
    assert computed == [True]


def test_the_seed_stays_inside_until_publication_and_the_published_draw_verifies(book: Casebook, clock: Clock) -> None:
    record = drawn(book, clock)
    with book.db.session() as s:
        seed = s.scalar(select(InspectionDraw.seed))
    assert seed is not None
    log_records = (book.vault.root / "log" / "records.jsonl").read_text()
    assert seed not in log_records and record.commitment in log_records
    assert public_draws(book.db) == []
    assert verify_published(book.db, book.vault, record.id) == [f"draw {record.id} (2025 Q3 fume) is not published"]

    clock.advance(days=20)
    published = publish_draw(book.db, book.vault, draw_id=record.id, by="chen", at=clock.now)
    assert published.commitment_leaf is not None and published.published_leaf is not None
    assert published.commitment_leaf < published.published_leaf
    page = public_draws(book.db)
    assert [d["id"] for d in page] == [record.id]
    assert page[0]["seed"] == seed and draws.commit(bytes.fromhex(seed)) == record.commitment
    assert draws.verify(public_draw(book.db, record.id)["document"]) == []
    assert verify_published(book.db, book.vault, record.id) == []
    again = publish_draw(book.db, book.vault, draw_id=record.id, by="chen", at=clock.now + timedelta(hours=1))
    assert again.published_leaf == published.published_leaf, "publishing twice logs nothing new"


def test_changing_a_drawn_inspection_shows_in_verification(book: Casebook, clock: Clock) -> None:
    record = drawn(book, clock)
    publish_draw(book.db, book.vault, draw_id=record.id, by="chen", at=clock.now)
    first = record.inspections[0]
    with book.db.session() as s:
        s.execute(update(Inspection).where(Inspection.id == first.id).values(inspectors=["E-00", "E-99"]))
    problems = verify_published(book.db, book.vault, record.id)
    assert problems == [
        f"premises {first.premises}: the stored inspection has inspectors ['E-00', 'E-99'], "
        f"the published draw {[r.id for r in first.inspectors]}"
    ]


def test_a_purpose_is_drawn_once_and_a_draw_that_cannot_be_made_logs_nothing(book: Casebook, clock: Clock) -> None:
    drawn(book, clock)
    with pytest.raises(InspectionConflictError, match="drawn already"):
        drawn(book, clock)
    size = book.vault.log.size
    with pytest.raises(draws.DrawError, match="13 targets were asked but there are only 12"):
        drawn(book, clock, purpose="too many", spec=draws.DrawSpec(targets=13))
    book.vault.log.refresh()
    assert book.vault.log.size == size
    with book.db.session() as s:
        assert s.scalar(select(InspectionDraw).where(InspectionDraw.purpose == "too many")) is None


def test_an_officer_cannot_draw_or_publish(book: Casebook, clock: Clock) -> None:
    with pytest.raises(PermissionDeniedError, match="needs the role head; 'li' is officer"):
        make_draw(book.db, book.vault, purpose="p", spec=draws.DrawSpec(targets=1), by="li", at=clock.now)
    record = drawn(book, clock)
    with pytest.raises(PermissionDeniedError):
        publish_draw(book.db, book.vault, draw_id=record.id, by="li", at=clock.now)


def test_a_draw_interrupted_after_its_commitment_is_finished_with_the_same_seed(
    book: Casebook, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_draw = draws.draw

    def crash(seed: bytes, *args: Any, **kwargs: Any) -> draws.DrawResult:
        if seed != bytes(draws.SEED_BYTES):
            raise KeyboardInterrupt("the process died")
        return real_draw(seed, *args, **kwargs)

    monkeypatch.setattr(draws, "draw", crash)
    with pytest.raises(KeyboardInterrupt):
        drawn(book, clock)
    monkeypatch.setattr(draws, "draw", real_draw)
    record = drawn(book, clock)
    assert len(book.vault.records(draws.COMMITMENT_RECORD)) == 1, "the commitment is logged once"
    assert len(record.inspections) == 6
    publish_draw(book.db, book.vault, draw_id=record.id, by="chen", at=clock.now)
    assert verify_published(book.db, book.vault, record.id) == []


def test_inspectors_are_not_drawn_for_premises_they_inspected_within_a_year(book: Casebook, clock: Clock) -> None:
    everything = draws.DrawSpec(targets=12)
    first = drawn(book, clock, purpose="first", spec=everything)
    for inspection in first.inspections:
        record_result(
            book.db, book, inspection_id=inspection.id, checklist=answers(), by="chen", at=clock.advance(minutes=1)
        )
    visited = {(i.premises, r.id) for i in first.inspections for r in i.inspectors}

    clock.advance(days=30)
    second = drawn(book, clock, purpose="second", spec=everything)
    with book.db.session() as s:
        pool = s.scalar(select(InspectionDraw.pool).where(InspectionDraw.id == second.id))
    assert pool is not None
    assert {(p, i["id"]) for i in pool for p in i["recent_premises"]} == visited
    assert visited.isdisjoint({(i.premises, r.id) for i in second.inspections for r in i.inspectors})

    clock.advance(days=366)
    later = drawn(book, clock, purpose="a year on", spec=everything)
    with book.db.session() as s:
        pool = s.scalar(select(InspectionDraw.pool).where(InspectionDraw.id == later.id))
    assert pool is not None and all(i["recent_premises"] == [] for i in pool)


# --- the checklist and results ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda c: c.update(smell={"ok": "pass"}), "unknown domain 'smell'"),
        (lambda c: c["purifier"].update(colour="pass"), "unknown item 'colour' of domain 'purifier'"),
        (lambda c: c["exhaust"].update(height_and_position="maybe"), "exhaust.height_and_position is 'maybe'"),
        (lambda c: c.pop("frontage"), "domain 'frontage' is missing (items: no_street_occupation, clean_frontage)"),
        (lambda c: c["operation"].pop("power_on"), "domain 'operation' does not answer power_on"),
        (lambda c: c.update(licences=["pass"]), "domain 'licences' maps items to answers, but got list"),
    ],
)
def test_a_checklist_names_what_is_wrong_with_it(change: Any, problem: str) -> None:
    checklist = answers()
    change(checklist)
    with pytest.raises(ChecklistError) as caught:
        validate_checklist(checklist)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(problem)


def test_every_problem_of_a_checklist_is_named_at_once() -> None:
    checklist = answers()
    checklist["smell"] = {}
    del checklist["monitoring"]["online"]
    with pytest.raises(ChecklistError) as caught:
        validate_checklist(checklist)
    assert len(caught.value.problems) == 2


@pytest.mark.parametrize(
    ("fail", "result"),
    [
        ((), "pass"),
        (("maintenance.cleaning_records",), "rectify"),
        (("licences.business_licence", "frontage.clean_frontage"), "rectify"),
        (("monitoring.online",), "rectify"),
        (("purifier.installed",), "violation"),
        (("operation.runs_while_cooking",), "violation"),
        (("exhaust.not_toward_residents", "frontage.clean_frontage"), "violation"),
    ],
)
def test_emission_failures_are_violations_and_other_failures_ask_for_rectification(
    fail: tuple[str, ...], result: str
) -> None:
    assert judge(validate_checklist(answers(fail))) == result


def test_items_that_do_not_apply_pass() -> None:
    assert judge(validate_checklist(answers(na=("monitoring.installed_where_required", "monitoring.online")))) == "pass"


def test_a_violation_opens_a_fume_case_naming_the_premises_with_the_checklist_and_photos(
    book: Casebook, clock: Clock
) -> None:
    inspection = drawn(book, clock).inspections[0]
    photo_package = photos(book, clock, inspection.id)
    clock.advance(minutes=5)
    done = record_result(
        book.db,
        book,
        inspection_id=inspection.id,
        checklist=answers(fail=("operation.power_on",)),
        note="净化器未通电",
        package_id=photo_package,
        by="chen",
        at=clock.now,
    )
    assert (done.state, done.result, done.package_id) == ("done", "violation", photo_package)
    assert done.case_number is not None
    with book.db.session() as s:
        case = s.scalar(
            select(Case)
            .where(Case.number == done.case_number)
            .options(selectinload(Case.party), selectinload(Case.evidence))
        )
        assert case is not None and case.party is not None
        assert (case.kind, case.party.code) == ("fume", inspection.premises)
        package_id = case.evidence[0].package_id
    package, files = load_package(book.vault.store, package_id)
    assert package.manifest["device"]["kind"] == "officer"
    assert package.manifest["violation"]["premises"] == inspection.premises
    assert sorted(files) == ["01-IMG_0001.jpg", "inspection-checklist.json"]
    checklist = json.loads(files["inspection-checklist.json"])
    assert checklist["result"] == "violation" and checklist["photos_package"] == photo_package
    assert checklist["failed"] == [
        {"domain": "operation", "item": "power_on", "zh": "运行：电源接通", "en": "Operation: Power on"}
    ]


def test_a_second_violation_of_the_premises_joins_its_open_fume_case(book: Casebook, clock: Clock) -> None:
    one = draws.DrawSpec(targets=1)
    first = drawn(book, clock, purpose="first", spec=one, street="东湖街道", grade="ungraded").inspections[0]
    failing = answers(fail=("purifier.installed",))
    number = record_result(book.db, book, inspection_id=first.id, checklist=failing, by="chen", at=clock.now)
    second = drawn(book, clock, purpose="second", spec=one, street="东湖街道", grade="ungraded").inspections[0]
    assert second.premises == first.premises
    again = record_result(
        book.db, book, inspection_id=second.id, checklist=failing, by="chen", at=clock.advance(hours=1)
    )
    assert again.case_number == number.case_number


def test_a_rectification_finding_opens_a_case_only_when_asked(book: Casebook, clock: Clock) -> None:
    first, second, third = drawn(book, clock).inspections[:3]
    lapse = answers(fail=("maintenance.cleaned_within_period",))
    quiet = record_result(book.db, book, inspection_id=first.id, checklist=lapse, by="chen", at=clock.now)
    assert (quiet.result, quiet.case_number) == ("rectify", None)
    opened = record_result(
        book.db, book, inspection_id=second.id, checklist=lapse, open_case=True, by="chen", at=clock.now
    )
    assert opened.case_number is not None
    with book.db.session() as s:
        assert s.scalar(select(Case.kind).where(Case.number == opened.case_number)) == "inspection"
    with pytest.raises(InspectionInputError, match="nothing to open a case for"):
        record_result(
            book.db, book, inspection_id=third.id, checklist=answers(), open_case=True, by="chen", at=clock.now
        )


def test_only_an_inspector_of_the_inspection_or_a_head_records_it_and_only_once(book: Casebook, clock: Clock) -> None:
    # 24 places for 6 inspectors at most 4 each: E-01 is always on some inspections and never on all
    record = drawn(book, clock, spec=draws.DrawSpec(targets=12, max_targets_per_inspector=4))
    mine = next(i for i in record.inspections if "E-01" in {r.id for r in i.inspectors})
    other = next(i for i in record.inspections if "E-01" not in {r.id for r in i.inspectors})
    with pytest.raises(PermissionDeniedError, match="'li' is not linked to an inspector"):
        record_result(book.db, book, inspection_id=other.id, checklist=answers(), by="li", at=clock.now)
    with pytest.raises(PermissionDeniedError, match="needs the role"):
        record_result(book.db, book, inspection_id=mine.id, checklist=answers(), by="zhao", at=clock.now)
    assert [i.id for i in list_inspections(book.db, assigned_to="li")] == sorted(
        i.id for i in record.inspections if "E-01" in {r.id for r in i.inspectors}
    )
    record_result(book.db, book, inspection_id=mine.id, checklist=answers(), by="li", at=clock.now)
    with pytest.raises(InspectionConflictError, match="recorded already"):
        record_result(book.db, book, inspection_id=mine.id, checklist=answers(), by="chen", at=clock.now)


def test_photos_of_one_inspection_cannot_be_given_to_another(book: Casebook, clock: Clock) -> None:
    first, second = drawn(book, clock).inspections[:2]
    package = photos(book, clock, first.id)
    with pytest.raises(InspectionInputError, match=f"sealed for inspection {first.id}, not {second.id}"):
        record_result(
            book.db, book, inspection_id=second.id, checklist=answers(), package_id=package, by="chen", at=clock.now
        )


def test_the_public_page_shows_results_only_once_recorded(book: Casebook, clock: Clock) -> None:
    record = drawn(book, clock)
    publish_draw(book.db, book.vault, draw_id=record.id, by="chen", at=clock.now)
    assert {t["result"] for t in public_draws(book.db)[0]["targets"]} == {None}
    inspection = record.inspections[0]
    record_result(book.db, book, inspection_id=inspection.id, checklist=answers(), by="chen", at=clock.now)
    targets = {t["premises_id"]: t for t in public_draws(book.db)[0]["targets"]}
    assert targets[inspection.premises]["result"] == "pass"
    assert targets[inspection.premises]["name"] == inspection.premises_name
    assert sum(t["result"] is None for t in targets.values()) == 5
    assert draw_record(book.db, record.id).inspections[0].result == "pass"


def test_a_case_opened_by_an_inspection_is_of_the_premises_even_without_coordinates(
    book: Casebook, clock: Clock
) -> None:
    inspection = drawn(book, clock).inspections[0]
    with book.db.session() as s:
        s.execute(update(Party).where(Party.code == inspection.premises).values(lat=None, lon=None))
    lapse = answers(fail=("frontage.clean_frontage",))
    done = record_result(
        book.db, book, inspection_id=inspection.id, checklist=lapse, open_case=True, by="chen", at=clock.now
    )
    assert done.case_number is not None
    with book.db.session() as s:
        case = s.scalar(select(Case).where(Case.number == done.case_number))
        assert case is not None and case.kind == "inspection" and case.party is not None
        assert case.party.code == inspection.premises


def test_heal_never_turns_an_inspections_photos_into_a_case(book: Casebook, clock: Clock) -> None:
    inspection = drawn(book, clock).inspections[0]
    package = photos(book, clock, inspection.id)
    assert book.heal() == []
    with book.db.session() as s:
        assert s.scalar(select(Case.id)) is None
    record_result(book.db, book, inspection_id=inspection.id, checklist=answers(), package_id=package, by="chen",
                  at=clock.now)  # fmt: skip
    assert package not in book.unfiled_packages(), "the inspection's record holds its photos"

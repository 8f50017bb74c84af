"""Verifiable "double random, one public" inspection draws: reproducible from the seed,
independent of input order, stratified as asked, conflicts excluded, unassignable targets
reported, tampering caught, the commitment logged before the publication, and fair.

An auditor's reimplementation of `nonsite.draw/1`, written from the module docstring with
nothing but hashlib and hmac (`auditor_draw`), must agree with `draw` on every input."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import itertools
import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases.draws import (
    ALGORITHM,
    PUBLISHED_RECORD,
    Candidate,
    DrawError,
    DrawResult,
    DrawSpec,
    Inspector,
    RandomStream,
    commit,
    commit_to_log,
    conflict,
    draw,
    inputs_digest,
    new_seed,
    publish_to_log,
    strata,
    to_public,
    verify,
    verify_against_log,
)
from evidence.vault import Vault

AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
STREETS = ("文化街道", "东湖街道", "城南街道", "西湖街道")
GRADES = ("A", "B", "C")


def seed(n: int) -> bytes:
    """A fixed seed per number, so every test draws the same way every run."""
    return hashlib.sha256(f"test seed {n}".encode()).digest()


def registry(n: int = 40) -> list[Candidate]:
    """n premises spread evenly over four streets and three grades."""
    return [Candidate(f"R-{i:03d}", STREETS[i % 4], GRADES[i % 3]) for i in range(n)]


def experts() -> list[Inspector]:
    """Ten inspectors: two per candidate street, two from a street with no candidates; some visited premises lately."""
    pool = []
    for k in range(10):
        street = STREETS[k // 2] if k < 8 else "北山街道"
        recent = frozenset({f"R-{k:03d}", f"R-{k + 20:03d}"}) if k % 3 == 0 else frozenset()
        pool.append(Inspector(f"E-{k:02d}", f"inspector {k}", street, recent))
    return pool


# --- an auditor's reimplementation, from the docstring of cases.draws only ----------------


def auditor_draw(seed_bytes: bytes, document: dict[str, Any], beacon: str | None = None) -> dict[str, Any]:
    spec = document["spec"]
    if beacon is None:
        key = seed_bytes
    else:
        key = hmac.new(seed_bytes, b"nonsite.draw/1/beacon\x00" + beacon.encode(), hashlib.sha256).digest()

    def words(label: str) -> Iterator[int]:
        counter = 0
        while True:
            block = hmac.new(key, label.encode() + b"\x00" + counter.to_bytes(8, "big"), hashlib.sha256).digest()
            for offset in range(0, 32, 8):
                yield int.from_bytes(block[offset : offset + 8], "big")
            counter += 1

    def below(stream: Iterator[int], n: int) -> int:
        for x in stream:
            if x < 2**64 - 2**64 % n:
                return x % n
        raise AssertionError("unreachable")

    def sample(stream: Iterator[int], items: Sequence[Any], k: int) -> list[Any]:
        a = list(items)
        for i in range(k):
            j = i + below(stream, len(a) - i)
            a[i], a[j] = a[j], a[i]
        return a[:k]

    candidates = sorted(document["candidates"], key=lambda c: c["premises_id"])
    pool = sorted(document["pool"], key=lambda i: i["id"])
    fields = spec["stratify_by"]
    groups: dict[tuple[str, ...], list[dict[str, str]]] = {}
    for c in candidates:
        groups.setdefault(tuple(c[f] for f in fields), []).append(c)
    order_of_strata = sorted(groups)
    label = {k: ",".join(f"{f}={v}" for f, v in zip(fields, k, strict=True)) or "all" for k in order_of_strata}
    if isinstance(spec["targets"], dict):
        allocation = {label[k]: spec["targets"].get(label[k], 0) for k in order_of_strata}
    else:
        t, total = spec["targets"], len(candidates)
        allocation = {label[k]: t * len(groups[k]) // total for k in order_of_strata}
        remainders = [(-(t * len(groups[k]) % total), position) for position, k in enumerate(order_of_strata)]
        for _, position in sorted(remainders)[: t - sum(allocation.values())]:
            allocation[label[order_of_strata[position]]] += 1

    targets = []
    for k in order_of_strata:
        targets += sample(words(f"nonsite.draw/1/targets/{label[k]}"), groups[k], allocation[label[k]])
    targets.sort(key=lambda c: c["premises_id"])

    def free(inspector: dict[str, Any], c: dict[str, str]) -> bool:
        return inspector["street"] != c["street"] and c["premises_id"] not in inspector["recent_premises"]

    order = sample(words("nonsite.draw/1/order"), targets, len(targets))
    order.sort(key=lambda c: sum(free(i, c) for i in pool))
    stream, load = words("nonsite.draw/1/inspectors"), Counter[str]()
    cap, m = spec["max_targets_per_inspector"], spec["inspectors_per_target"]
    assignments, unassigned = {}, []
    for c in order:
        eligible = [i for i in pool if free(i, c) and (cap is None or load[i["id"]] < cap)]
        if len(eligible) < m:
            unassigned.append(c["premises_id"])
            continue
        chosen = sorted(i["id"] for i in sample(stream, eligible, m))
        load.update(chosen)
        assignments[c["premises_id"]] = chosen
    return {"allocation": allocation, "assignments": assignments, "unassigned": sorted(unassigned)}


def summary(result: DrawResult) -> dict[str, Any]:
    return {
        "allocation": dict(result.allocation),
        "assignments": {p: list(ids) for p, ids in result.assignments},
        "unassigned": [p for p, _ in result.unassigned],
    }


# --- reproducibility and the stream --------------------------------------------------------


def test_the_same_seed_gives_the_same_draw() -> None:
    spec = DrawSpec(targets=5)
    assert to_public(draw(seed(1), spec, registry(), experts())) == to_public(
        draw(seed(1), spec, registry(), experts())
    )


def test_the_order_of_the_inputs_does_not_matter() -> None:
    spec = DrawSpec(targets=6, stratify_by=("grade",))
    candidates, pool = registry(), experts()
    shuffler = random.Random(7)
    shuffler.shuffle(candidates)
    shuffler.shuffle(pool)
    assert to_public(draw(seed(1), spec, candidates, pool)) == to_public(draw(seed(1), spec, registry(), experts()))


def test_a_different_seed_gives_a_different_draw() -> None:
    spec = DrawSpec(targets=5)
    first, second = draw(seed(1), spec, registry(), experts()), draw(seed(2), spec, registry(), experts())
    assert first.targets != second.targets


def test_a_beacon_changes_the_draw() -> None:
    spec = DrawSpec(targets=5)
    plain = draw(seed(1), spec, registry(), experts())
    mixed = draw(seed(1), spec, registry(), experts(), beacon="福彩3D 2026001: 4 7 1")
    assert plain.targets != mixed.targets


@pytest.mark.parametrize(
    "spec",
    [
        DrawSpec(targets=5),
        DrawSpec(targets=7, stratify_by=("grade",)),
        DrawSpec(targets=9, stratify_by=("street", "grade")),
        DrawSpec(targets={"grade=A": 3, "grade=C": 2}, stratify_by=("grade",)),
        DrawSpec(targets=12, inspectors_per_target=3, max_targets_per_inspector=3),
    ],
    ids=["plain", "by-grade", "by-street-and-grade", "per-stratum", "load-limited"],
)
@pytest.mark.parametrize("beacon", [None, "beacon 2026-03-02"])
def test_an_auditor_reimplementing_the_docstring_gets_the_same_draw(spec: DrawSpec, beacon: str | None) -> None:
    result = draw(seed(3), spec, registry(), experts(), beacon=beacon)
    assert summary(result) == auditor_draw(seed(3), to_public(result), beacon)


def test_below_rejects_the_words_that_would_bias_the_modulo(monkeypatch: pytest.MonkeyPatch) -> None:
    # 2**64 mod 3 == 1, so the word 2**64 - 1 would make 0 a little likelier than 1 and 2
    words = iter([2**64 - 1, 5])
    stream = RandomStream(seed(0), "test")
    monkeypatch.setattr(stream, "word", lambda: next(words))
    assert stream.below(3) == 2


def test_the_stream_is_hmac_sha256_of_the_label_and_a_counter() -> None:
    stream = RandomStream(seed(0), "nonsite.draw/1/order")
    expected = b"".join(
        hmac.new(seed(0), b"nonsite.draw/1/order\x00" + n.to_bytes(8, "big"), hashlib.sha256).digest() for n in (0, 1)
    )
    assert [stream.word() for _ in range(8)] == [int.from_bytes(expected[i : i + 8], "big") for i in range(0, 64, 8)]


# --- stratification --------------------------------------------------------------------------


def test_targets_per_stratum_are_drawn_from_their_strata() -> None:
    spec = DrawSpec(targets={"grade=A": 4, "grade=B": 2}, stratify_by=("grade",))
    result = draw(seed(4), spec, registry(), experts())
    grade = {c.premises_id: c.grade for c in registry()}
    assert Counter(grade[p] for p in result.targets) == {"A": 4, "B": 2}
    assert dict(result.allocation) == {"grade=A": 4, "grade=B": 2, "grade=C": 0}


def test_k_from_every_stratum_uses_the_labels_strata_names() -> None:
    labels = strata(registry(), ("street",))
    assert labels == {f"street={s}": 10 for s in sorted(STREETS)}
    result = draw(seed(5), DrawSpec(targets=dict.fromkeys(labels, 2), stratify_by=("street",)), registry(), experts())
    street = {c.premises_id: c.street for c in registry()}
    assert Counter(street[p] for p in result.targets) == dict.fromkeys(STREETS, 2)


@pytest.mark.parametrize(
    ("sizes", "targets", "allocation"),
    [
        ((10, 10, 10, 10), 8, (2, 2, 2, 2)),
        ((20, 10, 10), 8, (4, 2, 2)),
        ((5, 3, 2), 5, (3, 1, 1)),  # quotas 2.5, 1.5, 1.0: the tie on .5 goes to the earlier stratum
        ((1, 1, 1), 2, (1, 1, 0)),  # equal remainders: earlier strata first
        ((7, 2, 1), 3, (2, 1, 0)),  # quotas 2.1, 0.6, 0.3: largest remainder
        ((3,), 3, (3,)),
    ],
)
def test_an_int_of_targets_is_split_by_largest_remainder(
    sizes: tuple[int, ...], targets: int, allocation: tuple[int, ...]
) -> None:
    grades = [f"G{k}" for k in range(len(sizes))]
    candidates = [Candidate(f"P-{g}-{i}", "文化街道", g) for g, n in zip(grades, sizes, strict=True) for i in range(n)]
    pool = [Inspector(f"E-{k}", f"e{k}", "东湖街道") for k in range(3)]
    result = draw(seed(6), DrawSpec(targets=targets, stratify_by=("grade",)), candidates, pool)
    assert tuple(result.allocation.values()) == allocation
    assert len(result.targets) == targets


# --- refused draws ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: draw(seed(0), DrawSpec({"grade=A": 15}, ("grade",)), registry(), experts()),
            "stratum grade=A has 14 candidates but 15 targets were asked",
        ),
        (
            lambda: draw(seed(0), DrawSpec({"grade=Z": 1}, ("grade",)), registry(), experts()),
            "no candidates in stratum grade=Z; the strata are grade=A, grade=B, grade=C",
        ),
        (lambda: draw(seed(0), DrawSpec(41), registry(), experts()), "41 targets were asked but there are only 40"),
        (lambda: DrawSpec({"grade=A": 1}), "targets per stratum need stratify_by"),
        (lambda: DrawSpec(5, inspectors_per_target=1), "inspectors_per_target must be at least 2"),
        (lambda: DrawSpec(0), "targets must be a count >= 1"),
        (lambda: DrawSpec(True), "targets must be a count >= 1"),
        (lambda: DrawSpec(5, stratify_by=("name",)), "stratify_by must be a tuple of fields from"),
        (lambda: DrawSpec(5, max_targets_per_inspector=0), "max_targets_per_inspector must be None or a count >= 1"),
        (lambda: draw(b"short", DrawSpec(5), registry(), experts()), "at least 16 random bytes"),
        (lambda: draw(seed(0), DrawSpec(5), registry() * 2, experts()), "premises ids must be unique, but R-000"),
        (lambda: draw(seed(0), DrawSpec(5), registry(), experts()[:1]), "the pool has 1 inspector but 2 are needed"),
        (lambda: draw(seed(0), DrawSpec(5), [], experts()), "there are no candidates"),
        (lambda: Inspector("E-1", "li", "文化街道", {"R-1"}), "recent_premises of inspector E-1 must be a frozenset"),  # type: ignore[arg-type]
        (lambda: Candidate("R-1", "文化街道", ""), "grade of premises R-1"),
        (
            lambda: draw(seed(0), DrawSpec(1, ("street",)), [Candidate("R-1", "a,b", "A")], experts()),
            "contains ',' or '='",
        ),
    ],
)
def test_a_bad_draw_is_refused_with_what_to_fix(make: Any, message: str) -> None:
    with pytest.raises(DrawError, match=message):
        make()


# --- conflicts and staffing ----------------------------------------------------------------

TARGET = Candidate("R-1", "文化街道", "A")


@pytest.mark.parametrize(
    ("inspector", "why"),
    [
        (Inspector("X", "x", "东湖街道"), None),
        (Inspector("X", "x", "文化街道"), "same street"),
        (Inspector("X", "x", "东湖街道", frozenset({"R-1"})), "visited recently"),
        (Inspector("X", "x", "东湖街道", frozenset({"R-9"})), None),
        (Inspector("X", "x", "文化街道", frozenset({"R-1"})), "same street"),
    ],
    ids=["other-street", "same-street", "visited-target", "visited-other", "both"],
)
def test_conflicts_exclude_the_targets_street_and_recent_visitors(inspector: Inspector, why: str | None) -> None:
    assert conflict(inspector, TARGET) == why
    filler = Inspector("F", "filler", "城南街道")
    result = draw(seed(8), DrawSpec(targets=1), [TARGET], [inspector, filler])
    if why is None:
        assert result.assignments == (("R-1", ("F", "X")),) and result.unassigned == ()
    else:
        assert result.assignments == () and [p for p, _ in result.unassigned] == ["R-1"]


def test_a_target_without_enough_eligible_inspectors_is_reported_with_the_reason() -> None:
    pool = [
        Inspector("E-1", "a", "文化街道"),
        Inspector("E-2", "b", "东湖街道", frozenset({"R-1"})),
        Inspector("E-3", "c", "城南街道"),
    ]
    result = draw(seed(9), DrawSpec(targets=2), [TARGET, Candidate("R-2", "东湖街道", "B")], pool)
    assert result.assignments == (("R-2", ("E-1", "E-3")),)
    ((premises_id, reason),) = result.unassigned
    assert premises_id == "R-1"
    assert reason.startswith("1 of 3 inspectors eligible but 2 needed (excluded: 1 same street, 1 visited recently)")
    assert to_public(result)["unassigned"] == [{"premises_id": "R-1", "reason": reason}]


def test_the_load_limit_is_kept_and_its_shortfall_reported() -> None:
    pool = [Inspector(f"E-{k}", f"e{k}", "北山街道") for k in range(4)]
    candidates = [Candidate(f"R-{i}", "文化街道", "A") for i in range(3)]
    result = draw(seed(10), DrawSpec(targets=3, max_targets_per_inspector=1), candidates, pool)
    assert len(result.assignments) == 2
    assert Counter(i for _, ids in result.assignments for i in ids) == dict.fromkeys(("E-0", "E-1", "E-2", "E-3"), 1)
    ((_, reason),) = result.unassigned
    assert "0 of 4 inspectors eligible" in reason and "4 at the limit of 1 targets" in reason


POOLS = st.lists(
    st.tuples(st.sampled_from(["S1", "S2", "S3", "S4"]), st.sets(st.integers(0, 11), max_size=4)),
    min_size=3,
    max_size=9,
)


@settings(max_examples=150, deadline=None)
@given(
    seed_bytes=st.binary(min_size=16, max_size=32),
    places=st.lists(st.tuples(st.sampled_from(["S1", "S2", "S3"]), st.sampled_from("AB")), min_size=1, max_size=12),
    inspectors=POOLS,
    data=st.data(),
)
def test_every_assignment_respects_the_conflict_rules(
    seed_bytes: bytes, places: list[tuple[str, str]], inspectors: list[tuple[str, set[int]]], data: st.DataObject
) -> None:
    candidates = [Candidate(f"P{i}", street, grade) for i, (street, grade) in enumerate(places)]
    pool = [
        Inspector(f"I{k}", f"i{k}", street, frozenset(f"P{i}" for i in visited))
        for k, (street, visited) in enumerate(inspectors)
    ]
    spec = DrawSpec(
        targets=data.draw(st.integers(1, len(candidates))),
        stratify_by=data.draw(st.sampled_from([(), ("grade",), ("street",), ("grade", "street")])),
        inspectors_per_target=data.draw(st.integers(2, 3)),
        max_targets_per_inspector=data.draw(st.none() | st.integers(1, 3)),
    )
    result = draw(seed_bytes, spec, candidates, pool)
    by_id = {c.premises_id: c for c in candidates}
    inspector = {i.id: i for i in pool}
    for premises_id, ids in result.assignments:
        assert len(ids) == len(set(ids)) == spec.inspectors_per_target
        assert all(conflict(inspector[i], by_id[premises_id]) is None for i in ids)
    if spec.max_targets_per_inspector is not None:
        load = Counter(i for _, ids in result.assignments for i in ids)
        assert max(load.values(), default=0) <= spec.max_targets_per_inspector
    assert len(result.targets) == len(set(result.targets)) == spec.targets == sum(result.allocation.values())
    assert summary(result) == auditor_draw(seed_bytes, to_public(result))
    assert verify(to_public(result)) == []


# --- verification --------------------------------------------------------------------------


@pytest.fixture
def published() -> dict[str, Any]:
    return to_public(draw(seed(11), DrawSpec(targets=6, stratify_by=("grade",)), registry(), experts()))


def test_an_untouched_publication_verifies(published: dict[str, Any]) -> None:
    assert verify(published) == []


def change_seed(d: dict[str, Any]) -> None:
    d["seed"] = seed(12).hex()


def change_seed_and_commitment(d: dict[str, Any]) -> None:
    d["seed"], d["commitment"] = seed(12).hex(), commit(seed(12))


def swap_assignments(d: dict[str, Any]) -> None:
    first, second = d["assignments"][0], d["assignments"][1]
    first["inspectors"], second["inspectors"] = second["inspectors"], first["inspectors"]


def add_candidate(d: dict[str, Any]) -> None:
    d["candidates"].append({"premises_id": "R-040", "street": STREETS[0], "grade": "A"})


def alter_commitment(d: dict[str, Any]) -> None:
    d["commitment"] = commit(seed(13))


def drop_an_assignment(d: dict[str, Any]) -> None:
    d["assignments"].pop()


def regrade_a_target(d: dict[str, Any]) -> None:
    target = d["assignments"][0]["premises_id"]
    candidate = next(c for c in d["candidates"] if c["premises_id"] == target)
    candidate["grade"] = "C" if candidate["grade"] != "C" else "A"


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (change_seed, "is not the SHA-256 of the seed"),
        (change_seed_and_commitment, "recomputed"),
        (swap_assignments, "assignments: R-.* is published with"),
        (add_candidate, "recomputed"),
        (alter_commitment, "is not the SHA-256 of the seed"),
        (drop_an_assignment, "is in the recomputed draw but not published"),
        (regrade_a_target, "recomputed"),
    ],
)
def test_verify_catches_tampering(published: dict[str, Any], tamper: Any, message: str) -> None:
    tamper(published)
    problems = verify(published)
    assert any(re.search(message, p) for p in problems), problems


@pytest.mark.parametrize(
    "document",
    [{}, {"algorithm": ALGORITHM}, {"algorithm": ALGORITHM, "seed": "zz"}, {"algorithm": "other/1"}],
)
def test_verify_reports_a_malformed_document_instead_of_raising(document: dict[str, Any]) -> None:
    assert verify(document)


# --- the evidence log (the `vault` fixture is a real Vault under tmp_path, from conftest) ---


SPEC = DrawSpec(targets=5, stratify_by=("grade",))


def test_a_draw_committed_then_published_verifies_against_the_log(vault: Vault) -> None:
    secret = new_seed()
    digest = inputs_digest(SPEC, registry(), experts())
    leaf = commit_to_log(vault, commit(secret), purpose="2026 Q1 catering", at=AT, inputs_sha256=digest)
    result = draw(secret, SPEC, registry(), experts())
    published_leaf = publish_to_log(vault, result, leaf, at=AT)
    assert leaf < published_leaf
    assert verify_against_log(vault, to_public(result)) == []
    ((_, record),) = vault.records(PUBLISHED_RECORD)
    assert record["commitment_leaf"] == leaf and record["draw"]["seed"] == secret.hex()


def test_a_publication_whose_commitment_was_logged_after_it_is_refused(vault: Vault) -> None:
    result = draw(seed(14), SPEC, registry(), experts())
    # forged: published first, naming the commitment it is about to log
    vault.append_record(
        {"type": PUBLISHED_RECORD, "commitment_leaf": 1, "at": AT.isoformat(), "draw": to_public(result)}
    )
    commit_to_log(vault, commit(seed(14)), purpose="2026 Q1 catering", at=AT)
    problems = verify_against_log(vault, to_public(result))
    assert any("was logged after the publication" in p for p in problems), problems


@pytest.mark.parametrize(
    ("commitment_leaf", "message"),
    [(7, "leaf 7 is not a logged draw commitment"), (0, "the logged commitment .* is not the draw's")],
)
def test_publishing_without_this_seeds_commitment_is_refused(vault: Vault, commitment_leaf: int, message: str) -> None:
    commit_to_log(vault, commit(seed(15)), purpose="2026 Q1 catering", at=AT)
    with pytest.raises(DrawError, match=message):
        publish_to_log(vault, draw(seed(16), SPEC, registry(), experts()), commitment_leaf)


def test_inputs_changed_after_the_commitment_are_refused(vault: Vault) -> None:
    digest = inputs_digest(SPEC, registry(), experts())
    leaf = commit_to_log(vault, commit(seed(17)), purpose="2026 Q1 catering", at=AT, inputs_sha256=digest)
    grown = draw(seed(17), SPEC, [*registry(), Candidate("R-040", STREETS[0], "A")], experts())
    assert verify(to_public(grown)) == []  # consistent in itself: only the commitment shows the change
    with pytest.raises(DrawError, match="not the ones committed to"):
        publish_to_log(vault, grown, leaf)
    vault.append_record(
        {"type": PUBLISHED_RECORD, "commitment_leaf": leaf, "at": AT.isoformat(), "draw": to_public(grown)}
    )
    assert "the draw's inputs (spec, candidates, pool) are not the ones committed to" in verify_against_log(
        vault, to_public(grown)
    )


def test_a_redraw_for_the_same_purpose_shows_in_the_log(vault: Vault) -> None:
    commit_to_log(vault, commit(seed(18)), purpose="2026 Q1 catering", at=AT)
    leaf = commit_to_log(vault, commit(seed(19)), purpose="2026 Q1 catering", at=AT)
    result = draw(seed(19), SPEC, registry(), experts())
    publish_to_log(vault, result, leaf)
    assert verify_against_log(vault, to_public(result)) == [
        "purpose '2026 Q1 catering' was also committed at leaves [0]: the draw was re-done"
    ]


def test_a_beacon_must_be_announced_in_the_commitment(vault: Vault) -> None:
    unannounced = commit_to_log(vault, commit(seed(20)), purpose="a", at=AT)
    announced = commit_to_log(vault, commit(seed(20)), purpose="b", at=AT, beacon_source="福彩3D draw 2026001")
    result = draw(seed(20), SPEC, registry(), experts(), beacon="4 7 1")
    with pytest.raises(DrawError, match="uses a beacon that its commitment did not announce"):
        publish_to_log(vault, result, unannounced)
    publish_to_log(vault, result, announced)
    assert verify_against_log(vault, to_public(result)) == []


def test_an_unpublished_draw_does_not_verify_against_the_log(vault: Vault) -> None:
    result = draw(seed(21), SPEC, registry(), experts())
    assert verify_against_log(vault, to_public(result)) == ["this draw is not published in the log"]


def test_a_commitment_needs_an_aware_time_and_a_hex_digest(vault: Vault) -> None:
    with pytest.raises(DrawError, match="timezone-aware"):
        commit_to_log(vault, commit(seed(0)), purpose="a", at=datetime(2026, 3, 2))
    with pytest.raises(DrawError, match="64 lowercase hex digits"):
        commit_to_log(vault, "abc", purpose="a", at=AT)


# --- fairness --------------------------------------------------------------------------------
#
# Chi-square goodness of fit at p = 0.001 over fixed seeds, so the test is deterministic. The
# critical values are the 0.999 quantiles of the chi-square distribution (scipy.stats.chi2.ppf
# (0.999, df); NIST/SEMATECH e-Handbook table 1.3.6.7.4): 72.055 for 39 degrees of freedom,
# 49.728 for 23, 27.877 for 9. Sampling without replacement makes the counts slightly less variable than the
# multinomial the test assumes, so the test is conservative, never falsely alarmed.
CHI2_999 = {39: 72.055, 23: 49.728, 9: 27.877}
DRAWS = 2000
HAVE_SCIPY = importlib.util.find_spec("scipy") is not None


def chi_square(observed: Sequence[float], expected: Sequence[float]) -> float:
    statistic = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    if HAVE_SCIPY:
        from scipy.stats import chisquare

        assert chisquare(observed, expected).statistic == pytest.approx(statistic)
    return statistic


def test_every_ordering_of_a_shuffle_is_equally_likely() -> None:
    # sharper than counting selections: a Fisher-Yates off by one (Sattolo's cycles only) or a
    # naive swap-with-any shuffle skews the 24 orderings of four items far past the critical value
    orderings = list(itertools.permutations("abcd"))
    counts = Counter(tuple(RandomStream(seed(n), "test").sample("abcd", 4)) for n in range(100 * len(orderings)))
    statistic = chi_square([counts[o] for o in orderings], [100] * len(orderings))
    assert statistic < CHI2_999[23], f"chi-square {statistic:.1f} over 23 degrees of freedom"


def test_every_candidate_is_equally_likely_to_be_drawn() -> None:
    candidates, pool = registry(40), experts()
    counts = Counter[str]()
    for n in range(DRAWS):
        counts.update(draw(seed(1000 + n), DrawSpec(targets=5), candidates, pool).targets)
    observed = [counts[c.premises_id] for c in candidates]
    statistic = chi_square(observed, [DRAWS * 5 / 40] * 40)
    assert statistic < CHI2_999[39], f"chi-square {statistic:.1f} over 39 degrees of freedom"


def test_every_eligible_inspector_is_equally_likely_to_be_chosen() -> None:
    candidates, pool = registry(40), experts()
    ids = [i.id for i in pool]
    observed, expected = Counter[str](), dict.fromkeys(ids, 0.0)
    for n in range(DRAWS):
        result = draw(seed(5000 + n), DrawSpec(targets=5), candidates, pool)
        assert result.unassigned == ()
        for premises_id, chosen in result.assignments:
            target = next(c for c in candidates if c.premises_id == premises_id)
            eligible = [i.id for i in pool if conflict(i, target) is None]
            for i in eligible:
                expected[i] += 2 / len(eligible)
            observed.update(chosen)
    statistic = chi_square([observed[i] for i in ids], [expected[i] for i in ids])
    assert statistic < CHI2_999[9], f"chi-square {statistic:.1f} over 9 degrees of freedom"

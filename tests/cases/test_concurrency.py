"""Parallel writers never corrupt a case: each thread has its own connection, all start together."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from cases.errors import ConcurrentUpdateError, IllegalTransitionError
from cases.invariants import check_invariants
from cases.models import Case, CaseEvidence
from tests.cases.conftest import seal_finding

WRITERS = 8


def _together(fns: list[Callable[[], Any]]) -> list[Any]:
    """Run the callables on threads released at once; each result is a value or the exception raised."""
    barrier = threading.Barrier(len(fns))
    results: list[Any] = [None] * len(fns)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fns[i]()
        except Exception as e:  # the test inspects what each writer got
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_parallel_steps_on_one_case_let_exactly_one_through(casebook, vault, clock):
    number = casebook.file_package(seal_finding(vault, started_at=clock.now)).case_number
    results = _together([lambda: casebook.apply(number, "confirm", actor="li") for _ in range(WRITERS)])
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(e, IllegalTransitionError | ConcurrentUpdateError) for e in losers), losers
    with casebook.db.session() as s:
        case = s.query(Case).one()
        assert [t.seq for t in case.transitions] == [1, 2]
        assert case.state == "confirmed"
    assert check_invariants(casebook).ok


def test_parallel_findings_of_one_zone_join_one_case_without_gaps(casebook, vault, clock):
    packages = [seal_finding(vault, started_at=clock.now + timedelta(minutes=i)) for i in range(WRITERS)]
    results = _together([lambda p=p: casebook.file_package(p) for p in packages])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert Counter(r.created for r in results) == Counter({True: 1, False: WRITERS - 1})
    with casebook.db.session() as s:
        case = s.query(Case).one()
        assert len(case.evidence) == WRITERS
        assert [t.seq for t in case.transitions] == list(range(1, WRITERS + 1))
    report = check_invariants(casebook)
    assert report.ok and report.unlogged_transitions == 0, report.problems


def test_parallel_filing_of_one_package_files_it_once(casebook, vault, clock):
    package = seal_finding(vault, started_at=clock.now)
    results = _together([lambda: casebook.file_package(package) for _ in range(WRITERS)])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({r.case_number for r in results}) == 1
    with casebook.db.session() as s:
        assert s.query(CaseEvidence).count() == 1


def test_parallel_filings_on_many_cameras_get_distinct_consecutive_numbers(casebook, vault, clock):
    cameras = [f"cam-p{i}" for i in range(WRITERS)]
    for camera in cameras:
        casebook.register_camera(camera, zones=[("sidewalk", "no_occupation")])
    packages = [seal_finding(vault, camera=c, started_at=clock.now) for c in cameras]
    results = _together([lambda p=p: casebook.file_package(p) for p in packages])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(r.case_number for r in results) == [f"CG-2025-{i:06d}" for i in range(1, WRITERS + 1)]


def test_parallel_drone_findings_of_one_spot_join_one_case(casebook, vault, clock):
    place = {"lat": 30.25, "lon": 120.16, "radius_m": 20.0}
    packages = [
        seal_finding(vault, camera=None, zone=None, started_at=clock.now + timedelta(minutes=i), place=place)
        for i in range(WRITERS)
    ]
    results = _together([lambda p=p: casebook.file_package(p) for p in packages])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({r.case_number for r in results}) == 1

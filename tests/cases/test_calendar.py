"""Statutory deadlines against the real mainland-China calendar (chinese-calendar 1.11.0 covers 2004–2026).

Expected dates are worked out by hand from the State Council schedules:
2025 National Day + Mid-Autumn: Oct 1–8 off, Sun Sep 28 and Sat Oct 11 worked;
2026 Spring Festival: Feb 15–23 off, Sat Feb 14 and Sat Feb 28 worked;
2026 Mid-Autumn Sep 25–27 and National Day Oct 1–7 off, Sun Sep 20 and Sat Oct 10 worked.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta, timezone

import chinese_calendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cases.calendar import (
    CHINA_TZ,
    DECISION,
    HEARING_REQUEST,
    PAYMENT,
    SERVICE,
    CalendarError,
    DeadlineRule,
    WorkCalendar,
    deadline,
    due_at,
    last_day,
)

CAL = WorkCalendar()
D = date.fromisoformat
BEIJING = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("day", "workday"),
    [
        ("2025-09-26", True),  # Friday
        ("2025-09-27", False),  # Saturday
        ("2025-09-28", True),  # Sunday, make-up working day
        ("2025-09-30", True),
        ("2025-10-01", False),  # National Day
        ("2025-10-06", False),  # Mid-Autumn, folded into Golden Week
        ("2025-10-08", False),  # Wednesday, last day off
        ("2025-10-09", True),
        ("2025-10-11", True),  # Saturday, make-up working day
        ("2025-10-12", False),  # ordinary Sunday
        ("2026-02-14", True),  # Saturday, make-up working day
        ("2026-02-15", False),  # Spring Festival holiday starts
        ("2026-02-23", False),  # Monday, last day off
        ("2026-02-24", True),
        ("2026-02-28", True),  # Saturday, make-up working day
        ("2026-09-20", True),  # Sunday, make-up working day
        ("2026-09-25", False),  # Mid-Autumn (Friday)
        ("2026-10-07", False),
        ("2026-10-10", True),  # Saturday, make-up working day
        ("2026-10-11", False),
    ],
)
def test_is_workday_knows_holidays_and_make_up_days(day: str, workday: bool) -> None:
    assert CAL.is_workday(D(day)) is workday
    assert chinese_calendar.is_workday(D(day)) is workday  # secondary: the package agrees
    assert not CAL.provisional(D(day))


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        ("2025-06-09", 5, "2025-06-16"),  # ordinary week: Mon + 5 = next Mon
        ("2025-10-09", 1, "2025-10-10"),  # start day never counts, though a working day
        ("2025-09-29", 5, "2025-10-13"),  # Sep 30, Oct 9, 10, 11 (Sat), 13
        ("2025-09-30", 1, "2025-10-09"),  # first day after Golden Week
        ("2025-09-30", 7, "2025-10-16"),  # Oct 9, 10, 11, 13, 14, 15, 16
        ("2025-10-09", 2, "2025-10-11"),  # the make-up Saturday counts
        ("2025-09-26", 1, "2025-09-28"),  # the make-up Sunday counts
        ("2025-10-03", 5, "2025-10-14"),  # starting inside the holiday
        ("2026-02-12", 5, "2026-02-26"),  # Feb 13, 14 (Sat), 24, 25, 26
        ("2026-02-13", 7, "2026-03-02"),  # Feb 14, 24, 25, 26, 27, 28 (Sat), Mar 2
        ("2026-09-29", 5, "2026-10-12"),  # Sep 30, Oct 8, 9, 10 (Sat), 12
    ],
)
def test_add_working_days(start: str, n: int, expected: str) -> None:
    result = CAL.add_working_days(D(start), n)
    assert result == D(expected)
    assert CAL.working_days_between(D(start), result) == n
    # Secondary check against the package directly.
    span = range(1, (result - D(start)).days + 1)
    assert sum(chinese_calendar.is_workday(D(start) + timedelta(days=k)) for k in span) == n


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        ("2025-06-01", 15, "2025-06-16"),  # lands on a Monday: no shift
        ("2025-07-03", 90, "2025-10-09"),  # day 90 is Oct 1: first working day after the holiday
        ("2025-07-10", 90, "2025-10-09"),  # day 90 is Oct 8, the holiday's last day
        ("2025-07-11", 90, "2025-10-09"),  # day 90 is a working day
        ("2025-07-13", 90, "2025-10-11"),  # day 90 is the make-up Saturday: a working day, it stays
        ("2025-07-14", 90, "2025-10-13"),  # day 90 is an ordinary Sunday: weekend rest days shift too
        ("2026-02-01", 15, "2026-02-24"),  # day 15 is Feb 16, inside Spring Festival
        ("2026-02-08", 15, "2026-02-24"),  # day 15 is Feb 23, its last day
    ],
)
def test_add_days_moves_off_rest_days(start: str, n: int, expected: str) -> None:
    assert CAL.add_days(D(start), n) == D(expected)


@pytest.mark.parametrize(
    ("rule", "start", "expected_last_day"),
    [
        (SERVICE, datetime(2025, 9, 30, 20, 0, tzinfo=BEIJING), "2025-10-16"),
        (SERVICE, datetime(2025, 9, 30, 12, 0, tzinfo=UTC), "2025-10-16"),  # same instant as above
        # 17:00 UTC on Sep 29 is 01:00 on Sep 30 in Beijing: counted from Sep 30, not Sep 29 (-> Oct 15).
        (SERVICE, datetime(2025, 9, 29, 17, 0, tzinfo=UTC), "2025-10-16"),
        (SERVICE, datetime(2025, 9, 29, 15, 59, tzinfo=UTC), "2025-10-15"),  # 23:59 Beijing on Sep 29
        (HEARING_REQUEST, datetime(2025, 9, 29, 10, 0, tzinfo=CHINA_TZ), "2025-10-13"),
        (DECISION, datetime(2025, 7, 3, 9, 0, tzinfo=CHINA_TZ), "2025-10-09"),
        (PAYMENT, datetime(2026, 2, 1, 10, 0, tzinfo=CHINA_TZ), "2026-02-24"),
        (SERVICE, datetime(2026, 2, 13, 16, 0, tzinfo=CHINA_TZ), "2026-03-02"),
    ],
)
def test_deadline_counts_from_the_local_day(rule: DeadlineRule, start: datetime, expected_last_day: str) -> None:
    result = deadline(rule, start, CAL)
    end = D(expected_last_day)
    assert result.last_day == end
    assert result.rule is rule
    assert not result.provisional
    assert result.starts_at == start and result.starts_at.tzinfo is UTC
    # Due at local midnight after the last day, expressed in UTC: 16:00 UTC on the last day.
    assert result.due_at == datetime(end.year, end.month, end.day, 16, 0, tzinfo=UTC)
    assert result.due_at.tzinfo is UTC
    assert (result.due_at - timedelta(microseconds=1)).astimezone(CHINA_TZ).date() == end
    assert result.due_at.astimezone(CHINA_TZ).date() == end + timedelta(days=1)
    assert due_at(rule, start, CAL) == result.due_at


def test_due_at_in_another_zone() -> None:
    tz = timezone(timedelta(hours=-5))
    # 20:00 on Sep 29 at UTC-5 is already Sep 30 in Beijing, but the caller asked for the UTC-5 calendar day.
    assert due_at(SERVICE, datetime(2025, 9, 29, 20, 0, tzinfo=tz), CAL, tz=tz) == datetime(
        2025, 10, 16, 5, 0, tzinfo=UTC
    )


def test_naive_start_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at(SERVICE, datetime(2025, 9, 30, 20, 0), CAL)
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline(SERVICE, datetime(2025, 9, 30, 20, 0), CAL)


@pytest.mark.parametrize("n", [0, -1])
def test_period_must_be_positive(n: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CAL.add_working_days(D("2025-09-30"), n)
    with pytest.raises(ValueError, match="at least 1"):
        CAL.add_days(D("2025-09-30"), n)
    with pytest.raises(ValueError, match="at least 1"):
        DeadlineRule("bad", n, True, "none", "a period that ends before it starts")


def test_datetime_is_not_a_day() -> None:
    with pytest.raises(TypeError, match=r"datetime\.date"):
        CAL.is_workday(datetime(2025, 10, 1, 12, 0, tzinfo=UTC))


def test_working_days_between_half_open() -> None:
    assert CAL.working_days_between(D("2025-09-30"), D("2025-10-09")) == 1  # (Sep 30, Oct 9]
    assert CAL.working_days_between(D("2025-09-29"), D("2025-09-30")) == 1
    assert CAL.working_days_between(D("2025-10-01"), D("2025-10-08")) == 0
    assert CAL.working_days_between(D("2025-10-09"), D("2025-10-09")) == 0
    assert CAL.working_days_between(D("2025-10-09"), D("2025-09-30")) == 0


def test_rules_as_the_law_states() -> None:
    assert (DECISION.days, DECISION.working_days) == (90, False)
    assert (SERVICE.days, SERVICE.working_days) == (7, True)
    assert (HEARING_REQUEST.days, HEARING_REQUEST.working_days) == (5, True)
    assert (PAYMENT.days, PAYMENT.working_days) == (15, False)
    assert "第六十条" in DECISION.basis and "第六十七条" in PAYMENT.basis


def test_uncovered_year_strict_raises() -> None:
    cal = WorkCalendar(strict=True)
    with pytest.raises(CalendarError, match=r"2040.*extra_holidays/extra_workdays.*upgrade chinese-calendar"):
        cal.is_workday(D("2040-01-02"))
    with pytest.raises(CalendarError, match="2040"):
        deadline(SERVICE, datetime(2040, 1, 2, 9, 0, tzinfo=CHINA_TZ), cal)
    assert cal.fallback_years == frozenset()


def test_uncovered_year_falls_back_to_monday_to_friday(caplog: pytest.LogCaptureFixture) -> None:
    cal = WorkCalendar()
    with caplog.at_level(logging.WARNING, logger="cases.calendar"):
        assert not cal.is_workday(D("2040-01-01"))  # Sunday
        assert cal.is_workday(D("2040-01-02"))  # Monday
        assert cal.is_workday(D("2040-10-01"))  # really National Day: why the result is provisional
        assert cal.add_working_days(D("2040-01-06"), 1) == D("2040-01-09")  # Fri -> Mon
    assert cal.provisional(D("2040-01-02"))
    assert not cal.provisional(D("2025-10-01"))
    assert cal.fallback_years == {2040}
    assert sum("2040" in r.getMessage() for r in caplog.records) == 1  # one warning per year

    result = deadline(SERVICE, datetime(2040, 1, 2, 9, 0, tzinfo=CHINA_TZ), cal)
    assert result.last_day == D("2040-01-11")
    assert result.provisional


def test_deadline_running_into_an_uncovered_year_is_provisional() -> None:
    cal = WorkCalendar()
    start = datetime(2026, 12, 28, 9, 0, tzinfo=CHINA_TZ)  # Monday
    # Dec 29, 30, 31, then 2027 by the fallback: Jan 1 (a Friday, really New Year's Day), 4, 5, 6.
    result = deadline(SERVICE, start, cal)
    assert result.last_day == D("2027-01-06")
    assert result.provisional
    # Once the caller adds the 2027 schedule, the year is declared: exact, not provisional.
    declared = WorkCalendar(extra_holidays=[D("2027-01-01")], strict=True)
    result = deadline(SERVICE, start, declared)
    assert result.last_day == D("2027-01-07")
    assert not result.provisional
    assert not declared.provisional(D("2027-06-01"))
    assert declared.fallback_years == frozenset()


def test_payment_inside_covered_year_is_not_provisional_even_if_calendar_lacks_later_years() -> None:
    # Day 15 after Dec 1, 2026 is Dec 16, 2026: nothing from 2027 is consulted.
    assert not deadline(PAYMENT, datetime(2026, 12, 1, 9, 0, tzinfo=CHINA_TZ), WorkCalendar()).provisional


def test_extra_dates_override_the_package() -> None:
    cal = WorkCalendar(extra_holidays=[D("2025-10-09")], extra_workdays=[D("2025-10-08")])
    assert cal.is_workday(D("2025-10-08"))
    assert not cal.is_workday(D("2025-10-09"))
    assert cal.add_working_days(D("2025-10-06"), 2) == D("2025-10-10")  # Oct 8, (Oct 9 off), Oct 10
    assert cal.add_days(D("2025-07-11"), 90) == D("2025-10-10")  # day 90 = Oct 9, now off
    assert CAL.is_workday(D("2025-10-09"))  # other calendars unaffected


def test_extra_dates_must_not_clash() -> None:
    with pytest.raises(ValueError, match="2025-10-09"):
        WorkCalendar(extra_holidays=[D("2025-10-09")], extra_workdays=[D("2025-10-09")])


covered_days = st.dates(min_value=date(2004, 1, 1), max_value=date(2026, 10, 31))


@given(start=covered_days, n=st.integers(min_value=1, max_value=40))
def test_add_working_days_properties(start: date, n: int) -> None:
    result = CAL.add_working_days(start, n)
    assert result > start
    assert CAL.is_workday(result)
    assert CAL.working_days_between(start, result) == n
    assert CAL.working_days_between(start, result - timedelta(days=1)) == n - 1


@given(start=covered_days, n=st.integers(min_value=1, max_value=40))
def test_add_days_properties(start: date, n: int) -> None:
    result = CAL.add_days(start, n)
    nominal = start + timedelta(days=n)
    assert result >= nominal
    assert CAL.is_workday(result)
    assert CAL.working_days_between(nominal - timedelta(days=1), result) == 1  # only rest days skipped


@given(start=st.dates(min_value=date(2030, 1, 1), max_value=date(2090, 12, 31)), n=st.integers(1, 40))
def test_fallback_properties(start: date, n: int) -> None:
    result = CAL.add_working_days(start, n)
    assert result.weekday() < 5
    assert CAL.working_days_between(start, result) == n
    assert CAL.provisional(result)


def test_last_day_chooses_the_counting_rule() -> None:
    assert last_day(SERVICE, D("2025-09-30"), CAL) == D("2025-10-16")
    assert last_day(DeadlineRule("seven_calendar", 7, False, "none", "test"), D("2025-09-30"), CAL) == D("2025-10-09")

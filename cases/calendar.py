"""Statutory deadlines of administrative penalty cases (行政处罚法, 2021 revision).

How a period is counted:

* the start day is not counted: a period of n days ends on the n-th day after it;
* 第八十五条: the law's periods of two, three, five and seven days are working days (工作日),
  not counting statutory holidays;
* a period counted in calendar days whose last day is a rest day ends on the first working day
  after it (期间届满的最后一日是法定节假日的，以其后的第一日为期间届满的日期). Like Chinese practice, this
  module reads 法定节假日 as every rest day: public holidays and weekend rest days alike.

Working days come from the ``chinese_calendar`` package, which knows the State Council's public
holidays and make-up working days (调休) for the years it covers; a schedule announced after the
package was released can be supplied by the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import chinese_calendar

logger = logging.getLogger(__name__)

CHINA_TZ = ZoneInfo("Asia/Shanghai")
_ONE_DAY = timedelta(days=1)


class CalendarError(Exception):
    """The calendar cannot say whether a date is a working day."""


def _check_date(day: object, what: str = "day") -> None:
    # A datetime is a date subclass; taking its .date() silently would use whatever zone it is in.
    if isinstance(day, datetime) or not isinstance(day, date):
        raise TypeError(f"{what} must be a datetime.date (a local calendar day), not {type(day).__name__}")


def _check_count(n: int, what: str) -> None:
    if n < 1:
        raise ValueError(f"{what} must be at least 1, got {n}: a period ends after its start day, never on it")


def _days(first: date, last: date) -> Iterator[date]:
    """Every date from first to last, both included (nothing when last < first)."""
    day = first
    while day <= last:
        yield day
        day += _ONE_DAY


class WorkCalendar:
    """Decides whether a date is a working day in mainland China.

    Caller-supplied dates override the package: ``extra_holidays`` are rest days and
    ``extra_workdays`` are working days (e.g. a make-up Saturday). A year the package does not
    cover counts as declared by the caller when at least one extra date falls in it, since the
    State Council publishes a year's whole schedule in one notice; its other dates follow
    Monday–Friday. For a year neither covered nor declared, ``strict`` raises ``CalendarError``;
    otherwise the calendar falls back to Monday–Friday, logs one warning for the year, and
    ``provisional`` is true for its dates, so deadlines there can be marked as such.
    """

    def __init__(
        self, *, extra_holidays: Iterable[date] = (), extra_workdays: Iterable[date] = (), strict: bool = False
    ) -> None:
        holidays = frozenset(extra_holidays)
        workdays = frozenset(extra_workdays)
        for day in holidays | workdays:
            _check_date(day, "an extra date")
        if clash := holidays & workdays:
            listed = ", ".join(sorted(d.isoformat() for d in clash))
            raise ValueError(f"dates given both as extra holidays and extra workdays: {listed}")
        self.strict = strict
        self._extra_holidays = holidays
        self._extra_workdays = workdays
        self._declared_years = frozenset(d.year for d in holidays | workdays)
        self._package_years: dict[int, bool] = {}
        self._verdicts: dict[date, bool] = {}
        self._fallback_years: set[int] = set()

    @property
    def fallback_years(self) -> frozenset[int]:
        """Years for which some verdict so far came from the Monday–Friday fallback."""
        return frozenset(self._fallback_years)

    def provisional(self, day: date) -> bool:
        """True when the verdict for ``day`` comes from the Monday–Friday fallback.

        That is, neither the package nor the caller's extra dates know ``day``'s year
        (in strict mode ``is_workday`` raises for such a date instead).
        """
        _check_date(day)
        return not self._known_year(day.year)

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` is a working day; verdicts are cached, deadlines ask for the same days often."""
        _check_date(day)
        verdict = self._verdicts.get(day)
        if verdict is None:
            verdict = self._decide(day)
            self._verdicts[day] = verdict
        return verdict

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after ``start``; ``start`` itself never counts, working day or not."""
        _check_date(start, "start")
        _check_count(n, "the number of working days")
        day = start
        while n:
            day += _ONE_DAY
            if self.is_workday(day):
                n -= 1
        return day

    def add_days(self, start: date, n: int) -> date:
        """The last day of a period of n calendar days after ``start``.

        ``start`` is not counted; when the n-th day is a rest day (public holiday or weekend rest
        day — 法定节假日 read as in Chinese practice) the period ends on the next working day.
        A make-up working Saturday or Sunday is a working day, so a period can end on one.
        """
        _check_date(start, "start")
        _check_count(n, "the number of days")
        day = start + timedelta(days=n)
        while not self.is_workday(day):
            day += _ONE_DAY
        return day

    def working_days_between(self, a: date, b: date) -> int:
        """How many working days lie in (a, b]: after ``a``, up to and including ``b``; 0 when b <= a."""
        _check_date(a, "a")
        _check_date(b, "b")
        return sum(self.is_workday(day) for day in _days(a + _ONE_DAY, b))

    def _known_year(self, year: int) -> bool:
        return year in self._declared_years or self._package_covers(year)

    def _package_covers(self, year: int) -> bool:
        covered = self._package_years.get(year)
        if covered is None:
            try:
                chinese_calendar.is_workday(date(year, 1, 1))
            except NotImplementedError:
                covered = False
            else:
                covered = True
            self._package_years[year] = covered
        return covered

    def _decide(self, day: date) -> bool:
        if day in self._extra_workdays:
            return True
        if day in self._extra_holidays:
            return False
        if self._package_covers(day.year):
            return bool(chinese_calendar.is_workday(day))
        if day.year not in self._declared_years:
            if self.strict:
                raise CalendarError(
                    f"chinese-calendar has no holiday schedule for {day.year}: add the year's holidays and "
                    f"make-up working days via extra_holidays/extra_workdays, or upgrade chinese-calendar"
                )
            if day.year not in self._fallback_years:
                self._fallback_years.add(day.year)
                logger.warning(
                    "no holiday schedule for %d: treating Monday-Friday as working days; deadlines are provisional",
                    day.year,
                )
        return day.weekday() < 5


@dataclass(frozen=True)
class DeadlineRule:
    """A statutory period: ``days`` counted as working days or as calendar days, and where the law says so."""

    name: str
    days: int
    working_days: bool
    basis: str
    description: str

    def __post_init__(self) -> None:
        _check_count(self.days, f"DeadlineRule {self.name!r} days")


DECISION = DeadlineRule(
    "decision",
    90,
    False,
    "行政处罚法 第六十条 (Art. 60)",
    "the penalty decision is made within 90 days of filing the case (立案)",
)
SERVICE = DeadlineRule(
    "service",
    7,
    True,
    "行政处罚法 第六十一条 (Art. 61)",
    "the decision is served within 7 working days when the party was absent at its announcement",
)
HEARING_REQUEST = DeadlineRule(
    "hearing_request",
    5,
    True,
    "行政处罚法 第六十四条 (Art. 64)",
    "the party requests a hearing within 5 working days of being notified of the right to one",
)
PAYMENT = DeadlineRule(
    "payment",
    15,
    False,
    "行政处罚法 第六十七条 (Art. 67)",
    "the party pays the fine within 15 days of receiving the decision",
)


@dataclass(frozen=True)
class Deadline:
    """A computed deadline: met by any time strictly before ``due_at`` (UTC).

    ``last_day`` is the period's last local day; ``provisional`` is true when some day the
    computation relied on came from the calendar's Monday–Friday fallback.
    """

    rule: DeadlineRule
    starts_at: datetime
    last_day: date
    due_at: datetime
    provisional: bool


def last_day(rule: DeadlineRule, start: date, calendar: WorkCalendar) -> date:
    """The last local day of ``rule``'s period that starts on local day ``start`` (not counted)."""
    if rule.working_days:
        return calendar.add_working_days(start, rule.days)
    return calendar.add_days(start, rule.days)


def deadline(rule: DeadlineRule, start: datetime, calendar: WorkCalendar, *, tz: tzinfo = CHINA_TZ) -> Deadline:
    """The deadline of ``rule`` for a period starting at the aware instant ``start``.

    The start day is ``start``'s calendar day in ``tz`` (a filing at 20:00 Beijing time counts
    from that day, though it is 12:00 UTC). ``due_at`` is midnight at the start of the day after
    the last day, in UTC: the deadline is met by any time before this instant.
    """
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError(f"start must be timezone-aware, got naive {start.isoformat()}")
    start_day = start.astimezone(tz).date()
    end = last_day(rule, start_day, calendar)
    # The days that decided the result: every day counted, or the nominal last day and any roll-over.
    consulted_from = start_day + (_ONE_DAY if rule.working_days else timedelta(days=rule.days))
    provisional = any(calendar.provisional(day) for day in _days(consulted_from, end))
    due = datetime.combine(end + _ONE_DAY, time(), tzinfo=tz).astimezone(UTC)
    return Deadline(rule, start.astimezone(UTC), end, due, provisional)


def due_at(rule: DeadlineRule, start: datetime, calendar: WorkCalendar, *, tz: tzinfo = CHINA_TZ) -> datetime:
    """The instant (UTC) before which ``rule``'s period starting at aware ``start`` must be met; see ``deadline``."""
    return deadline(rule, start, calendar, tz=tz).due_at

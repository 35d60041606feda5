"""Cadence analysis: who was met, who is coming up, who is overdue (pure)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from operator import itemgetter
from zoneinfo import ZoneInfo

from service.away import Away
from service.meetings import MeetingIndex, stands
from service.model import Event, Manager, Policy, Report, Response, iso_week
from service.slots import local_instant
from service.values import quick_init

#: a roster start_date this recent (or still ahead) makes a new hire
NEW_HIRE_DAYS = 14
#: how far back the transparency block looks for changed 1:1s
CHANGES_SINCE = timedelta(days=7)
#: ISO weeks in the coverage trend, the current one included
COVERAGE_WEEKS = 8


class ChangeKind(StrEnum):
    CANCELLED = "cancelled"
    DECLINED = "declined"
    RESCHEDULED = "rescheduled"


@quick_init
@dataclass(frozen=True, slots=True)
class Change:
    """A 1:1 that did not go as scheduled, for the digest's transparency block."""

    kind: ChangeKind
    report: str
    #: the occurrence's start (for a rescheduled one: its new start)
    when: datetime
    #: for a rescheduled one: where it was before
    original: datetime | None = None
    #: who did it (manager or report email): for a declined one whoever declined, for a
    #: cancelled or moved one the organizer (only they can); None when unknown
    by: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class ReportStatus:
    report: Report
    cadence_days: int
    #: start of the last 1:1 held within the lookback window
    last_held: datetime | None
    #: start of the first 1:1 in [now, now + horizon)
    next_upcoming: datetime | None
    overdue: bool
    #: no 1:1 held within the lookback window: "getting to know you" agenda
    long_unmet: bool
    #: roster start_date within the last 14 days (or still ahead)
    new_hire: bool
    #: 1:1s scheduled from a week ago to the end of the horizon that were
    #: cancelled, declined or moved, oldest first
    changes: tuple[Change, ...] = ()
    #: cancelled 1:1s within the lookback window
    cancelled_in_lookback: int = 0
    #: start of the first 1:1 in [now, now + lookahead): the digest's "next"
    next_one: datetime | None = None
    #: away on every working day of this week's window (leave, out of office): not overdue,
    #: no hold, not counted in coverage (docs/design.md "Respecting people's time")
    away: bool = False
    #: when away: their first working day back, in their zone, if within the lookahead
    back_on: date | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class WeekCoverage:
    """Share of reports met within their cadence as of the end of one ISO week."""

    week: str
    met: int
    total: int

    @property
    def share(self) -> float:
        return self.met / self.total if self.total else 1.0


@dataclass(frozen=True, slots=True)
class TeamAnalysis:
    manager: Manager
    now: datetime
    tz: ZoneInfo
    #: in roster order
    reports: tuple[ReportStatus, ...]
    #: the last 8 ISO weeks, oldest first, the current week last
    coverage: tuple[WeekCoverage, ...] = ()
    #: the manager is away on every working day of this week's window: no holds at all
    manager_away: bool = False
    #: when away: the manager's first working day back, if within the lookahead
    manager_back_on: date | None = None

    @property
    def overdue(self) -> tuple[ReportStatus, ...]:
        return tuple(r for r in self.reports if r.overdue)

    @property
    def upcoming(self) -> tuple[ReportStatus, ...]:
        return tuple(r for r in self.reports if r.next_upcoming is not None)


def analyse(
    manager: Manager,
    events: Sequence[Event],
    *,
    now: datetime,
    policy: Policy,
    tz: ZoneInfo,
    index: MeetingIndex | None = None,
    away: Mapping[str, Away] | None = None,
    manager_away: Away | None = None,
    returning: Mapping[str, date] | None = None,
) -> TeamAnalysis:
    """Who was met, who is coming up and who is overdue (docs/design.md "What counts as a
    one-on-one", "Overdue"), with the changes and coverage trend the digest reports.

    ``index`` is ``MeetingIndex(events)`` when the caller already has one (the
    expectation recap uses it too); it is built here otherwise. ``away``: the reports
    away this week (``service.away``), who are not overdue and not counted in this
    week's coverage; ``manager_away`` when the manager is; ``returning``: reports back
    from leave, by the day they came back (their ``back_on``, while not away).
    """
    away = away or {}
    returning = returning or {}
    utc_now = now.astimezone(UTC)
    meetings = MeetingIndex(events) if index is None else index
    span = _Span.of(utc_now, policy)
    scheduled = [_dated(meetings.scheduled(manager.email, r.email)) for r in manager.reports]
    histories = [
        _history(manager.email, r, s, span=span, policy=policy)
        for r, s in zip(manager.reports, scheduled, strict=True)
    ]
    today = utc_now.astimezone(tz).date()
    statuses = tuple(
        _away(_status(h, manager.email, s, span=span, today=today), away, returning)
        for h, s in zip(histories, scheduled, strict=True)
    )
    weeks = _coverage_weeks(utc_now, tz)
    coverage = tuple(_week_coverage(histories, w) for w in weeks)
    present = [h for h in histories if h.report.email not in away]
    if coverage and len(present) < len(histories):
        # this week counts only who is here; earlier weeks stay as they were
        coverage = (*coverage[:-1], _week_coverage(present, weeks[-1]))
    return TeamAnalysis(
        manager=manager,
        now=now,
        tz=tz,
        reports=statuses,
        coverage=coverage,
        manager_away=manager_away is not None,
        manager_back_on=manager_away.back_on if manager_away else None,
    )


def _away(
    status: ReportStatus, away: Mapping[str, Away], returning: Mapping[str, date]
) -> ReportStatus:
    """Someone away this week is not overdue: no nagging, no hold. Someone back from
    leave keeps their day back, so their 1:1 welcomes them back."""
    email = status.report.email
    gone = away.get(email)
    if gone is not None:
        return replace(status, overdue=False, away=True, back_on=gone.back_on)
    if email in returning:
        return replace(status, back_on=returning[email])
    return status


#: an event with its start as an instant (UTC), worked out once for every pass over it
_Dated = tuple[datetime, Event]


def _dated(events: Sequence[Event]) -> list[_Dated]:
    """The events with their UTC starts, in the order given."""
    return [(_utc(e.start), e) for e in events]


@dataclass(frozen=True, slots=True)
class _Span:
    """The instants every report's status is measured against: the same for the whole team."""

    #: the run's instant, in UTC
    now: datetime
    #: start of the lookback window
    since: datetime
    #: end of this week's horizon
    horizon_end: datetime
    #: end of the lookahead
    lookahead_end: datetime
    #: changed 1:1s from here on are reported
    changes_since: datetime

    @classmethod
    def of(cls, now: datetime, policy: Policy) -> _Span:
        return cls(
            now=now,
            since=now - timedelta(days=policy.lookback_days),
            horizon_end=now + timedelta(days=policy.horizon_days),
            lookahead_end=now + timedelta(days=policy.reach_days),
            changes_since=now - CHANGES_SINCE,
        )


@quick_init
@dataclass(frozen=True, slots=True)
class _History:
    """One report's 1:1s that stand, as the status and the coverage trend both need them."""

    report: Report
    cadence_days: int
    #: ``cadence_days`` as a span, built once: the coverage trend measures with it every week
    cadence: timedelta
    #: starts (UTC) of the 1:1s held within the lookback window, oldest first
    held: tuple[datetime, ...]
    last_held: Event | None
    next_upcoming: Event | None
    next_one: Event | None


#: the start of a (start, event) pair, the key 1:1s are sorted by (stable: ties keep order)
_START = itemgetter(0)


def _history(
    manager: str, report: Report, scheduled: Sequence[_Dated], *, span: _Span, policy: Policy
) -> _History:
    """``scheduled``: the events between manager and report (``MeetingIndex.scheduled``)."""
    ones = sorted(
        ((start, e) for start, e in scheduled if stands(e, manager, report.email)),
        key=_START,
    )
    held = [(start, e) for start, e in ones if span.since <= start < span.now]
    ahead = [(start, e) for start, e in ones if span.now <= start < span.lookahead_end]
    days = report.cadence_days if report.cadence_days is not None else policy.cadence_days
    return _History(
        report=report,
        cadence_days=days,
        cadence=timedelta(days=days),
        held=tuple(start for start, _ in held),
        last_held=held[-1][1] if held else None,
        next_upcoming=ahead[0][1] if ahead and ahead[0][0] < span.horizon_end else None,
        next_one=ahead[0][1] if ahead else None,
    )


def _status(
    history: _History,
    manager: str,
    scheduled: Sequence[_Dated],
    *,
    span: _Span,
    today: date,
) -> ReportStatus:
    report, last, upcoming, now = history.report, history.last_held, history.next_upcoming, span.now
    # ``held`` ends with the start of ``last``
    late = last is None or now - history.held[-1] > history.cadence
    return ReportStatus(
        report=report,
        cadence_days=history.cadence_days,
        last_held=last.start if last else None,
        next_upcoming=upcoming.start if upcoming else None,
        overdue=late and upcoming is None,
        long_unmet=last is None,
        new_hire=_new_hire(report, today=today),
        changes=_changes(
            scheduled, manager, report.email, since=span.changes_since, until=span.horizon_end
        ),
        cancelled_in_lookback=sum(
            1 for start, e in scheduled if e.cancelled and span.since <= start < now
        ),
        next_one=history.next_one.start if history.next_one else None,
    )


def _new_hire(report: Report, *, today: date) -> bool:
    """Started in the last two weeks, or starts later: their first 1:1 gets to know them."""
    return report.start_date is not None and (today - report.start_date).days < NEW_HIRE_DAYS


def _changes(
    scheduled: Sequence[_Dated], manager: str, report: str, *, since: datetime, until: datetime
) -> tuple[Change, ...]:
    """Scheduled 1:1s that were called off, declined or moved, oldest first."""

    found = (
        _change(e, manager, report)
        for start, e in scheduled
        if since <= start < until
        or (e.original_start is not None and since <= _utc(e.original_start) < until)
    )
    return tuple(sorted((c for c in found if c is not None), key=lambda c: _utc(c.when)))


def _change(event: Event, manager: str, report: str) -> Change | None:
    """What happened to one scheduled 1:1: cancelled wins over declined over moved."""
    organizer = _one_of(event.organizer, manager, report)
    if event.cancelled:
        return Change(ChangeKind.CANCELLED, report, event.start, by=organizer)
    for person in (manager, report):
        if event.response_of(person) is Response.DECLINED:
            return Change(ChangeKind.DECLINED, report, event.start, by=person.lower())
    if event.rescheduled:
        return Change(
            ChangeKind.RESCHEDULED, report, event.start, original=event.original_start, by=organizer
        )
    return None


def _one_of(email: str | None, *people: str) -> str | None:
    """``email`` (lower case) when it is one of ``people``: who owns a change, else unknown."""
    found = email.lower() if email else None
    return found if found in {p.lower() for p in people} else None


@dataclass(frozen=True, slots=True)
class _CoverageWeek:
    """One ISO week of the coverage trend."""

    monday: date
    sunday: date
    #: where the week's count is taken: its end, or now for the current week
    end: datetime
    #: the ISO week, e.g. ``2026-W48``
    name: str


@lru_cache(maxsize=256)
def _coverage_weeks(now: datetime, tz: ZoneInfo) -> tuple[_CoverageWeek, ...]:
    """The recent ISO weeks in ``tz``, oldest first, the current one last.

    Cached: every manager of one zone in a run has the same weeks.
    """
    local_now = now.astimezone(tz)
    this_monday = local_now.date() - timedelta(days=local_now.weekday())
    weeks = []
    for back in range(COVERAGE_WEEKS - 1, -1, -1):
        monday = this_monday - timedelta(weeks=back)
        end = min(local_instant(monday + timedelta(weeks=1), time(0), tz), now)
        weeks.append(_CoverageWeek(monday, monday + timedelta(days=6), end, iso_week(monday)))
    return tuple(weeks)


def _week_coverage(histories: Sequence[_History], week: _CoverageWeek) -> WeekCoverage:
    """How many reports had a 1:1 within their cadence at the week's end.

    A report counts from the week of their roster start date on: a new hire is
    not missing from the weeks before they joined.
    """
    sunday, end = week.sunday, week.end
    members = [h for h in histories if h.report.start_date is None or h.report.start_date <= sunday]
    met = sum(1 for h in members if _met_by(h, end))
    return WeekCoverage(week.name, met, len(members))


def _met_by(history: _History, end: datetime) -> bool:
    """A 1:1 held in (end - cadence, end]; ``held`` is sorted, so one bisection finds it."""
    since = end - history.cadence
    first_after = bisect_right(history.held, since)
    return first_after < len(history.held) and history.held[first_after] <= end


def _utc(moment: datetime) -> datetime:
    """Compare as instants: same-zone aware datetimes compare on the wall clock."""
    return moment.astimezone(UTC)

"""Who is away this week, and when they are back (pure).

docs/design.md, "Respecting people's time": a person is away on one of their
working days when their busy time covers all of its working hours, as an
out-of-office period or an all-day busy event does. This week's window is
[now + notice, end of the horizon). Someone with at least one working day in
it who is away on every one of them is *away this week*; they are back on the
first later working day, within the lookahead, on which they are not away.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from service.busy import merge
from service.model import Interval
from service.working_time import Person


@dataclass(frozen=True, slots=True)
class Away:
    """Away on every working day of this week's window."""

    #: the first working day back, in the person's zone; None when beyond the lookahead
    back_on: date | None


def away_this_week(
    person: Person,
    busy: Sequence[Interval],
    *,
    start: datetime,
    end: datetime,
    lookahead_end: datetime,
) -> Away | None:
    """``Away`` when ``person`` is away on every working day in [start, end), else None."""
    blocked = merge(busy)
    in_window = person.windows(start, end)
    if not in_window or not all(_covered(blocked, hours) for hours in in_window):
        return None
    return Away(back_on=_back_on(person, blocked, after=end, until=lookahead_end))


def back_from_leave(
    person: Person, busy: Sequence[Interval], *, since: datetime, now: datetime, until: datetime
) -> date | None:
    """The day someone came back, when they were away on every working day of [since, now)
    and are not away now: the first working day from ``now`` to ``until`` they are in."""
    blocked = merge(busy)
    before = person.windows(since, now)
    if not before or not all(_covered(blocked, hours) for hours in before):
        return None
    for day in person.days(now, until):
        hours = person.day_hours(day)
        if hours is not None and hours.end > now and not _covered(blocked, hours):
            return day
    return None


def _back_on(
    person: Person, blocked: Sequence[Interval], *, after: datetime, until: datetime
) -> date | None:
    """The first working day whose hours start at or after ``after`` and before ``until``,
    and on which the person is not away."""
    for day in person.days(after, until):
        hours = person.day_hours(day)
        if hours is None or hours.start < after:
            continue
        if hours.start >= until:
            return None
        if not _covered(blocked, hours):
            return day
    return None


def _covered(blocked: Sequence[Interval], span: Interval) -> bool:
    """Whether merged, sorted ``blocked`` covers all of ``span``."""
    index = bisect_right(blocked, span.start, key=lambda b: b.start) - 1
    return index >= 0 and blocked[index].start <= span.start and blocked[index].end >= span.end

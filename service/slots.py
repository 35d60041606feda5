"""The slot finder: the first free working-hours slot for a hold (pure).

Every computation runs on UTC instants. Aware datetimes that share a ZoneInfo
add and compare on the wall clock and ignore ``fold``, which goes wrong across
a DST change; local time is only consulted to place working hours and the
15-minute grid.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from service.busy import merge
from service.model import Interval, Policy

#: holds start on a whole quarter hour of the local clock
GRID = timedelta(minutes=15)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TICK = timedelta(microseconds=1)


def find_slot(
    busy: Sequence[Interval], *, now: datetime, policy: Policy, tz: ZoneInfo
) -> Interval | None:
    """The earliest slot for a hold inside the policy's working hours in ``tz``
    (docs/design.md "Holds"); None when the horizon is full."""
    now = now.astimezone(UTC)
    windows = _windows(now, now + timedelta(days=policy.horizon_days), policy, tz)
    return first_slot(windows, busy, minutes=policy.hold_minutes, tz=tz, after=now)


def first_slot(
    windows: Iterable[Interval],
    busy: Sequence[Interval],
    *,
    minutes: int,
    tz: ZoneInfo,
    after: datetime,
) -> Interval | None:
    """The earliest span of ``minutes`` inside one of ``windows`` (sorted, in UTC) that
    starts on a quarter hour of the clock in ``tz`` and overlaps no busy interval.

    Jumps from one busy interval's end to the next candidate, so the cost grows
    with the number of busy intervals, not with the minutes in the horizon.
    """
    return first_free(
        windows, blocked_after(busy, after=after.astimezone(UTC)), minutes=minutes, tz=tz
    )


def first_free(
    windows: Iterable[Interval], blocked: Sequence[Interval], *, minutes: int, tz: ZoneInfo
) -> Interval | None:
    """:func:`first_slot` with the busy time already as :func:`blocked_after` gives it."""
    length = timedelta(minutes=minutes)
    index = 0
    for window in windows:
        start = next_boundary(window.start, tz)
        while start + length <= window.end:
            # merged intervals are sorted by end as well: the first that ends after start
            index = bisect_right(blocked, start, lo=index, key=lambda span: span.end)
            if index < len(blocked) and blocked[index].start < start + length:
                start = next_boundary(blocked[index].end, tz)
                continue
            return Interval(start.astimezone(tz), (start + length).astimezone(tz))
    return None


def daily(
    span: tuple[time, time], *, start: datetime, end: datetime, tz: ZoneInfo
) -> list[Interval]:
    """``span`` (say 12:00-13:00) on each day of the clock in ``tz`` from ``start`` to ``end``,
    in UTC: the quiet hours no hold may overlap."""
    first, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    found = []
    day = first
    while day <= last:
        found.append(Interval(local_instant(day, span[0], tz), local_instant(day, span[1], tz)))
        day += timedelta(days=1)
    return found


def working_windows(
    *, start: datetime, end: datetime, policy: Policy, tz: ZoneInfo
) -> list[Interval]:
    """The working hours on work days in ``tz``, clipped to [start, end], oldest first."""
    return [
        Interval(w.start.astimezone(tz), w.end.astimezone(tz))
        for w in _windows(start.astimezone(UTC), end.astimezone(UTC), policy, tz)
    ]


def local_instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The first instant (in UTC) at which the clock in ``tz`` reads ``wall`` or later on ``day``.

    An ambiguous time (clocks turned back) gives its first occurrence; a time
    skipped by clocks turned forward gives the moment the gap ends, so a
    working day never starts early or ends late on a DST change.
    """
    if wall.tzinfo is None and type(day) is date:
        # the managers of one zone share their working days and week boundaries
        return _cached_local_instant(day, wall, wall.fold, tz)
    return _local_instant(day, wall, tz)


@lru_cache(maxsize=4096)
def _cached_local_instant(day: date, wall: time, fold: int, tz: ZoneInfo) -> datetime:
    """``fold`` is part of the key: times that differ only in it compare equal."""
    return _local_instant(day, wall, tz)


def _local_instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    naive = datetime.combine(day, wall)
    before_gap = naive.replace(tzinfo=tz).astimezone(UTC)
    if before_gap.astimezone(tz).replace(tzinfo=None) == naive:
        return before_gap
    after_gap = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return _transition(after_gap, before_gap, tz)


def next_boundary(moment: datetime, tz: ZoneInfo) -> datetime:
    """The first instant (in UTC) at or after ``moment`` when the clock in ``tz`` shows a
    whole quarter hour; across a DST change the quarter hours of the new clock count."""
    moment = moment.astimezone(UTC)
    offset = _offset(moment, tz)
    candidate = _ceil_to_grid(moment + offset) - offset
    changed = _offset(candidate, tz)
    if changed == offset:
        return candidate
    # The clock changed before ``candidate``: the answer is the new clock's first
    # quarter hour after the change, at most one grid step past this one.
    candidate = _ceil_to_grid(moment + changed) - changed
    return candidate if _offset(candidate, tz) == changed else candidate + GRID


def blocked_after(busy: Iterable[Interval], *, after: datetime) -> list[Interval]:
    """Busy time that still matters, in UTC, merged and sorted."""
    spans = [
        b if _in_utc(b) else Interval(b.start.astimezone(UTC), b.end.astimezone(UTC)) for b in busy
    ]
    return merge([s for s in spans if s.end > after and s.start <= s.end])


def with_span(blocked: list[Interval], span: Interval) -> list[Interval]:
    """``blocked`` (as :func:`blocked_after` gives it) with ``span`` (in UTC, ending after
    ``after``) joined in: only the intervals it touches are merged again, not all of them."""
    first = bisect_left(blocked, span.start, key=lambda b: b.end)
    last = bisect_right(blocked, span.end, key=lambda b: b.start)
    return [*blocked[:first], *merge([*blocked[first:last], span]), *blocked[last:]]


def _in_utc(span: Interval) -> bool:
    """Already in UTC (as ``busy_intervals`` gives it): no new Interval needed."""
    return span.start.tzinfo is UTC and span.end.tzinfo is UTC


def _windows(start: datetime, end: datetime, policy: Policy, tz: ZoneInfo) -> Iterator[Interval]:
    """Working hours in UTC, clipped to [start, end]; ``start`` and ``end`` are in UTC."""
    day, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    while day <= last:
        if day.isoweekday() in policy.work_days:
            opens = max(local_instant(day, policy.work_start, tz), start)
            closes = min(local_instant(day, policy.work_end, tz), end)
            if opens < closes:
                yield Interval(opens, closes)
        day += timedelta(days=1)


def _offset(moment: datetime, tz: ZoneInfo) -> timedelta:
    return moment.astimezone(tz).utcoffset() or timedelta(0)


def _ceil_to_grid(moment: datetime) -> datetime:
    excess = (moment - _EPOCH) % GRID
    return moment + (GRID - excess) if excess else moment


def _transition(before: datetime, after: datetime, tz: ZoneInfo) -> datetime:
    """The exact instant in (before, after] where the offset of ``tz`` changes.

    zoneinfo does not expose its transitions; bisection needs about 30 steps
    for an hour-long gap and runs only when a wall time falls into one.
    """
    old = _offset(before, tz)
    while after - before > _TICK:
        middle = before + (after - before) // 2
        if _offset(middle, tz) == old:
            before = middle
        else:
            after = middle
    return after

"""When a person is busy, from the events on their calendar (docs/design.md "Holds")."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from service.model import Event, Interval, Response, ShowAs


def blocks_time(event: Event, person: str) -> bool:
    """Busy means not cancelled, not declined by that person and not marked free.

    An all-day event arrives spanning whole days from midnight, so a busy or
    out-of-office all-day event blocks those days entirely.
    """
    return (
        not event.cancelled
        and event.show_as is not ShowAs.FREE
        and event.response_of(person) is not Response.DECLINED
    )


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, with overlapping and touching intervals joined."""
    return _joined(sorted((i.start, i.end) for i in intervals))


def busy_intervals(events: Iterable[Event], person: str) -> list[Interval]:
    """The person's busy time, merged and sorted, in UTC (wall-clock order breaks
    in the hour repeated when clocks go back)."""
    return _joined(
        sorted(
            (e.start.astimezone(UTC), e.end.astimezone(UTC))
            for e in events
            if blocks_time(e, person)
        )
    )


def _joined(spans: list[tuple[datetime, datetime]]) -> list[Interval]:
    """Sorted (start, end) pairs as intervals, overlapping and touching ones joined.

    Plain pairs sort and compare in C; an Interval is only built for what is kept.
    """
    merged: list[Interval] = []
    if not spans:
        return merged
    start, end = spans[0]
    for next_start, next_end in spans[1:]:
        if next_start <= end:
            if next_end > end:
                end = next_end
        else:
            merged.append(Interval(start, end))
            start, end = next_start, next_end
    merged.append(Interval(start, end))
    return merged

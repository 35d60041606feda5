"""When a person is busy, from the events on their calendar (DESIGN.md "Holds")."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC

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
    merged: list[Interval] = []
    for interval in sorted(intervals):
        if merged and interval.start <= merged[-1].end:
            last = merged[-1]
            if interval.end > last.end:
                merged[-1] = Interval(last.start, interval.end)
        else:
            merged.append(interval)
    return merged


def busy_intervals(events: Iterable[Event], person: str) -> list[Interval]:
    """The person's busy time, merged and sorted, in UTC (wall-clock order breaks
    in the hour repeated when clocks go back)."""
    return merge(
        Interval(e.start.astimezone(UTC), e.end.astimezone(UTC))
        for e in events
        if blocks_time(e, person)
    )

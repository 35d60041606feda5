"""When a person is busy, from the events on their calendar (docs/design.md "Holds")."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import pairwise

from service.model import CANCELLED, DECLINED, FREE, Event, Interval


def blocks_time(event: Event, person: str) -> bool:
    """Busy means not cancelled, not declined by that person and not marked free.

    An all-day event arrives spanning whole days from midnight, so a busy or
    out-of-office all-day event blocks those days entirely.
    """
    return _blocks(event, person.lower())


def _blocks(event: Event, person: str) -> bool:
    """:func:`blocks_time` for a lower-case ``person``: a calendar asks it for every event,
    always about the same person. Only an attendee's answer can be a decline
    (``Event.response_of``), and the first entry for the person is their answer."""
    if event.status is CANCELLED or event.show_as is FREE:
        return False
    for attendee in event.attendees:
        if attendee.email == person:
            return attendee.response is not DECLINED
    return True


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, with overlapping and touching intervals joined."""
    given = intervals if isinstance(intervals, list | tuple) else list(intervals)
    if _merged_already(given):
        return list(given)
    return _joined(sorted((i.start, i.end) for i in given))


def _merged_already(intervals: Sequence[Interval]) -> bool:
    """Each interval ends before the next starts (and starts no later than it ends): merging
    changes nothing. Busy time is mostly merged again where it was merged before
    (``away``, ``slots``); checking costs less than sorting it and building it anew."""
    return all(earlier.start <= earlier.end < later.start for earlier, later in pairwise(intervals))


def busy_intervals(
    events: Iterable[Event], person: str, *, since: datetime | None = None
) -> list[Interval]:
    """The person's busy time, merged and sorted, in UTC (wall-clock order breaks
    in the hour repeated when clocks go back).

    ``since`` (UTC): only the events that end after it count, when nothing earlier matters
    (a hold is placed, and absence judged, from now on): most of a calendar read from
    weeks back is then never converted, sorted or merged.
    """
    person = person.lower()
    spans = []
    zone, cutoff = None, None
    for event in events:
        if since is not None:
            if event.end.tzinfo is not zone:
                zone = event.end.tzinfo
                cutoff = _wall_cutoff(since, zone)
            if cutoff is not None and event.end < cutoff:
                continue  # long over by its own clock: no conversion needed to know
        if _blocks(event, person):
            # compared as UTC instants: an aware comparison across zones costs several
            # offset look-ups, a conversion one
            end = event.end.astimezone(UTC)
            if since is None or end > since:
                spans.append((event.start.astimezone(UTC), end))
    spans.sort()
    return _joined(spans)


#: more than any two UTC offsets of one zone differ by (each is under a day either way)
_WALL_MARGIN = timedelta(days=2)


def _wall_cutoff(since: datetime, zone: tzinfo | None) -> datetime | None:
    """``since`` less two days, on the clock of ``zone``: an end in ``zone`` before it ends
    before ``since``, told by a wall-clock comparison with no offset look-up (datetimes of
    one tzinfo compare so); None for naive ends, which are left to the exact test.

    A calendar read from weeks back mostly ends before ``since``: those events are passed
    over at the cost of one comparison instead of a conversion to UTC.
    """
    if zone is None:
        return None
    return since.astimezone(zone) - _WALL_MARGIN


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

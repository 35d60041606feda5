"""What counts as a one-on-one (docs/design.md), as plain predicates over events.

:class:`MeetingIndex` answers the same questions for a whole team at once:
the plain predicates rebuild an event's set of people for every (event,
report) pair, the index builds it once per event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from service.model import CANCELLED, DECLINED, Event


def between(event: Event, manager: str, report: str) -> bool:
    """Its people (rooms and resources left out) are exactly manager and report,
    whatever its status and answers: a 1:1 as scheduled, perhaps called off."""
    if event.all_day:
        return False
    return event.people() == frozenset({manager.lower(), report.lower()})


def is_one_on_one(event: Event, manager: str, report: str) -> bool:
    """A 1:1 that stands: scheduled between the two, not cancelled, not declined by either."""
    return between(event, manager, report) and stands(event, manager, report)


def stands(event: Event, manager: str, report: str) -> bool:
    """Not cancelled and declined by neither: what a scheduled 1:1 needs to count as one."""
    return (
        event.status is not CANCELLED  # ``not event.cancelled``, without a property call
        and event.response_of(manager) is not DECLINED
        and event.response_of(report) is not DECLINED
    )


def is_hold_for(event: Event, manager: str, report: str) -> bool:
    """One of Kindly's own holds placed for this report (any week)."""
    key = event.hold_key
    return (
        key is not None
        and key.manager == manager.lower()
        and key.report == report.lower()
        and not event.cancelled
    )


_NOBODY: frozenset[str] = frozenset()


def two_at_most(event: Event) -> frozenset[str] | None:
    """``event.people()`` when they are two at most, the only sets :func:`between` accepts;
    None for a larger meeting, told after its third person rather than from all of them."""
    organizer, attendees = event.organizer, event.attendees
    if not attendees:  # focus time, lunch, time off: most of a calendar
        return frozenset((organizer,)) if organizer else _NOBODY
    found = {organizer} if organizer else set()
    for attendee in attendees:
        if not attendee.resource:
            found.add(attendee.email)
            if len(found) > 2:
                return None
    return frozenset(found)


class MeetingIndex:
    """One calendar's events bucketed by their people and by Kindly hold, built in one pass.

    Every answer lists the events in the order they were given, exactly as a
    scan with the matching predicate would, so sorting them gives the same result.
    """

    __slots__ = ("_by_people", "_events", "_holds", "_position", "notes")

    def __init__(self, events: Iterable[Event]) -> None:
        self._events = tuple(events)
        self._by_people: dict[frozenset[str], list[Event]] = {}
        self._holds: dict[tuple[str, str], list[Event]] = {}
        self._position: dict[int, int] | None = None
        #: the recap's notes by (manager, report, now), worked out once for the agreed
        #: items and once more for the goals otherwise (``service.recap``)
        self.notes: dict[tuple[str, str, datetime], list[Event]] = {}
        by_people = self._by_people
        for event in self._events:
            if not event.all_day:
                people = two_at_most(event)
                if people is not None:  # a larger meeting is nobody's 1:1
                    # most buckets exist already: no new list for setdefault to throw away
                    bucket = by_people.get(people)
                    if bucket is None:
                        by_people[people] = [event]
                    else:
                        bucket.append(event)
            key = event.hold_key
            if key is not None and not event.cancelled:
                self._holds.setdefault((key.manager, key.report), []).append(event)

    def scheduled(self, manager: str, report: str) -> Sequence[Event]:
        """The events :func:`between` accepts."""
        return self._by_people.get(frozenset({manager.lower(), report.lower()}), ())

    def one_on_ones(self, manager: str, report: str) -> list[Event]:
        """The events :func:`is_one_on_one` accepts."""
        return [e for e in self.scheduled(manager, report) if stands(e, manager, report)]

    def holds_for(self, manager: str, report: str) -> Sequence[Event]:
        """The events :func:`is_hold_for` accepts."""
        return self._holds.get((manager.lower(), report.lower()), ())

    def in_given_order(self, *groups: Sequence[Event]) -> list[Event]:
        """The events of several answers, each once, in the order they were given."""
        if self._position is None:  # rarely needed: a hold and a 1:1 that both have notes
            self._position = {id(e): i for i, e in enumerate(self._events)}
        position = self._position
        unique = {id(e): e for group in groups for e in group}
        return sorted(unique.values(), key=lambda e: position[id(e)])

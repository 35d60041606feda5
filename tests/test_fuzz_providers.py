"""Fuzzing the provider payloads the connectors parse: Google and Graph resources, mutated.

A real-looking resource (an event, a free/busy answer, a directory user) has
fields deleted, replaced by values of the wrong type or given unknown enum
values. Each must map to well-typed domain objects, or fail the way its
connector turns into one clear line: an event either provider cannot read is
left out with one warning naming the calendar and the item, Graph's single-event
mapping raises ``CalendarDataError`` naming the mailbox, free/busy that cannot
be read is ``None``, a directory that cannot be read is a ``RosterError`` naming it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors import google_mapping as google
from connectors import outlook as graph
from service.errors import CalendarDataError, RosterError
from service.model import Attendee, Event, HoldKey, Interval, Roster
from tests.fuzzing import deep, hostile_text, outcome, quick

AMS = ZoneInfo("Europe/Amsterdam")
MANAGER = "maria@example.com"

GOOGLE_EVENT: dict[str, Any] = {
    "id": "ev1",
    "status": "confirmed",
    "summary": "Maria / Sam",
    "description": "Agreed: Sam leads the retro",
    "htmlLink": "https://calendar.google.com/event?eid=ev1",
    "start": {"dateTime": "2026-11-16T09:00:00+01:00", "timeZone": "Europe/Amsterdam"},
    "end": {"dateTime": "2026-11-16T09:30:00+01:00", "timeZone": "Europe/Amsterdam"},
    "organizer": {"email": MANAGER, "self": True},
    "attendees": [
        {"email": MANAGER, "responseStatus": "accepted", "organizer": True},
        {"email": "sam@example.com", "responseStatus": "tentative"},
        {"email": "room4@example.com", "resource": True, "responseStatus": "accepted"},
    ],
    "recurringEventId": "series1",
    "originalStartTime": {"dateTime": "2026-11-16T09:00:00+01:00"},
    "transparency": "opaque",
    "eventType": "default",
    "extendedProperties": {
        "private": {"kindlyManager": MANAGER, "kindlyReport": "sam@example.com", "kindlyWeek": "x"}
    },
}
GOOGLE_FREEBUSY: dict[str, Any] = {
    "kind": "calendar#freeBusy",
    "calendars": {
        MANAGER: {"busy": [{"start": "2026-11-16T08:00:00Z", "end": "2026-11-16T09:00:00Z"}]},
        "sam@example.com": {"errors": [{"domain": "global", "reason": "notFound"}]},
    },
}
GOOGLE_USERS: list[dict[str, Any]] = [
    {"primaryEmail": MANAGER, "name": {"fullName": "Maria Jansen"}},
    {
        "primaryEmail": "sam@example.com",
        "name": {"fullName": "Sam Lee"},
        "relations": [{"type": "manager", "value": MANAGER}],
        "suspended": False,
    },
]
GRAPH_EVENT: dict[str, Any] = {
    "id": "AAMk1",
    "subject": "Maria / Sam",
    "isAllDay": False,
    "isCancelled": False,
    "showAs": "busy",
    "type": "exception",
    "seriesMasterId": "AAMkS",
    "originalStart": "2026-11-16T08:00:00Z",
    "start": {"dateTime": "2026-11-16T08:00:00.0000000", "timeZone": "UTC"},
    "end": {"dateTime": "2026-11-16T08:30:00.0000000", "timeZone": "UTC"},
    "organizer": {"emailAddress": {"address": MANAGER, "name": "Maria"}},
    "attendees": [
        {
            "type": "required",
            "status": {"response": "accepted", "time": "2026-11-01T00:00:00Z"},
            "emailAddress": {"address": "sam@example.com", "name": "Sam"},
        },
        {"type": "resource", "emailAddress": {"address": "room4@example.com"}},
    ],
    "responseStatus": {"response": "organizer"},
    "webLink": "https://outlook.office365.com/owa/?itemid=AAMk1",
    "body": {"contentType": "html", "content": "<p>Agreed: Sam leads</p>"},
    "singleValueExtendedProperties": [
        {"id": graph.HOLD_PROPERTY, "value": f"{MANAGER}|sam@example.com|2026-W47"}
    ],
}
GRAPH_SCHEDULE: dict[str, Any] = {
    "scheduleId": "sam@example.com",
    "availabilityView": "0020",
    "scheduleItems": [
        {
            "status": "busy",
            "start": {"dateTime": "2026-11-16T08:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-11-16T09:00:00.0000000", "timeZone": "UTC"},
        },
        {"status": "free", "start": {}, "end": {}},
    ],
}

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(),
    hostile_text,
    st.sampled_from(
        [
            "2026-13-45T99:00:00",
            "2026-11-16",
            "2026-11-16T09:00:00",
            "9999-12-31T23:59:59+14:00",
            "0001-01-01T00:00:00-12:00",
            "2026-11-16T09:00:00.12345678901Z",
            "declined",
            "needsAction",
            "outOfOffice",
            "transparent",
            "oof",
            "workingElsewhere",
            "unknownFutureValue",
            "Pacific Standard Time",
            "Mars/Olympus",
        ]
    ),
    st.lists(st.none() | st.integers() | hostile_text, max_size=2),
    st.dictionaries(hostile_text, st.none() | hostile_text, max_size=2),
)


@st.composite
def mutated(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """``value`` with some of its fields (at any depth) deleted, retyped or given odd values."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(junk)
    if isinstance(value, dict) and depth < 4:
        out = {}
        for key, inner in value.items():
            if draw(st.integers(0, 7)) == 0:
                continue  # a field missing
            out[key] = draw(mutated(inner, depth + 1))
        return out
    if isinstance(value, list) and depth < 4:
        return [draw(mutated(inner, depth + 1)) for inner in value]
    return copy.deepcopy(value)


def assert_well_typed(event: Event) -> None:
    """What the pure core relies on: aware times, lower-case emails, text where text is due."""
    for moment in (event.start, event.end, event.original_start):
        assert moment is None or (isinstance(moment, datetime) and moment.tzinfo is not None)
    assert isinstance(event.id, str)
    assert isinstance(event.description, str)
    assert event.link is None or isinstance(event.link, str)
    assert event.series_id is None or isinstance(event.series_id, str)
    assert event.organizer is None or event.organizer == event.organizer.lower()
    assert all(isinstance(a, Attendee) and a.email == a.email.lower() for a in event.attendees)
    assert event.hold_key is None or isinstance(event.hold_key, HoldKey)
    assert all(isinstance(part, str) for part in (event.hold_key or HoldKey("", "", "")).__repr__())


def check_google_events(items: list[Any]) -> None:
    warnings: list[str] = []
    events = google.events_from_items(items, zone=AMS, warn=warnings.append, calendar=MANAGER)
    assert_skipped_or_mapped(items, events, warnings)


def assert_skipped_or_mapped(items: list[Any], events: list[Event], warnings: list[str]) -> None:
    """Every item is an event or exactly one one-line warning naming the calendar."""
    assert len(events) + len(warnings) == len(items)
    for warning in warnings:
        assert warning.startswith(f"{MANAGER}"), warning
        assert ": skipped event " in warning
        assert "\n" not in warning
    for event in events:
        assert_well_typed(event)


def check_google_freebusy(response: Any) -> None:
    people = [MANAGER, "sam@example.com"]
    found = google.busy_from(response, people)
    assert set(found) == set(people)
    for intervals in found.values():
        assert intervals is None or all(
            isinstance(i, Interval) and i.start.tzinfo and i.end.tzinfo for i in intervals
        )


def check_google_users(users: Any) -> None:
    def read() -> Roster:
        return google.roster_from_users(users, source="Google Directory")

    roster, error = outcome(read, RosterError)
    if error is not None:
        assert str(error).startswith("Google Directory: ")
        return
    assert isinstance(roster, Roster)


def check_graph_events(items: list[Any]) -> None:
    warnings: list[str] = []
    events = graph.events_from_items(items, MANAGER, AMS, warn=warnings.append)
    assert_skipped_or_mapped(items, events, warnings)


def check_graph_event(item: Any) -> None:
    event, error = outcome(lambda: graph.to_event(item, MANAGER, AMS), CalendarDataError)
    if error is not None:
        assert error.manager == MANAGER
        assert MANAGER in str(error)
        assert "\n" not in str(error)
        return
    assert event is not None
    assert_well_typed(event)


def check_graph_schedule(schedule: Any) -> None:
    busy = graph._schedule(schedule, AMS)
    assert busy is None or all(isinstance(i, Interval) and i.start.tzinfo for i in busy)


CASES: dict[str, tuple[Callable[[Any], None], st.SearchStrategy[Any]]] = {
    "google event": (check_google_events, st.lists(mutated(GOOGLE_EVENT), min_size=1, max_size=3)),
    "google free/busy": (check_google_freebusy, mutated(GOOGLE_FREEBUSY)),
    "google directory": (check_google_users, mutated(GOOGLE_USERS)),
    "graph event": (check_graph_event, mutated(GRAPH_EVENT)),
    "graph events": (check_graph_events, st.lists(mutated(GRAPH_EVENT), min_size=1, max_size=3)),
    "graph schedule": (check_graph_schedule, mutated(GRAPH_SCHEDULE)),
}


class TestProviderPayloadFuzz:
    """Mutated provider resources map cleanly or fail as one translated error, never otherwise."""

    @pytest.mark.parametrize("kind", sorted(CASES))
    @quick
    @given(data=st.data())
    def test_mutated_resources(self, kind: str, data: st.DataObject) -> None:
        check, strategy = CASES[kind]
        check(data.draw(strategy))

    @pytest.mark.fuzz
    @pytest.mark.parametrize("kind", sorted(CASES))
    @deep
    @given(data=st.data())
    def test_mutated_resources_long_run(self, kind: str, data: st.DataObject) -> None:
        check, strategy = CASES[kind]
        check(data.draw(strategy))

    def test_unmutated_resources_map(self) -> None:
        (event,) = google.events_from_items([GOOGLE_EVENT], zone=AMS)
        assert event.start == datetime(2026, 11, 16, 8, tzinfo=UTC)
        assert graph.to_event(GRAPH_EVENT, MANAGER, AMS).link == GRAPH_EVENT["webLink"]
        assert (
            google.busy_from(GOOGLE_FREEBUSY, [MANAGER, "sam@example.com"])["sam@example.com"]
            is None
        )


class TestOneMalformedItem:
    """One event a provider sends malformed costs one warning, not the manager's calendar."""

    def test_google(self) -> None:
        warnings: list[str] = []
        broken = {**GOOGLE_EVENT, "id": "ev2", "start": {"dateTime": "next tuesday"}}
        events = google.events_from_items(
            [GOOGLE_EVENT, broken], zone=AMS, warn=warnings.append, calendar=MANAGER
        )
        assert [e.id for e in events] == ["ev1"]
        assert warnings == [
            f"{MANAGER}: skipped event id ev2: not shaped as Google documents it "
            "(ValueError(\"Invalid isoformat string: 'next tuesday'\"))"
        ]

    def test_graph(self) -> None:
        warnings: list[str] = []
        broken = {**GRAPH_EVENT, "id": "AAMk2", "end": None}
        events = graph.events_from_items([broken, GRAPH_EVENT], MANAGER, AMS, warn=warnings.append)
        assert [e.id for e in events] == [GRAPH_EVENT["id"]]
        [warning] = warnings
        assert warning.startswith(f"{MANAGER} (Microsoft 365 calendar): skipped event id AAMk2: ")


class TestGoogleFreeBusyItems:
    """One unusable busy item is skipped with a warning; the person's other busy time counts."""

    def test_one_bad_item(self) -> None:
        response = {
            "calendars": {
                "sam@example.com": {
                    "busy": [
                        {"start": "2026-11-24T09:00:00Z", "end": "2026-11-24T10:00:00Z"},
                        {"start": "2026-11-24T11:00:00", "end": "2026-11-24T12:00:00"},
                        {"start": "soon"},
                    ]
                }
            }
        }
        warnings: list[str] = []
        found = google.busy_from(response, ["sam@example.com"], warn=warnings.append)
        assert found["sam@example.com"] == [
            Interval(datetime(2026, 11, 24, 9, tzinfo=UTC), datetime(2026, 11, 24, 10, tzinfo=UTC))
        ]
        assert len(warnings) == 2
        assert all(w.startswith("sam@example.com (Google free/busy): skipped") for w in warnings)

"""Partial responses (``fields``): the emulator answers them as Google documents, and
Kindly's listings ask only for what its mapping reads, losing nothing of it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from googleapiclient.errors import HttpError

from connectors.google_mapping import LISTING_FIELDS, events_from_items
from service.model import Event, HoldKey, HoldRequest
from tests.emulators.google import GoogleEmulator
from tests.emulators.google import fields as partial
from tests.google_fixtures import connector_for, running
from tests.test_google_emulator import client

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ANOUK = "anouk@example.com"
NOW = datetime(2026, 11, 23, 7, tzinfo=UTC)
START, END = NOW - timedelta(days=56), NOW + timedelta(days=35)
WINDOW = {"timeMin": START.isoformat(), "timeMax": END.isoformat()}


@pytest.fixture(scope="module")
def google() -> Any:
    with running(EXAMPLES) as emulator:
        yield emulator


class TestTheEmulatorHonoursFields:
    def test_only_the_selected_fields_come(self, google: GoogleEmulator) -> None:
        page = (
            client(google, subject=ANOUK)
            .events()
            .list(
                calendarId="primary",
                singleEvents=True,
                fields="items(id,start/dateTime,attendees(email)),timeZone",
                **WINDOW,
            )
            .execute()
        )
        assert set(page) == {"items", "timeZone"}
        assert page["items"]
        for item in page["items"]:
            assert set(item) <= {"id", "start", "attendees"}
            assert set(item.get("start", {})) <= {"dateTime"}
            assert all(set(person) == {"email"} for person in item.get("attendees", ()))

    def test_a_wildcard_selects_every_field_at_its_level(self, google: GoogleEmulator) -> None:
        listing = client(google, subject=ANOUK).events()
        whole = listing.list(calendarId="primary", singleEvents=True, **WINDOW).execute()
        starred = listing.list(
            calendarId="primary", singleEvents=True, fields="items/*", **WINDOW
        ).execute()
        assert starred == {"items": whole["items"]}

    @pytest.mark.parametrize(
        ("selection", "named"),
        [("items(title)", "title"), ("items/start/zone", "zone"), ("items(id", "items(id")],
    )
    def test_a_selection_google_has_no_field_for_is_refused(
        self, google: GoogleEmulator, selection: str, named: str
    ) -> None:
        listing = client(google, subject=ANOUK).events()
        with pytest.raises(HttpError) as caught:
            listing.list(calendarId="primary", singleEvents=True, fields=selection).execute()
        assert caught.value.status_code == 400
        error = json.loads(caught.value.content)["error"]
        assert error["message"] == f"Invalid field selection {named}"

    def test_selections_merge_as_documented(self) -> None:
        assert partial.parse("a/b,a/c") == {"a": {"b": None, "c": None}}
        assert partial.parse("a/b, a") == {"a": None}
        assert partial.parse("a(b,c/d)") == {"a": {"b": None, "c": {"d": None}}}


class TestKindlyAsksForWhatItReads:
    def test_the_listing_fields_are_valid(self) -> None:
        partial.check(partial.parse(LISTING_FIELDS), "calendar.v3.json", "calendar.events.list")

    def test_partial_listings_map_as_whole_ones(self, google: GoogleEmulator) -> None:
        """Every demo manager's calendar, with a hold of Kindly's on it: the events read
        through the connector (partial pages) equal the mapping of whole resources."""
        zone = ZoneInfo("Europe/Amsterdam")
        hold = HoldRequest(
            key=HoldKey(ANOUK, "sam@example.com", "2026-W48"),
            start=NOW + timedelta(days=1),
            end=NOW + timedelta(days=1, minutes=30),
            title="1:1",
            description="Agenda",
            stamp=NOW,
            invite_report=True,
            timezone="Europe/Amsterdam",
        )

        async def read() -> dict[str, list[Event]]:
            connector = connector_for(google)
            try:
                await connector.create_hold(ANOUK, hold)
                return {
                    owner: list(await connector.events(owner, START, END, tz=zone))
                    for owner in sorted(google.org.calendars)
                }
            finally:
                await connector.aclose()

        read_back = asyncio.run(read())
        for owner, events in read_back.items():
            whole = google.org.events(owner, START, END)
            calendar_zone = google.org.calendar(owner).zone
            assert events == events_from_items(whole, zone=calendar_zone), owner
        assert any(event.hold_key for event in read_back[ANOUK])
        assert any(event.attendees and event.description for event in read_back[ANOUK])

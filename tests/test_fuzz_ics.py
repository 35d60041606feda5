"""Fuzzing ``.ics`` calendars: whatever a file holds, the connector reads events or says why.

Calendars are generated from the grammar (components, properties, parameters
and values, each well formed or broken): missing DTSTART, unknown TZID,
huge and endless RRULEs, deeply nested components, oversized files, bytes
that are not UTF-8. Reading one gives well-typed events, or one
``CalendarDataError`` line naming the file; nothing else, and soon.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.ics import IcsConnector
from service.errors import CalendarDataError
from tests.fuzzing import HOSTILE_ALPHABET, deep, outcome, quick
from tests.test_fuzz_providers import assert_well_typed

MANAGER = "maria@example.com"
REPORT = "sam@example.com"
AMS = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 11, 23, 8, tzinfo=UTC)
#: the window a weekly run reads: the lookback and the horizon
START, END = NOW - timedelta(days=56), NOW + timedelta(days=7)
#: small limits, so the fuzzing reaches them often
MAX_BYTES, MAX_OCCURRENCES = 200_000, 500
#: a calendar is read in well under this, however hostile (seconds)
PATIENCE = 10.0

junk = st.text(HOSTILE_ALPHABET.filter(lambda c: c not in "\r\n"), max_size=30)
moments = st.sampled_from(
    [
        "20261116T090000Z",
        "20261116T090000",
        "20261116",
        "20261116T250000Z",
        "99991231T235959Z",
        "00010101T000000",
        "2026-11-16T09:00:00",
        "",
        "T",
    ]
)
rrules = st.one_of(
    st.sampled_from(
        [
            "FREQ=WEEKLY",
            "FREQ=SECONDLY",
            "FREQ=SECONDLY;INTERVAL=1",
            "FREQ=MINUTELY;BYSECOND=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19",
            "FREQ=DAILY;COUNT=100000000",
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
            "FREQ=WEEKLY;UNTIL=19000101T000000Z",
            "FREQ=HOURLY;BYHOUR=99",
            "FREQ=NEVER",
            "COUNT=3",
            "FREQ=DAILY;INTERVAL=0",
            "FREQ=DAILY;INTERVAL=-1",
            "FREQ=MONTHLY;BYDAY=-53MO",
            "FREQ=DAILY;UNTIL=20261116",
        ]
    ),
    junk,
)
zones = st.sampled_from(["Europe/Amsterdam", "UTC", "Mars/Olympus", "W. Europe Standard Time", ""])
properties = st.one_of(
    st.builds("DTSTART:{}".format, moments),
    st.builds("DTSTART;TZID={}:{}".format, zones, moments),
    st.builds("DTSTART;VALUE=DATE:{}".format, moments),
    st.builds("DTEND:{}".format, moments),
    st.builds("DTEND;TZID={}:{}".format, zones, moments),
    st.builds("DURATION:{}".format, st.sampled_from(["PT30M", "P1D", "-PT1H", "P9999999W", "x"])),
    st.builds("RRULE:{}".format, rrules),
    st.builds("EXDATE:{}".format, moments),
    st.builds("RDATE:{}".format, moments),
    st.builds("RECURRENCE-ID:{}".format, moments),
    st.builds("STATUS:{}".format, st.sampled_from(["CANCELLED", "TENTATIVE", "CONFIRMED", "?"])),
    st.builds("TRANSP:{}".format, st.sampled_from(["TRANSPARENT", "OPAQUE", "MAYBE"])),
    st.builds("X-MICROSOFT-CDO-BUSYSTATUS:{}".format, st.sampled_from(["OOF", "FREE", "ZZZ"])),
    st.builds("ORGANIZER:mailto:{}".format, st.sampled_from([MANAGER, REPORT, "", "x@"])),
    st.builds(
        "ATTENDEE;PARTSTAT={};CUTYPE={}:mailto:{}".format,
        st.sampled_from(["ACCEPTED", "DECLINED", "NEEDS-ACTION", "WHATEVER"]),
        st.sampled_from(["INDIVIDUAL", "ROOM", "?"]),
        st.sampled_from([MANAGER, REPORT, "", "no-at-sign"]),
    ),
    st.builds("UID:{}".format, st.sampled_from(["a", "b", ""]) | junk),
    st.builds("SUMMARY:{}".format, junk),
    st.builds("DESCRIPTION:{}".format, junk),
    st.builds("X-KINDLY-HOLD-WEEK:{}".format, junk),
    st.builds("{}:{}".format, st.from_regex(r"[A-Z-]{1,12}", fullmatch=True), junk),
)


@st.composite
def vevents(draw: st.DrawFn) -> list[str]:
    body = ["UID:" + draw(st.sampled_from(["one", "two", "three"])), "DTSTAMP:20261101T000000Z"]
    if draw(st.booleans()):
        body.append("DTSTART;TZID=Europe/Amsterdam:20261116T090000")
    body += draw(st.lists(properties, max_size=6))
    if draw(st.integers(0, 9)) == 0:
        body.append(draw(junk))  # a line that is no property at all
    if draw(st.integers(0, 5)) == 0:
        depth = draw(st.integers(1, 60))
        body += ["BEGIN:VALARM"] * depth + ["ACTION:DISPLAY"] + ["END:VALARM"] * depth
    if draw(st.integers(0, 9)) == 0:
        body = body[: draw(st.integers(0, len(body)))]  # an END missing, or more
    return ["BEGIN:VEVENT", *body, "END:VEVENT"]


@st.composite
def calendars(draw: st.DrawFn) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//fuzz//EN"]
    if draw(st.booleans()):
        lines.append("X-WR-TIMEZONE:" + draw(zones))
    for event in draw(st.lists(vevents(), max_size=4)):
        lines += event
    if draw(st.integers(0, 9)):
        lines.append("END:VCALENDAR")
    text = "\r\n".join(lines) + "\r\n"
    shape = draw(st.integers(0, 19))
    data = text.encode("utf-8")
    if shape == 0:
        data = data[: draw(st.integers(0, len(data)))]
    elif shape == 1:
        data = data.replace(b"\r\n", b"\r\n ", draw(st.integers(1, 5)))  # stray folding
    elif shape == 2:
        data = data + b"\xff\xfe\x00 not utf-8"
    elif shape == 3:
        data = data.replace(b"END:VCALENDAR", b"X-PAD:" + b"x" * MAX_BYTES + b"\r\nEND:VCALENDAR")
    return data


def assert_events_or_clear_error(data: bytes) -> None:
    """Read the calendar as manager and as someone's free/busy; both must end cleanly, soon."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        path = folder / f"{MANAGER}.ics"
        path.write_bytes(data)
        connector = IcsConnector(
            folder, folder / "holds", max_file_bytes=MAX_BYTES, max_occurrences=MAX_OCCURRENCES
        )
        began = time.monotonic()
        reads: list[Callable[[], Coroutine[Any, Any, object]]] = [
            lambda: connector.timezone(MANAGER),
            lambda: connector.events(MANAGER, START, END, tz=AMS),
            lambda: connector.busy(REPORT, [MANAGER], START, END, tz=AMS),
        ]
        for read in reads:
            found, error = outcome(partial(asyncio.run, read()), CalendarDataError)
            if error is not None:
                message = str(error)
                assert "\n" not in message, message
                assert "\r" not in message, message
                assert str(path) in message, message
                assert error.manager in (MANAGER, REPORT)
            for event in found if isinstance(found, list) else ():
                assert_well_typed(event)
        assert time.monotonic() - began < PATIENCE


class TestIcsFuzz:
    """Any calendar file is read as events or refused with one line naming the file."""

    @quick
    @given(calendars())
    def test_generated_calendars(self, data: bytes) -> None:
        assert_events_or_clear_error(data)

    @pytest.mark.fuzz
    @deep
    @given(calendars())
    def test_generated_calendars_long_run(self, data: bytes) -> None:
        assert_events_or_clear_error(data)


class TestIcsLimits:
    """The resource limits hold for the worst cases on purpose, each refused with a clear line."""

    @pytest.mark.parametrize(
        "rule",
        ["FREQ=SECONDLY", "FREQ=MINUTELY;COUNT=100000000", "FREQ=SECONDLY;UNTIL=99991231T235959Z"],
    )
    def test_endless_rrule(self, rule: str) -> None:
        event = ["BEGIN:VEVENT", "UID:x", "DTSTART:20200101T000000Z", f"RRULE:{rule}", "END:VEVENT"]
        data = "\r\n".join(["BEGIN:VCALENDAR", *event, "END:VCALENDAR", ""]).encode()
        assert_events_or_clear_error(data)

    def test_deep_nesting(self) -> None:
        depth = 5_000
        body = ["BEGIN:X-NEST"] * depth + ["END:X-NEST"] * depth
        data = "\r\n".join(["BEGIN:VCALENDAR", *body, "END:VCALENDAR", ""]).encode()
        assert_events_or_clear_error(data)

    def test_oversized(self) -> None:
        assert_events_or_clear_error(b"BEGIN:VCALENDAR\r\n" + b"X:" + b"y" * (MAX_BYTES + 1))


def _calendar(*event: str) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "BEGIN:VEVENT", *event, "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


class TestIcsRegressions:
    """Calendars the fuzzing found that once escaped as a traceback or a broken line."""

    def test_duration_past_year_9999(self) -> None:
        data = _calendar("UID:one", "DTSTART:20261116T090000Z", "DURATION:P9999999W")
        assert_events_or_clear_error(data)

    def test_uid_with_a_line_break_and_a_bad_start(self) -> None:
        data = _calendar("UID:one\\ntwo", "UID:three", "DTSTART:2026-11-16")
        assert_events_or_clear_error(data)

    def test_recurrence_id_in_year_one(self) -> None:
        data = _calendar(
            "UID:one",
            "DTSTART;TZID=Europe/Amsterdam:20261116T090000",
            "RECURRENCE-ID:00010101T000000",
        )
        assert_events_or_clear_error(data)

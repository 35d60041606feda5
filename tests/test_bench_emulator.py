"""The bench's Graph emulator keeps its answers to reads: they must stay the answers the
plain emulator gives, through writes, or the bench would measure a different API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.generate import NOW, generate
from bench.serve import BenchOrganisation, KeptReads, window
from connectors.outlook import EVENT_FIELDS, HOLD_PROPERTY, UTC_PREFERENCE
from service.model import Policy
from tests.emulators.graph.graph import Call, GraphApi

ROOT = "https://127.0.0.1:1/v1.0"
ROLES = frozenset({"Calendars.ReadWrite", "MailboxSettings.Read"})


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bench-org")
    generate(folder, 2, seed=7)
    return folder


def _listing(manager: str, skip: int = 0) -> Call:
    start, end = window(NOW, Policy())
    query = {
        "startDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endDateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "$select": EVENT_FIELDS,
        "$top": "10",
        "$expand": f"singleValueExtendedProperties($filter=id eq '{HOLD_PROPERTY}')",
    }
    if skip:
        query["$skip"] = str(skip)
    headers = {k.lower(): v for k, v in UTC_PREFERENCE.items()}
    path = f"/users/{manager}/calendarView"
    return Call("GET", path, query, headers, b"", ROOT, ROLES)


def _schedule(manager: str, people: list[str]) -> Call:
    body = {
        "schedules": people,
        "startTime": {"dateTime": "2026-11-18T07:00:00", "timeZone": "UTC"},
        "endTime": {"dateTime": "2026-12-28T07:00:00", "timeZone": "UTC"},
        "availabilityViewInterval": 15,
    }
    path = f"/users/{manager}/calendar/getSchedule"
    return Call("POST", path, {}, {}, json.dumps(body).encode(), ROOT, ROLES)


def _create(owner: str, start: str) -> Call:
    body = {
        "subject": "1:1",
        "start": {"dateTime": start, "timeZone": "UTC"},
        "end": {"dateTime": start.replace("T09", "T10"), "timeZone": "UTC"},
        "transactionId": f"kindly-{owner}-{start}",
    }
    return Call("POST", f"/users/{owner}/events", {}, {}, json.dumps(body).encode(), ROOT, ROLES)


def test_kept_answers_are_the_plain_answers_through_writes(org: Path) -> None:
    plain = GraphApi(BenchOrganisation.load(org), page_size=10)
    kept = KeptReads(BenchOrganisation.load(org), page_size=10)
    manager, report = "m00000@bench.example", "m00000r0@bench.example"
    reads = [_listing(manager), _listing(manager, 10), _schedule(manager, [report, manager])]
    script = [
        *reads,
        *reads,  # answered from what was kept
        _create(manager, "2026-11-25T09:00:00"),  # the manager's listing and schedule change
        *reads,
        _create(report, "2026-11-26T09:00:00"),  # the report's schedule changes
        *reads,
        *reads,
    ]
    same: dict[bytes, bytes] = {}  # a created event's id in one API -> in the other
    for number, call in enumerate(script):
        want, got = plain.handle(call), kept.handle(call)
        if call.path.endswith("/events"):  # ids of created events are random: map them
            theirs, ours = json.loads(want.body)["id"], json.loads(got.body)["id"]
            same |= {ours.encode(): theirs.encode(), ours[-16:].encode(): theirs[-16:].encode()}
        body = got.body
        for ours_id, theirs_id in same.items():
            body = body.replace(ours_id, theirs_id)
        assert (got.status, got.headers, body) == (want.status, want.headers, want.body), (
            f"call {number}: {call.method} {call.path}"
        )
    # three reads kept, again after the manager's write (all three show the manager), and
    # the schedule once more after the report's write (only it shows the report)
    assert len(kept._answers) == 3 + 3 + 1


def test_a_write_to_another_mailbox_keeps_the_answer(org: Path) -> None:
    kept = KeptReads(BenchOrganisation.load(org), page_size=10)
    manager, other = "m00000@bench.example", "m00001@bench.example"
    first = kept.handle(_listing(manager))
    assert kept.handle(_create(other, "2026-11-25T09:00:00")).status == 201
    assert kept.handle(_listing(manager)).body == first.body
    assert len(kept._answers) == 1

"""Parity: each demo organisation gives the same week read from `.ics` files and from Google.

The Google emulator serves an ``examples/`` folder (the roster and calendars the ICS
connector reads), and the installed ``kindly`` command runs against each the way an admin
runs it: a clean environment, a scratch working folder, the clock pinned to the scenario's
week (``tests/scenarios.py``: the November demo and the holiday week).
``pytest tests/test_google_parity.py -s -k counts`` prints the requests per manager.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.ics import IcsConnector
from service.meetings import is_one_on_one
from service.model import Event
from tests.conftest import KINDLY, clean_environ
from tests.emulators.google import GoogleEmulator, request_counts
from tests.google_fixtures import KEY, connector_for, running, vcalendar, write_org
from tests.scenarios import SCENARIOS, Scenario


@dataclass(frozen=True)
class Run:
    """One ``kindly run --once --json`` and the requests the emulator saw during it."""

    returncode: int
    stdout: str
    stderr: str
    counts: dict[str, dict[str, int]]

    def lines(self) -> dict[str, dict[str, Any]]:
        return {line["manager"]: line for line in map(json.loads, self.stdout.splitlines())}

    def explain(self) -> str:
        return f"exit {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


@dataclass(frozen=True)
class Runs:
    """A scenario's week through ICS once and through Google twice, in one emulator."""

    scenario: Scenario
    ics: Run
    google: Run
    again: Run
    #: events Kindly created on each manager's Google calendar after each Google run
    inserted: dict[str, int]
    inserted_again: dict[str, int]


def kindly(
    scenario: Scenario, cwd: Path, env: Mapping[str, str], google: GoogleEmulator | None = None
) -> Run:
    """Run the scenario's week as the `run_kindly` fixture does, counting the emulator's
    requests."""
    since = len(google.log) if google else 0
    done = subprocess.run(
        [str(KINDLY), "run", "--once", "--json", "--now", scenario.now],
        cwd=cwd,
        env=clean_environ({"KINDLY_ROSTER_FILE": str(scenario.roster), **env}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    counts = request_counts(google.api, since=since) if google else {}
    return Run(done.returncode, done.stdout, done.stderr, counts)


def inserted(google: GoogleEmulator, managers: list[str]) -> dict[str, int]:
    return {manager: len(google.inserted(manager)) for manager in managers}


@pytest.fixture(scope="module", params=SCENARIOS, ids=str)
def runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runs]:
    scenario: Scenario = request.param
    work = tmp_path_factory.mktemp("parity")
    ics = kindly(
        scenario,
        work,
        {
            "KINDLY_ICS__DIR": str(scenario.calendars),
            "KINDLY_ICS__HOLDS_DIR": str(work / "ics-holds"),
            "KINDLY_EMAIL__OUTBOX_DIR": str(work / "ics-outbox"),
        },
    )
    with GoogleEmulator.from_folder(scenario.folder, port=0) as google:
        key = work / "service-account.json"
        key.write_text(json.dumps(google.service_account(key=KEY)), encoding="utf-8")
        env = {
            "KINDLY_CALENDAR": "google",
            "KINDLY_GOOGLE__API_ENDPOINT": google.base_url,
            "KINDLY_GOOGLE__SERVICE_ACCOUNT_FILE": str(key),
            "KINDLY_EMAIL__OUTBOX_DIR": str(work / "google-outbox"),
        }
        first = kindly(scenario, work, env, google)
        after_first = inserted(google, scenario.managers)
        again = kindly(scenario, work, env, google)
        yield Runs(scenario, ics, first, again, after_first, inserted(google, scenario.managers))


class TestSameWeek:
    """The ICS and Google runs report the same hand-worked week for every manager."""

    @pytest.mark.parametrize("calendar", ["ics", "google"])
    def test_exits_zero_with_one_clean_line_per_manager(self, runs: Runs, calendar: str) -> None:
        run: Run = getattr(runs, calendar)
        assert run.returncode == 0, run.explain()
        lines = run.lines()
        assert sorted(lines) == runs.scenario.managers, run.explain()
        assert all(line["errors"] == [] for line in lines.values()), run.explain()

    def test_google_agrees_with_ics_and_the_expected_week(self, runs: Runs) -> None:
        scenario = runs.scenario
        from_ics = scenario.contracts(runs.ics.lines())
        from_google = scenario.contracts(runs.google.lines())
        assert from_google == from_ics
        assert from_google == scenario.expected

    def test_both_send_one_digest_per_manager(self, runs: Runs) -> None:
        for run in (runs.ics, runs.google):
            assert {m: line["email"]["sent"] for m, line in run.lines().items()} == dict.fromkeys(
                runs.scenario.managers, True
            )


class TestGoogleRerun:
    """Running the same week against Google again creates no event and sends nothing."""

    def test_no_new_event_on_any_calendar(self, runs: Runs) -> None:
        holds = {manager: runs.scenario.holds(manager) for manager in runs.scenario.managers}
        assert runs.inserted == holds
        assert runs.inserted_again == runs.inserted

    def test_no_write_request_at_all(self, runs: Runs) -> None:
        assert runs.again.returncode == 0, runs.again.explain()
        assert {m: kinds.get("events.insert", 0) for m, kinds in runs.again.counts.items()} == (
            dict.fromkeys(runs.scenario.managers, 0)
        )

    def test_same_week_reported_and_nothing_sent(self, runs: Runs) -> None:
        lines = runs.again.lines()
        assert runs.scenario.contracts(lines) == runs.scenario.expected
        assert {m: line["email"]["sent"] for m, line in lines.items()} == dict.fromkeys(
            runs.scenario.managers, False
        )
        assert all(not hold["created"] for line in lines.values() for hold in line["holds"])


def table(counts: Mapping[str, Mapping[str, int]]) -> str:
    kinds = sorted({kind for row in counts.values() for kind in row})
    rows = [["manager", *kinds, "total"]]
    for user, row in counts.items():
        rows.append([user, *(str(row.get(k, 0)) for k in kinds), str(sum(row.values()))])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


class TestRequestCounts:
    """A manager's week costs one token, one listing, one free/busy query and one insert
    per hold; only the manager without a roster time zone asks for the calendar's."""

    def test_counts_per_manager_by_kind(self, runs: Runs) -> None:
        print(f"\nrequests per manager, first run:\n{table(runs.google.counts)}")
        print(f"\nrequests per manager, re-run:\n{table(runs.again.counts)}")
        # nobody else is impersonated
        assert sorted(runs.google.counts) == runs.scenario.managers
        for manager, kinds in runs.google.counts.items():
            holds = runs.scenario.holds(manager)
            assert kinds.pop("token") == 1
            assert kinds.pop("events.list") == 1  # each demo fits in one 250-event page
            # once for who is away (a manager away this week is asked no more than that)
            assert 1 <= kinds.pop("freebusy.query") <= max(holds, 1)
            assert kinds.pop("events.insert", 0) == holds
            # only Daniel's roster entry has no time zone, so only his calendar is asked
            assert kinds.pop("settings.get", 0) == (1 if manager == "daniel@example.com" else 0)
            assert kinds == {}, f"unexpected requests for {manager}"


AMS = ZoneInfo("Europe/Amsterdam")
MARIA, SAM = "maria@example.com", "sam@example.com"
WINDOW = (datetime(2026, 11, 1, tzinfo=AMS), datetime(2026, 12, 1, tzinfo=AMS))
#: people lines of an event on Maria's calendar; none has an ORGANIZER line
WITHOUT_ORGANIZER = {
    "only the report invited": "ATTENDEE;PARTSTAT=ACCEPTED:mailto:sam@example.com",
    "both listed": "ATTENDEE;PARTSTAT=ACCEPTED:mailto:maria@example.com\n"
    "ATTENDEE;PARTSTAT=ACCEPTED:mailto:sam@example.com",
    "the report declined": "ATTENDEE;PARTSTAT=DECLINED:mailto:sam@example.com",
    "a third person": "ATTENDEE:mailto:sam@example.com\nATTENDEE:mailto:noor@example.com",
    "nobody": "",
}


async def read_both(tmp_path: Path, people: str) -> tuple[Event, Event]:
    """The one event on Maria's calendar, through the ICS connector and through Google."""
    event = f"UID:case\nDTSTART:20261110T090000Z\nDTEND:20261110T093000Z\n{people}"
    org = write_org(tmp_path / "org", {MARIA: vcalendar(event)})
    ics = IcsConnector(org / "calendars", tmp_path / "holds")
    (from_ics,) = await ics.events(MARIA, *WINDOW, tz=AMS)
    with running(org) as google:
        connector = connector_for(google)
        (from_google,) = await connector.events(MARIA, *WINDOW, tz=AMS)
        await connector.aclose()
    return from_ics, from_google


class TestWithoutOrganizer:
    """An event with no ORGANIZER is a one-on-one through Google exactly when it is one
    through `.ics`: Google always names an organizer, the calendar's owner by default."""

    @pytest.mark.parametrize("case", list(WITHOUT_ORGANIZER))
    async def test_same_answer_either_way(self, tmp_path: Path, case: str) -> None:
        from_ics, from_google = await read_both(tmp_path, WITHOUT_ORGANIZER[case])
        assert from_google.organizer == MARIA
        assert is_one_on_one(from_ics, MARIA, SAM) == is_one_on_one(from_google, MARIA, SAM)

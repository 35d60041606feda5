"""The demo organisations in ``examples/``, end to end: what a new user sees first.

The expected weeks in ``tests/expected/`` were worked out by hand from the calendars
(``examples/README.md`` and ``examples/holiday-week/README.md`` explain every decision).
The runs go through the installed ``kindly`` command, as ``make demo`` does, from an empty
folder so no ``.env`` is read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import icalendar
import pytest
import yaml

from tests.scenarios import SCENARIOS, Scenario

KINDLY = Path(sys.executable).with_name("kindly")


@dataclass(frozen=True)
class DemoRun:
    """One ``kindly run --once --json`` and the folders it left behind."""

    returncode: int
    stdout: str
    stderr: str
    holds: dict[str, bytes]
    outbox: dict[str, bytes]

    def lines(self) -> list[dict[str, Any]]:
        parsed = []
        for text in self.stdout.splitlines():
            try:
                parsed.append(json.loads(text))
            except ValueError:
                pytest.fail(f"stdout line is not JSON: {text!r}\n{self.explain()}")
        return parsed

    def by_manager(self) -> dict[str, dict[str, Any]]:
        return {line["manager"]: line for line in self.lines()}

    def line(self, manager: str) -> dict[str, Any]:
        found = self.by_manager().get(manager)
        assert found is not None, f"no line for {manager}\n{self.explain()}"
        return found

    def explain(self) -> str:
        return f"exit {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones too) with its bytes."""
    if not root.exists():
        return {}
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _run_demo(scenario: Scenario, workdir: Path) -> DemoRun:
    holds, outbox = workdir / "holds", workdir / "outbox"
    # A developer's own KINDLY_ variables must not change the demo's answers.
    env = {key: value for key, value in os.environ.items() if not key.startswith("KINDLY_")}
    env |= {
        "KINDLY_ROSTER_FILE": str(scenario.roster),
        "KINDLY_ICS__DIR": str(scenario.calendars),
        "KINDLY_ICS__HOLDS_DIR": str(holds),
        "KINDLY_EMAIL__OUTBOX_DIR": str(outbox),
    }
    done = subprocess.run(
        [str(KINDLY), "run", "--once", "--now", scenario.now, "--json"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return DemoRun(done.returncode, done.stdout, done.stderr, _tree(holds), _tree(outbox))


@pytest.fixture(scope="module", params=SCENARIOS, ids=str)
def scenario(request: pytest.FixtureRequest) -> Scenario:
    found: Scenario = request.param
    return found


@pytest.fixture(scope="module")
def runs(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoRun, DemoRun]:
    """The demo run twice in the same empty folder, as a re-run after a crash would."""
    assert KINDLY.exists(), f"{KINDLY} not found; install the project with `pip install -e .`"
    workdir = tmp_path_factory.mktemp("demo")
    first = _run_demo(scenario, workdir)
    second = _run_demo(scenario, workdir)
    return first, second


def _rerun_view(line: dict[str, Any]) -> dict[str, Any]:
    """A line with the two fields a re-run legitimately changes set aside."""
    view = dict(line)
    view["email"] = {**line["email"], "sent": None} if line["email"] else None
    view["holds"] = [{k: v for k, v in hold.items() if k != "created"} for hold in line["holds"]]
    return view


class TestDemoRun:
    """The first run on the demo organisation reports exactly the hand-worked week."""

    def test_exits_zero_with_one_json_object_per_manager_and_nothing_else(
        self, runs: tuple[DemoRun, DemoRun], scenario: Scenario
    ) -> None:
        first, _ = runs
        assert first.returncode == 0, first.explain()
        lines = first.lines()
        assert all(isinstance(line, dict) for line in lines), first.explain()
        assert sorted(line["manager"] for line in lines) == scenario.managers, first.explain()

    def test_decisions_match_the_hand_worked_week(
        self, runs: tuple[DemoRun, DemoRun], scenario: Scenario
    ) -> None:
        found = {m: scenario.contract(runs[0].line(m)) for m in scenario.managers}
        assert found == scenario.expected

    def test_digest_is_sent_without_errors(
        self, runs: tuple[DemoRun, DemoRun], scenario: Scenario
    ) -> None:
        for manager in scenario.managers:
            line = runs[0].line(manager)
            assert line["errors"] == []
            email = line["email"]
            assert email == {"message_id": email["message_id"], "sent": True}
            assert isinstance(email["message_id"], str)
            assert email["message_id"]

    def test_holds_land_on_the_managers_calendar_file(
        self, runs: tuple[DemoRun, DemoRun], scenario: Scenario
    ) -> None:
        for manager in scenario.managers:
            expected = {
                (datetime.fromisoformat(hold["start"]), datetime.fromisoformat(hold["end"]))
                for hold in scenario.expected[manager]["holds"]
            }
            written = runs[0].holds.get(f"{manager}.ics")
            events = icalendar.Calendar.from_ical(written).walk("VEVENT") if written else []
            found = {(e.decoded("DTSTART"), e.decoded("DTEND")) for e in events}
            assert found == expected, manager


class TestDemoRerun:
    """Running the same week again changes nothing: no second email, no second hold."""

    def test_same_lines_except_that_nothing_is_sent_again(
        self, runs: tuple[DemoRun, DemoRun], scenario: Scenario
    ) -> None:
        first, second = runs
        assert second.returncode == 0, second.explain()
        again = second.by_manager()
        assert len(second.lines()) == len(again) == len(scenario.managers), second.explain()
        assert {m: (line["email"] or {}).get("sent") for m, line in again.items()} == dict.fromkeys(
            scenario.managers, False
        )
        assert {m: _rerun_view(line) for m, line in again.items()} == {
            m: _rerun_view(line) for m, line in first.by_manager().items()
        }

    def test_outbox_and_holds_are_byte_identical(self, runs: tuple[DemoRun, DemoRun]) -> None:
        first, second = runs
        assert first.outbox, "the first run wrote no digest"
        assert first.holds, "the first run wrote no hold"
        assert second.outbox == first.outbox
        assert second.holds == first.holds


CALENDAR_FILES = [path for s in SCENARIOS for path in sorted(s.calendars.glob("*.ics"))]


def _roster(scenario: Scenario) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(scenario.roster.read_text(encoding="utf-8"))
    return data


def _roster_emails(scenario: Scenario) -> list[str]:
    managers = _roster(scenario)["managers"]
    reports = [report["email"] for manager in managers for report in manager["reports"]]
    return [manager["email"] for manager in managers] + reports


def _props(event: icalendar.Component, name: str) -> list[Any]:
    value = event.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class TestDemoFiles:
    """The demo's files are valid as written, so a new user can copy and edit them."""

    @pytest.mark.parametrize(
        "path", CALENDAR_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.name}"
    )
    def test_every_calendar_parses_with_icalendar(self, path: Path) -> None:
        calendar = icalendar.Calendar.from_ical(path.read_bytes())
        assert calendar.walk("VEVENT")

    @pytest.mark.parametrize(
        "path", CALENDAR_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.name}"
    )
    def test_every_tzid_used_has_a_vtimezone(self, path: Path) -> None:
        calendar = icalendar.Calendar.from_ical(path.read_bytes())
        defined = {str(zone["TZID"]) for zone in calendar.walk("VTIMEZONE")}
        used = {
            str(prop.params["TZID"])
            for event in calendar.walk("VEVENT")
            for name in ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE")
            for prop in _props(event, name)
            if "TZID" in prop.params
        }
        assert used <= defined

    def test_roster_emails_are_lower_case_and_unique(self, scenario: Scenario) -> None:
        emails = _roster_emails(scenario)
        assert [email for email in emails if email != email.lower()] == []
        assert len(emails) == len(set(emails))
        assert all(email.endswith("@example.com") for email in emails)

    def test_every_calendar_belongs_to_someone_in_the_roster(self, scenario: Scenario) -> None:
        emails = set(_roster_emails(scenario))
        managers = {manager["email"] for manager in _roster(scenario)["managers"]}
        files = {path.name.removesuffix(".ics") for path in scenario.calendars.glob("*.ics")}
        assert managers <= files
        assert files <= emails

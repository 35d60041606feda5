"""The `kindly` command's contract: exit statuses, one line per problem, clean stdout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import RunKindly

NOW = "2026-11-23T08:00:00+01:00"

ROSTER = """\
managers:
  - email: ann@example.com
    timezone: Europe/Amsterdam
    reports:
      - email: bo@example.com
  - email: cy@example.com
    timezone: Europe/Amsterdam
    reports:
      - email: di@example.com
"""

CALENDAR = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:one@test
DTSTAMP:20261101T000000Z
DTSTART:20261102T100000Z
DTEND:20261102T103000Z
SUMMARY:1:1
ORGANIZER:mailto:{manager}
ATTENDEE;PARTSTAT=ACCEPTED:mailto:{manager}
ATTENDEE;PARTSTAT=ACCEPTED:mailto:{report}
END:VEVENT
END:VCALENDAR
"""


@pytest.fixture
def org(tmp_path: Path) -> dict[str, str]:
    """Two managers, each with one report last met three weeks ago."""
    calendars = tmp_path / "org" / "calendars"
    calendars.mkdir(parents=True)
    (tmp_path / "org" / "roster.yaml").write_text(ROSTER)
    for manager, report in (("ann", "bo"), ("cy", "di")):
        (calendars / f"{manager}@example.com.ics").write_text(
            CALENDAR.format(manager=f"{manager}@example.com", report=f"{report}@example.com"),
            newline="\r\n",
        )
    return {
        "KINDLY_ROSTER_FILE": str(tmp_path / "org" / "roster.yaml"),
        "KINDLY_ICS__DIR": str(calendars),
        "KINDLY_ICS__HOLDS_DIR": str(tmp_path / "out" / "holds"),
        "KINDLY_EMAIL__OUTBOX_DIR": str(tmp_path / "out" / "outbox"),
    }


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


class TestRun:
    """`kindly run --once` runs every manager and reports per manager."""

    def test_json_lines_only_on_stdout(self, run_kindly: RunKindly, org: dict[str, str]) -> None:
        done = run_kindly("run", "--once", "--now", NOW, "--json", env=org)
        assert done.returncode == 0, done.stderr
        ann, cy = lines(done.stdout)
        assert ann["manager"] == "ann@example.com"
        assert ann["overdue"] == ["bo@example.com"]
        assert ann["held"] == {"bo@example.com": "2026-11-02"}
        assert ann["upcoming"] == []
        (hold,) = ann["holds"]  # type: ignore[misc]
        assert hold["report"] == "bo@example.com"
        assert hold["start"] == "2026-11-24T09:00:00+01:00"  # 24 h after Monday 08:00
        assert hold["end"] == "2026-11-24T09:30:00+01:00"
        assert ann["email"]["sent"] is True  # type: ignore[index]
        assert ann["errors"] == []
        assert cy["errors"] == []

    def test_dry_run_writes_nothing(
        self, run_kindly: RunKindly, org: dict[str, str], tmp_path: Path
    ) -> None:
        done = run_kindly("run", "--once", "--now", NOW, "--json", "--dry-run", env=org)
        assert done.returncode == 0, done.stderr
        assert [line["email"]["sent"] for line in lines(done.stdout)] == [False, False]  # type: ignore[index]
        assert not (tmp_path / "out").exists()

    def test_one_manager(self, run_kindly: RunKindly, org: dict[str, str]) -> None:
        done = run_kindly(
            "run", "--once", "--now", NOW, "--json", "--manager", "CY@example.com", env=org
        )
        assert [line["manager"] for line in lines(done.stdout)] == ["cy@example.com"]

    def test_human_summary_on_stderr(self, run_kindly: RunKindly, org: dict[str, str]) -> None:
        done = run_kindly("run", "--once", "--now", NOW, env=org)
        assert done.returncode == 0
        assert done.stdout == ""
        assert "ann@example.com" in done.stderr
        assert "Digests are in" in done.stderr


class TestProblems:
    """Bad input is one line on stderr and the right exit status, never a traceback."""

    def test_bad_setting_is_status_2(self, run_kindly: RunKindly, org: dict[str, str]) -> None:
        done = run_kindly("run", "--once", env={**org, "KINDLY_CALENDAR": "gmail"})
        assert done.returncode == 2
        assert done.stderr.strip().splitlines() == [
            "kindly: KINDLY_CALENDAR='gmail': Input should be 'ics', 'google' or 'outlook'"
        ]

    def test_broken_roster_is_status_2(
        self, run_kindly: RunKindly, org: dict[str, str], tmp_path: Path
    ) -> None:
        roster = Path(org["KINDLY_ROSTER_FILE"])
        roster.write_text(
            ROSTER.replace("timezone: Europe/Amsterdam", "timezone: Europe/Amsterdan", 1)
        )
        done = run_kindly("run", "--once", "--now", NOW, "--json", env=org)
        assert done.returncode == 2
        assert done.stdout == ""
        assert done.stderr.strip() == (
            f"kindly: {roster}:3: timezone: unknown time zone 'Europe/Amsterdan'; "
            "use an IANA name such as Europe/Amsterdam"
        )

    def test_broken_calendar_fails_only_that_manager(
        self, run_kindly: RunKindly, org: dict[str, str]
    ) -> None:
        broken = Path(org["KINDLY_ICS__DIR"]) / "ann@example.com.ics"
        broken.write_text("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:garbage\nEND:VCALENDAR\n")
        done = run_kindly("run", "--once", "--now", NOW, "--json", env=org)
        assert done.returncode == 1
        ann, cy = lines(done.stdout)
        assert ann["errors"]
        assert ann["email"] is None
        assert cy["errors"] == []
        assert cy["email"]["sent"] is True
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith("kindly: ann@example.com: ")
        assert "ann@example.com.ics" in line
        assert "Traceback" not in done.stderr

    def test_missing_calendar(self, run_kindly: RunKindly, org: dict[str, str]) -> None:
        (Path(org["KINDLY_ICS__DIR"]) / "cy@example.com.ics").unlink()
        done = run_kindly("run", "--once", "--now", NOW, env=org)
        assert done.returncode == 1
        assert "kindly: cy@example.com: " in done.stderr
        assert "KINDLY_ICS__DIR" in done.stderr

    def test_unknown_manager_is_status_2(self, run_kindly: RunKindly, org: dict[str, str]) -> None:
        done = run_kindly("run", "--once", "--manager", "zed@example.com", env=org)
        assert done.returncode == 2
        assert "no manager zed@example.com in the roster" in done.stderr

    def test_run_needs_once(self, run_kindly: RunKindly, org: dict[str, str]) -> None:
        done = run_kindly("run", env=org)
        assert done.returncode == 2
        assert "kindly worker" in done.stderr

    def test_bad_now(self, run_kindly: RunKindly, org: dict[str, str]) -> None:
        done = run_kindly("run", "--once", "--now", "monday", env=org)
        assert done.returncode == 2
        assert "ISO 8601" in done.stderr


class TestPreviewAndCheck:
    """preview renders HTML without side effects; check names each problem."""

    def test_preview(self, run_kindly: RunKindly, org: dict[str, str], tmp_path: Path) -> None:
        out = tmp_path / "digest.html"
        done = run_kindly(
            "preview", "--manager", "ann@example.com", "--now", NOW, "--out", str(out), env=org
        )
        assert done.returncode == 0, done.stderr
        assert "<html" in out.read_text().lower()
        assert not (tmp_path / "out").exists()

    def test_check_ok(self, run_kindly: RunKindly, org: dict[str, str]) -> None:
        done = run_kindly("check", "--now", NOW, env=org)
        assert done.returncode == 0, done.stderr
        assert "All checks passed" in done.stderr

    def test_check_reports_missing_calendar(
        self, run_kindly: RunKindly, org: dict[str, str]
    ) -> None:
        (Path(org["KINDLY_ICS__DIR"]) / "cy@example.com.ics").unlink()
        done = run_kindly("check", "--now", NOW, env=org)
        assert done.returncode == 1
        assert [line for line in done.stderr.splitlines() if line.startswith("kindly:")] == [
            line for line in done.stderr.splitlines() if "cy@example.com" in line
        ]


class TestCheckNotes:
    """`kindly check` names each event it would skip, and still passes."""

    def test_a_skipped_event_is_a_note(self, run_kindly: RunKindly, org: dict[str, str]) -> None:
        path = Path(org["KINDLY_ICS__DIR"]) / "ann@example.com.ics"
        broken = (
            "BEGIN:VEVENT\r\nUID:no-start@example.com\r\nDTSTAMP:20261101T090000Z\r\nEND:VEVENT\r\n"
        )
        path.write_text(path.read_text().replace("END:VCALENDAR", broken + "END:VCALENDAR"))
        done = run_kindly("check", "--now", NOW, env=org)
        assert done.returncode == 0, done.stderr
        notes = [line for line in done.stderr.splitlines() if line.startswith("note: ann@")]
        assert notes == [
            "note: ann@example.com.ics: skipped event UID no-start@example.com: DTSTART missing"
        ]

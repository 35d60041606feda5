"""Fuzzing end to end: the real ``kindly`` command on a tiny org with one hostile input.

Each case breaks one thing (Maria's calendar file, the roster, or a setting)
with the generators of the other fuzz modules, and runs
``kindly run --once --json`` as an admin would. Whatever it is: exit status
1 or 2 (0 if the input happened to be fine), one ``kindly:`` line per
problem and no traceback on stderr, Dan's week still done when only Maria's
calendar is bad, and every file written whole (holds and digests parse).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from email import message_from_bytes, policy
from pathlib import Path

import icalendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import runner
from tests.fuzzing import hostile_text
from tests.google_fixtures import ROSTER, vcalendar
from tests.test_fuzz_ics import calendars
from tests.test_fuzz_roster import roster_texts
from tests.test_fuzz_settings import VARIABLES

NOW = "2026-11-23T08:00:00+01:00"
MARIA, DAN = "maria@example.com", "dan@example.com"
#: one subprocess per case: a handful in the default suite, a few dozen under -m fuzz
QUICK_CASES, FUZZ_CASES = 4, 40
GOOD_CALENDAR = vcalendar(
    """
    UID:dan-ava
    DTSTAMP:20261101T000000Z
    DTSTART:20261116T090000Z
    DTEND:20261116T093000Z
    ORGANIZER:mailto:dan@example.com
    ATTENDEE;PARTSTAT=ACCEPTED:mailto:ava@example.com
    """
)

cases = st.one_of(
    st.tuples(st.just("calendar"), calendars()),
    st.tuples(st.just("roster"), roster_texts().map(str.encode)),
    st.tuples(
        st.just("setting"),
        st.tuples(st.sampled_from(VARIABLES), hostile_text).map(lambda kv: "\0".join(kv).encode()),
    ),
)


def run_case(kind: str, payload: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "calendars").mkdir()
        (root / "calendars" / f"{DAN}.ics").write_text(GOOD_CALENDAR, encoding="utf-8")
        (root / "calendars" / f"{MARIA}.ics").write_text(GOOD_CALENDAR, encoding="utf-8")
        (root / "roster.yaml").write_text(ROSTER, encoding="utf-8")
        env = {
            "KINDLY_ROSTER_FILE": str(root / "roster.yaml"),
            "KINDLY_ICS__DIR": str(root / "calendars"),
            "KINDLY_ICS__HOLDS_DIR": str(root / "out" / "holds"),
            "KINDLY_EMAIL__OUTBOX_DIR": str(root / "out" / "outbox"),
        }
        if kind == "calendar":
            (root / "calendars" / f"{MARIA}.ics").write_bytes(payload)
        elif kind == "roster":
            (root / "roster.yaml").write_bytes(payload)
        else:
            variable, value = payload.decode().split("\0", 1)
            env[variable] = value
        done = runner(root)("run", "--once", "--json", "--now", NOW, env=env)
        assert_clean_outcome(kind, done)
        assert_written_whole(root / "out")


def assert_clean_outcome(kind: str, done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert all(line.startswith("kindly: ") for line in done.stderr.splitlines()), done.stderr
    assert done.returncode in (0, 1, 2), done.stderr
    # a clean run prints nothing on stderr but warnings (an event skipped as unusable)
    problems = [line for line in done.stderr.splitlines() if ": warning: " not in line]
    assert (done.returncode == 0) == (problems == []), done.stderr
    if done.returncode == 2:
        assert done.stdout == ""
        return
    # JSON Lines end at "\n" only: an error naming a hostile path may hold U+0085 or U+2028
    rows = [line for line in done.stdout.split("\n") if line]
    outcomes = {o["manager"]: o for o in map(json.loads, rows)}
    if kind == "calendar":
        assert outcomes[DAN]["errors"] == []
        assert outcomes[DAN]["email"]["sent"]
        assert outcomes[MARIA]["errors"] or done.returncode == 0


def assert_written_whole(out: Path) -> None:
    for path in out.rglob("*"):
        if path.suffix == ".ics":
            assert icalendar.Calendar.from_ical(path.read_bytes()).events
        elif path.suffix == ".eml":
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            assert message["Message-ID"]
            assert not message.defects
        elif path.name == "ledger.jsonl":
            lines = path.read_text(encoding="utf-8").splitlines()
            assert lines
            assert all(json.loads(line)["message_id"] for line in lines)
        else:
            assert path.is_dir() or path.suffix == ".lock" or path.name == ".lock", path


class TestCliRegressions:
    """Inputs the fuzzing found, kept as examples."""

    def test_next_line_character_in_a_folder_setting(self) -> None:
        run_case("setting", b"KINDLY_ICS__DIR\x00\xc2\x85")

    def test_recurrence_id_in_year_one(self) -> None:
        lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "BEGIN:VEVENT", "UID:one"]
        lines += ["DTSTART;TZID=Europe/Amsterdam:20261116T090000", "RECURRENCE-ID:00010101T000000"]
        lines += ["END:VEVENT", "END:VCALENDAR", ""]
        run_case("calendar", "\r\n".join(lines).encode())


class TestCliFuzz:
    """One hostile input through the real command: clean lines, right exit, the rest still runs."""

    @settings(max_examples=QUICK_CASES, deadline=None)
    @given(cases)
    def test_one_hostile_input(self, case: tuple[str, bytes]) -> None:
        run_case(*case)

    @pytest.mark.fuzz
    @settings(max_examples=FUZZ_CASES, deadline=None)
    @given(cases)
    def test_one_hostile_input_long_run(self, case: tuple[str, bytes]) -> None:
        run_case(*case)

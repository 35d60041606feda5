"""What the digest says about this week's time: the manager away, a holiday, a report without
a slot, an event skipped. Each runs the pipeline on real ``.ics`` files (a dry run)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.ics import IcsConnector
from connectors.mail.outbox import FileMailer
from service.model import Manager, Report
from service.pipeline import ManagerOutcome, RunContext, run_manager
from service.settings import Settings

AMS = ZoneInfo("Europe/Amsterdam")
SAM = Report("sam@example.com", "Sam Lee")
MARIA = Manager("maria@example.com", "Maria Jansen", timezone="Europe/Amsterdam", reports=(SAM,))


def calendar(*events: str) -> str:
    body = "".join(events)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        "X-WR-TIMEZONE:Europe/Amsterdam\r\n" + body + "END:VCALENDAR\r\n"
    )


def all_day(uid: str, first: str, after_last: str, *, oof: bool = True) -> str:
    status = "X-MICROSOFT-CDO-BUSYSTATUS:OOF\r\n" if oof else ""
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261101T000000Z\r\n"
        f"DTSTART;VALUE=DATE:{first}\r\nDTEND;VALUE=DATE:{after_last}\r\n{status}"
        "SUMMARY:Away\r\nEND:VEVENT\r\n"
    )


def run(
    tmp_path: Path,
    now: datetime,
    files: dict[str, str],
    *,
    manager: Manager = MARIA,
    language: str = "en",
    **settings: object,
) -> ManagerOutcome:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    config = Settings(
        _env_file=None, ics={"dir": tmp_path, "holds_dir": tmp_path / "holds"}, **settings
    )
    ctx = RunContext(config, IcsConnector(tmp_path, tmp_path / "holds"), FileMailer(tmp_path))
    return asyncio.run(run_manager(replace(manager, language=language), ctx, now=now, dry_run=True))


def text_of(outcome: ManagerOutcome) -> str:
    assert outcome.rendered is not None, outcome.errors
    return " ".join(outcome.rendered.text.split())


class TestManagerAway:
    """A manager away this week: no holds, and the digest says so kindly, with who is due."""

    def test_away_all_week(self, tmp_path: Path) -> None:
        now = datetime(2026, 11, 23, 8, tzinfo=AMS)
        files = {"maria@example.com.ics": calendar(all_day("leave", "20261123", "20261207"))}
        outcome = run(tmp_path, now, files)
        assert outcome.holds == ()
        assert outcome.unplaced == ()
        assert outcome.away == {"maria@example.com": "2026-12-07"}
        assert outcome.overdue == ("sam@example.com",)
        text = text_of(outcome)
        assert "You’re away this week, back Mon, Dec 7: Kindly placed no holds." in text
        assert "Sam Lee: time for a 1:1" in text  # who to see when back

    def test_in_dutch(self, tmp_path: Path) -> None:
        now = datetime(2026, 11, 23, 8, tzinfo=AMS)
        files = {"maria@example.com.ics": calendar(all_day("leave", "20261123", "20261207"))}
        text = text_of(run(tmp_path, now, files, language="nl"))
        assert "Je bent deze week afwezig, ma 7 dec weer terug: Kindly blokte geen tijd." in text


class TestReportAway:
    """A report on leave is not nagged: no hold, away in --json, a warm status line."""

    def test_parental_leave(self, tmp_path: Path) -> None:
        now = datetime(2026, 11, 23, 8, tzinfo=AMS)
        files = {
            "maria@example.com.ics": calendar(),
            "sam@example.com.ics": calendar(all_day("leave", "20261102", "20270201")),
        }
        outcome = run(tmp_path, now, files)
        assert (outcome.overdue, outcome.holds, outcome.away) == ((), (), {SAM.email: None})
        text = text_of(outcome)
        assert "Sam Lee: away for now; a warm welcome back when they return" in text
        assert "time for a 1:1" not in text


class TestHoliday:
    """A holiday in the window is named where it explains the holds."""

    def test_christmas_is_named(self, tmp_path: Path) -> None:
        # Thursday 24 December: the window is Friday 25 to Thursday 31; Maria is busy on
        # every other working day until Wednesday, so Sam's hold lands on Wednesday 30
        now = datetime(2026, 12, 24, 8, tzinfo=AMS)
        busy = all_day("busy", "20261228", "20261230", oof=False)
        files = {"maria@example.com.ics": calendar(busy)}
        outcome = run(tmp_path, now, files, country="NL")
        (hold,) = outcome.holds
        assert hold.start == datetime(2026, 12, 30, 9, tzinfo=AMS)
        assert "Fri, Dec 25 is Christmas Day: no holds that day." in text_of(outcome)
        dutch = text_of(run(tmp_path, now, files, country="NL", language="nl"))
        assert "Op vr 25 dec is het Eerste kerstdag: die dag blokt Kindly niets." in dutch

    def test_no_country_no_note(self, tmp_path: Path) -> None:
        now = datetime(2026, 12, 24, 8, tzinfo=AMS)
        outcome = run(tmp_path, now, {"maria@example.com.ics": calendar()})
        (hold,) = outcome.holds
        assert hold.start == datetime(2026, 12, 25, 9, tzinfo=AMS)
        assert "Christmas" not in text_of(outcome)


class TestUnplaced:
    """A report without a slot gets one short line with the reason and a suggestion."""

    @pytest.mark.parametrize(
        ("working_days", "said"),
        [
            (frozenset({6}), "No hold for Sam: your working times don’t overlap this week."),
            (None, "No hold for Sam: your shared working hours are full this week."),
        ],
    )
    def test_reason(self, tmp_path: Path, working_days: frozenset[int] | None, said: str) -> None:
        now = datetime(2026, 11, 23, 8, tzinfo=AMS)
        sam = replace(SAM, working_days=working_days)
        # Maria is busy every working hour but lunch, which is quiet: present, yet no slot
        busy = "".join(
            f"BEGIN:VEVENT\r\nUID:b{day}{start}\r\nDTSTAMP:20261101T000000Z\r\n"
            f"DTSTART;TZID=Europe/Amsterdam:202611{day}T{start}0000\r\n"
            f"DTEND;TZID=Europe/Amsterdam:202611{day}T{end}0000\r\nSUMMARY:Busy\r\n"
            "END:VEVENT\r\n"
            for day in range(24, 31)
            for start, end in (("09", "12"), ("13", "17"))
        )
        files = {"maria@example.com.ics": calendar(busy)}
        outcome = run(tmp_path, now, files, manager=replace(MARIA, reports=(sam,)))
        assert outcome.unplaced == (SAM.email,)
        assert said in text_of(outcome)


class TestSkippedEvent:
    """An unusable event is skipped: a warning in --json, one discreet line in the digest."""

    def test_one_line(self, tmp_path: Path) -> None:
        now = datetime(2026, 11, 23, 8, tzinfo=AMS)
        broken = "BEGIN:VEVENT\r\nUID:no-start\r\nSUMMARY:x\r\nEND:VEVENT\r\n"
        outcome = run(tmp_path, now, {"maria@example.com.ics": calendar(broken)})
        assert len(outcome.warnings) == 1
        assert "no-start" in outcome.warnings[0]
        assert "1 event in your calendar could not be read; Kindly skipped it." in text_of(outcome)


class TestWindowsWithinTheApisLimits:
    """The widest free/busy window Kindly asks for fits both providers' published limits."""

    def test_lookahead_is_capped_below_both(self) -> None:
        from pydantic import ValidationError

        from tests.emulators.google.api import FREEBUSY_SPAN
        from tests.emulators.graph.graph import SCHEDULE_SPAN

        widest = Settings.model_fields["lookahead_days"].metadata
        most = max(m.le for m in widest if getattr(m, "le", None) is not None)
        assert most < min(FREEBUSY_SPAN.days, SCHEDULE_SPAN.days, 42)
        with pytest.raises(ValidationError):
            Settings(_env_file=None, lookahead_days=most + 1)

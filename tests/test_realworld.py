"""The real-world corpus, run as one organisation: nothing breaks, each file counts alone.

``tests/calendars/realworld/`` holds the test calendars of icalendar and
recurring-ical-events (their README and licences beside them), many broken on
purpose. Each file is one manager's calendar and the whole organisation runs
through the pipeline of ``kindly run --once``: every file that icalendar reads
as a VCALENDAR yields a digest (an event Kindly cannot use is skipped with a
warning), every other file is one clear error line, and nothing is a traceback.

The figures (files, digests, warnings, errors) are printed by::

    .venv/bin/pytest tests/test_realworld.py -q -rP
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest

from connectors.ics import IcsConnector
from connectors.mail.outbox import FileMailer
from service.model import Manager, Report
from service.pipeline import ManagerOutcome, RunContext, run_all
from service.settings import Settings

CORPUS = Path(__file__).parent / "calendars" / "realworld"
NOW = datetime(2026, 11, 23, 8, tzinfo=ZoneInfo("Europe/Amsterdam"))
# icalendar says so when it strips a vendor prefix from a TZID; Kindly reads on regardless
pytestmark = pytest.mark.filterwarnings("ignore::icalendar.error.GloballyUniqueTZIDGuessed")


@dataclass(frozen=True, slots=True)
class Result:
    path: Path
    #: icalendar reads the file as one VCALENDAR
    readable: bool
    outcome: ManagerOutcome

    @property
    def warnings(self) -> tuple[str, ...]:
        """As ``--json`` gives them: each distinct warning once."""
        return self.outcome.warnings

    @property
    def name(self) -> str:
        return str(self.path.relative_to(CORPUS))


def icalendar_reads(path: Path) -> bool:
    try:
        return isinstance(icalendar.Calendar.from_ical(path.read_bytes()), icalendar.Calendar)
    except Exception:  # whatever icalendar raises, it does not read the file
        return False


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[Result]:
    """Every corpus file as ``m<n>@corpus.test.ics``, one manager each, one run for all."""
    work = tmp_path_factory.mktemp("realworld")
    paths = sorted(CORPUS.rglob("*.ics"))
    managers = []
    for number, path in enumerate(paths):
        email = f"m{number:03d}@corpus.test"
        shutil.copy(path, work / f"{email}.ics")
        managers.append(Manager(email, email, reports=(Report(f"r{number:03d}@corpus.test", "R"),)))
    settings = Settings(_env_file=None, ics={"dir": work, "holds_dir": work / "holds"})
    ctx = RunContext(settings, IcsConnector(work, work / "holds"), FileMailer(work / "outbox"))
    outcomes = asyncio.run(run_all(managers, ctx, now=NOW))
    return [
        Result(path, icalendar_reads(path), outcome)
        for path, outcome in zip(paths, outcomes, strict=True)
    ]


class TestRealWorldCorpus:
    """Every readable calendar yields a digest; every other file is one clear error line."""

    def test_every_calendar_icalendar_reads_yields_a_digest(self, results: list[Result]) -> None:
        missing = [(r.name, r.outcome.errors) for r in results if r.readable and not r.outcome.ok]
        assert missing == []
        assert all(r.outcome.email is not None for r in results if r.readable)

    def test_every_other_file_is_one_clear_error(self, results: list[Result]) -> None:
        for result in (r for r in results if not r.readable):
            [error] = result.outcome.errors
            assert f"{result.outcome.manager}.ics" in error, result.name
            assert error.endswith("fix or re-export the calendar"), result.name
            assert "\n" not in error, result.name

    def test_each_warning_is_one_line_naming_file_and_event(self, results: list[Result]) -> None:
        for result in results:
            for warning in result.warnings:
                assert warning.startswith(f"{result.outcome.manager}.ics: "), warning
                assert "\n" not in warning, warning

    def test_figures(self, results: list[Result]) -> None:
        files, readable = len(results), sum(r.readable for r in results)
        digests = sum(r.outcome.email is not None for r in results)
        warned = sum(bool(r.warnings) for r in results)
        warnings = sum(len(r.warnings) for r in results)
        errors = sum(not r.outcome.ok for r in results)
        print(
            f"real-world corpus: {files} files, {readable} read by icalendar as a VCALENDAR, "
            f"{digests} digests, {warnings} warnings (in {warned} calendars), {errors} errors"
        )
        assert files > 250  # both projects' calendars are there
        assert (digests, errors) == (readable, files - readable)
        assert warnings > 0  # the corpus has broken events, and each costs a warning

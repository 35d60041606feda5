"""Running the weekly job twice at the same instant changes nothing the second time.

Whatever the instant, the second run of the real pipeline (ICS connector, file
outbox) sends nothing, places no new hold and leaves every file byte-identical.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.ics import IcsConnector
from connectors.mail.outbox import FileMailer
from service.pipeline import ManagerOutcome, RunContext, run_all
from service.roster import load_roster_file
from service.settings import Settings
from tests.conftest import EXAMPLES

ROSTER = load_roster_file(EXAMPLES / "roster.yaml")
#: the demo's calendars are dense from October 2026 into 2027
INSTANTS = st.datetimes(
    min_value=datetime(2026, 11, 2), max_value=datetime(2027, 1, 29), timezones=st.just(UTC)
).map(lambda moment: moment.replace(second=0, microsecond=0))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def run_once(work: Path, now: datetime) -> list[ManagerOutcome]:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    ctx = RunContext(
        settings=settings,
        connector=IcsConnector(EXAMPLES / "calendars", work / "holds"),
        mailer=FileMailer(work / "outbox"),
    )
    return asyncio.run(run_all(ROSTER.managers, ctx, now=now))


class TestRunTwice:
    """A second run at the same instant is a no-op, byte for byte."""

    @settings(
        max_examples=8,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(now=INSTANTS)
    def test_second_run_changes_nothing(
        self, tmp_path_factory: pytest.TempPathFactory, now: datetime
    ) -> None:
        work = tmp_path_factory.mktemp("rerun")
        first = run_once(work, now)
        assert all(o.ok for o in first), [o.errors for o in first]
        assert all(o.email is not None and o.email.sent for o in first)
        after_first = snapshot(work)

        second = run_once(work, now)
        assert snapshot(work) == after_first
        assert not any(o.email is not None and o.email.sent for o in second)
        assert not any(hold.created for o in second for hold in o.holds)
        assert [o.holds for o in second] == [
            tuple(replace(hold, created=False) for hold in o.holds) for o in first
        ]

    def test_later_in_the_same_week_keeps_the_holds(self, tmp_path: Path) -> None:
        monday = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
        first = run_once(tmp_path, monday)
        tuesday = run_once(tmp_path, monday + timedelta(days=1))
        placed = {h.key for o in first for h in o.holds}
        assert placed
        assert not any(h.created for o in tuesday for h in o.holds if h.key in placed)

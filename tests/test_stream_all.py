"""``stream_all``: outcomes in roster order as they finish, a bounded number in flight.

The calendars are the demo's, read by the real ICS connector; a gate in front of
it decides when each manager's calendar read returns, so a test can make later
managers finish first and count what is in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.ics import IcsConnector
from connectors.mail.outbox import FileMailer
from service.model import Event, Manager
from service.pipeline import WINDOW_FACTOR, ManagerOutcome, RunContext, run_all, stream_all
from service.ports import ForwardingConnector, Warn
from service.roster import load_roster_file
from service.settings import Settings
from tests.conftest import EXAMPLES

NOW = datetime(2026, 11, 23, 7, tzinfo=UTC)
DEMO = load_roster_file(EXAMPLES / "roster.yaml").managers


class GatedCalendar(ForwardingConnector):
    """The ICS connector, with each manager's calendar read held until the test lets it go."""

    def __init__(self, holds: Path) -> None:
        super().__init__(IcsConnector(EXAMPLES / "calendars", holds))
        self.gates: dict[str, asyncio.Event] = {}
        self.started: list[str] = []
        self.starts: dict[str, asyncio.Event] = {}
        self.in_flight = 0
        self.peak = 0

    def gate(self, manager: str) -> asyncio.Event:
        return self.gates.setdefault(manager, asyncio.Event())

    def start(self, manager: str) -> asyncio.Event:
        return self.starts.setdefault(manager, asyncio.Event())

    async def events(
        self,
        manager: str,
        start: datetime,
        end: datetime,
        *,
        tz: ZoneInfo,
        warn: Warn | None = None,
    ) -> Sequence[Event]:
        self.started.append(manager)
        self.start(manager).set()
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await self.gate(manager).wait()
            return await self.inner.events(manager, start, end, tz=tz, warn=warn)
        finally:
            self.in_flight -= 1


def context(tmp_path: Path, calendar: GatedCalendar, concurrency: int) -> RunContext:
    base = Settings(_env_file=None)
    return RunContext(
        settings=base.model_copy(update={"concurrency": concurrency}),
        connector=calendar,
        mailer=FileMailer(tmp_path / "outbox"),
    )


async def drain(
    managers: Sequence[Manager], ctx: RunContext, release_order: Sequence[int]
) -> tuple[list[ManagerOutcome], list[str]]:
    """Run, releasing the managers' calendar reads in ``release_order`` one at a time."""
    calendar = ctx.connector
    assert isinstance(calendar, GatedCalendar)
    finished: list[str] = []
    done = {m.email: asyncio.Event() for m in managers}
    results: list[ManagerOutcome] = []

    def on_done(outcome: ManagerOutcome) -> None:
        finished.append(outcome.manager)
        done[outcome.manager].set()

    async def consume() -> None:
        async for outcome in stream_all(managers, ctx, now=NOW, dry_run=True, on_done=on_done):
            results.append(outcome)

    consumer = asyncio.create_task(consume())
    for index in release_order:
        email = managers[index].email
        await calendar.start(email).wait()
        calendar.gate(email).set()
        await done[email].wait()
    await consumer
    return results, finished


class TestOrderAndBounds:
    @settings(max_examples=20, deadline=None)
    @given(data=st.data(), concurrency=st.integers(1, 3))
    def test_roster_order_whatever_the_finishing_order(
        self, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, concurrency: int
    ) -> None:
        managers = list(DEMO)
        calendar = GatedCalendar(tmp_path_factory.mktemp("holds"))
        ctx = context(tmp_path_factory.mktemp("work"), calendar, concurrency)
        # any finishing order the concurrency allows: among the ones started, any may go first
        order: list[int] = []
        waiting = list(range(len(managers)))
        while waiting:
            startable = waiting[:concurrency]
            pick = data.draw(st.sampled_from(startable))
            order.append(pick)
            waiting.remove(pick)
        outcomes, finished = asyncio.run(drain(managers, ctx, order))
        assert [o.manager for o in outcomes] == [m.email for m in managers]
        assert finished == [managers[i].email for i in order]
        assert calendar.peak <= concurrency
        assert all(o.rendered is None for o in outcomes)

    def test_a_slow_first_manager_holds_back_only_a_bounded_window(self, tmp_path: Path) -> None:
        """Later managers run on while the first is stuck, but no further than the window."""
        managers = [replace(DEMO[1], email=f"m{n:03}@example.com") for n in range(40)]
        calendar = GatedCalendar(tmp_path / "holds")
        ctx = context(tmp_path, calendar, concurrency=2)

        async def scenario() -> tuple[int, list[ManagerOutcome]]:
            results: list[ManagerOutcome] = []
            window = 2 * WINDOW_FACTOR
            others_done = asyncio.Semaphore(0)

            async def consume() -> None:
                async for outcome in stream_all(
                    managers, ctx, now=NOW, dry_run=True, on_done=lambda _: others_done.release()
                ):
                    results.append(outcome)

            consumer = asyncio.create_task(consume())
            for manager in managers[1:]:
                calendar.gate(manager.email).set()
            for _ in range(window - 1):  # everyone in the window but the stuck first one
                await others_done.acquire()
            for _ in range(100):  # let the loop run anything else it could (no real time)
                await asyncio.sleep(0)
            started_while_stuck = len(calendar.started)
            calendar.gate(managers[0].email).set()
            await consumer
            return started_while_stuck, results

        started, outcomes = asyncio.run(scenario())
        assert started == 2 * WINDOW_FACTOR
        assert [o.manager for o in outcomes] == [m.email for m in managers]

    def test_stopping_early_cancels_what_was_started(self, tmp_path: Path) -> None:
        calendar = GatedCalendar(tmp_path / "holds")
        ctx = context(tmp_path, calendar, concurrency=2)
        for manager in DEMO:
            calendar.gate(manager.email).set()

        async def first_only() -> ManagerOutcome:
            stream = stream_all(DEMO, ctx, now=NOW, dry_run=True)
            assert isinstance(stream, AsyncGenerator)
            try:
                return await anext(stream)
            finally:
                await stream.aclose()

        first = asyncio.run(first_only())
        assert first.manager == DEMO[0].email
        assert calendar.in_flight == 0

    def test_run_all_is_the_stream_collected(self, tmp_path: Path) -> None:
        calendar = GatedCalendar(tmp_path / "holds")
        ctx = context(tmp_path, calendar, concurrency=3)
        for manager in DEMO:
            calendar.gate(manager.email).set()
        outcomes = asyncio.run(run_all(DEMO, ctx, now=NOW, dry_run=True))
        assert [o.manager for o in outcomes] == [m.email for m in DEMO]
        assert all(o.ok and o.email is not None for o in outcomes)

"""One chaos worker process: the real worker, with faults injected at the provider edge.

``python -m tests.chaos.worker_proc ISO8601`` runs ``create_worker`` like
``kindly worker --now ISO8601``, except that calendar calls fail transiently
at ``CHAOS_FAULT_RATE`` (half before the provider acts, half after it acted
but before the answer arrives), the first ``CHAOS_CRASH_TIMES`` runs for
``CHAOS_CRASH_MANAGER`` kill the whole process with SIGKILL, and every call for
``CHAOS_MISSING_MANAGER`` is answered 404, as for a mailbox that is gone.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from service.clock import OffsetClock
from service.errors import AuthFailed, ProviderUnavailable
from service.model import Event, HoldRequest, Interval, PlacedHold
from service.ports import CalendarConnector, ForwardingConnector, Warn
from service.settings import load_settings
from service.worker import WorkerState, create_worker, on_startup

T = TypeVar("T")


class FaultyConnector(ForwardingConnector):
    """Wraps the real connector; fails and crashes as the chaos run asks."""

    def __init__(self, inner: CalendarConnector, *, rate: float, state_dir: Path) -> None:
        super().__init__(inner)
        self.rate = rate
        self.rng = random.Random(os.getpid())
        self.state_dir = state_dir
        self.crash_manager = os.environ.get("CHAOS_CRASH_MANAGER", "")
        self.crash_times = int(os.environ.get("CHAOS_CRASH_TIMES", "0"))
        self.missing_manager = os.environ.get("CHAOS_MISSING_MANAGER", "")

    def _known(self, manager: str) -> None:
        if manager == self.missing_manager:
            raise AuthFailed(f"chaos: {manager} not found (404)", manager=manager, status=404)

    def _tally(self, name: str) -> int:
        path = self.state_dir / name
        with path.open("a") as tally:
            tally.write("x")
        return path.stat().st_size

    async def _call(self, manager: str, call: Callable[[], Awaitable[T]]) -> T:
        self._known(manager)
        roll = self.rng.random()
        if roll < self.rate / 2:
            self._tally("provider-faults")
            raise ProviderUnavailable("chaos: provider unavailable (before)", manager=manager)
        result = await call()
        if roll < self.rate:
            self._tally("provider-faults")
            raise ProviderUnavailable("chaos: provider answer lost (after)", manager=manager)
        return result

    async def timezone(self, manager: str) -> ZoneInfo | None:
        self._known(manager)
        return await self.inner.timezone(manager)

    async def events(
        self,
        manager: str,
        start: datetime,
        end: datetime,
        *,
        tz: ZoneInfo,
        warn: Warn | None = None,
    ) -> Sequence[Event]:
        if manager == self.crash_manager and self._crashes() < self.crash_times:
            self._tally("crashes")
            os.kill(os.getpid(), signal.SIGKILL)
        return await self._call(
            manager, lambda: self.inner.events(manager, start, end, tz=tz, warn=warn)
        )

    def _crashes(self) -> int:
        path = self.state_dir / "crashes"
        return path.stat().st_size if path.exists() else 0

    async def busy(
        self,
        manager: str,
        people: Sequence[str],
        start: datetime,
        end: datetime,
        *,
        tz: ZoneInfo,
        warn: Warn | None = None,
    ) -> Mapping[str, Sequence[Interval] | None]:
        return await self._call(
            manager, lambda: self.inner.busy(manager, people, start, end, tz=tz, warn=warn)
        )

    async def create_hold(self, manager: str, hold: HoldRequest) -> PlacedHold:
        return await self._call(manager, lambda: self.inner.create_hold(manager, hold))


async def _startup(ctx: dict[str, Any]) -> None:
    await on_startup(ctx)
    state: WorkerState = ctx["kindly"]
    faulty = FaultyConnector(
        state.run.connector,
        rate=float(os.environ.get("CHAOS_FAULT_RATE", "0")),
        state_dir=Path(os.environ["CHAOS_STATE_DIR"]),
    )
    state.run = replace(state.run, connector=faulty)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = load_settings()
    worker = create_worker(settings, clock=OffsetClock(datetime.fromisoformat(sys.argv[1])))
    worker.on_startup = _startup
    worker.run()


if __name__ == "__main__":
    main()

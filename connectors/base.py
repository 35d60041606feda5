"""The one small interface every calendar provider implements.

``service/`` only ever sees this Protocol. Implementations translate their
provider's payloads into :mod:`service.model` and their errors into
:mod:`service.errors` at this edge; nothing provider-specific crosses it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from service.model import Event, HoldRequest, Interval, PlacedHold

#: told one line per item a connector skipped (an unusable event), naming the calendar,
#: the item and why: one bad event costs a warning, not the manager's digest
Warn = Callable[[str], None]


def skipped(calendar: str, item: str, why: str) -> str:
    """The one-line warning for an item left out: ``<calendar>: skipped event <item>: <why>``."""
    return " ".join(f"{calendar}: skipped event {item}: {why}".split())


class CalendarConnector(Protocol):
    """Reads a manager's calendar and places holds on it."""

    async def timezone(self, manager: str) -> ZoneInfo | None:
        """The zone the manager's calendar is kept in, if the provider says."""
        ...

    async def events(
        self,
        manager: str,
        start: datetime,
        end: datetime,
        *,
        tz: ZoneInfo,
        warn: Warn | None = None,
    ) -> Sequence[Event]:
        """Every occurrence overlapping [start, end), recurring series expanded,
        cancelled ones included (the digest reports them). ``tz`` places
        floating times and all-day events when the calendar names no zone. An
        unusable item is skipped and told to ``warn`` (silently without it)."""
        ...

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
        """Busy intervals of each person (read as ``manager``) in [start, end);
        ``None`` for a person whose free/busy cannot be read. ``tz`` places
        floating times and all-day events when the calendar names no zone. An
        unusable item is skipped and told to ``warn`` (silently without it)."""
        ...

    async def create_hold(self, manager: str, hold: HoldRequest) -> PlacedHold:
        """Place the hold once: a second call with the same key returns the
        hold already there (``created=False``) instead of adding another."""
        ...

    async def aclose(self) -> None:
        """Release connections and files."""
        ...

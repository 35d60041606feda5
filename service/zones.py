"""Managers' time zones for the worker's planner and ``kindly status``.

A look-up reads the manager's calendar (``zone_of``), so it can fail for one
manager (a revoked mailbox, a file that is no calendar): such a failure is
returned as that manager's result, never raised, and the others go on. The
look-ups run concurrently, at most ``LOOKUPS`` at a time, so a thousand
managers cost a few round trips' time rather than a thousand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from service.errors import KindlyError
from service.model import Manager
from service.pipeline import fallback_zone, zone_of
from service.ports import CalendarConnector
from service.settings import Settings

__all__ = ["LOOKUPS", "UNREADABLE", "fallback_zone", "zones_of"]

#: look-ups in flight at once: enough to hide latency, few enough for any provider quota
LOOKUPS = 16
#: the reason a digest is failed with when its manager's zone cannot be looked up; a
#: later planning run that can look it up lifts such a failure
UNREADABLE = "cannot read the calendar to plan this digest: "


async def zones_of(
    managers: Sequence[Manager],
    connector: CalendarConnector,
    settings: Settings,
    *,
    limit: int = LOOKUPS,
) -> list[ZoneInfo | KindlyError]:
    """Each manager's zone, or the error that stopped its look-up, in roster order."""
    gate = asyncio.Semaphore(limit)

    async def one(manager: Manager) -> ZoneInfo | KindlyError:
        async with gate:
            try:
                return await zone_of(manager, connector, settings)
            except KindlyError as exc:
                return exc

    return list(await asyncio.gather(*(one(manager) for manager in managers)))

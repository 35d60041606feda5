"""Clocks for ``service.ports.Clock``: the system's, a pinned one, one that starts pinned."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True)
class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class FixedClock:
    at: datetime

    def now(self) -> datetime:
        return self.at


@dataclass(frozen=True, slots=True)
class OffsetClock:
    """Starts at ``anchor`` and runs at real speed (``kindly worker --now``)."""

    anchor: datetime
    started: float = field(default_factory=time.monotonic)

    def now(self) -> datetime:
        return self.anchor + timedelta(seconds=time.monotonic() - self.started)

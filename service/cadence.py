"""Cadence analysis: who was met, who is coming up, who is overdue (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from service.model import Manager, Report


class ChangeKind(StrEnum):
    CANCELLED = "cancelled"
    DECLINED = "declined"
    RESCHEDULED = "rescheduled"


@dataclass(frozen=True, slots=True)
class Change:
    """A 1:1 that did not go as scheduled, for the digest's transparency block."""

    kind: ChangeKind
    report: str
    #: the occurrence's start (for a rescheduled one: its new start)
    when: datetime
    #: for a rescheduled one: where it was before
    original: datetime | None = None
    #: for a declined one: who declined (manager or report email)
    by: str | None = None


@dataclass(frozen=True, slots=True)
class ReportStatus:
    report: Report
    cadence_days: int
    #: start of the last 1:1 held within the lookback window
    last_held: datetime | None
    #: start of the first 1:1 in [now, now + horizon)
    next_upcoming: datetime | None
    overdue: bool
    #: no 1:1 held within the lookback window: "getting to know you" agenda
    long_unmet: bool
    #: roster start_date within the last 14 days (or still ahead)
    new_hire: bool
    #: 1:1s scheduled from a week ago to the end of the horizon that were
    #: cancelled, declined or moved, oldest first
    changes: tuple[Change, ...] = ()
    #: cancelled 1:1s within the lookback window
    cancelled_in_lookback: int = 0


@dataclass(frozen=True, slots=True)
class WeekCoverage:
    """Share of reports met within their cadence as of the end of one ISO week."""

    week: str
    met: int
    total: int

    @property
    def share(self) -> float:
        return self.met / self.total if self.total else 1.0


@dataclass(frozen=True, slots=True)
class TeamAnalysis:
    manager: Manager
    now: datetime
    tz: ZoneInfo
    #: in roster order
    reports: tuple[ReportStatus, ...]
    #: the last 8 ISO weeks, oldest first, the current week last
    coverage: tuple[WeekCoverage, ...] = ()

    @property
    def overdue(self) -> tuple[ReportStatus, ...]:
        return tuple(r for r in self.reports if r.overdue)

    @property
    def upcoming(self) -> tuple[ReportStatus, ...]:
        return tuple(r for r in self.reports if r.next_upcoming is not None)

"""One manager's week: every per-manager value a run needs, worked out once (pure).

The pipeline builds a :class:`ManagerWeek` as soon as it knows the manager's
zone and hands it down, so the week an outcome reports, the week a hold is
keyed by and the week the digest names are always the same one: the ISO week
the manager is living in, in their own zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from service.model import HoldKey, Manager, Policy, iso_week

#: someone away on every working day of these last days, and in now, is back from leave
RETURN_WINDOW = timedelta(days=5)
#: the longest free/busy window Kindly asks a provider for (Graph's getSchedule: < 42 days)
FREE_BUSY_SPAN = timedelta(days=41)


@dataclass(frozen=True, slots=True)
class ManagerWeek:
    manager: Manager
    #: the run's pinned instant, in UTC: day arithmetic on real 24-hour days
    now: datetime
    tz: ZoneInfo
    #: the ISO week in the manager's zone, e.g. ``2026-W48``
    week: str
    language: str
    policy: Policy

    @classmethod
    def of(
        cls,
        manager: Manager,
        *,
        now: datetime,
        tz: ZoneInfo,
        policy: Policy,
        default_language: str,
    ) -> ManagerWeek:
        utc = now.astimezone(UTC)
        return cls(
            manager=manager,
            now=utc,
            tz=tz,
            week=iso_week(utc.astimezone(tz)),
            language=manager.language or default_language,
            policy=policy,
        )

    @property
    def local_now(self) -> datetime:
        return self.now.astimezone(self.tz)

    @property
    def lookback_start(self) -> datetime:
        """Where the calendar is read from: 1:1s before this are not counted."""
        return self.now - timedelta(days=self.policy.lookback_days)

    @property
    def horizon_end(self) -> datetime:
        """Where upcoming 1:1s and holds stop."""
        return self.now + timedelta(days=self.policy.horizon_days)

    @property
    def lookahead_end(self) -> datetime:
        """Where the calendar is read to: next 1:1s and returns from leave are seen up to here."""
        return self.now + timedelta(days=self.policy.reach_days)

    @property
    def free_busy_start(self) -> datetime:
        """Where everyone's free/busy is read from: a few days back, to see who is back from
        leave, as far as the providers' window allows (getSchedule: under 42 days)."""
        ahead = self.lookahead_end - self.now
        return self.now - max(min(RETURN_WINDOW, FREE_BUSY_SPAN - ahead), timedelta(0))

    def hold_key(self, report: str) -> HoldKey:
        """The identity of this week's hold for ``report``: one per (manager, report, week)."""
        return HoldKey(self.manager.email, report.lower(), self.week)

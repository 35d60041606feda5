"""When each manager's digest is due, and what the planner does about it (pure).

The planner runs at worker start and every few minutes. Each run looks at
every manager in their own time zone: once their local time has passed
KINDLY_DIGEST_DAY at KINDLY_DIGEST_HOUR in the current ISO week, the digest
is due until it is sent or has failed for good. Because the decision only
depends on (now, ledger state), the same run is also the reconciler: a job
lost to crashes, expiry or downtime is simply planned again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from service.model import iso_week

WEEKDAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}


class Action(StrEnum):
    WAIT = "wait"  # not due yet this week
    ENQUEUE = "enqueue"  # due and not settled: (re)queue its job
    GIVE_UP = "give_up"  # too many runs without a result: mark failed
    DONE = "done"  # sent or failed for good


@dataclass(frozen=True, slots=True)
class Decision:
    manager: str
    week: str
    action: Action
    #: the instant (UTC) the digest is due this week
    due: datetime


def local_week(now: datetime, tz: ZoneInfo) -> str:
    """The ISO week the manager is living in at ``now``."""
    return iso_week(now.astimezone(tz))


def due_at(now: datetime, tz: ZoneInfo, *, day: str, hour: int) -> datetime:
    """The instant (UTC) of this local ISO week's digest day and hour.

    A local hour skipped by a DST change resolves to the instant just after
    the gap; a repeated hour to its first occurrence (zoneinfo's fold=0).
    """
    local = now.astimezone(tz)
    monday = local.date() - timedelta(days=local.isoweekday() - 1)
    day_date: date = monday + timedelta(days=WEEKDAYS[day] - 1)
    wall = datetime.combine(day_date, time(hour), tzinfo=tz)
    return wall.astimezone(UTC)


def decide(
    manager: str,
    *,
    now: datetime,
    tz: ZoneInfo,
    day: str,
    hour: int,
    settled: bool,
    attempts: int,
    max_attempts: int,
) -> Decision:
    """What the planner does for one manager at ``now``."""
    week = local_week(now, tz)
    due = due_at(now, tz, day=day, hour=hour)
    if settled:
        action = Action.DONE
    elif now < due:
        action = Action.WAIT
    elif attempts >= max_attempts:
        action = Action.GIVE_UP
    else:
        action = Action.ENQUEUE
    return Decision(manager.lower(), week, action, due)


def hashed(email: str) -> str:
    """A manager's short stable name for logs and job ids, so no address reaches a log."""
    return hashlib.sha256(email.lower().encode()).hexdigest()[:16]


def job_id(manager: str, week: str) -> str:
    """One arq job id per (manager, week): any number of planners enqueue it once."""
    return f"kindly:digest:{week}:{hashed(manager)}"


def stagger(manager: str, window: float) -> float:
    """A stable per-manager delay in [0, window) that spreads provider load."""
    if window <= 0:
        return 0.0
    digest = hashlib.sha256(manager.lower().encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 * window

"""The domain model past the connector edge: frozen, provider-neutral, tz-aware.

Connectors translate provider payloads into these; the pure core
(cadence, slots, agenda, digest) only ever sees these.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from enum import StrEnum
from functools import lru_cache

from service.values import quick_init


class Response(StrEnum):
    """An attendee's answer to an invitation."""

    ACCEPTED = "accepted"
    DECLINED = "declined"
    TENTATIVE = "tentative"
    NEEDS_ACTION = "needs_action"


class Status(StrEnum):
    """The event's own status."""

    CONFIRMED = "confirmed"
    TENTATIVE = "tentative"
    CANCELLED = "cancelled"


class ShowAs(StrEnum):
    """How the event shows on free/busy (TRANSP, transparency, showAs)."""

    BUSY = "busy"
    TENTATIVE = "tentative"
    FREE = "free"
    OOF = "oof"
    WORKING_ELSEWHERE = "working_elsewhere"


#: enum members the per-event predicates compare with, read once: on Python 3.11 every
#: ``Status.CANCELLED`` goes through ``EnumType.__getattr__``'s slot, several times the
#: cost of a global read, and a digest makes hundreds of them
CANCELLED = Status.CANCELLED
DECLINED = Response.DECLINED
FREE = ShowAs.FREE


@dataclass(frozen=True, slots=True)
class Attendee:
    """A person or resource invited to an event; ``email`` is lower-case."""

    email: str
    response: Response = Response.NEEDS_ACTION
    resource: bool = False


@lru_cache(maxsize=4096)
def interned_attendee(email: str, response: Response, resource: bool = False) -> Attendee:
    """Attendees are values: a series repeats the same few on every instance, so the
    connectors build each once and share it."""
    return Attendee(email, response, resource)


@quick_init
@dataclass(frozen=True, slots=True)
class HoldKey:
    """The identity of one Kindly hold: one per (manager, report, ISO week)."""

    manager: str
    report: str
    week: str  # ISO week, e.g. "2026-W48"

    def digest(self) -> bytes:
        """Stable bytes every provider derives its own idempotency id from."""
        raw = f"kindly-hold\n{self.manager.lower()}\n{self.report.lower()}\n{self.week}"
        return hashlib.sha256(raw.encode()).digest()

    def hex_id(self) -> str:
        """A 32-character lower-case hex id (ICS UIDs, Graph extended property)."""
        return self.digest()[:16].hex()

    def base32hex_id(self) -> str:
        """A Google event id: base32hex characters (0-9, a-v), 5-1024 long."""
        return base64.b32hexencode(self.digest()[:20]).decode().lower().rstrip("=")


@dataclass(frozen=True, slots=True)
class Event:
    """One occurrence on a calendar (recurring series arrive expanded).

    ``start``/``end`` are tz-aware; an all-day event spans whole days from
    midnight in the calendar's zone. Titles are deliberately not kept: nothing
    Kindly produces needs them, so they cannot leak.
    """

    id: str
    start: datetime
    end: datetime
    all_day: bool = False
    status: Status = Status.CONFIRMED
    show_as: ShowAs = ShowAs.BUSY
    organizer: str | None = None
    attendees: tuple[Attendee, ...] = ()
    #: only read for the "agreed expectations" recap
    description: str = ""
    #: the recurring series this occurrence belongs to
    series_id: str | None = None
    #: where a moved occurrence was originally scheduled
    original_start: datetime | None = None
    #: set when this is one of Kindly's own holds
    hold_key: HoldKey | None = None
    #: a link the manager can click to open the event, when the provider has one
    link: str | None = None

    @property
    def cancelled(self) -> bool:
        return self.status is CANCELLED

    @property
    def rescheduled(self) -> bool:
        # compared in UTC: same-zone comparisons ignore fold in the repeated hour
        return self.original_start is not None and (
            self.original_start.astimezone(UTC) != self.start.astimezone(UTC)
        )

    def response_of(self, email: str) -> Response:
        """The person's answer; an organizer not listed as attendee has accepted."""
        email = email.lower()
        for attendee in self.attendees:
            if attendee.email == email:
                return attendee.response
        if self.organizer == email:
            return Response.ACCEPTED
        return Response.NEEDS_ACTION

    def people(self) -> frozenset[str]:
        """Organizer and attendees that are people (rooms and resources left out)."""
        found = {a.email for a in self.attendees if not a.resource}
        if self.organizer:
            found.add(self.organizer)
        return frozenset(found)


@quick_init
@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """A half-open span of time [start, end)."""

    start: datetime
    end: datetime

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """A tentative hold Kindly asks a connector to place on a manager's calendar."""

    key: HoldKey
    start: datetime
    end: datetime
    title: str
    description: str
    #: when the run that asks for it started (DTSTAMP and the like): pinned, not read from a clock
    stamp: datetime
    #: invite the report (KINDLY_HOLDS__INVITE_REPORT); otherwise the manager only
    invite_report: bool = False
    timezone: str = "UTC"


@quick_init
@dataclass(frozen=True, slots=True)
class PlacedHold:
    """A hold on the calendar: created now or found already there."""

    key: HoldKey
    start: datetime
    end: datetime
    created: bool
    link: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class WorkingTime:
    """The days and hours someone works, on their own clock (``end`` after ``start``)."""

    #: ISO weekdays, 1 = Monday
    days: frozenset[int]
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class ProviderWorkingTime:
    """Working time as a calendar provider keeps it (Outlook's ``workingHours``), with the
    zone its hours are in when it names one."""

    working: WorkingTime
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """A direct report as the roster describes them; ``email`` is lower-case."""

    email: str
    name: str
    cadence_days: int | None = None
    start_date: date | None = None
    expectations: tuple[str, ...] = ()
    #: part-time days and hours, in the report's zone (roster); else the provider's, else
    #: the settings
    working_days: frozenset[int] | None = None
    working_hours: tuple[time, time] | None = None
    #: ISO 3166 country with an optional subdivision (``NL``, ``US-NY``) for public holidays
    country: str | None = None
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class Manager:
    """A manager and their reports, in roster order."""

    email: str
    name: str
    timezone: str | None = None
    language: str | None = None
    reports: tuple[Report, ...] = ()
    working_days: frozenset[int] | None = None
    working_hours: tuple[time, time] | None = None
    country: str | None = None


@dataclass(frozen=True, slots=True)
class Roster:
    managers: tuple[Manager, ...]
    source: str = ""

    def manager(self, email: str) -> Manager | None:
        email = email.lower()
        return next((m for m in self.managers if m.email == email), None)


@dataclass(frozen=True, slots=True)
class Policy:
    """The organisation's rules, as the pure core needs them."""

    cadence_days: int = 14
    lookback_days: int = 56
    horizon_days: int = 7
    #: how far ahead next 1:1s and "back on" dates are read
    lookahead_days: int = 35
    hold_minutes: int = 30
    work_start: time = time(9, 0)
    work_end: time = time(17, 0)
    holds_enabled: bool = True
    invite_report: bool = False
    support_url: str | None = None
    #: ISO weekdays (1 = Monday) on which holds may be placed
    work_days: frozenset[int] = field(default_factory=lambda: frozenset({1, 2, 3, 4, 5}))
    #: public holidays of this country (``NL``, ``US-NY``) for whom the roster names none
    country: str | None = None
    # The hold rules below are off in a bare Policy(); Settings().policy() turns on the
    # product's defaults (24 h notice, 2 a day, 30 min apart, no holds over 12:00-13:00).
    #: a hold starts this long after now at the earliest
    notice_hours: int = 0
    #: at most this many Kindly holds a day (manager's zone); 0: no cap
    max_per_day: int = 0
    #: at least this long between two Kindly holds of one week; 0: none
    gap_minutes: int = 0
    #: no hold overlaps this span of each day (manager's zone), e.g. lunch
    quiet_hours: tuple[time, time] | None = None

    @property
    def reach_days(self) -> int:
        """How far ahead the calendar is read: the lookahead, never short of the horizon."""
        return max(self.lookahead_days, self.horizon_days)

    @property
    def working_time(self) -> WorkingTime:
        """The organisation's default working time (``KINDLY_WORKING_DAYS``, start, end)."""
        return _working_time(self.work_days, self.work_start, self.work_end)


@lru_cache(maxsize=64)
def _working_time(days: frozenset[int], start: time, end: time) -> WorkingTime:
    """One value per distinct working time: every person of every team asks for the
    organisation's, and a value built once is the same value."""
    return WorkingTime(days, start, end)


def iso_week(moment: datetime | date) -> str:
    """``2026-W48`` for any instant or day in that ISO week."""
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"

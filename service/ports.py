"""The ports: the only way the core reaches the outside world.

Each port is one small Protocol. The calendar connectors (``connectors/``) and
the mailers (``connectors/mail/``) implement them and depend on the core's
model; the core depends on these Protocols alone and never names a provider.
Optional capabilities (the scopes a part uses, a Sent Items prefetch) are
methods with a harmless default, so an implementation that subclasses its
port inherits them and no caller needs ``getattr``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from service.model import (
    Event,
    HoldKey,
    HoldRequest,
    Interval,
    PlacedHold,
    ProviderWorkingTime,
)

#: where a connector reports an item it skipped (one line naming the calendar, the item and why)
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
        floating times and all-day events when the calendar names no zone; an
        unusable item is skipped and reported to ``warn``."""
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
        floating times and all-day events when the calendar names no zone."""
        ...

    async def create_hold(self, manager: str, hold: HoldRequest) -> PlacedHold:
        """Place the hold once: a second call with the same key returns the
        hold already there (``created=False``) instead of adding another."""
        ...

    async def working_hours(
        self, manager: str, people: Sequence[str]
    ) -> Mapping[str, ProviderWorkingTime]:
        """The working days and hours the provider keeps for ``people`` (the manager among
        them), as far as the calls already made this run told (Outlook's mailboxSettings
        and getSchedule); never a request of its own. Empty where the provider keeps none."""
        return {}

    def scopes(self) -> tuple[str, ...]:
        """The scopes or permissions used at the provider (``kindly check`` lists them)."""
        return ()

    async def aclose(self) -> None:
        """Release connections and files."""
        ...


class ForwardingConnector(CalendarConnector):
    """Hands every call to ``inner``: the base of a connector that adds to some calls
    (the worker's counting, a test's gate or faults) and overrides only those."""

    def __init__(self, inner: CalendarConnector) -> None:
        self.inner = inner

    async def timezone(self, manager: str) -> ZoneInfo | None:
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
        return await self.inner.events(manager, start, end, tz=tz, warn=warn)

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
        return await self.inner.busy(manager, people, start, end, tz=tz, warn=warn)

    async def create_hold(self, manager: str, hold: HoldRequest) -> PlacedHold:
        return await self.inner.create_hold(manager, hold)

    async def working_hours(
        self, manager: str, people: Sequence[str]
    ) -> Mapping[str, ProviderWorkingTime]:
        return await self.inner.working_hours(manager, people)

    def scopes(self) -> tuple[str, ...]:
        return self.inner.scopes()

    async def aclose(self) -> None:
        await self.inner.aclose()


class Message(Protocol):
    """What a mailer needs of a message: its bytes (an ``EmailMessage`` will do)."""

    def as_bytes(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """One manager's digest for one ISO week, ready to send."""

    manager: str
    week: str
    message_id: str
    message: Message


@dataclass(frozen=True, slots=True)
class SendResult:
    message_id: str
    #: False when the ledger shows this digest went out on an earlier run
    sent: bool


class Mailer(Protocol):
    """How a digest leaves Kindly; idempotent per Message-ID (``sent=False`` the second time)."""

    async def send(self, mail: OutgoingMail) -> SendResult:
        """Deliver once; a Message-ID already in the ledger is not sent again."""
        ...

    async def already_sent(self, message_id: str, *, manager: str, week: str) -> bool:
        """Whether the ledger holds this digest (dry runs and the planner ask)."""
        ...

    async def prefetch_sent(self, now: datetime) -> None:
        """Read once, for a run that ends with the process, what was sent this week."""
        return None

    def scopes(self) -> tuple[str, ...]:
        """The permissions sending uses at the provider, if any."""
        return ()

    async def aclose(self) -> None: ...


class HoldLedger(Protocol):
    """Remembers which holds were placed this week (the worker keeps it in Redis)."""

    async def was_placed(self, key: HoldKey) -> bool:
        """Whether a run placed this hold before (if it is gone, the manager removed it)."""
        ...

    async def record_placed(self, hold: PlacedHold) -> None: ...


class Clock(Protocol):
    """Where "now" comes from: the system clock, or a pinned one (``--now``, tests)."""

    def now(self) -> datetime: ...

"""One manager's weekly run, the single code path of ``kindly run --once`` and the worker.

I/O happens here and only here: the connector reads the calendar and places
holds, the mailer delivers. Everything in between is the pure core, fed with
the pinned ``now``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from connectors.base import CalendarConnector
from service.agenda import Agenda, build_agenda
from service.busy import busy_intervals
from service.cadence import ReportStatus, TeamAnalysis, analyse
from service.digest import RenderedDigest, build_digest, hold_texts, render_digest
from service.digest_email import compose_email, message_id_for
from service.errors import KindlyError
from service.mailer import Mailer, OutgoingMail
from service.meetings import MeetingIndex
from service.model import Event, HoldKey, HoldRequest, Interval, Manager, PlacedHold, iso_week
from service.recap import agreed_for_team
from service.settings import Settings
from service.slots import find_slot

#: how many managers ``stream_all`` starts ahead of the oldest unfinished one, per slot
WINDOW_FACTOR = 4


@dataclass(frozen=True, slots=True)
class EmailOutcome:
    message_id: str
    #: False when it went out on an earlier run (or, in a dry run, was not sent)
    sent: bool


@dataclass(frozen=True, slots=True)
class ManagerOutcome:
    """What one manager's run did; ``to_json`` is the ``--json`` contract."""

    manager: str
    week: str
    overdue: tuple[str, ...] = ()
    held: Mapping[str, str | None] = field(default_factory=dict)
    upcoming: tuple[str, ...] = ()
    holds: tuple[PlacedHold, ...] = ()
    #: overdue reports for whom no free slot was found in the horizon
    unplaced: tuple[str, ...] = ()
    email: EmailOutcome | None = None
    errors: tuple[str, ...] = ()
    #: problems that may pass on a retry (provider throttling, outages)
    transient: bool = False
    dry_run: bool = False
    rendered: RenderedDigest | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "manager": self.manager,
            "week": self.week,
            "overdue": list(self.overdue),
            "held": dict(self.held),
            "upcoming": list(self.upcoming),
            "holds": [
                {
                    "report": hold.key.report,
                    "start": hold.start.isoformat(),
                    "end": hold.end.isoformat(),
                    "created": hold.created,
                    "link": hold.link,
                }
                for hold in self.holds
            ],
            "unplaced": list(self.unplaced),
            "email": (
                {"message_id": self.email.message_id, "sent": self.email.sent}
                if self.email
                else None
            ),
            "errors": list(self.errors),
            "dry_run": self.dry_run,
        }


class HoldLedger(Protocol):
    """Remembers which holds were placed this week (the worker keeps it in Redis)."""

    async def was_placed(self, key: HoldKey) -> bool:
        """Whether a run placed this hold before (if it is gone, the manager removed it)."""
        ...

    async def record_placed(self, hold: PlacedHold) -> None: ...


@dataclass(frozen=True, slots=True)
class RunContext:
    """What every manager's run shares: built once by the CLI or the worker."""

    settings: Settings
    connector: CalendarConnector
    mailer: Mailer
    #: without one, a hold the manager deleted is placed again on the next run
    holds_ledger: HoldLedger | None = None


async def run_manager(
    manager: Manager, ctx: RunContext, *, now: datetime, dry_run: bool = False
) -> ManagerOutcome:
    """Run one manager's week; every problem ends up in ``errors``, never raised."""
    now = now.astimezone(UTC)  # day arithmetic on real 24-hour days, whatever zone came in
    week = iso_week(now)
    try:
        return await _run(manager, ctx, now=now, dry_run=dry_run)
    except KindlyError as exc:
        return ManagerOutcome(
            manager.email, week, errors=(str(exc),), transient=exc.transient, dry_run=dry_run
        )


async def _run(
    manager: Manager, ctx: RunContext, *, now: datetime, dry_run: bool
) -> ManagerOutcome:
    settings = ctx.settings
    policy = settings.policy()
    tz = await zone_of(manager, ctx.connector, settings)
    local_now = now.astimezone(tz)
    week = iso_week(local_now)
    language = manager.language or settings.language
    start = now - timedelta(days=policy.lookback_days)
    horizon_end = now + timedelta(days=policy.horizon_days)
    events = await ctx.connector.events(manager.email, start, horizon_end, tz=tz)
    index = MeetingIndex(events)  # the calendar bucketed by person once, not once per report
    analysis = analyse(manager, events, now=now, policy=policy, tz=tz, index=index)

    placer = _HoldPlacer(manager, ctx, events, index, now=now, tz=tz, week=week, dry_run=dry_run)
    if policy.holds_enabled and analysis.overdue:
        await placer.place_all(analysis)
    placed = {hold.key.report: hold for hold in placer.placed}

    agreed = agreed_for_team(events, manager, now=now, index=index)
    digest = build_digest(
        analysis,
        holds=placed,
        agreed=agreed,
        policy=policy,
        language=language,
        agendas=placer.agendas,
    )
    rendered = render_digest(digest)
    sender = settings.email.from_
    message_id = message_id_for(manager.email, week, sender)
    outcome = ManagerOutcome(
        manager=manager.email,
        week=week,
        overdue=tuple(sorted(r.report.email for r in analysis.overdue)),
        held=_held(analysis, tz),
        upcoming=tuple(sorted(r.report.email for r in analysis.upcoming)),
        holds=tuple(placer.placed),
        unplaced=tuple(placer.unplaced),
        errors=tuple(placer.errors),
        transient=placer.transient,
        dry_run=dry_run,
        rendered=rendered,
    )
    if placer.errors:
        # A hold failed: send nothing yet, so the retried run sends one complete digest.
        return outcome
    if dry_run:
        return replace(outcome, email=EmailOutcome(message_id, sent=False))
    message = compose_email(
        rendered, sender=sender, manager=manager, message_id=message_id, now=local_now
    )
    result = await ctx.mailer.send(OutgoingMail(manager.email, week, message_id, message))
    return replace(outcome, email=EmailOutcome(result.message_id, sent=result.sent))


async def zone_of(manager: Manager, connector: CalendarConnector, settings: Settings) -> ZoneInfo:
    """The roster's zone, else the calendar's, else KINDLY_TIMEZONE."""
    if manager.timezone:
        return ZoneInfo(manager.timezone)
    return await connector.timezone(manager.email) or ZoneInfo(settings.timezone)


def _held(analysis: TeamAnalysis, tz: ZoneInfo) -> dict[str, str | None]:
    return {
        status.report.email: (
            status.last_held.astimezone(tz).date().isoformat() if status.last_held else None
        )
        for status in analysis.reports
    }


class _HoldPlacer:
    """Places one hold per overdue report, in roster order, each seeing the ones before."""

    def __init__(
        self,
        manager: Manager,
        ctx: RunContext,
        events: Sequence[Event],
        index: MeetingIndex,
        *,
        now: datetime,
        tz: ZoneInfo,
        week: str,
        dry_run: bool,
    ) -> None:
        self.manager = manager
        self.ctx = ctx
        self.index = index
        self.now = now
        self.tz = tz
        self.week = week
        self.dry_run = dry_run
        self.placed: list[PlacedHold] = []
        #: the agendas written into holds, by report: the digest shows the same ones
        self.agendas: dict[str, Agenda] = {}
        self.unplaced: list[str] = []
        self.errors: list[str] = []
        self.transient = False
        self.busy: list[Interval] = busy_intervals(events, manager.email)

    async def place_all(self, analysis: TeamAnalysis) -> None:
        policy = self.ctx.settings.policy()
        missing = [s for s in analysis.overdue if self._existing(s) is None]
        report_busy = (
            await self.ctx.connector.busy(
                self.manager.email,
                [s.report.email for s in missing],
                self.now,
                self.now + timedelta(days=policy.horizon_days),
                tz=self.tz,
            )
            if missing
            else {}
        )
        for status in analysis.overdue:
            existing = self._existing(status)
            if existing is not None:
                if self.ctx.holds_ledger is not None:
                    await self.ctx.holds_ledger.record_placed(existing)
                self.placed.append(
                    replace(
                        existing,
                        start=existing.start.astimezone(self.tz),
                        end=existing.end.astimezone(self.tz),
                    )
                )
                continue
            ledger = self.ctx.holds_ledger
            key = HoldKey(self.manager.email, status.report.email, self.week)
            if ledger is not None and await ledger.was_placed(key):
                continue  # placed earlier this week and removed by the manager: respect that
            theirs = report_busy.get(status.report.email) or ()
            slot = find_slot([*self.busy, *theirs], now=self.now, policy=policy, tz=self.tz)
            if slot is None:
                self.unplaced.append(status.report.email)
                continue
            await self._place(status, slot, policy_language=self._language())
            self.busy.append(slot)

    def _language(self) -> str:
        return self.manager.language or self.ctx.settings.language

    def _existing(self, status: ReportStatus) -> PlacedHold | None:
        """This week's hold for the report, when an earlier run placed it already."""
        key = HoldKey(self.manager.email, status.report.email, self.week)
        holds = self.index.holds_for(key.manager, key.report)  # live holds, any week
        event = next((e for e in holds if e.hold_key == key), None)
        if event is None:
            return None
        return PlacedHold(key, event.start, event.end, created=False, link=event.link)

    async def _place(self, status: ReportStatus, slot: Interval, *, policy_language: str) -> None:
        settings = self.ctx.settings
        key = HoldKey(self.manager.email, status.report.email, self.week)
        policy = settings.policy()
        agenda = build_agenda(status, week=self.week, language=policy_language, policy=policy)
        self.agendas[status.report.email] = agenda
        title, description = hold_texts(
            self.manager,
            status.report,
            status,
            week=self.week,
            language=policy_language,
            policy=policy,
            agenda=agenda,
        )
        request = HoldRequest(
            key=key,
            start=slot.start.astimezone(self.tz),
            end=slot.end.astimezone(self.tz),
            title=title,
            description=description,
            stamp=self.now,
            invite_report=settings.holds.invite_report,
            timezone=str(self.tz),
        )
        if self.dry_run:
            # in a dry run "created" means "would be created"
            self.placed.append(PlacedHold(key, request.start, request.end, created=True))
            return
        try:
            hold = await self.ctx.connector.create_hold(self.manager.email, request)
        except KindlyError as exc:
            self.errors.append(f"hold for {status.report.email}: {exc}")
            self.transient = self.transient or exc.transient
            return
        placed = replace(
            hold, start=hold.start.astimezone(self.tz), end=hold.end.astimezone(self.tz)
        )
        if self.ctx.holds_ledger is not None:
            await self.ctx.holds_ledger.record_placed(placed)
        self.placed.append(placed)


async def stream_all(
    managers: Iterable[Manager],
    ctx: RunContext,
    *,
    now: datetime,
    dry_run: bool = False,
    on_done: Callable[[ManagerOutcome], None] | None = None,
) -> AsyncIterator[ManagerOutcome]:
    """Every manager's outcome in roster order, each as soon as it and those before it are done.

    At most ``settings.concurrency`` managers run at once and at most ``WINDOW_FACTOR`` times
    that many are started ahead of the oldest unfinished one, so memory stays flat however
    large the organisation: nothing is held for a manager whose outcome was handed on.
    Outcomes come without their rendered digest (``on_done`` sees it; ``run_manager`` returns
    it), which only a preview needs.
    """
    limit = ctx.settings.concurrency
    gate = asyncio.Semaphore(limit)

    async def one(manager: Manager) -> ManagerOutcome:
        async with gate:
            outcome = await run_manager(manager, ctx, now=now, dry_run=dry_run)
        if on_done is not None:
            on_done(outcome)
        return replace(outcome, rendered=None)

    queue = iter(managers)
    ahead: deque[asyncio.Task[ManagerOutcome]] = deque()
    try:
        while True:
            while len(ahead) < limit * WINDOW_FACTOR and (manager := next(queue, None)) is not None:
                ahead.append(asyncio.create_task(one(manager)))
            if not ahead:
                return
            outcome = await ahead[0]  # left in ``ahead`` until done, so a cancel reaches it
            ahead.popleft()
            yield outcome
    finally:
        for task in ahead:
            task.cancel()
        await asyncio.gather(*ahead, return_exceptions=True)


async def run_all(
    managers: Iterable[Manager],
    ctx: RunContext,
    *,
    now: datetime,
    dry_run: bool = False,
    on_done: Callable[[ManagerOutcome], None] | None = None,
) -> list[ManagerOutcome]:
    """Every manager's outcome, in roster order (see :func:`stream_all`)."""
    return [o async for o in stream_all(managers, ctx, now=now, dry_run=dry_run, on_done=on_done)]

"""One manager's weekly run, the single code path of ``kindly run --once`` and the worker.

I/O happens here and only here, through the ports (``service.ports``): the
connector reads the calendar and places holds, the ledger remembers them, the
mailer delivers. Everything in between is the pure core, fed with one
:class:`service.week.ManagerWeek`: analysis (``cadence``), agendas
(``agenda``), hold decisions (``hold_plan``), the digest (``digest``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from service.agenda import Agenda, team_agendas
from service.cadence import TeamAnalysis, analyse
from service.digest import RenderedDigest, WeekNotes, build_digest, render_digest
from service.digest_email import compose_email, message_id_for
from service.errors import KindlyError
from service.hold_plan import HoldAction, HoldPlan, existing_holds, plan_holds
from service.hold_text import hold_texts
from service.meetings import MeetingIndex
from service.model import Event, HoldRequest, Interval, Manager, PlacedHold
from service.ports import CalendarConnector, HoldLedger, Mailer, OutgoingMail, Warn
from service.recap import agreed_for_team, goals_for_team
from service.settings import Settings
from service.team_time import TeamTime, team_time
from service.week import ManagerWeek

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
    #: report → the start (ISO, manager's zone) of the next 1:1 within the lookahead, or None
    next: Mapping[str, str | None] = field(default_factory=dict)
    upcoming: tuple[str, ...] = ()
    holds: tuple[PlacedHold, ...] = ()
    #: overdue reports for whom no free slot was found in the horizon
    unplaced: tuple[str, ...] = ()
    #: everyone away this week (the manager too) → ISO date they are back, or None
    away: Mapping[str, str | None] = field(default_factory=dict)
    email: EmailOutcome | None = None
    errors: tuple[str, ...] = ()
    #: problems that did not stop the run (an unusable event that was skipped)
    warnings: tuple[str, ...] = ()
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
            "next": dict(self.next),
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
            "away": dict(self.away),
            "email": (
                {"message_id": self.email.message_id, "sent": self.email.sent}
                if self.email
                else None
            ),
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "dry_run": self.dry_run,
        }


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
    settings = ctx.settings
    try:
        tz = await zone_of(manager, ctx.connector, settings)
    except KindlyError as exc:
        return failed_outcome(manager, settings, exc, now=now, dry_run=dry_run)
    week = _manager_week(manager, settings, now=now, tz=tz)
    try:
        return await _run(week, ctx, dry_run=dry_run)
    except KindlyError as exc:
        return _failed(week, exc, dry_run=dry_run)


def _manager_week(
    manager: Manager, settings: Settings, *, now: datetime, tz: ZoneInfo
) -> ManagerWeek:
    return ManagerWeek.of(
        manager, now=now, tz=tz, policy=settings.policy(), default_language=settings.language
    )


def failed_outcome(
    manager: Manager, settings: Settings, exc: KindlyError, *, now: datetime, dry_run: bool
) -> ManagerOutcome:
    """A manager whose run stopped before their calendar named a zone: the week is named
    in the roster's zone or KINDLY_TIMEZONE (:func:`fallback_zone`)."""
    week = _manager_week(manager, settings, now=now, tz=fallback_zone(manager, settings))
    return _failed(week, exc, dry_run=dry_run)


def _failed(week: ManagerWeek, exc: KindlyError, *, dry_run: bool) -> ManagerOutcome:
    return ManagerOutcome(
        week.manager.email, week.week, errors=(str(exc),), transient=exc.transient, dry_run=dry_run
    )


async def _run(week: ManagerWeek, ctx: RunContext, *, dry_run: bool) -> ManagerOutcome:
    manager, policy = week.manager, week.policy
    warnings: list[str] = []
    events, team = await _read_week(week, ctx.connector, warnings.append)
    index = MeetingIndex(events)  # the calendar bucketed by person once, not once per report
    analysis = analyse(
        manager,
        events,
        now=week.now,
        policy=policy,
        tz=week.tz,
        index=index,
        away=team.away,
        manager_away=team.manager_away,
        returning=team.returning,
    )
    agendas = team_agendas(analysis, week=week.week, language=week.language, policy=policy)
    holds = _Holds(week, ctx, dry_run=dry_run)
    if policy.holds_enabled and analysis.overdue:
        await holds.carry_out(await holds.plan(analysis, team, index), agendas)
    warned = tuple(dict.fromkeys(warnings))  # a file read twice warns once
    digest = build_digest(
        analysis,
        holds={hold.key.report: hold for hold in holds.placed},
        agreed=agreed_for_team(events, manager, now=week.now, index=index),
        goals=goals_for_team(events, manager, now=week.now, index=index),
        policy=policy,
        language=week.language,
        agendas=agendas,
        week_notes=_week_notes(week, team, holds, skipped=len(warned)),
    )
    outcome = _outcome(week, analysis, team, holds, warned, dry_run=dry_run)
    rendered = render_digest(digest)
    return await _deliver(replace(outcome, rendered=rendered), rendered, week, ctx)


async def _read_week(
    week: ManagerWeek, connector: CalendarConnector, warn: Warn
) -> tuple[Sequence[Event], TeamTime]:
    """The I/O of a manager's week: their calendar up to the lookahead, everyone's free/busy
    as far, and the working hours the provider keeps (read with those calls)."""
    manager = week.manager
    events = await connector.events(
        manager.email, week.lookback_start, week.lookahead_end, tz=week.tz, warn=warn
    )
    reports = [r.email for r in manager.reports]
    report_busy = (
        await connector.busy(
            manager.email, reports, week.free_busy_start, week.lookahead_end, tz=week.tz, warn=warn
        )
        if reports
        else {}
    )
    provider = await connector.working_hours(manager.email, [manager.email, *reports])
    return events, team_time(week, events, report_busy, provider)


def _outcome(
    week: ManagerWeek,
    analysis: TeamAnalysis,
    team: TeamTime,
    holds: _Holds,
    warnings: tuple[str, ...],
    *,
    dry_run: bool,
) -> ManagerOutcome:
    """The ``--json`` facts of the run, before delivery."""
    return ManagerOutcome(
        manager=week.manager.email,
        week=week.week,
        overdue=tuple(sorted(r.report.email for r in analysis.overdue)),
        held=_held(analysis, week.tz),
        next={
            s.report.email: s.next_one.astimezone(week.tz).isoformat() if s.next_one else None
            for s in analysis.reports
        },
        upcoming=tuple(sorted(r.report.email for r in analysis.upcoming)),
        holds=tuple(holds.placed),
        unplaced=tuple(sorted(holds.unplaced)),
        away=team.away_by_email(),
        errors=tuple(holds.errors),
        warnings=warnings,
        transient=holds.transient,
        dry_run=dry_run,
    )


async def _deliver(
    outcome: ManagerOutcome, rendered: RenderedDigest, week: ManagerWeek, ctx: RunContext
) -> ManagerOutcome:
    """Send the digest once; not when a hold failed (the retried run sends one complete
    digest) and not in a dry run."""
    manager = week.manager
    sender = ctx.settings.email.from_
    message_id = message_id_for(manager.email, week.week, sender)
    if outcome.errors:
        return outcome
    if outcome.dry_run:
        return replace(outcome, email=EmailOutcome(message_id, sent=False))
    message = compose_email(
        rendered, sender=sender, manager=manager, message_id=message_id, now=week.local_now
    )
    result = await ctx.mailer.send(OutgoingMail(manager.email, week.week, message_id, message))
    return replace(outcome, email=EmailOutcome(result.message_id, sent=result.sent))


async def zone_of(manager: Manager, connector: CalendarConnector, settings: Settings) -> ZoneInfo:
    """The roster's zone, else the calendar's, else KINDLY_TIMEZONE."""
    if manager.timezone:
        return ZoneInfo(manager.timezone)
    return await connector.timezone(manager.email) or ZoneInfo(settings.timezone)


def fallback_zone(manager: Manager, settings: Settings) -> ZoneInfo:
    """The zone to name a week in when the calendar could not say its own."""
    return ZoneInfo(manager.timezone or settings.timezone)


def _week_notes(week: ManagerWeek, team: TeamTime, holds: _Holds, *, skipped: int) -> WeekNotes:
    """What explains a hold that is not there: holidays matter only when a hold was due."""
    due = bool(holds.unplaced or holds.placed) and team.manager_away is None
    opens = week.now + timedelta(hours=week.policy.notice_hours)
    return WeekNotes(
        unplaced=dict(holds.unplaced_why),
        holidays=team.manager_holidays(opens, week.horizon_end, week.language) if due else (),
        skipped=skipped,
    )


def _held(analysis: TeamAnalysis, tz: ZoneInfo) -> dict[str, str | None]:
    return {
        status.report.email: (
            status.last_held.astimezone(tz).date().isoformat() if status.last_held else None
        )
        for status in analysis.reports
    }


class _Holds:
    """Reads what :func:`service.hold_plan.plan_holds` needs, then carries its plans out."""

    def __init__(self, week: ManagerWeek, ctx: RunContext, *, dry_run: bool) -> None:
        self.week = week
        self.ctx = ctx
        self.dry_run = dry_run
        self.placed: list[PlacedHold] = []
        self.unplaced: list[str] = []
        #: why each unplaced report has no slot (``Unplaced`` values)
        self.unplaced_why: dict[str, str] = {}
        self.errors: list[str] = []
        self.transient = False

    async def plan(
        self, analysis: TeamAnalysis, team: TeamTime, index: MeetingIndex
    ) -> tuple[HoldPlan, ...]:
        week, ledger = self.week, self.ctx.holds_ledger
        existing = existing_holds(week, index)
        removed = set()
        if ledger is not None:
            for status in analysis.overdue:
                email = status.report.email
                if email not in existing and await ledger.was_placed(week.hold_key(email)):
                    removed.add(email)
        return plan_holds(week, analysis.overdue, team=team, existing=existing, removed=removed)

    async def carry_out(self, plans: Sequence[HoldPlan], agendas: Mapping[str, Agenda]) -> None:
        ledger = self.ctx.holds_ledger
        for plan in plans:
            if plan.action is HoldAction.KEEP and plan.existing is not None:
                if ledger is not None:
                    await ledger.record_placed(plan.existing)
                self.placed.append(plan.existing)
            elif plan.action is HoldAction.PLACE and plan.slot is not None:
                await self._place(plan, plan.slot, agendas[plan.status.report.email])
            elif plan.action is HoldAction.UNPLACED:
                self.unplaced.append(plan.status.report.email)
                if plan.unplaced is not None:
                    self.unplaced_why[plan.status.report.email] = plan.unplaced.value

    async def _place(self, plan: HoldPlan, slot: Interval, agenda: Agenda) -> None:
        week, settings = self.week, self.ctx.settings
        title, description = hold_texts(
            week.manager, plan.status, agenda=agenda, policy=week.policy
        )
        request = HoldRequest(
            key=plan.key,
            start=slot.start,
            end=slot.end,
            title=title,
            description=description,
            stamp=week.now,
            invite_report=settings.holds.invite_report,
            timezone=str(week.tz),
        )
        if self.dry_run:
            # in a dry run "created" means "would be created"
            self.placed.append(PlacedHold(plan.key, request.start, request.end, created=True))
            return
        try:
            hold = await self.ctx.connector.create_hold(week.manager.email, request)
        except KindlyError as exc:
            self.errors.append(f"hold for {plan.status.report.email}: {exc}")
            self.transient = self.transient or exc.transient
            return
        placed = replace(
            hold, start=hold.start.astimezone(week.tz), end=hold.end.astimezone(week.tz)
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

    At most ``settings.managers_in_flight`` managers run at once and at most ``WINDOW_FACTOR`` times
    that many are started ahead of the oldest unfinished one, so memory stays flat however
    large the organisation: nothing is held for a manager whose outcome was handed on.
    Outcomes come without their rendered digest (``on_done`` sees it; ``run_manager`` returns
    it), which only a preview needs.
    """
    limit = ctx.settings.managers_in_flight
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

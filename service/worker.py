"""The arq worker: a planner that queues each manager's weekly digest, and a thin job.

``kindly worker`` (or ``arq service.worker.WorkerSettings``) runs it. How it
lives with arq's semantics:

- jobs run at least once, so the job only calls :func:`service.pipeline.run_manager`,
  whose side effects are idempotent (holds by key at the provider, mail by the ledger);
- the job id is (manager, ISO week) and results are not kept, so a finished or
  failed job never blocks the planner from queueing that digest again;
- the planner runs at start and every ``KINDLY_WORKER__PLAN_EVERY_SECONDS`` and
  re-queues every due digest that is neither sent nor failed for good: it is also
  the reconciler for jobs lost to crashes past ``max_tries``, expiry or downtime;
- transient failures are retried with arq's ``Retry`` and a doubling delay up to
  ``KINDLY_WORKER__MAX_TRIES``; after that the planner tries again, until
  ``KINDLY_WORKER__MAX_ATTEMPTS`` runs have started, then the digest is failed;
- arq's poll loop stops at the first Redis error; :class:`KindlyWorker` waits and
  polls again instead, so a Redis restart does not end the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from arq import Retry
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Function, Worker, func
from redis.asyncio import Redis
from redis.exceptions import RedisError

from service import heap, metrics, probes
from service.backoff import exponential
from service.clock import SystemClock
from service.errors import ConfigError, KindlyError
from service.ledger import UNREACHABLE, DigestRecord, DigestState, RedisLedger
from service.model import (
    Event,
    HoldRequest,
    Interval,
    Manager,
    PlacedHold,
    Roster,
)
from service.pipeline import ManagerOutcome, RunContext, run_manager, zone_of
from service.planner import Action, decide, hashed, job_id, local_week, stagger
from service.ports import CalendarConnector, Clock, ForwardingConnector, Warn
from service.settings import Settings, load_settings
from service.wiring import build_adapters, load_roster
from service.zones import UNREADABLE, fallback_zone, zones_of

log = logging.getLogger("kindly.worker")
QUEUE = "kindly:queue"
HEALTH_KEY = "kindly:worker:health"
JOB = "digest"


# Provider calls made by the current job (one Counter per job task).
_calls: contextvars.ContextVar[Counter[str]] = contextvars.ContextVar("kindly_calls")


class CountingConnector(ForwardingConnector):
    """Counts the provider calls each job makes, for its log line and the metrics."""

    def __init__(self, inner: CalendarConnector, provider: str = "ics") -> None:
        super().__init__(inner)
        self.provider = provider

    def _count(self, name: str) -> AbstractContextManager[None]:
        calls = _calls.get(None)
        if calls is not None:
            calls[name] += 1
        return metrics.provider_request(self.provider, name)

    async def timezone(self, manager: str) -> ZoneInfo | None:
        with self._count("timezone"):
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
        with self._count("events"):
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
        with self._count("busy"):
            return await self.inner.busy(manager, people, start, end, tz=tz, warn=warn)

    async def create_hold(self, manager: str, hold: HoldRequest) -> PlacedHold:
        with self._count("create_hold"):
            return await self.inner.create_hold(manager, hold)


@dataclass
class WorkerState:
    """What ``on_startup`` builds once and every job shares; the roster is re-read by
    :meth:`follow_roster` at every planning run, so no restart is needed when it changes."""

    settings: Settings
    roster: Roster
    run: RunContext
    ledger: RedisLedger
    clock: Clock
    zones: dict[str, ZoneInfo] = field(default_factory=dict)
    planner: asyncio.Task[None] | None = None
    #: the roster file's (mtime, size) when it was last read; None: no file (a directory)
    roster_stamp: tuple[int, int] | None = None

    def manager(self, key: str) -> Manager | None:
        """The roster's manager whose hashed address is ``key``."""
        return next((m for m in self.roster.managers if hashed(m.email) == key), None)

    async def zone(self, manager: Manager) -> ZoneInfo:
        """The manager's zone; KINDLY_TIMEZONE while it cannot be looked up (the job's run
        then fails with the reason, and the ledger records it)."""
        [found] = await self.lookup([manager])
        return found if isinstance(found, ZoneInfo) else fallback_zone(manager, self.settings)

    async def lookup(self, managers: Sequence[Manager]) -> list[ZoneInfo | KindlyError]:
        """Each manager's zone or why it cannot be looked up; zones found are kept, failures
        are tried again next time."""
        missing = [m for m in managers if m.email not in self.zones]
        looked_up = await zones_of(missing, self.run.connector, self.settings)
        found = dict(zip((m.email for m in missing), looked_up, strict=True))
        for email, zone in found.items():
            if isinstance(zone, ZoneInfo):
                self.zones[email] = zone
        return [self.zones[m.email] if m.email in self.zones else found[m.email] for m in managers]

    async def follow_roster(self) -> None:
        """Re-read the roster file when its mtime or size changed, a directory every time;
        one that no longer loads keeps the last good roster, and the log says so."""
        settings = self.settings
        stamp = roster_stamp(settings)
        if settings.roster_source == "file" and stamp == self.roster_stamp:
            return
        self.roster_stamp = stamp  # a bad file is reported once, not at every run
        try:
            roster = await load_roster(settings)
        except KindlyError as exc:
            log.warning(
                "roster not reloaded, keeping the last good one (%d managers): %s",
                len(self.roster.managers),
                exc,
            )
            first = str(exc).splitlines()[0]
            await self._note_roster(
                f"{first} — the worker keeps the last good roster "
                f"({len(self.roster.managers)} managers) until it is fixed"
            )
            return
        await self._note_roster(None)
        if roster != self.roster:
            _log("roster_reloaded", managers=len(roster.managers), source=roster.source)
            self.zones.clear()  # a manager's zone may be in the roster now, or no longer
        self.roster = roster

    async def _note_roster(self, problem: str | None) -> None:
        """For ``kindly status``; a Redis hiccup must not stop the planner."""
        with contextlib.suppress(KindlyError):
            await self.ledger.note_roster_kept(problem)


def roster_stamp(settings: Settings) -> tuple[int, int] | None:
    """The roster file's (mtime, size), taken before it is read so a change while it is
    read is seen next time; None for a directory roster or a file that is not there."""
    if settings.roster_source != "file":
        return None
    try:
        found = settings.roster_file.stat()
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size


def _log(event: str, **fields: Any) -> None:
    log.info(json.dumps({"event": event, **fields}, sort_keys=True, default=str))


# start-up and shutdown


async def on_startup(ctx: dict[str, Any]) -> None:
    """Build settings, roster, connector, mailer and ledger once; start the planner."""
    settings: Settings = ctx.get("settings") or load_settings()
    clock: Clock = ctx.get("clock") or SystemClock()
    stamp = roster_stamp(settings)
    roster = await load_roster(settings)
    heap.settle()  # what lives for the worker's life: collections need not walk it
    redis: Redis = Redis.from_url(settings.redis_url, socket_connect_timeout=5)
    ledger = RedisLedger(redis)
    adapters = build_adapters(settings)
    connector = CountingConnector(adapters.connector, settings.calendar)
    run = RunContext(settings, connector, adapters.mailer, holds_ledger=ledger)
    state = WorkerState(settings, roster, run, ledger, clock, roster_stamp=stamp)
    ctx["kindly"] = state
    await probes.attach(ctx, settings, roster, queue=QUEUE)
    _log("worker_started", managers=len(roster.managers), now=clock.now().isoformat())
    if ctx.get("burst"):
        await plan(ctx)
    else:
        state.planner = asyncio.create_task(_planner_loop(ctx))


async def on_shutdown(ctx: dict[str, Any]) -> None:
    state: WorkerState | None = ctx.get("kindly")
    if state is None:
        return
    if state.planner is not None:
        state.planner.cancel()
    await state.run.mailer.aclose()
    await state.run.connector.aclose()
    await state.ledger.redis.aclose()
    await probes.detach(ctx)


# the planner


@dataclass(frozen=True, slots=True)
class PlanSummary:
    due: int = 0
    enqueued: int = 0
    gave_up: int = 0
    done: int = 0
    #: managers whose time zone could not be looked up (each recorded in the ledger)
    unreadable: int = 0


async def plan(ctx: dict[str, Any]) -> PlanSummary:
    """Queue every due, unsettled digest; fail the ones that ran too often without a result.

    The roster is re-read first when it changed. A manager whose zone cannot be looked
    up is recorded in the ledger with the reason, and the others are planned as usual.
    """
    state: WorkerState = ctx["kindly"]
    pool: ArqRedis = ctx["redis"]
    now = state.clock.now()
    await state.follow_roster()
    managers = state.roster.managers
    found = await state.lookup(managers)
    zones = [
        zone if isinstance(zone, ZoneInfo) else fallback_zone(manager, state.settings)
        for manager, zone in zip(managers, found, strict=True)
    ]
    pairs = [(m.email, local_week(now, tz)) for m, tz in zip(managers, zones, strict=True)]
    records = await state.ledger.digests(pairs)
    attempts = await state.ledger.attempts(pairs)
    counts: Counter[Action] = Counter()
    enqueued = unreadable = 0
    for manager, zone, tz, record, tries in zip(
        managers, found, zones, records, attempts, strict=True
    ):
        if isinstance(zone, KindlyError):
            unreadable += 1
            await _unreadable(state, record, zone)
            continue
        settled = record.settled
        if record.state is DigestState.FAILED and (record.reason or "").startswith(UNREADABLE):
            # the calendar reads again: the failure was the planner's, the digest is still due
            await state.ledger.record_pending(record.manager, record.week, "readable again")
            settled = False
        decision = decide(
            manager.email,
            now=now,
            tz=tz,
            day=state.settings.digest_day,
            hour=state.settings.digest_hour,
            settled=settled,
            attempts=tries,
            max_attempts=state.settings.worker.attempts,
        )
        counts[decision.action] += 1
        if decision.action is Action.ENQUEUE:
            window = 0.0 if ctx.get("burst") else state.settings.worker.stagger_seconds
            delay = stagger(manager.email, window)
            job = await pool.enqueue_job(
                JOB,
                hashed(manager.email),
                decision.week,
                _job_id=job_id(manager.email, decision.week),
                _defer_by=delay or None,
            )
            enqueued += job is not None
        elif decision.action is Action.GIVE_UP:
            await state.ledger.record_failed(
                manager.email,
                decision.week,
                f"gave up after {tries} runs without a result (the job crashed or timed out "
                "each time); see the worker log",
            )
    summary = PlanSummary(
        due=counts[Action.ENQUEUE] + counts[Action.GIVE_UP],
        enqueued=enqueued,
        gave_up=counts[Action.GIVE_UP],
        done=counts[Action.DONE],
        unreadable=unreadable,
    )
    metrics.planned({action.value: count for action, count in counts.items()})
    _log("planned", now=now.isoformat(), **asdict(summary))
    return summary


async def _unreadable(state: WorkerState, record: DigestRecord, error: KindlyError) -> None:
    """One manager's zone look-up failed: the ledger says why (``kindly status`` shows it)
    and one line goes to the log. Failed when the problem will not pass by itself (the
    job would fail the same way), pending while a retry may help."""
    manager, week = record.manager, record.week
    # the log names managers by their hash only, as the job lines do
    reason = str(error).replace(manager, hashed(manager))
    _log("manager_unreadable", manager=hashed(manager), week=week, reason=reason)
    if record.settled and not (record.reason or "").startswith(UNREADABLE):
        return  # sent, or failed by its own job: that stands
    if error.transient:
        await state.ledger.record_pending(manager, week, f"retrying: {error}")
    else:
        await state.ledger.record_failed(manager, week, f"{UNREADABLE}{error}")


async def _planner_loop(ctx: dict[str, Any]) -> None:
    state: WorkerState = ctx["kindly"]
    while True:
        try:
            await plan(ctx)
        except (KindlyError, RedisError, *UNREACHABLE) as exc:
            metrics.planner_skipped("skipped_" + type(exc).__name__)
            log.warning("planner run skipped: %s", exc)
        await asyncio.sleep(state.settings.worker.plan_every_seconds)


# the job


async def digest(ctx: dict[str, Any], manager_key: str, week: str) -> str:
    """One manager's weekly run: the pipeline, then the ledger says how it ended.

    Jobs carry the hashed address (arq logs job ids and arguments), never the address.
    """
    state: WorkerState = ctx["kindly"]
    started = time.monotonic()
    calls: Counter[str] = Counter()
    _calls.set(calls)
    outcome = "error"
    metrics.job_started()
    try:
        outcome = await _digest(state, manager_key, week, job_try=int(ctx.get("job_try", 1)))
        return outcome
    except Retry:
        outcome = "retry"
        raise
    finally:
        metrics.job_finished(outcome, time.monotonic() - started)
        _log(
            "job",
            manager=manager_key,
            week=week,
            outcome=outcome,
            job_try=ctx.get("job_try", 1),
            duration_ms=round((time.monotonic() - started) * 1000),
            requests=dict(calls),
        )


async def _digest(state: WorkerState, manager_key: str, week: str, *, job_try: int) -> str:
    manager = state.manager(manager_key)
    if manager is None:
        return "not_in_roster"
    now = state.clock.now()
    if local_week(now, await state.zone(manager)) != week:
        return "stale"  # the week is over; next week's digest replaces it
    try:
        if (await state.ledger.digest(manager.email, week)).settled:
            return "already_settled"
        await state.ledger.count_attempt(manager.email, week)
        result = await run_manager(manager, state.run, now=now)
        metrics.holds_placed(result.holds, result.unplaced)
        if result.warnings:
            # counted, not quoted: a warning names the calendar, so it carries an address
            _log("calendar_warnings", manager=manager_key, week=week, count=len(result.warnings))
        return await _settle(state, result, week, job_try=job_try)
    except KindlyError as exc:  # the ledger itself is unreachable
        raise Retry(defer=_delay(state, job_try)) from exc


async def _settle(state: WorkerState, result: ManagerOutcome, week: str, *, job_try: int) -> str:
    ledger, manager = state.ledger, result.manager
    if result.ok and result.email is not None:
        await ledger.record_sent(manager, week, result.email.message_id)
        return "sent" if result.email.sent else "already_sent"
    reason = "; ".join(result.errors) or "the run produced no digest"
    if not result.transient:
        await ledger.record_failed(manager, week, reason)
        return "failed"
    await ledger.record_pending(manager, week, f"retrying: {reason}")
    if job_try < state.settings.worker.max_tries:
        raise Retry(defer=_delay(state, job_try))
    return "retry_later"  # the planner queues it again on its next run


def _delay(state: WorkerState, job_try: int) -> float:
    limits = state.settings.worker
    return exponential(job_try, base=limits.retry_base_seconds, cap=limits.retry_max_seconds)


# the arq worker


class KindlyWorker(Worker):
    """arq's worker, except that a Redis error pauses the poll loop instead of ending it."""

    _redis_down_since: float | None = None
    #: pause between polls while Redis does not answer
    redis_retry_seconds = 1.0

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except (RedisError, *UNREACHABLE) as exc:
            if self._redis_down_since is None:
                self._redis_down_since = time.monotonic()
                log.warning("Redis is not answering (%s); polling again until it does", exc)
            await asyncio.sleep(self.redis_retry_seconds)
        else:
            if self._redis_down_since is not None:
                down = time.monotonic() - self._redis_down_since
                log.info("Redis is back after %.1f s", down)
                self._redis_down_since = None


def digest_function(settings: Settings) -> Function:
    return func(
        digest,
        name=JOB,
        timeout=settings.worker.job_timeout,
        max_tries=settings.worker.max_tries,
        keep_result=0,  # a kept result would block the (manager, week) job id
    )


def redis_settings(settings: Settings, *, patient: bool) -> RedisSettings:
    """arq's connection; a long-running worker waits for Redis at start instead of exiting."""
    base = RedisSettings.from_dsn(settings.redis_url)
    base.conn_retries = 24 * 3600 if patient else 5
    return base


def create_worker(
    settings: Settings,
    *,
    clock: Clock | None = None,
    burst: bool = False,
    handle_signals: bool = True,
) -> KindlyWorker:
    """The worker ``kindly worker`` runs (and tests drive in-process)."""
    return KindlyWorker(
        **worker_options(settings, patient=not burst),
        burst=burst,
        handle_signals=handle_signals,
        ctx={"settings": settings, "clock": clock, "burst": burst},
    )


def worker_options(settings: Settings, *, patient: bool = True) -> dict[str, Any]:
    """arq's options, every one derived from KINDLY_WORKER__* (and KINDLY_REDIS_URL)."""
    config = settings.worker
    return {
        "functions": [digest_function(settings)],
        "queue_name": QUEUE,
        "redis_settings": redis_settings(settings, patient=patient),
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "job_completion_wait": config.shutdown_grace_seconds,
        "max_jobs": config.max_jobs or settings.managers_in_flight,
        "job_timeout": config.job_timeout,
        "max_tries": config.max_tries,
        "keep_result": 0,  # a kept result would block the (manager, week) job id
        "health_check_interval": 30,
        "health_check_key": HEALTH_KEY,
    }


def __getattr__(name: str) -> Any:
    """``arq service.worker.WorkerSettings``: arq looks the class up when it starts, and only
    then are the settings read (nothing reads the environment when this module is imported).
    Bad settings are reported by ``on_startup``, which loads them again."""
    if name != "WorkerSettings":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        settings = load_settings()
    except ConfigError:
        settings = Settings.model_construct()
    return type("WorkerSettings", (), worker_options(settings))


__all__ = [
    "DigestState",
    "KindlyWorker",
    "create_worker",
    "digest",
    "plan",
    "worker_options",
    "zone_of",
]

"""``kindly run --once`` over the machine's cores (``KINDLY_PROCESSES``).

Managers are independent, so once the parent has read the settings and checked
the whole roster it deals them out round robin to K child processes: manager i
goes to child i mod K. Round robin rather than K contiguous blocks because the
report is written in roster order: with blocks, the last child's outcomes would
all wait in the parent for the first child to finish; dealt out, every child
works near the front of the roster at the same time (and a roster sorted by
team spreads each team's load too).

Each child is a fresh interpreter (the "spawn" start method: no fork of a
process with threads and an event loop), builds its own adapters
(:func:`service.wiring.session`) and runs :func:`service.pipeline.stream_all`
on its share with the parent's ``now`` and ``dry_run``, as one process does;
with Graph that includes its own Sent Items read. It prints nothing: each
outcome (without its rendered digest), each log record and its own failure
come to the parent through a pipe, and the parent alone writes stdout and
stderr. The parent hands the outcomes on in roster order; a child hands on at
most a window of outcomes ahead of what the parent has written (credits sent
back through a second pipe), so the parent holds a bounded number however
large the roster.

A child that stops early (killed, or an error outside any manager's run) never
hangs the parent: the managers it had not reported become failed outcomes
(:class:`service.errors.ProcessStopped`), and the exit status is 1. Running
again finishes them and repeats nothing: every mailer checks its ledger before
sending (the outbox's ledger, Redis for SMTP, Sent Items for Graph) and a hold
is found on the calendar by its key. Ctrl-C and SIGTERM in the parent stop the
children.

Pacing: when KINDLY_REDIS_URL answers, every process counts the providers'
quotas there (``connectors/quota.py``) and the children's settings are the
parent's. When it does not, each child paces itself, so it gets its share of
each per-minute limit (:func:`child_settings`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Final

from service import heap
from service.errors import ConfigError, KindlyError, ProcessStopped
from service.model import Manager
from service.pipeline import WINDOW_FACTOR, ManagerOutcome, failed_outcome, stream_all
from service.settings import Settings
from service.speed import processes_for, share_of
from service.wiring import quotas_shared, session

OnDone = Callable[[ManagerOutcome], None]
#: a fresh interpreter per child: forking a process that has threads and a loop is unsafe
START_METHOD: Final = "spawn"
#: seconds a child gets to end on its own (or after SIGTERM) before it is killed
STOP_GRACE_SECONDS = 5.0
CREDIT = b"\x01"


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, as a container's CPU set
    limits it), else every core of the machine."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def processes_wanted(settings: Settings, managers: int) -> int:
    """KINDLY_PROCESSES, else one per usable core with ``MANAGERS_PER_PROCESS`` each."""
    return processes_for(managers, usable_cores(), settings.processes)


def _limits(settings: Settings, *, shared: bool) -> dict[tuple[str, ...], int]:
    """What K processes must split: KINDLY_CONCURRENCY when set (managers at once for the
    run), and, unless Redis counts them for everyone, the per-minute limits this
    configuration paces to, each by its settings path."""
    found: dict[tuple[str, ...], int] = {}
    if settings.concurrency is not None:
        found["concurrency",] = settings.concurrency
    if shared:
        return found
    if settings.calendar == "google":
        found["google", "requests_per_minute"] = settings.google.requests_per_minute
        found["google", "requests_per_minute_per_user"] = (
            settings.google.requests_per_minute_per_user
        )
    if settings.email.backend in ("smtp", "graph"):
        found["email", "send_per_minute"] = settings.email.send_per_minute
    return found


def child_settings(settings: Settings, processes: int, *, shared: bool) -> tuple[int, Settings]:
    """How many processes the limits allow (at most ``processes``) and each one's settings.

    Every limit a process keeps alone is divided by the number of processes, in the
    settings the connectors read it from (Google's requests per minute per project and per
    user, sends per minute for SMTP and Graph), so K processes together stay inside it;
    there are never more processes than the smallest such limit, so each share is at
    least 1. Graph's per-mailbox limits need no share: a manager's mailbox is read by the
    one process that runs the manager, and the sender's sends are the paced ones.
    """
    limits = _limits(settings, shared=shared)
    processes = max(1, min(processes, *limits.values())) if limits else processes
    updates: dict[str, Any] = {}
    sections: dict[str, dict[str, int]] = {}
    for path, limit in limits.items():
        if len(path) == 1:
            updates[path[0]] = share_of(limit, processes)
        else:
            sections.setdefault(path[0], {})[path[1]] = share_of(limit, processes)
    for section, fields in sections.items():
        updates[section] = getattr(settings, section).model_copy(update=fields)
    return processes, settings.model_copy(update=updates)


async def stream_here(
    managers: Sequence[Manager],
    settings: Settings,
    *,
    now: datetime,
    dry_run: bool,
    on_done: OnDone | None = None,
) -> AsyncIterator[ManagerOutcome]:
    """Every manager's outcome from this process, in roster order (a child runs its
    share the same way)."""
    async with session(settings) as ctx:
        if not dry_run:
            await ctx.mailer.prefetch_sent(now)  # Graph: one Sent Items read per process
        async for outcome in stream_all(managers, ctx, now=now, dry_run=dry_run, on_done=on_done):
            yield outcome


async def stream_spread(
    managers: Sequence[Manager],
    settings: Settings,
    *,
    now: datetime,
    dry_run: bool,
    processes: int,
    on_done: OnDone | None = None,
) -> AsyncIterator[ManagerOutcome]:
    """Every manager's outcome in roster order, run in ``processes`` child processes (in
    this one when that is 1, or the limits allow no more); ``on_done`` sees each as it
    arrives. A child's setup error (settings) is raised here, as one process raises it."""
    children_settings = settings
    if processes > 1:
        shared = await asyncio.to_thread(quotas_shared, settings)
        processes, children_settings = child_settings(settings, processes, shared=shared)
    if processes <= 1:
        async for outcome in stream_here(
            managers, settings, now=now, dry_run=dry_run, on_done=on_done
        ):
            yield outcome
        return
    run = _Spread(managers, settings, now=now, dry_run=dry_run, on_done=on_done)
    with run.started(processes, children_settings):
        async for outcome in run.merged():
            yield outcome


# -- the parent --------------------------------------------------------------------------


@dataclass(eq=False)
class _Child:
    """One child process and the roster positions of its share."""

    process: BaseProcess
    #: outcomes, log records and failures from the child
    inbox: Connection
    #: credits to the child: one per outcome of its share the parent has handed on
    credits: Connection
    positions: tuple[int, ...]
    reported: set[int] = field(default_factory=set)
    #: why it stopped, when it said so before it did
    crash: str | None = None

    def grant(self) -> None:
        with contextlib.suppress(OSError):  # it has ended: nothing to let it do
            self.credits.send_bytes(CREDIT)

    def why_stopped(self) -> str:
        if self.crash is not None:
            return self.crash
        self.process.join(STOP_GRACE_SECONDS)
        code = self.process.exitcode
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit status {code}" if code is not None else "it stopped answering"


class _Spread:
    """The parent's side: start the children, merge what they send, stop them."""

    def __init__(
        self,
        managers: Sequence[Manager],
        settings: Settings,
        *,
        now: datetime,
        dry_run: bool,
        on_done: OnDone | None,
    ) -> None:
        self.managers = managers
        self.settings = settings
        self.now = now
        self.dry_run = dry_run
        self.on_done = on_done
        self.children: list[_Child] = []
        self.ready: dict[int, ManagerOutcome] = {}
        self.inbox: asyncio.Queue[tuple[_Child, _Message | None]] = asyncio.Queue()

    @contextlib.contextmanager
    def started(self, processes: int, settings: Settings) -> Iterator[None]:
        """The children running their shares; stopped on the way out, however it goes
        (SIGTERM included: they are stopped, then the parent ends as SIGTERM ends it)."""
        loop = asyncio.get_running_loop()
        context = multiprocessing.get_context(START_METHOD)
        window = settings.managers_in_flight * WINDOW_FACTOR
        finished = False
        try:
            with _signals_ignored(signal.SIGINT):  # Ctrl-C reaches the parent, which stops them
                for number in range(processes):
                    positions = tuple(range(number, len(self.managers), processes))
                    share = _Share(
                        settings,
                        tuple((i, self.managers[i]) for i in positions),
                        self.now,
                        self.dry_run,
                        credits=window,
                    )
                    inbox, outbox = context.Pipe(duplex=False)
                    their_credits, credits = context.Pipe(duplex=False)
                    process = context.Process(
                        target=_child,
                        args=(share, outbox, their_credits),
                        name=f"kindly-run-{number + 1}",
                        daemon=True,
                    )
                    process.start()
                    outbox.close()
                    their_credits.close()
                    child = _Child(process, inbox, credits, positions)
                    self.children.append(child)
                    loop.add_reader(inbox.fileno(), self._read, child)
            with _on_sigterm(loop, self._stop):
                yield
            finished = True
        finally:
            self._stop(graceful=finished)

    def _read(self, child: _Child) -> None:
        """Everything the child has sent so far; None once it has ended."""
        try:
            while child.inbox.poll():
                self.inbox.put_nowait((child, child.inbox.recv()))
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(child.inbox.fileno())
            self.inbox.put_nowait((child, None))

    async def merged(self) -> AsyncIterator[ManagerOutcome]:
        owner = {i: child for child in self.children for i in child.positions}
        for position in range(len(self.managers)):
            while position not in self.ready:
                self._take(*await self.inbox.get())
            owner[position].grant()
            yield self.ready.pop(position)

    def _take(self, child: _Child, message: _Message | None) -> None:
        if isinstance(message, _Done):
            child.reported.add(message.position)
            self._arrived(message.position, message.outcome)
        elif isinstance(message, _Log):
            logging.getLogger(message.logger).log(message.level, "%s", message.text)
        elif isinstance(message, _Failed):
            raise ConfigError(message.text) if message.config else KindlyError(message.text)
        elif isinstance(message, _Crashed):
            child.crash = message.reason
        else:
            self._stopped(child)

    def _stopped(self, child: _Child) -> None:
        """The child ended: whatever it had not reported fails, saying so once each."""
        unreported = [i for i in child.positions if i not in child.reported]
        if not unreported:
            return
        error = ProcessStopped(
            f"the process running this manager stopped ({child.why_stopped()}); "
            "run again: digests already sent and holds already placed are not repeated"
        )
        for position in unreported:
            outcome = failed_outcome(
                self.managers[position], self.settings, error, now=self.now, dry_run=self.dry_run
            )
            self._arrived(position, outcome)

    def _arrived(self, position: int, outcome: ManagerOutcome) -> None:
        if self.on_done is not None:
            self.on_done(outcome)
        self.ready[position] = outcome

    def _stop(self, *, graceful: bool = False) -> None:
        """Every child ended: given time to close when their work is done, else SIGTERM
        (they stop where they are, which is safe: see the module's doc), then SIGKILL."""
        loop = asyncio.get_running_loop()
        for child in self.children:
            with contextlib.suppress(ValueError, OSError):  # its pipe is closed already
                loop.remove_reader(child.inbox.fileno())
            if not graceful:
                child.process.terminate()
        for child in self.children:
            child.process.join(STOP_GRACE_SECONDS)
            if child.process.is_alive():
                child.process.kill()
                child.process.join()
            child.inbox.close()
            child.credits.close()


@contextlib.contextmanager
def _signals_ignored(number: signal.Signals) -> Iterator[None]:
    """Children started meanwhile inherit the signal ignored (spawn keeps SIG_IGN across
    exec), so a Ctrl-C in the terminal, sent to all of them, is the parent's to handle."""
    try:
        before = signal.signal(number, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals are not this thread's to handle
        yield
        return
    try:
        yield
    finally:
        signal.signal(number, before)


@contextlib.contextmanager
def _on_sigterm(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM stops the children first, then ends this process as it would have."""

    def stop_and_die() -> None:
        stop()
        loop.remove_signal_handler(signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)

    try:
        loop.add_signal_handler(signal.SIGTERM, stop_and_die)
    except (RuntimeError, ValueError, NotImplementedError):  # not the main thread
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


# -- what parent and child say to each other ---------------------------------------------


@dataclass(frozen=True, slots=True)
class _Share:
    """A child's work, pickled to it at start: settings, managers and their roster positions."""

    settings: Settings
    managers: tuple[tuple[int, Manager], ...]
    now: datetime
    dry_run: bool
    #: outcomes it may hand on before the parent has written any
    credits: int


@dataclass(frozen=True, slots=True)
class _Done:
    position: int
    outcome: ManagerOutcome


@dataclass(frozen=True, slots=True)
class _Log:
    level: int
    logger: str
    text: str


@dataclass(frozen=True, slots=True)
class _Failed:
    """The share could not start (its adapters, a Sent Items read): the run ends."""

    config: bool
    text: str


@dataclass(frozen=True, slots=True)
class _Crashed:
    """An error outside any manager's run ended the share."""

    reason: str


_Message = _Done | _Log | _Failed | _Crashed


# -- the child ---------------------------------------------------------------------------


class _Channel:
    """The child's one way to the parent, shared by the loop and worker threads (logs)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._lock = threading.Lock()

    def send(self, message: _Message) -> None:
        with self._lock:
            try:
                self.connection.send(message)
            except OSError:  # the parent is gone: nothing done here could be reported
                os._exit(1)


class _Forward(logging.Handler):
    """Log records go to the parent, which logs them as one process would."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self.channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        self.channel.send(_Log(record.levelno, record.name, record.getMessage()))


def _child(share: _Share, outbox: Connection, credits: Connection) -> None:
    """A child's whole life: run the share and report everything through ``outbox``;
    stdout and stderr go nowhere, so the parent's output is the parent's alone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    nowhere = os.open(os.devnull, os.O_WRONLY)
    os.dup2(nowhere, 1)
    os.dup2(nowhere, 2)
    os.close(nowhere)
    channel = _Channel(outbox)
    logging.captureWarnings(True)
    logging.getLogger().addHandler(_Forward(channel))
    try:
        asyncio.run(_run_share(share, channel, credits))
    except KindlyError as exc:
        channel.send(_Failed(isinstance(exc, ConfigError), str(exc)))
    except BaseException as exc:  # anything else ends the share; the parent says why
        channel.send(_Crashed(f"{type(exc).__name__}: {exc}".rstrip(": ")))
        raise SystemExit(1) from None


async def _run_share(share: _Share, channel: _Channel, credits: Connection) -> None:
    heap.settle()  # the share and the settings live for the child's life
    loop = asyncio.get_running_loop()
    allowed = asyncio.Semaphore(share.credits)

    def credit() -> None:
        try:
            credits.recv_bytes()
        except (EOFError, OSError):  # the parent is gone
            os._exit(1)
        allowed.release()

    loop.add_reader(credits.fileno(), credit)
    position = {manager.email: i for i, manager in share.managers}

    def done(outcome: ManagerOutcome) -> None:
        channel.send(_Done(position[outcome.manager], replace(outcome, rendered=None)))

    managers = [manager for _, manager in share.managers]
    async for _ in stream_here(
        managers, share.settings, now=share.now, dry_run=share.dry_run, on_done=done
    ):
        await allowed.acquire()  # handed on: the next waits until the parent is near
    loop.remove_reader(credits.fileno())

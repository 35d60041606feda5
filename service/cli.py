"""The ``kindly`` command (README "Commands"): stable flags, exit statuses and output.

stdout carries only what was asked for (``--json`` lines, a preview); every
problem is one line on stderr naming the manager or file and what to fix.
Exit status: 0 all good, 1 some managers failed, 2 bad settings or roster.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from service import heap
from service.cli_support import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_SOME_FAILED,
    NowType,
    guarded,
    pinned,
    problem,
    safe_redis_url,
    settings_or_exit,
    stderr,
)
from service.errors import KindlyError, RosterError
from service.model import Manager
from service.pipeline import ManagerOutcome, RunContext, run_manager
from service.ports import CalendarConnector, Mailer
from service.processes import processes_wanted, stream_spread
from service.settings import Settings
from service.wiring import load_roster, session
from service.worker_cli import status, worker
from service.zones import zones_of


def _pick(managers: Sequence[Manager], email: str | None, source: str) -> Sequence[Manager]:
    if email is None:
        return managers
    chosen = [m for m in managers if m.email == email.lower()]
    if not chosen:
        raise RosterError(f"no manager {email} in the roster; check --manager", source=source)
    return chosen


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Kindly: weekly one-on-one coaching for managers."""


@cli.command()
@click.option("--once", is_flag=True, help="Run the weekly job now, in this process.")
@click.option("--now", "now_given", type=NowType(), help="Pin the clock (ISO 8601).")
@click.option("--manager", "manager_email", help="Only this manager.")
@click.option(
    "--dry-run", is_flag=True, help="Send nothing, create no holds; show what would happen."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per manager on stdout.")
def run(
    once: bool, now_given: datetime | None, manager_email: str | None, dry_run: bool, as_json: bool
) -> None:
    """Run the weekly job for every manager (or one)."""
    if not once:
        problem("use `kindly run --once`; the weekly schedule is `kindly worker`")
        raise SystemExit(EXIT_BAD_INPUT)
    settings = settings_or_exit()
    now = pinned(now_given, settings) or datetime.now(UTC)
    report = _JsonLines() if as_json else _Table(settings, dry_run)
    guarded(_run(settings, now, manager_email, dry_run, report))
    raise SystemExit(EXIT_OK if report.all_ok else EXIT_SOME_FAILED)


class _Report:
    """Where outcomes go as they arrive: problems to stderr at once, the rest by kind."""

    def __init__(self) -> None:
        self.all_ok = True

    def start(self, managers: int) -> AbstractContextManager[None]:
        return nullcontext()

    def done(self, outcome: ManagerOutcome) -> None:
        """One manager finished (any order): progress only."""

    def add(self, outcome: ManagerOutcome) -> None:
        """The next outcome in roster order."""
        self.all_ok = self.all_ok and outcome.ok
        for error in outcome.errors:
            problem(f"{outcome.manager}: {error}")
        for warning in outcome.warnings:
            problem(f"{outcome.manager}: warning: {warning}")

    def finish(self) -> None: ...


class _JsonLines(_Report):
    """``--json``: one line per manager, printed and forgotten, so memory stays flat."""

    def add(self, outcome: ManagerOutcome) -> None:
        super().add(outcome)
        click.echo(json.dumps(outcome.to_json(), ensure_ascii=True, sort_keys=True))


class _Table(_Report):
    """A progress bar while running, then the summary table a person reads."""

    def __init__(self, settings: Settings, dry_run: bool) -> None:
        super().__init__()
        self.settings, self.dry_run = settings, dry_run
        self.outcomes: list[ManagerOutcome] = []
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=stderr,
            transient=True,
        )
        self.task: TaskID | None = None

    @contextmanager
    def _showing(self, managers: int) -> Iterator[None]:
        with self.progress:
            self.task = self.progress.add_task("managers", total=managers)
            yield

    def start(self, managers: int) -> AbstractContextManager[None]:
        return self._showing(managers)

    def done(self, outcome: ManagerOutcome) -> None:
        if self.task is not None:
            self.progress.advance(self.task)

    def add(self, outcome: ManagerOutcome) -> None:
        super().add(outcome)
        self.outcomes.append(outcome)

    def finish(self) -> None:
        _summary(self.outcomes, self.settings, self.dry_run)


async def _run(
    settings: Settings,
    now: datetime,
    manager_email: str | None,
    dry_run: bool,
    report: _Report,
) -> None:
    roster = await load_roster(settings)
    managers = _pick(roster.managers, manager_email, roster.source)
    heap.settle()  # the roster lives for the run: collections need not walk it
    processes = processes_wanted(settings, len(managers))  # --manager: one, so one process
    with report.start(len(managers)):
        async for outcome in stream_spread(
            managers,
            settings,
            now=now,
            dry_run=dry_run,
            processes=processes,
            on_done=report.done,
        ):
            report.add(outcome)
    report.finish()


def _summary(outcomes: Sequence[ManagerOutcome], settings: Settings, dry_run: bool) -> None:
    table = Table(title="Kindly — dry run" if dry_run else "Kindly — weekly run")
    for column in ("manager", "overdue", "upcoming", "holds", "digest", "problems"):
        table.add_column(column)
    for o in outcomes:
        if o.email is None:
            digest = "—"
        elif dry_run:
            digest = "would send"
        else:
            digest = "sent" if o.email.sent else "already sent"
        holds = ", ".join(f"{h.key.report.split('@')[0]} {h.start:%a %H:%M}" for h in o.holds)
        table.add_row(
            o.manager,
            str(len(o.overdue)),
            str(len(o.upcoming)),
            holds or "—",
            digest,
            str(len(o.errors)) if o.errors else "",
        )
    stderr.print(table)
    if settings.email.backend == "file" and not dry_run:
        stderr.print(f"Digests are in {settings.email.outbox_dir.resolve()}")


@cli.command()
@click.option("--manager", "manager_email", required=True, help="The manager whose digest to show.")
@click.option("--now", "now_given", type=NowType(), help="Pin the clock (ISO 8601).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write HTML here.")
def preview(manager_email: str, now_given: datetime | None, out: Path | None) -> None:
    """Render one manager's digest to HTML (sends nothing, creates no holds)."""
    settings = settings_or_exit()
    now = pinned(now_given, settings) or datetime.now(UTC)

    async def render() -> ManagerOutcome:
        roster = await load_roster(settings)
        (manager,) = _pick(roster.managers, manager_email, roster.source)
        async with session(settings) as ctx:
            return await run_manager(manager, ctx, now=now, dry_run=True)

    outcome: ManagerOutcome = guarded(render())
    if outcome.rendered is None:
        for error in outcome.errors:
            problem(f"{outcome.manager}: {error}")
        raise SystemExit(EXIT_SOME_FAILED)
    if out is None:
        click.echo(outcome.rendered.html)
    else:
        out.write_text(outcome.rendered.html, encoding="utf-8")
        stderr.print(f"Wrote {out} — subject: {outcome.rendered.subject}")


@cli.command()
@click.option("--now", "now_given", type=NowType(), help="Pin the clock (ISO 8601).")
def check(now_given: datetime | None) -> None:
    """Validate settings, roster, calendars, mail and Redis; one line per problem."""
    settings = settings_or_exit()
    now = pinned(now_given, settings) or datetime.now(UTC)
    problems = guarded(_check(settings, now))
    for line in problems:
        problem(line)
    if problems:
        raise SystemExit(EXIT_SOME_FAILED)
    stderr.print("All checks passed.")


async def _check(settings: Settings, now: datetime) -> list[str]:
    roster = await load_roster(settings)
    stderr.print(
        f"settings: ok (calendar={settings.calendar}, email={settings.email.backend}); "
        f"roster: {len(roster.managers)} managers, "
        f"{sum(len(m.reports) for m in roster.managers)} reports"
    )
    problems: list[str] = []
    async with session(settings) as ctx:
        _print_scopes(settings, ctx)
        zones = await zones_of(roster.managers, ctx.connector, settings)
        for manager, zone in zip(roster.managers, zones, strict=True):
            found = (
                zone
                if isinstance(zone, KindlyError)
                else await _read_a_day(ctx, manager, zone, now)
            )
            if found is not None:
                problems.append(f"{manager.email}: {found}")
    problems += await _check_outbox(settings)
    problems += await _check_redis(settings)
    return problems


async def _read_a_day(
    ctx: RunContext, manager: Manager, zone: ZoneInfo, now: datetime
) -> KindlyError | None:
    """What stops reading a day of the manager's calendar, if anything."""
    try:
        await ctx.connector.events(manager.email, now, now + timedelta(days=1), tz=zone, warn=_note)
    except KindlyError as exc:
        return exc
    return None


def _note(warning: str) -> None:
    """A skipped event is no failed check, but the admin may want to fix it."""
    click.echo(f"note: {warning}", err=True)


def _print_scopes(settings: Settings, ctx: RunContext) -> None:
    """What Kindly may do at the providers: the scopes or permissions it asks for."""
    mode = "read and write" if settings.holds.enabled else "read-only (KINDLY_HOLDS__ENABLED=false)"
    parts: tuple[tuple[str, CalendarConnector | Mailer], ...] = (
        ("calendar", ctx.connector),
        ("email", ctx.mailer),
    )
    for what, part in parts:
        scopes = part.scopes()
        if scopes:
            extra = f", {mode}" if what == "calendar" else ""
            stderr.print(
                f"{what} access ({type(part).__name__}{extra}): {', '.join(scopes)}",
                soft_wrap=True,
            )


async def _check_outbox(settings: Settings) -> list[str]:
    if settings.email.backend != "file":
        return []
    folder = settings.email.outbox_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".kindly-check"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return [f"KINDLY_EMAIL__OUTBOX_DIR={folder}: not writable ({exc.strerror or exc})"]
    return []


async def _check_redis(settings: Settings) -> list[str]:
    """Redis is needed by the worker only; `run --once` works without it."""
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(settings.redis_url, socket_connect_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError, ValueError) as exc:
        stderr.print(
            f"note: KINDLY_REDIS_URL={safe_redis_url(settings)} is not answering ({exc}); "
            "`kindly worker` needs it, `kindly run --once` does not"
        )
    finally:
        await client.aclose()
    return []


cli.add_command(worker)
cli.add_command(status)


def main() -> None:
    cli(prog_name="kindly")


if __name__ == "__main__":
    main()
    sys.exit(0)

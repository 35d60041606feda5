"""``kindly worker`` and ``kindly status`` (README "Commands"); service/cli.py registers them.

Kept apart from service/cli.py so the CLI does not import arq unless these run.
Exit status as elsewhere: 0 fine, 1 Redis or the work failed, 2 bad settings or roster.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import click
from redis.asyncio import Redis
from redis.exceptions import RedisError
from rich.console import Console
from rich.table import Table

from service.cli_support import (
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
from service.errors import KindlyError
from service.ledger import TTL_SECONDS, UNREACHABLE, DigestRecord, DigestState, RedisLedger
from service.model import iso_week
from service.planner import due_at, local_week
from service.settings import Settings
from service.wiring import build_connector, load_roster


@click.command()
@click.option("--now", "now_given", type=NowType(), help="Start the clock here (tests, demos).")
@click.option("--burst", is_flag=True, help="Plan once, work off the queue, exit.")
@click.option(
    "--check", is_flag=True, help="Health probe: exit 0 when Redis and settings are fine."
)
def worker(now_given: datetime | None, burst: bool, check: bool) -> None:
    """Run the weekly digests on Redis: the planner at start and every 15 minutes, then the jobs."""
    settings = settings_or_exit()
    if check:
        raise SystemExit(guarded(_check(settings)))
    from service.clock import OffsetClock, SystemClock
    from service.probes import serve
    from service.worker import QUEUE, create_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    anchor = pinned(now_given, settings)
    clock = OffsetClock(anchor) if anchor else SystemClock()
    guarded(load_roster(settings))  # a bad roster stops here with one line, not a traceback
    arq_worker = create_worker(settings, clock=clock, burst=burst)
    # before arq waits for Redis, so /healthz answers while it does
    arq_worker.ctx["probes"] = guarded(serve(settings, queue=QUEUE), loop=arq_worker.loop)
    try:
        arq_worker.run()
    except (RedisError, *UNREACHABLE) as exc:
        problem(f"KINDLY_REDIS_URL={safe_redis_url(settings)}: Redis is not answering ({exc})")
        raise SystemExit(EXIT_SOME_FAILED) from None
    except KindlyError as exc:
        problem(str(exc))
        raise SystemExit(EXIT_SOME_FAILED) from None
    raise SystemExit(EXIT_SOME_FAILED if arq_worker.jobs_failed else EXIT_OK)


async def _check(settings: Settings) -> int:
    roster = await load_roster(settings)
    client: Redis = Redis.from_url(settings.redis_url, socket_connect_timeout=3)
    try:
        await client.ping()
        from service.worker import HEALTH_KEY

        beat = await client.get(HEALTH_KEY)
    except (RedisError, *UNREACHABLE) as exc:
        problem(f"KINDLY_REDIS_URL={safe_redis_url(settings)}: Redis is not answering ({exc})")
        return EXIT_SOME_FAILED
    finally:
        await client.aclose()
    heartbeat = beat.decode() if beat else "no worker has reported yet"
    stderr.print(f"worker check: ok — Redis answers, {len(roster.managers)} managers; {heartbeat}")
    return EXIT_OK


@dataclass(frozen=True, slots=True)
class StatusLine:
    manager: str
    week: str
    state: str
    reason: str | None

    def to_json(self) -> dict[str, str | None]:
        return {
            "manager": self.manager,
            "week": self.week,
            "state": self.state,
            "reason": self.reason,
        }


def describe(record: DigestRecord, *, now: datetime, due: datetime, tz: ZoneInfo) -> StatusLine:
    """One manager's line: sent, failed (why) or pending (why not yet)."""
    if record.state is DigestState.SENT:
        return StatusLine(record.manager, record.week, "sent", None)
    if record.state is DigestState.FAILED:
        return StatusLine(record.manager, record.week, "failed", record.reason)
    if now < due:
        reason = f"due {due.astimezone(tz):%a %d %b %H:%M} ({tz.key})"
    elif record.state is DigestState.SENDING:
        reason = record.reason or "being sent"
    else:
        reason = record.reason or "queued"
    return StatusLine(record.manager, record.week, "pending", reason)


#: how long the ledger remembers a week, for ``kindly status --week`` and the README
KEPT_DAYS = TTL_SECONDS // 86400


class WeekType(click.ParamType[str]):
    """An ISO week (``2026-W47``) or a date in it (``2026-11-18``)."""

    name = "WEEK"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        text = str(value).strip()
        week = re.fullmatch(r"(\d{4})-?W(\d{2})", text, flags=re.IGNORECASE)
        try:
            if week:
                return iso_week(date.fromisocalendar(int(week[1]), int(week[2]), 1))
            return iso_week(date.fromisoformat(text))
        except ValueError:
            self.fail(
                f"{text!r} is neither an ISO week such as 2026-W47 nor a date such as 2026-11-18"
            )


@click.command()
@click.option("--now", "now_given", type=NowType(), help="Pin the clock (ISO 8601).")
@click.option(
    "--week",
    type=WeekType(),
    help=f"An earlier week (2026-W47, or a date in it); the ledger keeps each week {KEPT_DAYS} "
    "days after its last change, so this week and the two before.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per manager on stdout.")
def status(now_given: datetime | None, week: str | None, as_json: bool) -> None:
    """Show this week's digests per manager (or an earlier week's): sent, pending, or failed
    with the reason."""
    settings = settings_or_exit()
    now = pinned(now_given, settings) or datetime.now().astimezone()
    kept = guarded(_roster_kept(settings))
    if kept is not None:
        problem(f"roster: {kept}")
    lines = guarded(_status(settings, now, week))
    if as_json:
        for line in lines:
            click.echo(json.dumps(line.to_json(), ensure_ascii=True, sort_keys=True))
        return
    table = Table(title=f"Kindly — digests at {now:%Y-%m-%d %H:%M %Z}")
    for column in ("manager", "week", "state", "reason"):
        table.add_column(column)
    for line in lines:
        table.add_row(line.manager, line.week, line.state, line.reason or "")
    Console(highlight=False).print(table)


async def _roster_kept(settings: Settings) -> str | None:
    """What a worker said about a roster it could not load, if Redis answers."""
    client: Redis = Redis.from_url(settings.redis_url, socket_connect_timeout=3)
    try:
        return await RedisLedger(client).roster_kept()
    except KindlyError:
        return None  # the status lines below say that Redis is not answering
    finally:
        await client.aclose()


async def _status(settings: Settings, now: datetime, week: str | None = None) -> list[StatusLine]:
    """Every manager's line; one whose zone cannot be looked up is failed with the reason
    (unless already sent), and the others are shown as usual."""
    from service.zones import UNREADABLE, fallback_zone, zones_of

    roster = await load_roster(settings)
    connector = build_connector(settings)
    client: Redis = Redis.from_url(settings.redis_url, socket_connect_timeout=3)
    try:
        found = await zones_of(roster.managers, connector, settings)
        zones = [
            zone if isinstance(zone, ZoneInfo) else fallback_zone(manager, settings)
            for manager, zone in zip(roster.managers, found, strict=True)
        ]
        pairs = [
            (m.email, week or local_week(now, tz))
            for m, tz in zip(roster.managers, zones, strict=True)
        ]
        records = await RedisLedger(client).digests(pairs)
    finally:
        await client.aclose()
        await connector.aclose()
    lines = []
    for record, zone, tz in zip(records, found, zones, strict=True):
        if isinstance(zone, KindlyError) and record.state is not DigestState.SENT:
            state = "pending" if zone.transient else "failed"
            lines.append(StatusLine(record.manager, record.week, state, f"{UNREADABLE}{zone}"))
            continue
        moment = now if week is None else _inside(week, tz)
        due = due_at(moment, tz, day=settings.digest_day, hour=settings.digest_hour)
        line = describe(record, now=now, due=due, tz=tz)
        forgotten = record.state is DigestState.PENDING and record.reason is None
        if forgotten and week is not None and week < local_week(now, tz):
            line = replace(line, reason=_FORGOTTEN)
        lines.append(line)
    return lines


_FORGOTTEN = (
    f"nothing recorded: not sent that week, or longer ago than the ledger keeps ({KEPT_DAYS} days)"
)


def _inside(week: str, tz: ZoneInfo) -> datetime:
    """Noon on the Monday of ``week`` in ``tz``: an instant of that local week."""
    year, number = week.split("-W")
    monday = date.fromisocalendar(int(year), int(number), 1)
    return datetime.combine(monday, time(12), tzinfo=tz)

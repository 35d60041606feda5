"""What every ``kindly`` command shares: exit statuses, problem lines, ``--now``, start-up.

stdout carries only what was asked for; every problem is one line on stderr.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click
from rich.console import Console

from service.errors import ConfigError, KindlyError, RosterError
from service.settings import Settings, load_settings

EXIT_OK, EXIT_SOME_FAILED, EXIT_BAD_INPUT = 0, 1, 2
T = TypeVar("T")

#: wide enough for email addresses when stderr is a file or a pipe (rich assumes 80 there)
stderr = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 120)


def problem(message: str) -> None:
    """One line per problem on stderr (multi-line messages are one problem a line)."""
    for line in message.splitlines():
        click.echo(f"kindly: {line}", err=True)


class NowType(click.ParamType[datetime]):
    """An ISO 8601 instant; without an offset it is read in KINDLY_TIMEZONE (see :func:`pinned`)."""

    name = "ISO8601"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date-time such as 2026-11-23T08:00:00+01:00")


def pinned(given: datetime | None, settings: Settings) -> datetime | None:
    """The ``--now`` instant (else ``KINDLY_NOW``) made tz-aware, or None when the clock
    is not pinned."""
    given = given or settings.now
    if given is None:
        return None
    return given if given.tzinfo else given.replace(tzinfo=ZoneInfo(settings.timezone))


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        problem(str(exc))
        raise SystemExit(EXIT_BAD_INPUT) from None


def guarded(work: Coroutine[Any, Any, T], *, loop: asyncio.AbstractEventLoop | None = None) -> T:
    """Run the work (on ``loop`` when what it starts must outlive it); bad settings or
    roster end the command with one line each, status 2."""
    try:
        return loop.run_until_complete(work) if loop is not None else asyncio.run(work)
    except (ConfigError, RosterError) as exc:
        problem(str(exc))
        raise SystemExit(EXIT_BAD_INPUT) from None
    except KindlyError as exc:
        problem(str(exc))
        raise SystemExit(EXIT_SOME_FAILED) from None


def safe_redis_url(settings: Settings) -> str:
    """The Redis URL without its password, for messages."""
    url = settings.redis_url
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url

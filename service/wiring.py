"""The composition root: builds the configured connector, mailer and roster from settings.

The only module of ``service/`` that reaches the adapters in ``connectors/``,
and only by name (imported when chosen), so the core depends on the ports
alone and the two packages never import each other. When the calendar and
the mail both go through Microsoft Graph they share one client: one token
cache, one set of per-mailbox limits.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from service.errors import ConfigError
from service.model import Roster
from service.pipeline import RunContext
from service.ports import CalendarConnector, Mailer
from service.roster import load_roster_file
from service.settings import Settings

#: KINDLY_CALENDAR → the module that implements it (imported only when chosen)
CONNECTORS = {
    "ics": "connectors.ics",
    "google": "connectors.google",
    "outlook": "connectors.outlook",
}
#: KINDLY_EMAIL__BACKEND → the module that implements it
MAILERS = {
    "file": "connectors.mail.outbox",
    "smtp": "connectors.mail.smtp",
    "graph": "connectors.mail.graph",
}
GRAPH = "connectors.graph_http"
QUOTAS = "connectors.quota"


@dataclass(frozen=True, slots=True)
class Adapters:
    """What one process talks to the world through; closed once, at its end."""

    connector: CalendarConnector
    mailer: Mailer

    async def aclose(self) -> None:
        await self.connector.aclose()
        await self.mailer.aclose()


def build_adapters(settings: Settings) -> Adapters:
    shared: dict[str, Any] = {}
    if settings.calendar == "outlook" and settings.email.backend == "graph":
        shared["client"] = importlib.import_module(GRAPH).client_from_settings(settings)
    return Adapters(build_connector(settings, **shared), build_mailer(settings, **shared))


@asynccontextmanager
async def session(settings: Settings) -> AsyncIterator[RunContext]:
    """What one command's managers share, built from settings and closed at its end."""
    adapters = build_adapters(settings)
    try:
        yield RunContext(settings=settings, connector=adapters.connector, mailer=adapters.mailer)
    finally:
        await adapters.aclose()


def quotas_shared(settings: Settings) -> bool:
    """Whether KINDLY_REDIS_URL answers, so every process counts the providers' quotas there
    (``connectors/quota.py``) rather than each pacing itself."""
    answers: bool = importlib.import_module(QUOTAS).answers(settings.redis_url)
    return answers


def build_connector(settings: Settings, **shared: Any) -> CalendarConnector:
    module = importlib.import_module(CONNECTORS[settings.calendar])
    connector: CalendarConnector = module.from_settings(settings, **shared)
    return connector


def build_mailer(settings: Settings, **shared: Any) -> Mailer:
    backend = settings.email.backend
    try:
        module = importlib.import_module(MAILERS[backend])
    except ModuleNotFoundError:
        raise ConfigError(
            f"KINDLY_EMAIL__BACKEND={backend} is not available in this build; use file"
        ) from None
    mailer: Mailer = module.from_settings(settings, **shared)
    return mailer


async def load_roster(settings: Settings) -> Roster:
    """The roster file, or the provider's directory with KINDLY_ROSTER_SOURCE=directory."""
    if settings.roster_source == "file":
        return load_roster_file(settings.roster_file)
    if settings.calendar == "ics":
        raise ConfigError(
            "KINDLY_ROSTER_SOURCE=directory needs KINDLY_CALENDAR=google or outlook; "
            "with ics calendars use KINDLY_ROSTER_SOURCE=file"
        )
    module = importlib.import_module(CONNECTORS[settings.calendar])
    roster: Roster = await module.load_directory_roster(settings)
    return roster

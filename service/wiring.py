"""Builds the configured connector, mailer and roster from settings (start-up only)."""

from __future__ import annotations

import importlib
from typing import Any

from connectors.base import CalendarConnector
from service.errors import ConfigError
from service.mailer import Mailer
from service.model import Roster
from service.outbox import FileMailer
from service.roster import load_roster_file
from service.settings import Settings

#: KINDLY_CALENDAR → the module that implements it (imported only when chosen)
CONNECTORS = {
    "ics": "connectors.ics",
    "google": "connectors.google",
    "outlook": "connectors.outlook",
}
#: KINDLY_EMAIL__BACKEND → (module, factory) for the backends that need more than a folder
MAILERS = {
    "smtp": ("service.smtp", "from_settings"),
    "graph": ("connectors.outlook", "mailer_from_settings"),
}


def _provider(settings: Settings) -> Any:
    return importlib.import_module(CONNECTORS[settings.calendar])


def build_connector(settings: Settings) -> CalendarConnector:
    connector: CalendarConnector = _provider(settings).from_settings(settings)
    return connector


def build_mailer(settings: Settings) -> Mailer:
    backend = settings.email.backend
    if backend == "file":
        return FileMailer(settings.email.outbox_dir)
    module_name, factory = MAILERS[backend]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        raise ConfigError(
            f"KINDLY_EMAIL__BACKEND={backend} is not available in this build; use file"
        ) from None
    mailer: Mailer = getattr(module, factory)(settings)
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
    roster: Roster = await _provider(settings).load_directory_roster(settings)
    return roster

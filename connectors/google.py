"""Google Workspace calendars (``KINDLY_CALENDAR=google``) through a service account.

The service account acts as each manager through domain-wide delegation, with
the fewest scopes the job needs: ``calendar.readonly`` to read, plus
``calendar.events`` only when holds are enabled; the Directory roster uses
``admin.directory.user.readonly`` as ``KINDLY_GOOGLE__ADMIN_SUBJECT``. Nobody
signs up, and nothing but this module knows Google exists.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from google.oauth2 import service_account

from connectors.google_mapping import (
    LISTING_FIELDS,
    busy_from,
    events_from_items,
    hold_body,
    placed_hold,
    roster_from_users,
)
from connectors.google_transport import (
    DEFAULT_BACKOFF,
    DEFAULT_RATES,
    SCOPE,
    Backoff,
    GoogleTransport,
    Rates,
    Sleep,
)
from connectors.quota import SharedQuotas, connect
from service.errors import ConfigError, ConnectorError, RosterError
from service.model import Event, HoldRequest, Interval, PlacedHold, Roster
from service.ports import CalendarConnector, Warn
from service.settings import Settings

READ_SCOPES = ("calendar.readonly",)
WRITE_SCOPES = ("calendar.readonly", "calendar.events")
DIRECTORY_SCOPES = ("admin.directory.user.readonly",)
#: freebusy.query answers for at most this many calendars at once
FREEBUSY_BATCH = 50
PAGE_SIZE = 250


class GoogleConnector(CalendarConnector):
    """The :class:`~service.ports.CalendarConnector` for Google Calendar."""

    def __init__(
        self,
        credentials: service_account.Credentials,
        *,
        api_endpoint: str = "https://www.googleapis.com/",
        holds_enabled: bool = True,
        max_concurrency: int = 8,
        page_size: int = PAGE_SIZE,
        backoff: Backoff = DEFAULT_BACKOFF,
        rates: Rates = DEFAULT_RATES,
        sleep: Sleep | None = None,
        ca_certs: str | None = None,
        quotas: SharedQuotas | None = None,
    ) -> None:
        """``quotas``: Google's quotas shared with every Kindly process through Redis;
        None paces this process alone."""
        options: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        self._transport = GoogleTransport(
            credentials,
            api_endpoint=api_endpoint,
            max_concurrency=max_concurrency,
            backoff=backoff,
            rates=rates,
            ca_certs=ca_certs,
            quotas=quotas,
            **options,
        )
        self._scopes = WRITE_SCOPES if holds_enabled else READ_SCOPES
        self._holds_enabled = holds_enabled
        self._page_size = page_size

    def scopes(self) -> tuple[str, ...]:
        """The OAuth scopes this connector asks for (``kindly check`` lists them)."""
        return tuple(SCOPE + scope for scope in self._scopes)

    @property
    def rates(self) -> Rates:
        """The request quotas every call is paced to."""
        return self._transport.rates

    async def _calendar(self, manager: str, make: Any, *, what: str) -> Any:
        return await self._transport.call(
            "calendar", manager.lower(), self._scopes, make, what=what
        )

    async def timezone(self, manager: str) -> ZoneInfo | None:
        setting = await self._calendar(
            manager,
            lambda c: c.settings().get(setting="timezone"),
            what="read the calendar's time zone",
        )
        try:
            return ZoneInfo(str(setting.get("value")))
        # OSError: a name longer than a file name may be (tzdata looks it up as a file)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            return None

    async def events(
        self,
        manager: str,
        start: datetime,
        end: datetime,
        *,
        tz: ZoneInfo,
        warn: Warn | None = None,
    ) -> Sequence[Event]:
        items: list[Mapping[str, Any]] = []
        zone, token = tz, None
        while True:
            page = await self._calendar(
                manager, self._list(start, end, token), what="list calendar events"
            )
            zone = _zone(page.get("timeZone"), zone)
            items += page.get("items", [])
            token = page.get("nextPageToken")
            if not token:
                break
        calendar = f"{manager} (Google Calendar)"
        return events_from_items(items, zone=zone, warn=warn, calendar=calendar)

    def _list(self, start: datetime, end: datetime, token: str | None) -> Any:
        def make(client: Any) -> Any:
            return client.events().list(
                calendarId="primary",
                timeMin=start.isoformat(),
                timeMax=end.isoformat(),
                singleEvents=True,
                orderBy="startTime",
                showDeleted=True,
                maxResults=self._page_size,
                pageToken=token,
                fields=LISTING_FIELDS,
            )

        return make

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
        found: dict[str, Sequence[Interval] | None] = {}
        for first in range(0, len(people), FREEBUSY_BATCH):
            chunk = list(people[first : first + FREEBUSY_BATCH])
            body = {
                "timeMin": start.isoformat(),
                "timeMax": end.isoformat(),
                "timeZone": "UTC",
                "items": [{"id": person.lower()} for person in chunk],
            }
            response = await self._calendar(
                manager,
                lambda c, body=body: c.freebusy().query(body=body),
                what="read free/busy",
            )
            found.update(busy_from(response, chunk, warn=warn))
        return found

    async def create_hold(self, manager: str, hold: HoldRequest) -> PlacedHold:
        if not self._holds_enabled:
            raise ConnectorError(
                "holds are disabled (KINDLY_HOLDS__ENABLED=false), so Kindly holds no write scope",
                manager=manager,
            )
        zone = _zone(hold.timezone, ZoneInfo("UTC"))
        body = hold_body(hold, manager)
        try:
            created = await self._calendar(
                manager,
                lambda c: c.events().insert(
                    calendarId="primary",
                    body=body,
                    sendUpdates="all" if hold.invite_report else "none",
                ),
                what="place a hold",
            )
        except ConnectorError as exc:
            if exc.status != 409:
                raise
            existing = await self._calendar(
                manager,
                lambda c: c.events().get(calendarId="primary", eventId=body["id"]),
                what="read the hold already there",
            )
            return placed_hold(existing, hold.key, zone=zone, created=False)
        return placed_hold(created, hold.key, zone=zone, created=True)

    async def aclose(self) -> None:
        await self._transport.aclose()


def _zone(name: object, default: ZoneInfo) -> ZoneInfo:
    try:
        return ZoneInfo(str(name)) if name else default
    # OSError: a name longer than a file name may be (tzdata looks it up as a file)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return default


def _credentials(settings: Settings) -> service_account.Credentials:
    path: Path | None = settings.google.service_account_file
    if path is None:
        raise ConfigError(
            "KINDLY_GOOGLE__SERVICE_ACCOUNT_FILE is not set; point it at the service account's "
            "JSON key (README, Google Workspace)"
        )
    try:
        # google-auth ships without annotations on this constructor
        credentials: service_account.Credentials = (
            service_account.Credentials.from_service_account_file(str(path))  # type: ignore[no-untyped-call]
        )
        return credentials
    except FileNotFoundError:
        raise ConfigError(
            f"KINDLY_GOOGLE__SERVICE_ACCOUNT_FILE={path}: no such file; download the key from the "
            "Cloud console"
        ) from None
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"KINDLY_GOOGLE__SERVICE_ACCOUNT_FILE={path}: not a service-account JSON key ({exc})"
        ) from None


def _ca_certs(settings: Settings) -> str | None:
    """httplib2 reads neither CA-bundle variable and ships its own bundle, so pass one:
    ``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE`` (settings), else the system's."""
    bundle = settings.ca_bundle
    if bundle is None:
        return ssl.get_default_verify_paths().cafile
    if not bundle.is_file():
        raise ConfigError(
            f"REQUESTS_CA_BUNDLE/SSL_CERT_FILE={bundle}: no such file; point it at a PEM file of "
            "the CAs to trust, or unset it to use the system's"
        )
    return str(bundle)


def from_settings(settings: Settings) -> GoogleConnector:
    return GoogleConnector(
        _credentials(settings),
        api_endpoint=str(settings.google.api_endpoint),
        holds_enabled=settings.holds.enabled,
        max_concurrency=settings.google.in_flight,
        rates=_rates(settings),
        ca_certs=_ca_certs(settings),
        quotas=connect(settings.redis_url),
    )


def _rates(settings: Settings) -> Rates:
    return Rates(
        per_user=settings.google.requests_per_minute_per_user,
        per_project=settings.google.requests_per_minute,
    )


async def load_directory_roster(settings: Settings, *, sleep: Sleep | None = None) -> Roster:
    """Managers and reports from the Directory's manager relations; suspended users skipped."""
    admin = settings.google.admin_subject
    if not admin:
        raise ConfigError(
            "KINDLY_GOOGLE__ADMIN_SUBJECT is not set; KINDLY_ROSTER_SOURCE=directory reads the "
            "Directory as this Workspace admin"
        )
    options: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    transport = GoogleTransport(
        _credentials(settings),
        api_endpoint=str(settings.google.api_endpoint),
        max_concurrency=1,
        rates=_rates(settings),
        ca_certs=_ca_certs(settings),
        **options,
    )
    source = "Google Directory"
    users: list[Mapping[str, Any]] = []
    token: str | None = None
    try:
        while True:
            page = await transport.call(
                "directory",
                admin.lower(),
                DIRECTORY_SCOPES,
                _users_page(token),
                what="list the Directory's users",
            )
            users += page.get("users", [])
            token = page.get("nextPageToken")
            if not token:
                break
    except ConnectorError as exc:
        raise RosterError(str(exc), source=source) from None
    finally:
        await transport.aclose()
    return roster_from_users(users, source=source)


def _users_page(token: str | None) -> Callable[[Any], Any]:
    def make(directory: Any) -> Any:
        return directory.users().list(
            customer="my_customer", maxResults=500, orderBy="email", pageToken=token
        )

    return make

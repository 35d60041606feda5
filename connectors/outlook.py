"""Microsoft 365 calendars through Microsoft Graph (``KINDLY_CALENDAR=outlook``).

Reads each manager's calendarView in UTC, free/busy through getSchedule, the
mailbox's time zone from mailboxSettings, and places holds with a transactionId
and a single-value extended property derived from the hold's key. A hold costs
one POST: a re-run finds this week's hold in the calendarView it reads anyway
(the pipeline checks the key there), and a retried POST carries the same
transactionId, so Graph answers with the event it already made. Only when Graph
refuses that transactionId for a different event (the manager moved the hold
out of the window Kindly reads) is the hold looked up by its key.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from connectors.graph_http import GraphClient, Part, client_from_settings
from service.errors import CalendarDataError, ConnectorError, Rejected
from service.model import (
    Attendee,
    Event,
    HoldKey,
    HoldRequest,
    Interval,
    Manager,
    PlacedHold,
    ProviderWorkingTime,
    Report,
    Response,
    Roster,
    ShowAs,
    Status,
    WorkingTime,
    interned_attendee,
)
from service.ports import CalendarConnector, Warn, skipped
from service.settings import Settings

#: Kindly's own property set; the hold's key lives in this named string property
HOLD_PROPERTY = "String {8a4f2c1e-7d3b-4e59-a6c2-5b1d9e0f3a47} Name KindlyHoldKey"
EVENT_FIELDS = (
    "id,start,end,isAllDay,isCancelled,showAs,type,seriesMasterId,originalStart,"
    "organizer,attendees,responseStatus,webLink,body"
)
UTC_PREFERENCE = {"Prefer": 'outlook.timezone="UTC", outlook.body-content-type="text"'}
PAGE_SIZE = 100
#: application permissions used: read-only (KINDLY_HOLDS__ENABLED=false), and with holds
READ_PERMISSIONS = ("Calendars.Read", "MailboxSettings.Read")
WRITE_PERMISSIONS = ("Calendars.ReadWrite", "MailboxSettings.Read")
SCHEDULES_PER_CALL = 20
#: Graph's answer to a transactionId already used for a different event
DUPLICATE_TRANSACTION = "ErrorDuplicateTransactionId"

_SHOW_AS = {
    "free": ShowAs.FREE,
    "tentative": ShowAs.TENTATIVE,
    "busy": ShowAs.BUSY,
    "oof": ShowAs.OOF,
    "workingElsewhere": ShowAs.WORKING_ELSEWHERE,
}
_RESPONSE = {
    "accepted": Response.ACCEPTED,
    "organizer": Response.ACCEPTED,
    "declined": Response.DECLINED,
    "tentativelyAccepted": Response.TENTATIVE,
}
_TAG = re.compile(r"<[^>]+>")
#: what a field of the wrong type or value raises somewhere in the mapping
MALFORMED = (AttributeError, KeyError, TypeError, ValueError, OverflowError)


class OutlookConnector(CalendarConnector):
    """The :class:`service.ports.CalendarConnector` for Microsoft 365."""

    def __init__(self, client: GraphClient, *, holds_enabled: bool = True) -> None:
        self.client = client
        self.holds_enabled = holds_enabled
        #: (manager, person) → the workingHours the last mailboxSettings or getSchedule
        #: answer for that manager's run carried: read with the calls made anyway
        self._working: dict[tuple[str, str], ProviderWorkingTime] = {}

    def scopes(self) -> tuple[str, ...]:
        """The application permissions this connector uses (``kindly check`` lists them)."""
        return WRITE_PERMISSIONS if self.holds_enabled else READ_PERMISSIONS

    async def timezone(self, manager: str) -> ZoneInfo | None:
        settings = await self.client.call(
            "GET",
            f"/users/{_segment(manager)}/mailboxSettings",
            mailbox=manager,
            what="reading the mailbox time zone",
            permission="MailboxSettings.Read",
        )
        if not isinstance(settings, Mapping):
            return None
        self._remember(manager, manager, settings.get("workingHours"))
        return zone_named(str(settings.get("timeZone") or ""))

    async def working_hours(
        self, manager: str, people: Sequence[str]
    ) -> Mapping[str, ProviderWorkingTime]:
        key = manager.lower()
        found = {p.lower(): self._working.get((key, p.lower())) for p in people}
        return {person: working for person, working in found.items() if working is not None}

    def _remember(self, manager: str, person: str, hours: object) -> None:
        working = working_time_from(hours)
        key = (manager.lower(), person.lower())
        if working is None:
            self._working.pop(key, None)
        else:
            self._working[key] = working

    async def events(
        self,
        manager: str,
        start: datetime,
        end: datetime,
        *,
        tz: ZoneInfo,
        warn: Warn | None = None,
    ) -> Sequence[Event]:
        items = await self.client.pages(
            f"/users/{_segment(manager)}/calendarView",
            mailbox=manager,
            what="reading the calendar",
            permission="Calendars.Read",
            params={
                "startDateTime": _utc(start),
                "endDateTime": _utc(end),
                "$select": EVENT_FIELDS,
                "$top": str(PAGE_SIZE),
                "$expand": f"singleValueExtendedProperties($filter=id eq '{HOLD_PROPERTY}')",
            },
            headers=UTC_PREFERENCE,
        )
        return events_from_items(items, manager, tz, warn=warn)

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
        window = {
            "startTime": {"dateTime": _utc(start)[:-1], "timeZone": "UTC"},
            "endTime": {"dateTime": _utc(end)[:-1], "timeZone": "UTC"},
            "availabilityViewInterval": 15,
        }
        calls = [
            Part(
                "POST",
                f"/users/{_segment(manager)}/calendar/getSchedule",
                manager,
                "reading free/busy",
                "Calendars.ReadBasic.All",
                body={"schedules": list(people[first : first + SCHEDULES_PER_CALL]), **window},
                headers=UTC_PREFERENCE,
            )
            for first in range(0, len(people), SCHEDULES_PER_CALL)
        ]
        found: dict[str, Sequence[Interval] | None] = {}
        for answer in await self.client.batch(calls):
            for schedule in _schedules(answer):
                person = str(schedule.get("scheduleId", "")).lower()
                found[person] = _schedule(schedule, tz, warn=warn)
                self._remember(manager, person, schedule.get("workingHours"))
        return {person: found.get(person.lower()) for person in people}

    async def create_hold(self, manager: str, hold: HoldRequest) -> PlacedHold:
        if not self.holds_enabled:
            raise ConnectorError(
                "holds are disabled (KINDLY_HOLDS__ENABLED=false), so Kindly uses no write "
                "permission",
                manager=manager,
            )
        try:
            created = await self.client.call(
                "POST",
                f"/users/{_segment(manager)}/events",
                mailbox=manager,
                what="placing a hold",
                permission="Calendars.ReadWrite",
                json=hold_body(hold),
                headers=UTC_PREFERENCE,
            )
        except Rejected as exc:
            if exc.reason != DUPLICATE_TRANSACTION:
                raise
            existing = await self._find_hold(manager, hold.key)
            if existing is None:
                raise
            return existing
        return _placed(created, hold.key, created=True)

    async def _find_hold(self, manager: str, key: HoldKey) -> PlacedHold | None:
        """This key's live hold wherever it is (only after Graph refused its transactionId)."""
        value = hold_value(key).replace("'", "''")
        items = await self.client.pages(
            f"/users/{_segment(manager)}/events",
            mailbox=manager,
            what="looking up an earlier hold",
            permission="Calendars.ReadWrite",
            params={
                "$filter": (
                    f"singleValueExtendedProperties/Any(ep: ep/id eq '{HOLD_PROPERTY}' "
                    f"and ep/value eq '{value}')"
                ),
                "$select": "id,start,end,webLink,isCancelled",
            },
            headers=UTC_PREFERENCE,
        )
        live = [item for item in items if not item.get("isCancelled")]
        return _placed(live[0], key, created=False) if live else None

    async def aclose(self) -> None:
        await self.client.aclose()


# -- mapping ------------------------------------------------------------------------------


@lru_cache(maxsize=512)
def zone_named(name: str) -> ZoneInfo | None:
    """An IANA zone for what mailboxSettings says: a Windows name (CLDR's mapping) or IANA."""
    for candidate in (WINDOWS_TO_OLSON.get(name), name):
        if candidate:
            try:
                return ZoneInfo(candidate)
            # OSError: a name longer than a file name may be (tzdata looks it up as a file)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                continue
    return None


def parse_graph_time(value: Mapping[str, Any]) -> datetime:
    """A dateTimeTimeZone, seven fractional digits and all, as a tz-aware datetime."""
    return _graph_time(str(value["dateTime"]), str(value.get("timeZone") or "UTC"))


@lru_cache(maxsize=16_384)
def _graph_time(text: str, zone: str) -> datetime:
    """Kept: a calendar's events start on the same few hundred quarter hours, so most of
    an organisation's date-times are parsed once (datetimes are immutable)."""
    head, _, fraction = text.partition(".")
    moment = datetime.fromisoformat(head.removesuffix("Z"))
    if fraction.rstrip("0Z"):  # Graph sends seven zeros nearly always
        moment += _ticks(fraction.removesuffix("Z"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone_named(zone) or UTC)
    return moment


def _offset_time(text: str) -> datetime:
    """A DateTimeOffset such as ``originalStart`` (``2026-11-16T09:00:00Z``)."""
    head, _, fraction = text.replace("Z", "+00:00").partition(".")
    if not fraction:
        return datetime.fromisoformat(head)
    digits, sign, offset = re.match(r"(\d*)([+-]?)(.*)", fraction).groups()  # type: ignore[union-attr]
    moment = datetime.fromisoformat(head + (sign + offset if sign else "+00:00"))
    return moment + _ticks(digits)


def _ticks(digits: str) -> timedelta:
    """Graph's seven fractional digits (100 ns ticks), rounded to microseconds."""
    return timedelta(microseconds=round(int(digits[:7].ljust(7, "0")) / 10))


def hold_value(key: HoldKey) -> str:
    return f"{key.manager.lower()}|{key.report.lower()}|{key.week}"


def _hold_key(item: Mapping[str, Any]) -> HoldKey | None:
    for prop in item.get("singleValueExtendedProperties") or []:
        if str(prop.get("id", "")).lower() == HOLD_PROPERTY.lower():
            parts = str(prop.get("value", "")).split("|")
            if len(parts) == 3:
                return HoldKey(parts[0], parts[1], parts[2])
    return None


def _email(person: Mapping[str, Any] | None) -> str | None:
    address = ((person or {}).get("emailAddress") or {}).get("address")
    return str(address).lower() if address else None


def _attendees(item: Mapping[str, Any], owner: str) -> tuple[Attendee, ...]:
    own = _RESPONSE.get(str((item.get("responseStatus") or {}).get("response")))
    found = []
    for attendee in item.get("attendees") or []:
        email = _email(attendee)
        if email is None:
            continue
        answer = str((attendee.get("status") or {}).get("response"))
        response = _RESPONSE.get(answer, Response.NEEDS_ACTION)
        if email == owner and own is not None:
            # an attendee's own answer is kept in responseStatus on their copy
            response = own
        found.append(interned_attendee(email, response, attendee.get("type") == "resource"))
    return tuple(found)


def _description(item: Mapping[str, Any]) -> str:
    body = item.get("body") or {}
    content = str(body.get("content") or "")
    if str(body.get("contentType", "text")).lower() == "html":
        content = html.unescape(_TAG.sub("", re.sub(r"<br\s*/?>|</p>", "\n", content)))
    return content.strip()


def events_from_items(
    items: Sequence[Any], owner: str, tz: ZoneInfo, *, warn: Warn | None = None
) -> list[Event]:
    """Every calendarView item as an Event; one Graph cannot have meant is left out and told."""
    events = []
    for item in items:
        try:
            events.append(_mapped(item, owner.lower(), tz))
        except MALFORMED as exc:
            if warn is not None:
                why = f"not shaped as Graph documents it ({exc!r})"
                warn(skipped(f"{owner.lower()} (Microsoft 365 calendar)", _item(item), why))
    return events


def _item(item: object) -> str:
    found = item.get("id") if isinstance(item, Mapping) else None
    return f"id {str(found)[:100]}" if found else "without id"


def to_event(item: Mapping[str, Any], owner: str, tz: ZoneInfo) -> Event:
    """A Graph event resource as :class:`service.model.Event` (titles are not kept)."""
    owner = owner.lower()
    try:
        return _mapped(item, owner, tz)
    except MALFORMED as exc:
        raise CalendarDataError(
            f"Microsoft Graph returned an event Kindly cannot read for {owner} ({exc!r}); "
            "report this with the event's id",
            manager=owner,
        ) from None


_DAYS = {
    "monday": 1,
    "tuesday": 2,
    "wednesday": 3,
    "thursday": 4,
    "friday": 5,
    "saturday": 6,
    "sunday": 7,
}


def working_time_from(hours: object) -> ProviderWorkingTime | None:
    """Graph's ``workingHours`` (mailboxSettings, getSchedule), or None when it is missing
    or not shaped as documented: Kindly then falls back to the settings."""
    if not isinstance(hours, Mapping):
        return None
    try:
        days = frozenset(_DAYS[str(d).lower()] for d in hours["daysOfWeek"])
        start = time.fromisoformat(str(hours["startTime"])[:8])
        end = time.fromisoformat(str(hours["endTime"])[:8])
    except (KeyError, TypeError, ValueError):
        return None
    if not days or end <= start:
        return None
    zone_field = hours.get("timeZone")
    name = zone_field.get("name") if isinstance(zone_field, Mapping) else None
    zone = zone_named(str(name)) if name else None
    return ProviderWorkingTime(WorkingTime(days, start, end), str(zone) if zone else None)


def _mapped(item: Mapping[str, Any], owner: str, tz: ZoneInfo) -> Event:
    all_day = bool(item.get("isAllDay"))
    start, end = parse_graph_time(item["start"]), parse_graph_time(item["end"])
    if all_day:
        # all-day events are dates: midnight to midnight wherever the manager is
        start = datetime.combine(start.date(), time(), tz)
        end = datetime.combine(end.date(), time(), tz)
    original = item.get("originalStart") if item.get("type") == "exception" else None
    return Event(
        id=str(item["id"]),
        start=start,
        end=end,
        all_day=all_day,
        status=Status.CANCELLED if item.get("isCancelled") else Status.CONFIRMED,
        show_as=_SHOW_AS.get(str(item.get("showAs")), ShowAs.BUSY),
        organizer=_email(item.get("organizer")),
        attendees=_attendees(item, owner),
        description=_description(item),
        series_id=_text(item.get("seriesMasterId")),
        original_start=_offset_time(str(original)) if original else None,
        hold_key=_hold_key(item),
        link=_text(item.get("webLink")),
    )


def _text(value: object) -> str | None:
    """A string field, or None when Graph sent something else."""
    return value if isinstance(value, str) else None


def _schedules(answer: Any) -> list[Mapping[str, Any]]:
    """The schedules of one getSchedule answer; none when it is not shaped as documented."""
    value = answer.get("value") if isinstance(answer, Mapping) else None
    return [s for s in value if isinstance(s, Mapping)] if isinstance(value, list) else []


def _schedule(
    schedule: Mapping[str, Any], tz: ZoneInfo, *, warn: Warn | None = None
) -> list[Interval] | None:
    """Busy intervals, or ``None`` (unknown) for an error or a schedule we cannot read;
    one busy item that cannot be read is left out and told."""
    try:
        if schedule.get("error"):
            return None
        entries = list(schedule.get("scheduleItems") or [])
    except MALFORMED:
        return None
    busy = []
    for entry in entries:
        try:
            if str(entry.get("status")) == "free":
                continue
            start, end = parse_graph_time(entry["start"]), parse_graph_time(entry["end"])
            busy.append(Interval(start, end))
        except MALFORMED as exc:
            if warn is not None:
                person = f"{schedule.get('scheduleId')} (Microsoft 365 free/busy)"
                warn(skipped(person, "busy item", f"not shaped as Graph documents it ({exc!r})"))
    try:
        return sorted(busy)
    except TypeError:  # an aware and a naive time cannot be compared
        return None


def hold_body(hold: HoldRequest) -> dict[str, Any]:
    """The event Graph creates: tentative, on the manager's calendar, keyed two ways."""
    zone = ZoneInfo(hold.timezone)
    body: dict[str, Any] = {
        "subject": hold.title,
        "body": {"contentType": "text", "content": hold.description},
        "start": {"dateTime": _local(hold.start, zone), "timeZone": hold.timezone},
        "end": {"dateTime": _local(hold.end, zone), "timeZone": hold.timezone},
        "showAs": "tentative",
        "isReminderOn": True,
        "transactionId": hold.key.hex_id(),
        "singleValueExtendedProperties": [{"id": HOLD_PROPERTY, "value": hold_value(hold.key)}],
        "attendees": [],
    }
    if hold.invite_report:
        body["attendees"] = [
            {"type": "required", "emailAddress": {"address": hold.key.report}},
        ]
    return body


def _placed(item: Mapping[str, Any], key: HoldKey, *, created: bool) -> PlacedHold:
    return PlacedHold(
        key=key,
        start=parse_graph_time(item["start"]),
        end=parse_graph_time(item["end"]),
        created=created,
        link=item.get("webLink"),
    )


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _segment(email: str) -> str:
    return quote(email.lower(), safe="@.")


# -- wiring -------------------------------------------------------------------------------


def from_settings(settings: Settings, *, client: GraphClient | None = None) -> OutlookConnector:
    """``client``: the Graph client the mailer shares, when it sends through Graph too."""
    return OutlookConnector(
        client or client_from_settings(settings), holds_enabled=settings.holds.enabled
    )


async def load_directory_roster(settings: Settings) -> Roster:
    """Every enabled user with enabled direct reports is a manager, in directory order."""
    client = client_from_settings(settings)
    try:
        return await directory_roster(client)
    finally:
        await client.aclose()


async def directory_roster(client: GraphClient) -> Roster:
    fields = "id,mail,userPrincipalName,displayName,accountEnabled"
    users = await client.pages(
        "/users",
        mailbox=None,
        what="listing users",
        permission="User.Read.All",
        params={"$select": fields, "$top": "999"},
    )
    # a user without an id or address cannot be looked up or mailed: left out
    enabled = [
        u
        for u in users
        if isinstance(u, Mapping) and u.get("accountEnabled", True) and _address(u) and u.get("id")
    ]
    # one directReports request per user would be N round trips: batches of 20 make it N / 20
    lists = await client.batch_pages(
        [
            Part(
                "GET",
                f"/users/{user['id']}/directReports",
                _address(user),
                f"listing the direct reports of {_address(user)}",
                "User.Read.All",
                params={"$select": fields},
            )
            for user in enabled
        ]
    )
    managers = []
    for user, reports in zip(enabled, lists, strict=True):
        people = tuple(
            Report(email=_address(r), name=str(r.get("displayName") or _address(r)))
            for r in reports
            if isinstance(r, Mapping) and r.get("accountEnabled", True) and _address(r)
        )
        if people:
            name = str(user.get("displayName") or _address(user))
            managers.append(Manager(email=_address(user), name=name, reports=people))
    return Roster(tuple(managers), source="Microsoft 365 directory")


def _address(user: Mapping[str, Any]) -> str:
    return str(user.get("mail") or user.get("userPrincipalName") or "").lower()

"""The organisation the emulator serves: users from ``roster.yaml``, calendars from ICS files.

ICS occurrences are expanded per request window (as Exchange expands a calendarView)
into :class:`Item` records; events the client creates are stored as items too.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
import yaml

from tests.emulators.graph.wire import zone

_SHOW_AS = {
    "FREE": "free",
    "TENTATIVE": "tentative",
    "BUSY": "busy",
    "OOF": "oof",
    "WORKINGELSEWHERE": "workingElsewhere",
}
_RESPONSE = {
    "ACCEPTED": "accepted",
    "DECLINED": "declined",
    "TENTATIVE": "tentativelyAccepted",
    "NEEDS-ACTION": "notResponded",
}
_NAMESPACE = uuid.UUID("5d6a3c1e-8a43-4c2b-9a43-6f1e0c2d7b11")


@dataclass
class User:
    id: str
    email: str
    name: str
    manager: str | None = None
    enabled: bool = True
    #: IANA name; mailboxSettings shows its Windows name
    timezone: str = "UTC"
    #: the zone was set by the roster or the user's own calendar, not inherited
    zone_given: bool = False
    #: the mailbox's working hours (mailboxSettings and getSchedule ``workingHours``)
    working_days: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday")
    work_start: str = "09:00"
    work_end: str = "17:00"


@dataclass(frozen=True, slots=True)
class Attendee:
    email: str
    name: str
    type: str = "required"  # required | optional | resource
    response: str = (
        "none"  # none | organizer | tentativelyAccepted | accepted | declined | notResponded
    )


@dataclass
class Item:
    """One event as Exchange keeps it (an occurrence of a series, or a single instance)."""

    id: str
    start: datetime
    end: datetime
    subject: str = ""
    body: str = ""
    body_type: str = "text"
    all_day: bool = False
    cancelled: bool = False
    show_as: str = "busy"
    type: str = "singleInstance"  # singleInstance | occurrence | exception
    series_master_id: str | None = None
    original_start: datetime | None = None
    organizer: Attendee | None = None
    attendees: tuple[Attendee, ...] = ()
    ical_uid: str = ""
    transaction_id: str | None = None
    extended: dict[str, str] = field(default_factory=dict)

    def response_of(self, email: str) -> str:
        if self.organizer is not None and self.organizer.email == email:
            return "organizer"
        for attendee in self.attendees:
            if attendee.email == email:
                return attendee.response
        return "none"


@dataclass
class Organisation:
    users: dict[str, User]
    calendars: dict[str, icalendar.Calendar]
    #: expansions by (email, start, end): every page of a calendarView asks for the same window
    _expanded: dict[tuple[str, datetime, datetime], list[Item]] = field(
        default_factory=dict, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def user(self, key: str) -> User | None:
        """By email (any case) or object id, as /users/{id|userPrincipalName} accepts."""
        key = key.lower()
        if key in self.users:
            return self.users[key]
        return next((u for u in self.users.values() if u.id == key), None)

    def zone_of(self, email: str) -> ZoneInfo:
        return ZoneInfo(self.users[email].timezone)

    def items(self, email: str, start: datetime, end: datetime) -> list[Item]:
        """Occurrences from the user's ICS calendar overlapping [start, end)."""
        key = (email, start, end)
        with self._lock:
            if key not in self._expanded:
                self._expanded[key] = self._expand(email, start, end)
            return list(self._expanded[key])

    def calendar(self, email: str) -> icalendar.Calendar | None:
        """The user's parsed ICS calendar; a subclass may read it on first use."""
        return self.calendars.get(email)

    def _expand(self, email: str, start: datetime, end: datetime) -> list[Item]:
        calendar = self.calendar(email)
        if calendar is None:
            return []
        place = _declared_zone(calendar) or self.zone_of(email)
        margin = timedelta(days=2)
        found = recurring_ical_events.of(calendar).between(start - margin, end + margin)
        overrides = _overrides(calendar, place)
        items = [_item(email, c, place, overrides) for c in found]
        return [i for i in items if i.start < end and i.end > start]


def user_id(email: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, email.lower()))


def item_id(*parts: str) -> str:
    """An opaque, stable id in the style of Exchange's (base64url, long)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return "AAMkAG" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def load_organisation(folder: Path) -> Organisation:
    """``<folder>/roster.yaml`` for people and managers, ``<folder>/calendars/*.ics`` for events."""
    users = roster_users(folder / "roster.yaml")
    calendars: dict[str, icalendar.Calendar] = {}
    for path in sorted((folder / "calendars").glob("*.ics")):
        email = path.stem.lower()
        calendar = icalendar.Calendar.from_ical(path.read_bytes())
        calendars[email] = calendar
        users.setdefault(email, User(user_id(email), email, email.split("@")[0].title()))
        declared = _declared_zone(calendar)
        if declared is not None:
            users[email].timezone = str(declared)
            users[email].zone_given = True
    settle_zones(users)
    return Organisation(users, calendars)


def roster_users(path: Path) -> dict[str, User]:
    """Managers and their reports from a Kindly roster, each report pointing at its manager."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    roster = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}
    users: dict[str, User] = {}
    for manager in roster.get("managers") or []:
        email = str(manager["email"]).lower()
        users[email] = User(user_id(email), email, str(manager.get("name") or email))
        users[email].timezone = str(manager.get("timezone") or "UTC")
        users[email].zone_given = bool(manager.get("timezone"))
        _working_time(users[email], manager)
        for report in manager.get("reports") or []:
            address = str(report["email"]).lower()
            users.setdefault(address, User(user_id(address), address, str(report.get("name"))))
            users[address].manager = email
            if report.get("timezone"):
                users[address].timezone = str(report["timezone"])
                users[address].zone_given = True
            _working_time(users[address], report)
    return users


def settle_zones(users: dict[str, User]) -> None:
    """A mailbox whose zone neither the roster nor its calendar gives is kept in its
    manager's zone, as a colleague's in the same office would be."""
    for user in users.values():
        manager = users.get(user.manager or "")
        if not user.zone_given and manager is not None:
            user.timezone = manager.timezone


_DAY_NAMES = {
    "mon": "monday",
    "tue": "tuesday",
    "wed": "wednesday",
    "thu": "thursday",
    "fri": "friday",
    "sat": "saturday",
    "sun": "sunday",
}


def _working_time(user: User, entry: dict[str, object]) -> None:
    """The mailbox's working hours as the organisation's admins set them: the roster's."""
    days = entry.get("working_days")
    if isinstance(days, list):
        user.working_days = tuple(_DAY_NAMES[str(d).lower()[:3]] for d in days)
    hours = entry.get("working_hours")
    if isinstance(hours, str) and "-" in hours:
        user.work_start, user.work_end = (part.strip() for part in hours.split("-", 1))


def _declared_zone(calendar: icalendar.Calendar) -> ZoneInfo | None:
    name = calendar.get("X-WR-TIMEZONE")
    return zone(str(name)) if name is not None else None


def _instant(value: date | datetime, place: ZoneInfo) -> datetime:
    if not isinstance(value, datetime):
        return datetime.combine(value, time(), place)
    return value if value.tzinfo is not None else value.replace(tzinfo=place)


def _label(value: date | datetime, place: ZoneInfo) -> str:
    if not isinstance(value, datetime):
        return value.isoformat()
    return _instant(value, place).astimezone(UTC).isoformat()


def _overrides(calendar: icalendar.Calendar, place: ZoneInfo) -> dict[tuple[str, str], str]:
    """(UID, RECURRENCE-ID) → the override's own start: tells exceptions from occurrences."""
    found: dict[tuple[str, str], str] = {}
    vevent: Any
    for vevent in calendar.walk("VEVENT"):
        if "RECURRENCE-ID" in vevent:
            found[str(vevent["UID"]), _label(vevent["RECURRENCE-ID"].dt, place)] = _label(
                vevent.start, place
            )
    return found


def _item(
    owner: str,
    component: icalendar.Event,
    place: ZoneInfo,
    overrides: dict[tuple[str, str], str],
) -> Item:
    uid = str(component["UID"])
    start, end = component.start, component.end
    rid = component.get("RECURRENCE-ID")
    recurring = rid is not None
    rid_label = _label(rid.dt, place) if rid is not None else ""
    exception = recurring and overrides.get((uid, rid_label)) == _label(start, place)
    text = str(component.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).upper()
    show_as = _SHOW_AS.get(text) or (
        "free" if str(component.get("TRANSP", "")).upper() == "TRANSPARENT" else "busy"
    )
    return Item(
        id=item_id(owner, uid, rid_label),
        start=_instant(start, place),
        end=_instant(end, place),
        subject=str(component.get("SUMMARY", "")),
        body=str(component.get("DESCRIPTION", "")),
        all_day=not isinstance(start, datetime),
        cancelled=str(component.get("STATUS", "")).upper() == "CANCELLED",
        show_as=show_as,
        type=("exception" if exception else "occurrence") if recurring else "singleInstance",
        series_master_id=item_id(owner, uid, "master") if recurring else None,
        original_start=_instant(rid.dt, place) if rid is not None else None,
        organizer=_person(component.get("ORGANIZER"), "organizer"),
        attendees=tuple(_attendees(component.get("ATTENDEE"))),
        ical_uid=uid,
    )


def _email(address: Any) -> str:
    text = str(address)
    return (text[7:] if text.lower().startswith("mailto:") else text).lower()


def _person(value: Any, response: str) -> Attendee | None:
    if value is None:
        return None
    params = getattr(value, "params", {})
    email = _email(value)
    return Attendee(email, str(params.get("CN", email)), "required", response)


def _attendees(value: Any) -> list[Attendee]:
    values = value if isinstance(value, list) else [] if value is None else [value]
    found = []
    for attendee in values:
        params = getattr(attendee, "params", {})
        cutype = str(params.get("CUTYPE", "")).upper()
        role = str(params.get("ROLE", "")).upper()
        kind = (
            "resource"
            if cutype in {"ROOM", "RESOURCE"}
            else "optional"
            if role == "OPT-PARTICIPANT"
            else "required"
        )
        response = _RESPONSE.get(str(params.get("PARTSTAT", "")).upper(), "none")
        email = _email(attendee)
        found.append(Attendee(email, str(params.get("CN", email)), kind, response))
    return found

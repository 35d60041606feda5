"""The emulated Workspace domain: users from a roster, calendars from ``.ics`` files.

An organisation folder is read the way Kindly's ICS connector reads it
(``<org>/roster.yaml`` and ``<org>/calendars/<email>.ics``) and turned into what
Google would hold: directory users with a manager relation, and calendars whose
recurring series are expanded into single events (``singleEvents=true``).
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events
import yaml

Resource = dict[str, Any]

PARTSTAT = {
    "ACCEPTED": "accepted",
    "DECLINED": "declined",
    "TENTATIVE": "tentative",
    "NEEDS-ACTION": "needsAction",
}


@dataclass
class User:
    """A directory user; ``manager`` is the ``relations`` entry of type manager."""

    email: str
    name: str
    manager: str | None = None
    suspended: bool = False
    admin: bool = False
    timezone: str | None = None


@dataclass
class Calendar:
    """One user's primary calendar: events from an ``.ics`` file plus inserted ones."""

    owner: str
    zone: ZoneInfo
    ics: icalendar.Calendar | None = None
    #: UIDs that are recurring series (their occurrences get instance ids)
    recurring: frozenset[str] = frozenset()
    #: events created through the API, by id, kept for the server's life
    inserted: dict[str, Resource] = field(default_factory=dict)

    def ids_from_ics(self) -> set[str]:
        if self.ics is None:
            return set()
        return {event_id(str(c["UID"])) for c in self.ics.walk("VEVENT") if "UID" in c}


def event_id(uid: str) -> str:
    """A stable Google-style event id (base32hex, lower-case) for an iCalendar UID."""
    digest = hashlib.sha1(uid.encode()).digest()
    return base64.b32hexencode(digest).decode().lower().rstrip("=")


def html_link(eid: str, calendar: str) -> str:
    token = base64.urlsafe_b64encode(f"{eid} {calendar}".encode()).decode().rstrip("=")
    return f"https://www.google.com/calendar/event?eid={token}"


def rfc3339(moment: datetime) -> str:
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


@dataclass
class Org:
    """Users and calendars of one emulated domain; safe to share between server threads."""

    users: dict[str, User] = field(default_factory=dict)
    calendars: dict[str, Calendar] = field(default_factory=dict)
    default_zone: str = "UTC"
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: bumped on every change, so cached listings know they are stale
    version: int = 0

    @classmethod
    def load(cls, folder: Path, *, admin: str | None = None, default_zone: str = "UTC") -> Org:
        """Read ``roster.yaml`` and ``calendars/*.ics``; add an admin user for the Directory."""
        org = cls(default_zone=default_zone)
        org.add_roster(folder / "roster.yaml", admin=admin)
        for path in sorted((folder / "calendars").glob("*.ics")):
            org.add_ics(path.stem.lower(), path.read_bytes())
        return org

    def add_roster(self, path: Path, *, admin: str | None = None) -> None:
        """Directory users from a Kindly roster, each report with a manager relation."""
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        roster = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}
        for manager in roster.get("managers") or []:
            email = str(manager["email"]).lower()
            self.add_user(email, manager.get("name", email), timezone=manager.get("timezone"))
            for report in manager.get("reports") or []:
                self.add_user(str(report["email"]).lower(), report.get("name", ""), manager=email)
        domain = next(iter(self.users), "example.com").partition("@")[2] or "example.com"
        self.add_user(admin or f"admin@{domain}", "Workspace Admin", admin=True)

    def add_user(
        self,
        email: str,
        name: str,
        *,
        manager: str | None = None,
        admin: bool = False,
        timezone: str | None = None,
    ) -> User:
        email = email.lower()
        with self.lock:
            user = self.users.get(email) or User(email, name or email)
            user.manager = manager or user.manager
            user.admin = user.admin or admin
            user.timezone = timezone or user.timezone
            self.users[email] = user
            self.version += 1
            return user

    def add_ics(self, owner: str, data: bytes) -> Calendar:
        """Give ``owner`` (made a user if new) the calendar in ``data``."""
        ics = icalendar.Calendar.from_ical(data)
        if owner not in self.users:
            self.add_user(owner, owner)
        recurring, zone = self.describe(ics, owner)
        with self.lock:
            calendar = self.calendar(owner)
            calendar.ics, calendar.recurring, calendar.zone = ics, recurring, zone
            self.version += 1
        return calendar

    def describe(self, ics: icalendar.Calendar, owner: str) -> tuple[frozenset[str], ZoneInfo]:
        """The UIDs that are recurring series, and the calendar's zone."""
        recurring = frozenset(
            str(c["UID"])
            for c in ics.walk("VEVENT")
            if "UID" in c and ("RRULE" in c or "RDATE" in c or "RECURRENCE-ID" in c)
        )
        return recurring, ZoneInfo(self._zone_name(ics, owner))

    def _zone_name(self, ics: icalendar.Calendar, owner: str) -> str:
        """X-WR-TIMEZONE, else the only VTIMEZONE, else the roster's zone (IANA names only)."""
        zones = [str(tz["TZID"]) for tz in ics.walk("VTIMEZONE")]
        candidates = [
            str(ics.get("X-WR-TIMEZONE") or ""),
            zones[0] if len(zones) == 1 else "",
            self.users[owner].timezone or "",
        ]
        return next((name for name in candidates if _known_zone(name)), self.default_zone)

    def calendar(self, owner: str) -> Calendar:
        """The user's primary calendar (an empty one for a user without a file)."""
        with self.lock:
            if owner not in self.calendars:
                user = self.users.get(owner)
                zone = (user.timezone if user else None) or self.default_zone
                self.calendars[owner] = Calendar(owner, ZoneInfo(zone))
            return self.calendars[owner]

    def events(self, owner: str, start: datetime, end: datetime) -> list[Resource]:
        """Single events overlapping [start, end), cancelled ones included, by start."""
        calendar = self.calendar(owner)
        with self.lock:
            found = list(_expand(calendar, start, end))
            found += [
                r for r in calendar.inserted.values() if _overlaps(r, calendar.zone, start, end)
            ]
        return sorted(found, key=lambda r: (sort_start(r, calendar.zone), r["id"]))

    def invitations(self, email: str, start: datetime, end: datetime) -> Iterator[Resource]:
        """Inserted events on other calendars that list ``email`` as an attendee."""
        with self.lock:
            for calendar in self.calendars.values():
                if calendar.owner == email:
                    continue
                for resource in calendar.inserted.values():
                    emails = {a.get("email") for a in resource.get("attendees", [])}
                    if email in emails and _overlaps(resource, calendar.zone, start, end):
                        yield resource


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        return False
    return bool(name)


def parse_when(value: Resource | None, zone: ZoneInfo) -> datetime | None:
    """A Google ``start``/``end``/``originalStartTime`` as an aware datetime."""
    if not value:
        return None
    if "dateTime" in value:
        moment = datetime.fromisoformat(value["dateTime"])
        return moment if moment.tzinfo else moment.replace(tzinfo=zone)
    if "date" in value:
        return datetime.combine(date.fromisoformat(value["date"]), time(0), zone)
    return None


def sort_start(resource: Resource, zone: ZoneInfo) -> datetime:
    when = resource.get("start") or resource.get("originalStartTime")
    return parse_when(when, zone) or datetime.min.replace(tzinfo=UTC)


def _overlaps(resource: Resource, zone: ZoneInfo, start: datetime, end: datetime) -> bool:
    begin, finish = parse_when(resource.get("start"), zone), parse_when(resource.get("end"), zone)
    return begin is not None and finish is not None and begin < end and finish > start


def _expand(calendar: Calendar, start: datetime, end: datetime) -> Iterable[Resource]:
    if calendar.ics is None:
        return
    for component in recurring_ical_events.of(calendar.ics).between(start, end):
        resource = _resource(component, calendar)
        if resource is not None:
            yield resource


def _aware(value: date | datetime, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    return datetime.combine(value, time(0), zone)


def _when(value: date | datetime, zone: ZoneInfo) -> Resource:
    if not isinstance(value, datetime):
        return {"date": value.isoformat()}
    moment = _aware(value, zone)
    shown: Resource = {"dateTime": rfc3339(moment.astimezone(zone))}
    key = getattr(moment.tzinfo, "key", None)
    shown["timeZone"] = key or zone.key
    return shown


def _instance_suffix(value: date | datetime, zone: ZoneInfo) -> str:
    if not isinstance(value, datetime):
        return value.strftime("%Y%m%d")
    return _aware(value, zone).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _email(value: object) -> str:
    return str(value).removeprefix("mailto:").removeprefix("MAILTO:").lower()


def _resource(component: icalendar.Event, calendar: Calendar) -> Resource | None:
    """One occurrence as Google's events.list (singleEvents=true) shows it."""
    if "UID" not in component or "DTSTART" not in component:
        return None
    uid, zone, owner = str(component["UID"]), calendar.zone, calendar.owner
    start: date | datetime = component.decoded("DTSTART")
    end: date | datetime | None = component.decoded("DTEND") if "DTEND" in component else None
    if end is None:
        duration = component.decoded("DURATION") if "DURATION" in component else None
        default = timedelta(days=1) if not isinstance(start, datetime) else timedelta(0)
        end = start + (duration if duration is not None else default)
    base = event_id(uid)
    recurring = uid in calendar.recurring
    original = component.decoded("RECURRENCE-ID") if "RECURRENCE-ID" in component else start
    eid = f"{base}_{_instance_suffix(original, zone)}" if recurring else base
    status = str(component.get("STATUS", "CONFIRMED")).lower()
    status = status if status in ("confirmed", "tentative", "cancelled") else "confirmed"
    resource: Resource = {"kind": "calendar#event", "etag": f'"{eid}"', "id": eid, "status": status}
    if recurring:
        resource["recurringEventId"] = base
        resource["originalStartTime"] = _when(original, zone)
        if status == "cancelled":
            # Google keeps only these fields on a cancelled instance of a series.
            return resource
    resource.update(
        htmlLink=html_link(eid, owner),
        summary=str(component.get("SUMMARY", "")),
        iCalUID=uid,
        start=_when(start, zone),
        end=_when(end, zone),
        eventType="default",
    )
    if "DESCRIPTION" in component:
        resource["description"] = str(component["DESCRIPTION"])
    organizer = _email(component["ORGANIZER"]) if "ORGANIZER" in component else owner
    resource["organizer"] = {"email": organizer, **({"self": True} if organizer == owner else {})}
    resource["creator"] = dict(resource["organizer"])
    attendees = _attendees(component, owner=owner, organizer=organizer)
    if attendees:
        resource["attendees"] = attendees
    busy_status = str(component.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).upper()
    if str(component.get("TRANSP", "")).upper() == "TRANSPARENT" or busy_status == "FREE":
        resource["transparency"] = "transparent"
    if busy_status == "OOF":
        resource["eventType"] = "outOfOffice"
    return resource


def _attendees(component: icalendar.Event, *, owner: str, organizer: str) -> list[Resource]:
    raw = component.get("ATTENDEE")
    if raw is None:
        return []
    found: list[Resource] = []
    for address in raw if isinstance(raw, list) else [raw]:
        email = _email(address)
        params = getattr(address, "params", {})
        attendee: Resource = {
            "email": email,
            "responseStatus": PARTSTAT.get(str(params.get("PARTSTAT", "")).upper(), "needsAction"),
        }
        if "CN" in params:
            attendee["displayName"] = str(params["CN"])
        if str(params.get("CUTYPE", "")).upper() in ("ROOM", "RESOURCE"):
            attendee["resource"] = True
        if email == organizer:
            attendee["organizer"] = True
        if email == owner:
            attendee["self"] = True
        found.append(attendee)
    return found

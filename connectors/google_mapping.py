"""Google Calendar and Directory resources ↔ Kindly's domain model (pure).

Titles are dropped here: nothing Kindly produces needs them, so they cannot
leak. A Kindly hold is recognised by the HoldKey it carries in
``extendedProperties.private``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from service.errors import RosterError
from service.model import (
    Attendee,
    Event,
    HoldKey,
    HoldRequest,
    Interval,
    Manager,
    PlacedHold,
    Report,
    Response,
    Roster,
    ShowAs,
    Status,
    interned_attendee,
)
from service.ports import Warn, skipped

Resource = Mapping[str, Any]
#: what a field of the wrong type or value raises somewhere in the mapping
MALFORMED = (AttributeError, KeyError, TypeError, ValueError, OverflowError)

RESPONSES = {
    "accepted": Response.ACCEPTED,
    "declined": Response.DECLINED,
    "tentative": Response.TENTATIVE,
    "needsAction": Response.NEEDS_ACTION,
}
STATUSES = {
    "confirmed": Status.CONFIRMED,
    "tentative": Status.TENTATIVE,
    "cancelled": Status.CANCELLED,
}
#: extendedProperties.private keys of a Kindly hold
HOLD_MANAGER, HOLD_REPORT, HOLD_WEEK = "kindlyManager", "kindlyReport", "kindlyWeek"
#: what of a listing page Google sends (a partial response, ``fields``): what the
#: mapping below reads and no more; a third fewer bytes to receive and decode
LISTING_FIELDS = (
    "nextPageToken,timeZone,items(id,status,htmlLink,description,recurringEventId,"
    "originalStartTime(date,dateTime),start(date,dateTime),end(date,dateTime),eventType,"
    "transparency,organizer/email,attendees(email,responseStatus,resource),"
    "extendedProperties/private)"
)


def parse_when(value: Resource | None, zone: ZoneInfo) -> datetime | None:
    """``{"dateTime"}`` as given (offset kept), ``{"date"}`` as midnight in ``zone``."""
    if not value:
        return None
    if "dateTime" in value:
        moment = datetime.fromisoformat(str(value["dateTime"]))
        return moment if moment.tzinfo else moment.replace(tzinfo=zone)
    if "date" in value:
        return datetime.combine(date.fromisoformat(str(value["date"])), time(0), zone)
    return None


def events_from_items(
    items: Sequence[Resource],
    *,
    zone: ZoneInfo,
    warn: Warn | None = None,
    calendar: str = "Google Calendar",
) -> list[Event]:
    """Every item as an Event; ``zone`` is the calendar's (it places all-day dates).

    Google keeps only ids and ``originalStartTime`` on a cancelled instance of
    a series, so its people and length are taken from another instance of the
    same series when the listing has one. An item not shaped as Google documents
    it is left out and told to ``warn`` under the ``calendar`` label.
    """
    series = {
        str(item["recurringEventId"]): item
        for item in items
        if isinstance(item, Mapping) and "recurringEventId" in item and "start" in item
    }
    listing = _Listing(zone, series)
    events = []
    for item in items:
        try:
            events.append(listing.event(item))
        # a field of the wrong type surfaces as any of these; name it for the admin
        except MALFORMED as exc:
            if warn is not None:
                what = f"not shaped as Google documents it ({exc!r})"
                warn(skipped(calendar, f"id {_item_id(item)}", what))
    return events


def _item_id(item: object) -> str:
    found = item.get("id") if isinstance(item, Mapping) else None
    return str(found)[:100] if found else "(none)"


def to_event(
    item: Resource, *, zone: ZoneInfo, series: Mapping[str, Resource] | None = None
) -> Event:
    return _Listing(zone, series or {}).event(item)


class _Listing:
    """Maps the items of one listing. Its events repeat the same few people (a
    series' instances), so each attendee is made once per listing and an instance
    listing the same people as the one before it shares their tuple: mapping was a
    fifth of a run's CPU. Item by item it is :func:`to_event`."""

    __slots__ = ("_attendees", "_series", "series", "zone")

    def __init__(self, zone: ZoneInfo, series: Mapping[str, Resource]) -> None:
        self.zone, self.series = zone, series
        self._attendees: dict[tuple[str, str | None, bool], Attendee | None] = {}
        #: by series id, the last attendee list seen in it and the people made of it
        self._series: dict[str, tuple[list[Resource], tuple[Attendee, ...]]] = {}

    def event(self, item: Resource) -> Event:
        zone, recurring = self.zone, item.get("recurringEventId")
        sibling = self.series.get(str(recurring))
        original = parse_when(item.get("originalStartTime"), zone)
        start = parse_when(item.get("start"), zone) or original
        if start is None:
            raise ValueError(f"event {item.get('id')} has neither start nor originalStartTime")
        end = parse_when(item.get("end"), zone)
        if end is None:
            end = start + _length(sibling, zone)
        people = item if "start" in item or sibling is None else sibling
        when = item.get("start") or item.get("originalStartTime") or {}
        description, link = item.get("description"), item.get("htmlLink")
        # positional, in Event's field order: a fifth less time than by keyword
        return Event(
            str(item["id"]),
            start,
            end,
            "date" in when,
            STATUSES.get(str(item.get("status", "confirmed")), Status.CONFIRMED),
            _show_as(item),
            _lower(people.get("organizer", {}).get("email")),
            self.attendees(people.get("attendees", ()), recurring),
            description if isinstance(description, str) else "",
            recurring if isinstance(recurring, str) else None,
            original,
            hold_key_of(item) if "extendedProperties" in item else None,
            link if isinstance(link, str) else None,
        )

    def attendees(self, raw: Iterable[Resource], series: object) -> tuple[Attendee, ...]:
        """The people of an event: a series' instances mostly list the same ones, so an
        instance whose list equals the one before it in its series takes its people."""
        kept = self._series.get(series) if type(series) is str else None
        if kept is not None and kept[0] == raw:
            return kept[1]
        found: list[Attendee] = []
        typed, known = True, self._attendees
        for attendee in raw:
            email, answer = attendee.get("email"), attendee.get("responseStatus")
            resource = attendee.get("resource", False)
            if type(email) is str and type(resource) is bool and type(answer) in (str, NONE):
                key = (email, answer, resource)
                try:
                    person = known[key]
                except KeyError:
                    person = known[key] = _attendee(email, answer, resource)
            else:  # not shaped as documented: made as it comes (no key to keep it under)
                person, typed = _attendee(email, answer, resource), False
            if person is not None:
                found.append(person)
        people = tuple(found)
        # only a list of documented types: one equal to it then maps the same (1 == True)
        if typed and type(series) is str and isinstance(raw, list):
            self._series[series] = (raw, people)
        return people


#: the type of ``null`` in JSON, as ``type()`` gives it
NONE = type(None)


def _attendee(email: object, answer: object, resource: object) -> Attendee | None:
    lowered = _lower(email)
    if lowered is None:
        return None
    response = RESPONSES.get(str(answer), Response.NEEDS_ACTION)
    return interned_attendee(lowered, response, bool(resource))


def _length(sibling: Resource | None, zone: ZoneInfo) -> timedelta:
    if sibling is None:
        return timedelta(0)
    start, end = parse_when(sibling.get("start"), zone), parse_when(sibling.get("end"), zone)
    return (end - start) if start and end else timedelta(0)


def _lower(email: object) -> str | None:
    return str(email).lower() if email else None


def _show_as(item: Resource) -> ShowAs:
    """Transparent and working-location events never block; out-of-office always shows."""
    kind = item.get("eventType", "default")
    if kind == "outOfOffice":
        return ShowAs.OOF
    if item.get("transparency") == "transparent" or kind == "workingLocation":
        return ShowAs.FREE
    return ShowAs.BUSY


def hold_key_of(item: Resource) -> HoldKey | None:
    if "extendedProperties" not in item:  # most events: nothing to look into
        return None
    private = item["extendedProperties"].get("private", {})
    manager, report, week = (private.get(k) for k in (HOLD_MANAGER, HOLD_REPORT, HOLD_WEEK))
    if not (manager and report and week):
        return None
    return HoldKey(str(manager).lower(), str(report).lower(), str(week))


def hold_body(hold: HoldRequest, manager: str) -> dict[str, Any]:
    """The events.insert body: tentative, on the manager's calendar, id from the HoldKey."""
    body: dict[str, Any] = {
        "id": hold.key.base32hex_id(),
        "summary": hold.title,
        "description": hold.description,
        "start": {"dateTime": hold.start.isoformat(), "timeZone": hold.timezone},
        "end": {"dateTime": hold.end.isoformat(), "timeZone": hold.timezone},
        "status": "tentative",
        "transparency": "opaque",
        "extendedProperties": {
            "private": {
                HOLD_MANAGER: hold.key.manager,
                HOLD_REPORT: hold.key.report,
                HOLD_WEEK: hold.key.week,
            }
        },
        "reminders": {"useDefault": True},
    }
    if hold.invite_report:
        body["attendees"] = [
            {"email": manager.lower(), "responseStatus": "accepted"},
            {"email": hold.key.report},
        ]
    return body


def placed_hold(item: Resource, key: HoldKey, *, zone: ZoneInfo, created: bool) -> PlacedHold:
    start, end = parse_when(item.get("start"), zone), parse_when(item.get("end"), zone)
    if start is None or end is None:
        raise ValueError(f"hold {item.get('id')} has no start or end")
    return PlacedHold(key, start, end, created=created, link=item.get("htmlLink"))


def busy_from(
    response: Resource, people: Sequence[str], *, warn: Warn | None = None
) -> dict[str, list[Interval] | None]:
    """freebusy.query calendars → busy intervals; ``None`` where Google reports errors."""
    try:
        calendars = {str(k).lower(): v for k, v in response.get("calendars", {}).items()}
    except MALFORMED:
        calendars = {}
    found: dict[str, list[Interval] | None] = {}
    for person in people:
        found[person] = _busy(person, calendars.get(person.lower()), warn)
    return found


def _busy(person: str, entry: Any, warn: Warn | None) -> list[Interval] | None:
    """One calendar's busy intervals; ``None`` (unknown) when Google reports an error or
    the entry is not shaped as documented. A single busy item that is not busy time with
    offsets is skipped with a warning; the rest of the person's free/busy still counts."""
    try:
        if entry is None or entry.get("errors"):
            return None
        items = list(entry.get("busy", ()))
    except MALFORMED:
        return None
    found = []
    for item in items:
        try:
            span = Interval(
                datetime.fromisoformat(item["start"]), datetime.fromisoformat(item["end"])
            )
            if span.start.tzinfo is None or span.end.tzinfo is None:
                raise ValueError("a time without an offset")
        except MALFORMED as exc:
            if warn is not None:
                calendar = f"{person} (Google free/busy)"
                warn(skipped(calendar, "busy item", f"not shaped as Google documents it ({exc})"))
            continue
        found.append(span)
    return found


def roster_from_users(users: Iterable[Resource], *, source: str) -> Roster:
    """Managers (anyone an active user names as manager) with their reports, by email.

    Suspended users are left out, as reports and as managers.
    """
    try:
        return _roster(users, source=source)
    except MALFORMED as exc:
        raise RosterError(
            f"a user record is not shaped as the Directory API documents it ({exc!r}); "
            "check the Directory or report this",
            source=source,
        ) from None


def _roster(users: Iterable[Resource], *, source: str) -> Roster:
    active = {str(u["primaryEmail"]).lower(): u for u in users if not u.get("suspended", False)}
    reports: dict[str, list[Report]] = {}
    for email, user in sorted(active.items()):
        manager = _manager_of(user)
        if manager is not None and manager in active:
            reports.setdefault(manager, []).append(Report(email, _name(user)))
    managers = tuple(
        Manager(email, _name(active[email]), reports=tuple(team))
        for email, team in sorted(reports.items())
    )
    return Roster(managers, source=source)


def _manager_of(user: Resource) -> str | None:
    for relation in user.get("relations", ()):
        if relation.get("type") == "manager" and relation.get("value"):
            return str(relation["value"]).lower()
    return None


def _name(user: Resource) -> str:
    name = user.get("name", {})
    return str(name.get("fullName") or user["primaryEmail"])

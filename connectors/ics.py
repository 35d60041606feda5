"""The embedded calendar provider: a folder of ``<email>.ics`` files.

Reading parses with icalendar and expands recurrences with recurring-ical-events
(which also applies X-WR-TIMEZONE); floating times and all-day dates land in the
calendar's zone, else in the caller's. Holds are written to
``<holds_dir>/<manager>.ics`` and read back as part of the manager's events.

Real calendars carry the odd broken event (an RRULE without FREQ in a holiday
feed, a VEVENT without DTSTART): such an event is skipped and told to ``warn``
with the file, its UID and why, and the rest of the calendar is read. Only a
file that is no calendar at all, or one past the size or occurrence limits,
raises :class:`CalendarDataError`, into which every library exception
(icalendar, recurring-ical-events, zoneinfo, dateutil) is translated here.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events
from icalendar.error import IncompleteComponent, InvalidCalendar
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from service.busy import busy_intervals
from service.errors import CalendarDataError
from service.files import locked, write_atomically
from service.model import (
    Attendee,
    Event,
    HoldKey,
    HoldRequest,
    Interval,
    PlacedHold,
    Response,
    ShowAs,
    Status,
)
from service.ports import CalendarConnector, Warn, skipped
from service.settings import Settings

PRODID = "-//Kindly//Kindly holds//EN"

_STATUS = {"CANCELLED": Status.CANCELLED, "TENTATIVE": Status.TENTATIVE}
_BUSY_STATUS = {
    "FREE": ShowAs.FREE,
    "TENTATIVE": ShowAs.TENTATIVE,
    "BUSY": ShowAs.BUSY,
    "OOF": ShowAs.OOF,
    "WORKINGELSEWHERE": ShowAs.WORKING_ELSEWHERE,
}
_PARTSTAT = {
    "ACCEPTED": Response.ACCEPTED,
    "DECLINED": Response.DECLINED,
    "TENTATIVE": Response.TENTATIVE,
    "NEEDS-ACTION": Response.NEEDS_ACTION,
}
_HOLD_PROPERTIES = ("X-KINDLY-HOLD-MANAGER", "X-KINDLY-HOLD-REPORT", "X-KINDLY-HOLD-WEEK")
#: a broken value in one of these changes what Kindly reads; others are never looked at
_READ_PROPERTIES = frozenset(
    {
        "UID",
        "DTSTART",
        "DTEND",
        "DURATION",
        "RRULE",
        "RDATE",
        "EXDATE",
        "RECURRENCE-ID",
        "STATUS",
        "TRANSP",
        "X-MICROSOFT-CDO-BUSYSTATUS",
        "ORGANIZER",
        "ATTENDEE",
        "DESCRIPTION",
        *_HOLD_PROPERTIES,
    }
)
_ZONED_PROPERTIES = ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE")


class IcsConnector(CalendarConnector):
    """A :class:`~service.ports.CalendarConnector` over ``<directory>/<email>.ics`` files."""

    def __init__(
        self,
        directory: Path,
        holds_dir: Path,
        *,
        max_file_bytes: int = 10_000_000,
        max_occurrences: int = 20_000,
    ) -> None:
        self.directory = directory
        self.holds_dir = holds_dir
        self.max_file_bytes = max_file_bytes
        self.max_occurrences = max_occurrences

    async def timezone(self, manager: str) -> ZoneInfo | None:
        return await asyncio.to_thread(self._timezone, manager)

    async def events(
        self,
        manager: str,
        start: datetime,
        end: datetime,
        *,
        tz: ZoneInfo,
        warn: Warn | None = None,
    ) -> Sequence[Event]:
        return await asyncio.to_thread(self._events, manager, start, end, tz, warn or _silent)

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
        return await asyncio.to_thread(self._busy, manager, people, start, end, tz, warn or _silent)

    async def create_hold(self, manager: str, hold: HoldRequest) -> PlacedHold:
        return await asyncio.to_thread(self._create_hold, manager, hold)

    async def aclose(self) -> None:
        """Every file is opened and closed within one call: nothing stays open."""

    def _timezone(self, manager: str) -> ZoneInfo | None:
        path = _file_for(self.directory, manager, manager)
        data = self._read(path, manager)
        if data is None:
            return None
        calendar = _parse(data, path, manager)
        declared = _declared_zone(calendar, path, _silent)
        if declared is not None:
            return declared
        zones = calendar.walk("VTIMEZONE")
        return _zone_named(str(zones[0].get("TZID", ""))) if len(zones) == 1 else None

    def _events(
        self, manager: str, start: datetime, end: datetime, tz: ZoneInfo, warn: Warn
    ) -> list[Event]:
        path = _file_for(self.directory, manager, manager)
        found = self._events_in(path, manager, start, end, tz, owner=manager, warn=warn)
        if found is None:
            raise CalendarDataError(
                f"no calendar for {manager}: expected {path}; add it or set KINDLY_ICS__DIR",
                manager=manager,
            )
        holds_path = _file_for(self.holds_dir, manager, manager)
        holds = self._events_in(holds_path, manager, start, end, tz, owner=manager, warn=warn)
        return sorted([*found, *(holds or ())], key=lambda event: (event.start, event.id))

    def _busy(
        self,
        manager: str,
        people: Sequence[str],
        start: datetime,
        end: datetime,
        tz: ZoneInfo,
        warn: Warn,
    ) -> dict[str, list[Interval] | None]:
        busy: dict[str, list[Interval] | None] = {}
        for person in people:
            path = _file_for(self.directory, person, manager)
            events = self._events_in(path, manager, start, end, tz, owner=person, warn=warn)
            busy[person] = None if events is None else busy_intervals(events, person)
        return busy

    def _events_in(
        self,
        path: Path,
        manager: str,
        start: datetime,
        end: datetime,
        tz: ZoneInfo,
        *,
        owner: str,
        warn: Warn,
    ) -> list[Event] | None:
        """The file's occurrences overlapping [start, end), or None when there is no file.

        ``owner`` is whose calendar it is: an event without ORGANIZER is the owner's own,
        as Google and Outlook report it."""
        data = self._read(path, manager)
        if data is None:
            return None
        calendar = _parse(data, path, manager)
        skip = _Skip(path, warn)
        _drop_unusable(calendar, skip)
        zone = _declared_zone(calendar, path, warn) or tz
        window = _Window(start.astimezone(zone), end.astimezone(zone), zone)
        components = self._expand(calendar, window, path, manager, skip)
        index = _SeriesIndex.of(calendar, zone)
        events = []
        for component in components:
            try:
                events.append(_to_event(component, index, zone, owner))
            # a date at the edge of the calendar (year 1, 9999) overflows once placed in a zone
            except (OverflowError, ValueError) as exc:
                skip(component, f"a date out of range ({_one_line(exc)})")
        return events

    def _expand(
        self, calendar: icalendar.Calendar, window: _Window, path: Path, manager: str, skip: _Skip
    ) -> list[icalendar.Event]:
        """Occurrences in the window; a runaway RRULE is refused before it is expanded."""
        self._check_bound(calendar, window, path, manager, skip)
        try:
            found = _between(calendar, window)
        # the libraries raise ValueError, KeyError, TypeError, OverflowError… on bad input,
        # and one bad series stops them for the whole calendar: so series by series
        except Exception:
            found = _between_by_series(calendar, window, skip)
        if len(found) > self.max_occurrences:
            raise self._too_many(path, manager, window, "")
        return [component for component in found if isinstance(component, icalendar.Event)]

    def _check_bound(
        self,
        calendar: icalendar.Calendar,
        window: _Window,
        path: Path,
        manager: str,
        skip: _Skip,
    ) -> None:
        """Expanding costs time and memory per occurrence (and per candidate since DTSTART),
        so the rules' arithmetic upper bound is checked first."""
        bounds = []
        for vevent in calendar.events:
            try:
                bounds += [(_bound(vevent, rule, window), vevent, rule) for rule in vevent.rrules]
            # a rule the arithmetic cannot read (a COUNT that is no number…) is no rule to expand
            except (KeyError, TypeError, ValueError, OverflowError) as exc:
                _drop(calendar, [vevent])
                skip(vevent, f"unusable RRULE ({_one_line(exc)})")
        if sum(bound for bound, _, _ in bounds) > self.max_occurrences:
            _, vevent, rule = max(bounds, key=lambda found: found[0])
            uid, text = vevent.get("UID"), rule.to_ical().decode()
            largest = f" (largest: event {_one_line(str(uid))}, RRULE {_one_line(text)})"
            raise self._too_many(path, manager, window, largest)

    def _too_many(
        self, path: Path, manager: str, window: _Window, detail: str
    ) -> CalendarDataError:
        return CalendarDataError(
            f"{path}: more than {self.max_occurrences} occurrences between "
            f"{window.start:%Y-%m-%d} and {window.end:%Y-%m-%d}{detail}; raise "
            "KINDLY_ICS__MAX_OCCURRENCES or fix the recurrence that runs away",
            manager=manager,
        )

    def _read(self, path: Path, manager: str) -> bytes | None:
        """The file's bytes, None when it does not exist; refused past the size limit."""
        try:
            with path.open("rb") as handle:
                data = handle.read(self.max_file_bytes + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _malformed(path, manager, f"cannot be read ({exc.strerror})") from exc
        if len(data) > self.max_file_bytes:
            raise CalendarDataError(
                f"{path} is larger than {self.max_file_bytes} bytes; raise "
                "KINDLY_ICS__MAX_FILE_BYTES or trim the calendar",
                manager=manager,
            )
        return data

    def _create_hold(self, manager: str, hold: HoldRequest) -> PlacedHold:
        """Check and add under one lock, so overlapping runs neither lose nor repeat a hold."""
        path = _file_for(self.holds_dir, manager, manager)
        path.parent.mkdir(parents=True, exist_ok=True)
        uid = hold_uid(hold.key)
        with locked(path.with_name(f"{path.name}.lock")):
            data = self._read(path, manager)
            calendar = _new_calendar() if data is None else _parse(data, path, manager)
            for existing in calendar.events:
                if str(existing.get("UID", "")) == uid:
                    return PlacedHold(
                        hold.key, _instant(existing.start, UTC), _instant(existing.end, UTC), False
                    )
            calendar.add_component(_hold_event(manager, hold, uid))
            calendar.subcomponents.sort(key=_stable_order)
            write_atomically(path, calendar.to_ical())
        return PlacedHold(hold.key, hold.start, hold.end, created=True)


def from_settings(settings: Settings) -> IcsConnector:
    return IcsConnector(
        settings.ics.dir,
        settings.ics.holds_path,
        max_file_bytes=settings.ics.max_file_bytes,
        max_occurrences=settings.ics.max_occurrences,
    )


def hold_uid(key: HoldKey) -> str:
    """The UID a hold is found by on the next run."""
    return f"kindly-{key.hex_id()}@kindly"


#: FREQ → (its shortest period, the most days one period holds), coarser ones later
_FREQUENCIES = {
    "SECONDLY": (timedelta(seconds=1), 1),
    "MINUTELY": (timedelta(minutes=1), 1),
    "HOURLY": (timedelta(hours=1), 1),
    "DAILY": (timedelta(days=1), 1),
    "WEEKLY": (timedelta(weeks=1), 7),
    "MONTHLY": (timedelta(days=28), 31),
    "YEARLY": (timedelta(days=365), 366),
}
_RANK = list(_FREQUENCIES)
#: a BY part multiplies the occurrences per period when FREQ is at least this coarse
_EXPANDING = {"BYHOUR": "DAILY", "BYMINUTE": "HOURLY", "BYSECOND": "MINUTELY"}
_DAY_PARTS = ("BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH")


def _bound(vevent: icalendar.Event, rule: icalendar.vRecur, window: _Window) -> int:
    """At most this many occurrences of the rule overlap the window.

    Narrowing BY parts (BYSETPOS, filters) are ignored, so this only ever errs high.
    """
    span = _active_span(vevent, rule, window)
    if span < timedelta(0):
        return 0
    period = _FREQUENCIES[_freq(rule)][0] * _interval(rule)
    bound = (math.ceil(span / period) + 1) * _per_period(rule)
    count = int(rule.get("COUNT", [-1])[0])  # recurring-ical-events ignores a negative COUNT
    return bound if count < 0 else min(bound, count)


def _active_span(vevent: icalendar.Event, rule: icalendar.vRecur, window: _Window) -> timedelta:
    """How long the rule can start occurrences that reach into the window (negative: never)."""
    start = _instant(vevent.start, window.zone)
    duration = _instant(vevent.end, window.zone) - start
    first = max(start, window.start - duration)
    last = window.end
    if "UNTIL" in rule:
        last = min(last, _instant(rule["UNTIL"][0], window.zone))
    return last - first


def _per_period(rule: icalendar.vRecur) -> int:
    """Occurrences one period of the rule can hold: its expanding BY parts multiplied."""
    freq = _freq(rule)
    rank = _RANK.index(freq)
    days = _FREQUENCIES[freq][1] if any(part in rule for part in _DAY_PARTS) else 1
    if freq == "WEEKLY" and "BYDAY" in rule:
        days = min(days, len(rule["BYDAY"]))
    return days * math.prod(
        len(rule[part])
        for part, coarsest in _EXPANDING.items()
        if part in rule and rank >= _RANK.index(coarsest)
    )


def _freq(rule: icalendar.vRecur) -> str:
    return str(rule["FREQ"][0]).upper()


def _interval(rule: icalendar.vRecur) -> int:
    return int(rule.get("INTERVAL", [1])[0])


@dataclass(frozen=True, slots=True)
class _Window:
    start: datetime
    end: datetime
    #: where floating times and all-day dates are placed
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class _SeriesIndex:
    """What the expanded copies no longer tell: which UIDs recur and which are overrides.

    recurring-ical-events gives every occurrence a RECURRENCE-ID, so an override is
    recognised by its (UID, RECURRENCE-ID) and its own start as written in the file.
    """

    recurring: frozenset[str]
    #: (UID, RECURRENCE-ID key) → the override's start key
    overrides: Mapping[tuple[str, str], str]

    @classmethod
    def of(cls, calendar: icalendar.Calendar, zone: ZoneInfo) -> _SeriesIndex:
        recurring: set[str] = set()
        overrides: dict[tuple[str, str], str] = {}
        for vevent in calendar.events:
            uid = str(vevent["UID"])
            if any(name in vevent for name in ("RRULE", "RDATE", "RECURRENCE-ID")):
                recurring.add(uid)
            rid = vevent.RECURRENCE_ID
            try:
                if rid is not None:
                    overrides[uid, _key(rid, zone)] = _key(vevent.start, zone)
            # a date at the edge of the calendar: its occurrences are skipped when mapped
            except (OverflowError, ValueError):
                continue
        return cls(frozenset(recurring), overrides)


def _to_event(component: icalendar.Event, index: _SeriesIndex, zone: ZoneInfo, owner: str) -> Event:
    uid = str(component["UID"])
    start = component.start
    original = _original_start(component, index, zone)
    if uid not in index.recurring:
        occurrence_id = uid
    else:
        occurrence_id = f"{uid}/{_key(start if original is None else original, zone)}"
    return Event(
        id=occurrence_id,
        start=_instant(start, zone),
        end=_instant(component.end, zone),
        all_day=not isinstance(start, datetime),
        status=_STATUS.get(_text(component, "STATUS"), Status.CONFIRMED),
        show_as=_show_as(component),
        organizer=_email(component.organizer) or owner.lower(),
        attendees=tuple(_attendees(component.attendees)),
        description=_description(component),
        series_id=uid if uid in index.recurring else None,
        original_start=None if original is None else _instant(original, zone),
        hold_key=_hold_key(component),
    )


def _original_start(
    component: icalendar.Event, index: _SeriesIndex, zone: ZoneInfo
) -> date | datetime | None:
    """The RECURRENCE-ID of an override as written, None for a generated occurrence."""
    rid: date | datetime | None = component.RECURRENCE_ID
    if rid is None:
        return None
    start_key = index.overrides.get((str(component["UID"]), _key(rid, zone)))
    return rid if start_key == _key(component.start, zone) else None


def _show_as(component: icalendar.Event) -> ShowAs:
    busy_status = _BUSY_STATUS.get(_text(component, "X-MICROSOFT-CDO-BUSYSTATUS"))
    if busy_status is not None:
        return busy_status
    return ShowAs.FREE if _text(component, "TRANSP") == "TRANSPARENT" else ShowAs.BUSY


def _attendees(addresses: Iterable[icalendar.vCalAddress]) -> Iterable[Attendee]:
    for address in addresses:
        email = _email(address)
        if email is None:
            continue
        params = address.params
        yield Attendee(
            email=email,
            response=_PARTSTAT.get(str(params.get("PARTSTAT", "")).upper(), Response.NEEDS_ACTION),
            resource=str(params.get("CUTYPE", "")).upper() in {"ROOM", "RESOURCE"},
        )


def _email(address: str | None) -> str | None:
    """The lower-case address of a ``mailto:`` value; other URIs name no one we know."""
    text = str(address or "")
    if text[:7].lower() != "mailto:":
        return None
    return text[7:].strip().lower() or None


def _hold_key(component: icalendar.Event) -> HoldKey | None:
    manager, report, week = (str(component.get(name, "")) for name in _HOLD_PROPERTIES)
    if not (manager and report and week):
        return None
    return HoldKey(manager.lower(), report.lower(), week)


def _hold_event(manager: str, hold: HoldRequest, uid: str) -> icalendar.Event:
    attendees = [icalendar.vCalAddress.new(manager, partstat="ACCEPTED")]
    if hold.invite_report:
        attendees.append(
            icalendar.vCalAddress.new(hold.key.report, partstat="NEEDS-ACTION", rsvp=True)
        )
    event = icalendar.Event.new(
        uid=uid,
        stamp=hold.stamp.astimezone(UTC),
        start=hold.start.astimezone(UTC),
        end=hold.end.astimezone(UTC),
        summary=hold.title,
        description=hold.description,
        status=icalendar.enums.STATUS.TENTATIVE,
        transparency=icalendar.enums.TRANSP.OPAQUE,
        organizer=icalendar.vCalAddress.new(manager),
        attendees=attendees,
    )
    event.add("X-MICROSOFT-CDO-BUSYSTATUS", "TENTATIVE")
    key = hold.key
    for name, value in zip(_HOLD_PROPERTIES, (key.manager, key.report, key.week), strict=True):
        event.add(name, value)
    return event


def _new_calendar() -> icalendar.Calendar:
    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    return calendar


def _stable_order(component: icalendar.Component) -> tuple[bool, str]:
    """Time zones first, then events by UID: the file does not depend on creation order."""
    return component.name == "VEVENT", str(component.get("UID", ""))


def _parse(data: bytes, path: Path, manager: str) -> icalendar.Calendar:
    try:
        calendar = icalendar.Calendar.from_ical(data)
    # icalendar raises ValueError for most bad input, but not only that
    except Exception as exc:
        what = f"is not a valid iCalendar file ({_one_line(exc)})"
        raise _malformed(path, manager, what) from exc
    if not isinstance(calendar, icalendar.Calendar):
        raise _malformed(path, manager, "has no VCALENDAR")
    return calendar


@dataclass(frozen=True, slots=True)
class _Skip:
    """Tells ``warn`` about one event left out of the run: file, UID and why, on one line."""

    path: Path
    warn: Warn

    def __call__(self, vevent: icalendar.Component, why: str) -> None:
        self.warn(skipped(self.path.name, f"UID {_uid_of(vevent)}", why))


def _silent(message: str) -> None:
    """``warn=None``: skipped events are left out without a word."""


def _drop_unusable(calendar: icalendar.Calendar, skip: _Skip) -> None:
    """Take out every event Kindly cannot read, so the rest of the calendar still counts."""
    for vevent in calendar.events:
        problem = _problem(vevent)
        if problem is not None:
            _drop(calendar, [vevent])
            skip(vevent, problem)
        elif "UID" not in vevent:
            # a stable stand-in, so the occurrence ids do not change from run to run
            vevent.add("UID", f"no-uid-{hashlib.sha256(vevent.to_ical()).hexdigest()[:16]}")


def _drop(calendar: icalendar.Calendar, vevents: Sequence[icalendar.Component]) -> None:
    gone = {id(vevent) for vevent in vevents}
    calendar.subcomponents = [c for c in calendar.subcomponents if id(c) not in gone]


def _uid_of(vevent: icalendar.Component) -> str:
    given = vevent.get("UID", "(none)")
    # a UID may repeat or span lines: name the event by the first, on one line
    return _one_line(str(given[0] if isinstance(given, list) else given))


def _problem(vevent: icalendar.Event) -> str | None:
    """What makes this event unreadable, if anything."""
    for name, message in vevent.errors:
        if name in _READ_PROPERTIES:
            return f"bad {name} ({_one_line(message)})"
    try:
        _ = (vevent.start, vevent.end, vevent.RECURRENCE_ID)  # icalendar validates on reading
    except IncompleteComponent:
        return "DTSTART missing"
    except (InvalidCalendar, OverflowError) as exc:
        # OverflowError: a DURATION that ends past the year 9999
        return f"unusable times ({_one_line(exc)})"
    for rule in vevent.rrules:
        problem = _rule_problem(rule)
        if problem is not None:
            return problem
    tzid = _unknown_tzid(vevent)
    if tzid is not None:
        return f"unknown TZID {tzid!r} (add its VTIMEZONE or use an IANA name)"
    return None


def _rule_problem(rule: icalendar.vRecur) -> str | None:
    if "FREQ" not in rule:
        return "RRULE without FREQ"
    try:
        if _freq(rule) not in _FREQUENCIES:
            return f"RRULE with unknown FREQ {_one_line(_freq(rule))!r}"
        if _interval(rule) < 1:
            return "RRULE with INTERVAL below 1, which never advances"
    # an empty FREQ, an INTERVAL that is no number
    except (IndexError, TypeError, ValueError) as exc:
        return f"unusable RRULE ({_one_line(exc)})"
    return None


def _between(calendar: icalendar.Calendar, window: _Window) -> list[icalendar.Component]:
    found: list[icalendar.Component] = recurring_ical_events.of(calendar).between(
        window.start, window.end
    )
    return found


def _between_by_series(
    calendar: icalendar.Calendar, window: _Window, skip: _Skip
) -> list[icalendar.Component]:
    """Each UID's events (a series with its overrides) expanded on their own; a series the
    libraries cannot expand is skipped and told."""
    others = [c for c in calendar.subcomponents if c.name != "VEVENT"]
    series: dict[str, list[icalendar.Component]] = {}
    for vevent in calendar.subcomponents:
        if vevent.name == "VEVENT":
            series.setdefault(str(vevent.get("UID")), []).append(vevent)
    found: list[icalendar.Component] = []
    for vevents in series.values():
        alone = icalendar.Calendar(calendar)  # the calendar's properties (X-WR-TIMEZONE…)
        alone.subcomponents = [*others, *vevents]
        try:
            found += _between(alone, window)
        except Exception as exc:  # as in IcsConnector._expand
            _drop(calendar, vevents)
            skip(vevents[0], f"cannot expand its recurrences ({_one_line(exc)})")
    return found


def _unknown_tzid(vevent: icalendar.Event) -> str | None:
    """icalendar leaves a time naive when it cannot resolve its TZID."""
    for name in _ZONED_PROPERTIES:
        value = vevent.get(name)
        for prop in value if isinstance(value, list) else [value] if value else []:
            tzid = prop.params.get("TZID")
            moments = [d.dt for d in prop.dts] if hasattr(prop, "dts") else [prop.dt]
            for moment in moments:
                first = moment[0] if isinstance(moment, tuple) else moment
                if tzid and isinstance(first, datetime) and first.tzinfo is None:
                    return str(tzid)
    return None


def _declared_zone(calendar: icalendar.Calendar, path: Path, warn: Warn) -> ZoneInfo | None:
    """The zone X-WR-TIMEZONE names (Google exports), if any; an unknown one is taken out
    (recurring-ical-events would apply it) and told, and the caller's zone is used."""
    name = calendar.get("X-WR-TIMEZONE")
    if name is None:
        return None
    zone = _zone_named(str(name))
    if zone is None:
        del calendar["X-WR-TIMEZONE"]
        warn(
            f"{path.name}: ignored unknown X-WR-TIMEZONE {_one_line(str(name))!r}; times "
            "without a zone are placed in the manager's"
        )
    return zone


def _zone_named(name: str) -> ZoneInfo | None:
    """An IANA zone for an IANA or Windows zone name."""
    for candidate in (name.strip("/"), WINDOWS_TO_OLSON.get(name)):
        if candidate:
            try:
                return ZoneInfo(candidate)
            # OSError: a name longer than a file name may be (tzdata looks it up as a file)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                continue
    return None


def _instant(value: date | datetime, zone: tzinfo) -> datetime:
    """A tz-aware moment: dates at midnight and floating times in ``zone``."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time(), zone)
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def _key(value: date | datetime, zone: ZoneInfo) -> str:
    """A compact, zone-independent label of one occurrence: its day, or its UTC moment."""
    if not isinstance(value, datetime):
        return value.strftime("%Y%m%d")
    return _instant(value, zone).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _text(component: icalendar.Event, name: str) -> str:
    """A keyword property (STATUS, TRANSP…) compared case-insensitively."""
    return str(component.get(name, "")).strip().upper()


def _description(component: icalendar.Event) -> str:
    """The first DESCRIPTION; Outlook repeats it per LANGUAGE."""
    value = component.get("DESCRIPTION", "")
    return str(value[0] if isinstance(value, list) else value)


def _one_line(exc: BaseException | str) -> str:
    """Library messages can quote whole content lines; keep one short line."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else f"{text[:157]}..."


def _malformed(path: Path, manager: str, what: str) -> CalendarDataError:
    return CalendarDataError(f"{path}: {what}; fix or re-export the calendar", manager=manager)


def _file_for(folder: Path, email: str, manager: str) -> Path:
    """``<folder>/<email>.ics``; an address that would leave the folder is refused."""
    name = f"{email.lower()}.ics"
    if Path(name).name != name or name.startswith("."):
        raise CalendarDataError(
            f"{email!r} is not a usable calendar file name; check the roster", manager=manager
        )
    return folder.absolute() / name

"""Each person's working time, in their own zone, public holidays included (pure).

docs/design.md, "Respecting people's time": working days and hours come from
the roster, else from the calendar provider (Outlook's ``workingHours``), else
from the settings; a report's zone from the roster, else the provider, else
their manager's; a person's country from the roster, else (for a report) their
manager's, else ``KINDLY_COUNTRY``. A public holiday of that country is not a
working day. Holidays come from the ``holidays`` package, computed, not looked up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from service.model import (
    Interval,
    Manager,
    Policy,
    ProviderWorkingTime,
    Report,
    WorkingTime,
)
from service.slots import local_instant
from service.values import quick_init

WEEKDAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}
#: the languages Kindly writes in, as the holidays package names them
HOLIDAY_LANGUAGES = {"en": "en_US", "nl": "nl"}


@quick_init
@dataclass(frozen=True, slots=True)
class Person:
    """One person's working week on their own clock."""

    email: str
    tz: ZoneInfo
    working: WorkingTime
    #: ``NL``, ``US-NY``; None: no public holidays
    country: str | None = None

    def holiday(self, day: date, language: str = "en") -> str | None:
        """The name of the public holiday on ``day``, if it is one for this person."""
        if self.country is None:
            return None
        return holidays_of(self.country, day.year, language).get(day)

    def works_on(self, day: date) -> bool:
        return day.isoweekday() in self.working.days and self.holiday(day) is None

    def day_hours(self, day: date) -> Interval | None:
        """The working hours of ``day`` (UTC instants), or None on a day off or holiday."""
        if not self.works_on(day):
            return None
        opens = local_instant(day, self.working.start, self.tz)
        closes = local_instant(day, self.working.end, self.tz)
        return Interval(opens, closes) if opens < closes else None

    def days(self, start: datetime, end: datetime) -> Iterator[date]:
        """Every local date from the one ``start`` falls on to the one ``end`` falls on."""
        day, last = start.astimezone(self.tz).date(), end.astimezone(self.tz).date()
        while day <= last:
            yield day
            day += timedelta(days=1)

    def windows(self, start: datetime, end: datetime) -> tuple[Interval, ...]:
        """Working hours clipped to [start, end), oldest first, in UTC."""
        return _windows(
            self.tz, self.working, self.country, start.astimezone(UTC), end.astimezone(UTC)
        )


@lru_cache(maxsize=1024)
def _windows(
    tz: ZoneInfo, working: WorkingTime, country: str | None, start: datetime, end: datetime
) -> tuple[Interval, ...]:
    """:meth:`Person.windows`, cached without the email: a team mostly shares its zone, hours
    and country, and every manager of a run the same week's window."""
    clock = Person("", tz, working, country)
    found = []
    for day in clock.days(start, end):
        hours = clock.day_hours(day)
        if hours is not None and hours.start < end and start < hours.end:
            found.append(Interval(max(hours.start, start), min(hours.end, end)))
    return tuple(found)


def manager_person(
    manager: Manager, *, tz: ZoneInfo, policy: Policy, provider: ProviderWorkingTime | None
) -> Person:
    working = _working(manager.working_days, manager.working_hours, provider, policy)
    return Person(manager.email, tz, working, manager.country or policy.country)


def report_person(
    report: Report,
    manager: Manager,
    *,
    manager_tz: ZoneInfo,
    policy: Policy,
    provider: ProviderWorkingTime | None,
) -> Person:
    zone = report.timezone or (provider.timezone if provider else None)
    tz = ZoneInfo(zone) if zone and _known_zone(zone) else manager_tz
    working = _working(report.working_days, report.working_hours, provider, policy)
    return Person(report.email, tz, working, report.country or manager.country or policy.country)


def _working(
    days: frozenset[int] | None,
    hours: tuple[time, time] | None,
    provider: ProviderWorkingTime | None,
    policy: Policy,
) -> WorkingTime:
    """Roster first, field by field; then the provider; then the settings."""
    fallback = provider.working if provider is not None else policy.working_time
    if days is None and hours is None:
        return fallback  # nothing of the roster's own: most people
    start, end = hours if hours is not None else (fallback.start, fallback.end)
    return WorkingTime(days if days is not None else fallback.days, start, end)


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ValueError, OSError, KeyError):
        return False
    return True


def split_country(code: str) -> tuple[str, str | None]:
    """``US-NY`` → (``US``, ``NY``); ``NL`` → (``NL``, None)."""
    country, _, subdivision = code.upper().partition("-")
    return country, subdivision or None


@lru_cache(maxsize=256)
def holidays_of(code: str, year: int, language: str = "en") -> Mapping[date, str]:
    """The public holidays of one country (and subdivision) in one year, named in
    ``language`` where the package has that translation (else its own default)."""
    country, subdivision = split_country(code)
    wanted = HOLIDAY_LANGUAGES.get(language)
    supported = holidays.country_holidays(country, subdiv=subdivision, years=year)
    if wanted and wanted in supported.supported_languages:
        named = holidays.country_holidays(country, subdiv=subdivision, years=year, language=wanted)
        return dict(named.items())
    return dict(supported.items())


def check_country(code: str) -> str:
    """``code`` upper-cased, or ValueError listing what is wrong (settings and roster)."""
    country, subdivision = split_country(code)
    supported = holidays.list_supported_countries()
    if country not in supported:
        raise ValueError(
            f"unknown country {code!r}; use an ISO 3166-1 alpha-2 code such as NL, US, DE"
        )
    if subdivision is not None and subdivision not in supported[country]:
        raise ValueError(
            f"{country} has no subdivision {subdivision!r}; use one of "
            f"{', '.join(supported[country][:12])}{', …' if len(supported[country]) > 12 else ''}"
        )
    return code.upper()


def parse_days(value: object) -> frozenset[int]:
    """``mon,tue`` or a list of day names → ISO weekdays; ValueError naming the valid ones."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("write working days as mon,tue,wed or as a JSON list") from None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple | set | frozenset):
        raise ValueError("give working days as a list of day names such as [mon, tue, wed]")
    days = set()
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and 1 <= item <= 7:
            days.add(item)  # already an ISO weekday (a default, or a value passed in code)
            continue
        name = str(item).strip().lower()[:3]
        if not name:
            continue
        if name not in WEEKDAYS:
            raise ValueError(f"unknown day {item!r}; use mon, tue, wed, thu, fri, sat or sun")
        days.add(WEEKDAYS[name])
    if not days:
        raise ValueError("give at least one working day, such as mon")
    return frozenset(days)


def parse_span(value: object, *, allow_empty: bool = False) -> tuple[time, time] | None:
    """``09:00-15:00`` → (09:00, 15:00); ValueError with the expected form."""
    text = str(value).strip() if value is not None else ""
    if not text and allow_empty:
        return None
    start_text, dash, end_text = text.partition("-")
    try:
        if not dash:
            raise ValueError
        start, end = time.fromisoformat(start_text.strip()), time.fromisoformat(end_text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a span of hours; write it as 09:00-17:00") from None
    if end <= start:
        raise ValueError(f"{text!r} ends before it starts; write it as 09:00-17:00")
    return start, end

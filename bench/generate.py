"""Synthetic organisations for the benchmarks, in the emulators' organisation format.

    python -m bench.generate --managers 2000 --out var/bench/org-2000 [--seed 7]

Writes ``roster.yaml`` and ``calendars/<email>.ics`` (the layout of ``examples/``):
N managers with 8 reports each, and eight weeks of calendar before the pinned
``now`` plus the hold horizon after it. Each manager's calendar has recurring
1:1s at mixed cadences (some series ended, some reports never met), a weekly
team meeting, a daily stand-up for some teams, focus time, a transparent lunch,
out-of-office days, and per series a cancelled, a declined and a moved
occurrence now and then; managers live in several time zones. Two reports per
manager get a calendar of their own, so free/busy has something to read.

Everything is drawn from ``random.Random(f"{seed}/{index}")``: the same seed
gives the same bytes, and one manager is written at a time (nothing is held).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import yaml

#: the pinned instant every benchmark runs at (a Monday morning)
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
REPORTS = 8
WEEKS = 8
DOMAIN = "bench.example"
ZONES = (
    "Europe/Amsterdam",
    "America/New_York",
    "Europe/London",
    "Asia/Kolkata",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
)
CADENCES = (7, 14, 14, 14, 21, 28)
#: reports per manager with a calendar file of their own (free/busy reads it)
REPORT_CALENDARS = 2
AGREED = "Agreed expectations\n- Draft the design review by Friday\n- Pair with the new hire twice"


@dataclass(frozen=True, slots=True)
class Person:
    email: str
    name: str


def manager_email(index: int) -> str:
    return f"m{index:05d}@{DOMAIN}"


def report_email(index: int, slot: int) -> str:
    return f"m{index:05d}r{slot}@{DOMAIN}"


def generate(folder: Path, managers: int, *, seed: int = 7, now: datetime = NOW) -> None:
    """Write the organisation, one manager at a time."""
    calendars = folder / "calendars"
    calendars.mkdir(parents=True, exist_ok=True)
    with (folder / "roster.yaml").open("w", encoding="utf-8") as roster:
        roster.write(f"# synthetic: {managers} managers x {REPORTS} reports, seed {seed}\n")
        roster.write("managers:\n")
        for index in range(managers):
            team = Team(index, random.Random(f"{seed}/{index}"), now)
            roster.write(yaml.safe_dump([team.roster_entry()], sort_keys=False, width=200))
            for email, calendar in team.calendars():
                (calendars / f"{email}.ics").write_bytes(calendar.to_ical())


class Team:
    """One manager, their reports and the calendars drawn for them."""

    def __init__(self, index: int, rng: random.Random, now: datetime) -> None:
        self.index, self.rng = index, rng
        self.zone = ZoneInfo(rng.choice(ZONES))
        self.manager = Person(manager_email(index), f"Manager {index}")
        self.reports = [
            Person(report_email(index, slot), f"Report {index}-{slot}") for slot in range(REPORTS)
        ]
        self.cadences = [rng.choice(CADENCES) for _ in self.reports]
        local = now.astimezone(self.zone).date()
        #: Monday of the first week the calendar covers
        self.first = local - timedelta(days=local.weekday(), weeks=WEEKS)
        self.today = local
        self.language = "nl" if rng.random() < 0.2 else "en"

    def roster_entry(self) -> dict[str, Any]:
        reports: list[dict[str, Any]] = []
        for slot, (person, cadence) in enumerate(zip(self.reports, self.cadences, strict=True)):
            entry: dict[str, Any] = {"email": person.email, "name": person.name}
            if cadence != 14:
                entry["cadence_days"] = cadence
            if slot == REPORTS - 1 and self.rng.random() < 0.1:
                entry["start_date"] = self.today - timedelta(days=self.rng.randrange(14))
            if self.rng.random() < 0.3:
                entry["expectations"] = [f"Own the quarterly goal {slot + 1}"]
            reports.append(entry)
        return {
            "email": self.manager.email,
            "name": self.manager.name,
            "timezone": self.zone.key,
            "language": self.language,
            "reports": reports,
        }

    def calendars(self) -> Iterator[tuple[str, icalendar.Calendar]]:
        yield self.manager.email, self._manager_calendar()
        for person in self.rng.sample(self.reports, REPORT_CALENDARS):
            yield person.email, self._report_calendar(person)

    # -- the manager's calendar ---------------------------------------------------------

    def _manager_calendar(self) -> icalendar.Calendar:
        cal = _calendar(self.zone)
        for slot, (person, cadence) in enumerate(zip(self.reports, self.cadences, strict=True)):
            for event in self._one_on_ones(slot, person, cadence):
                cal.add_component(event)
        everyone = [self.manager, *self.reports]
        cal.add_component(self._series("team", "Team meeting", 60, everyone, byday="TH"))
        if self.rng.random() < 0.5:
            cal.add_component(
                self._series("standup", "Stand-up", 15, everyone, byday="MO,TU,WE,TH,FR", at=9)
            )
        focus = self._series("focus", "Focus time", 90, [self.manager], byday="WE")
        cal.add_component(focus)
        lunch = self._series("lunch", "Lunch", 60, [self.manager], byday="MO,TU,WE,TH,FR", at=12)
        lunch.add("TRANSP", "TRANSPARENT")
        cal.add_component(lunch)
        peer = Person(manager_email((self.index + 1) % 100_000), "Peer")
        cal.add_component(self._series("peers", "Managers' sync", 45, [peer, self.manager]))
        for day in self._days(self.rng.randint(1, 3)):
            cal.add_component(self._out_of_office(self.manager, day))
        return cal

    def _one_on_ones(self, slot: int, person: Person, cadence: int) -> Iterator[icalendar.Event]:
        roll = self.rng.random()
        if roll < 0.15:
            return  # never met in the window: "getting to know you"
        interval = max(1, round(cadence / 7 * self.rng.choice((1, 1, 1, 2))))
        until = None
        if roll < 0.3:  # a series that stopped some weeks ago
            ended = self.today - timedelta(weeks=self.rng.randint(2, 5))
            until = datetime.combine(ended, time(0), UTC)
        people = [self.manager, person]
        series = self._series(
            f"1on1-{slot}", "1:1", 30, people, interval=interval, organizer=True, until=until
        )
        yield series
        starts = self._occurrences(series.decoded("DTSTART"), interval, until)
        past = [s for s in starts if s.date() < self.today]
        if past and self.rng.random() < 0.5:
            yield self._override(series, self.rng.choice(past), description=AGREED)
        if past and self.rng.random() < 0.3:
            yield self._override(series, self.rng.choice(past), status="CANCELLED")
        if starts and self.rng.random() < 0.2:
            yield self._override(series, self.rng.choice(starts), declined_by=person)
        if starts and self.rng.random() < 0.2:
            yield self._override(series, self.rng.choice(starts), moved=timedelta(hours=2))

    def _series(
        self,
        name: str,
        summary: str,
        minutes: int,
        people: list[Person],
        *,
        byday: str | None = None,
        interval: int = 1,
        at: int | None = None,
        organizer: bool = False,
        until: datetime | None = None,
    ) -> icalendar.Event:
        weekday = self.rng.randrange(5)
        day = self.first + timedelta(days=weekday)
        hour = at if at is not None else self.rng.randint(9, 16)
        minute = 0 if at is not None else self.rng.choice((0, 15, 30))
        start = datetime.combine(day, time(hour, minute), self.zone)
        event = _event(f"{name}-{self.index}", summary, start, start + timedelta(minutes=minutes))
        rule: dict[str, Any] = {"FREQ": "WEEKLY", "INTERVAL": interval}
        rule["BYDAY"] = byday.split(",") if byday else [("MO", "TU", "WE", "TH", "FR")[weekday]]
        if until is not None:
            rule["UNTIL"] = until
        event.add("RRULE", rule)
        host = people[0] if organizer or len(people) == 1 else self.rng.choice(people)
        event.add("ORGANIZER", f"mailto:{host.email}", parameters={"CN": host.name})
        if len(people) > 1:
            for person in people:
                event.add("ATTENDEE", *_attendee(person, "ACCEPTED"))
            if self.rng.random() < 0.2:
                room = Person(f"room-{self.index % 50}@{DOMAIN}", "Room")
                event.add("ATTENDEE", *_attendee(room, "ACCEPTED", cutype="ROOM"))
        return event

    def _occurrences(
        self, start: datetime, interval: int, until: datetime | None
    ) -> list[datetime]:
        """The series' starts up to the end of the hold horizon (what RRULE expands to)."""
        step = timedelta(weeks=interval)
        last = datetime.combine(self.today + timedelta(days=7), time(0), self.zone)
        if until is not None:
            last = min(last, until)
        found = []
        moment = start
        while moment <= last:
            found.append(moment)
            moment = datetime.combine(moment.date() + step, moment.time(), self.zone)
        return found

    def _override(
        self,
        series: icalendar.Event,
        original: datetime,
        *,
        status: str | None = None,
        declined_by: Person | None = None,
        moved: timedelta = timedelta(0),
        description: str | None = None,
    ) -> icalendar.Event:
        length = series.decoded("DTEND") - series.decoded("DTSTART")
        start = original + moved
        uid = str(series["UID"]).removesuffix(f"@{DOMAIN}")
        event = _event(uid, str(series["SUMMARY"]), start, start + length)
        event.add("RECURRENCE-ID", original)
        if status:
            event["STATUS"] = status
        if description:
            event.add("DESCRIPTION", description)
        event.add("ORGANIZER", series["ORGANIZER"])
        for attendee in _listed(series.get("ATTENDEE")):
            email = str(attendee).removeprefix("mailto:")
            answer = "DECLINED" if declined_by and email == declined_by.email else "ACCEPTED"
            event.add("ATTENDEE", f"mailto:{email}", parameters={"PARTSTAT": answer})
        return event

    def _days(self, count: int) -> list[date]:
        span = (WEEKS + 1) * 7
        return sorted({self.first + timedelta(days=self.rng.randrange(span)) for _ in range(count)})

    def _out_of_office(self, person: Person, day: date) -> icalendar.Event:
        event = _event(f"oof-{person.email}-{day}", "Out of office", day, day + timedelta(days=1))
        event.add("X-MICROSOFT-CDO-BUSYSTATUS", "OOF")
        return event

    # -- a report's own calendar ------------------------------------------------------

    def _report_calendar(self, person: Person) -> icalendar.Calendar:
        cal = _calendar(self.zone)
        for name in ("customer", "review"):
            cal.add_component(self._series(f"{name}-{person.email}", name.title(), 60, [person]))
        for day in self._days(2):
            cal.add_component(self._out_of_office(person, day))
        return cal


def _calendar(zone: ZoneInfo) -> icalendar.Calendar:
    cal = icalendar.Calendar()
    cal.add("PRODID", "-//Kindly bench//generate.py//EN")
    cal.add("VERSION", "2.0")
    cal.add("X-WR-TIMEZONE", zone.key)
    return cal


def _event(uid: str, summary: str, start: date, end: date) -> icalendar.Event:
    event = icalendar.Event()
    event.add("UID", f"{uid}@{DOMAIN}")
    event.add("SUMMARY", summary)
    event.add("DTSTART", start)
    event.add("DTEND", end)
    event.add("DTSTAMP", datetime(2026, 11, 1, tzinfo=UTC))
    return event


def _attendee(person: Person, answer: str, *, cutype: str = "INDIVIDUAL") -> tuple[str, Any]:
    return f"mailto:{person.email}", {"CN": person.name, "PARTSTAT": answer, "CUTYPE": cutype}


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__)
    parser.add_argument("--managers", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    generate(args.out, args.managers, seed=args.seed)
    print(f"wrote {args.managers} managers to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

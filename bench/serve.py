"""One emulator for one benchmark run, in its own process, steered over stdin/stdout.

    python -m bench.serve --provider google --org var/bench/org-200 --latency 0.05 \\
        --limits published --state var/bench/state

Prints one JSON line: the ``KINDLY_`` variables that point Kindly at it. Then it
answers one JSON line per command read from stdin: ``stats`` (requests by kind,
round trips, limit violations, peak concurrency per mailbox and the emulator's
CPU seconds since the last ``mark``, and the event-listing pages a perfect client
needs: the lower bound)
and ``mark``. It exits when stdin closes.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import sys
import threading
import time
import zlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo

import icalendar

from bench.generate import NOW
from service.model import Policy
from tests.emulators.google import GoogleEmulator
from tests.emulators.google import limits as google_limits
from tests.emulators.google.org import Calendar, Org, Resource, sort_start
from tests.emulators.google.org import _expand as expand_ics
from tests.emulators.google.org import _overlaps as overlaps
from tests.emulators.graph import GraphEmulator, make_certificate
from tests.emulators.graph import limits as graph_limits
from tests.emulators.graph.graph import Call, GraphApi, classify
from tests.emulators.graph.identity import Reply
from tests.emulators.graph.org import (
    Attendee,
    Item,
    Organisation,
    User,
    roster_users,
    settle_zones,
    user_id,
)
from tests.emulators.graph.wire import zone as graph_zone

SENDER = "digests@bench.example"
GOOGLE_PAGE = 250  # connectors.google.PAGE_SIZE
GRAPH_PAGE = 100  # connectors.outlook.PAGE_SIZE
UNLIMITED = 1 << 30
#: parsed calendars kept for further listings of the same owner (free/busy, paging)
PARSED_KEPT = 256
#: unpacked listings kept: more than the managers Kindly's processes have in flight
LISTINGS_KEPT = 512
#: Graph reads whose answers are kept, and how many compressed bytes of them at most
KEPT_KINDS = frozenset({"calendarView", "getSchedule"})
KEPT_BYTES = 1 << 30


K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """The last few values made for their keys: what is asked again soon is made once.

    Kindly reads each listing a page at a time and each report's calendar for several
    answers, all within a few moments, so a small window of recent values saves the
    emulator most of its parsing and unpacking while its memory stays flat.
    """

    def __init__(self, make: Callable[[K], V], kept: int = PARSED_KEPT) -> None:
        self._make, self._kept = make, kept
        self._values: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V:
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
                return value
        value = self._make(key)
        with self._lock:
            self._values[key] = value
            while len(self._values) > self._kept:
                self._values.popitem(last=False)
        return value


def parsed_files(kept: int = PARSED_KEPT) -> Recent[Path, icalendar.Calendar]:
    """The last few calendars parsed from ``.ics`` files, for further listings of the same owner."""
    return Recent(lambda path: icalendar.Calendar.from_ical(path.read_bytes()), kept)


class _Inserted(dict[str, Resource]):
    """A calendar's inserted events, indexed by attendee in the organisation as they come."""

    def __init__(self, owner: str, org: BenchOrg) -> None:
        super().__init__()
        self.owner, self.org = owner, org

    def __setitem__(self, key: str, value: Resource) -> None:
        for attendee in value.get("attendees", []):
            email = str(attendee.get("email", "")).lower()
            if email and email != self.owner:
                self.org.invited.setdefault(email, set()).add((self.owner, key))
        super().__setitem__(key, value)


@dataclass
class BenchOrg(Org):
    """The Google emulator's organisation, light enough for 10,000 managers.

    Calendars are parsed from their ``.ics`` file on first use, not at start; a
    listing's expansion is kept compressed (the files never change) and the parsed
    calendar only in a small cache, so memory stays near the size of the files.
    Free/busy finds inserted invitations through an attendee index instead of a scan
    of every calendar. Inserting an id that an ``.ics`` event has is not refused here
    (Kindly's hold ids never collide with them).
    """

    files: dict[str, Path] = field(default_factory=dict)
    invited: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    #: events in each (owner, start, end) listing: the lower bound's pages come from these
    listed: dict[tuple[str, datetime, datetime], int] = field(default_factory=dict)
    _expanded: dict[tuple[str, datetime, datetime], bytes] = field(default_factory=dict)
    _parsed: Recent[Path, icalendar.Calendar] = field(default_factory=parsed_files)

    @classmethod
    def load(cls, folder: Path, *, admin: str | None = None, default_zone: str = "UTC") -> BenchOrg:
        org = cls(default_zone=default_zone)
        org.add_roster(folder / "roster.yaml", admin=admin)
        for path in (folder / "calendars").glob("*.ics"):
            owner = path.stem.lower()
            org.files[owner] = path
            if owner not in org.users:
                org.add_user(owner, owner)
        return org

    def _ics(self, owner: str) -> icalendar.Calendar:
        return self._parsed.get(self.files[owner])

    def calendar(self, owner: str) -> Calendar:
        with self.lock:
            known = self.calendars.get(owner)
        if known is not None:
            return known
        calendar = Calendar(owner, ZoneInfo(self.default_zone))
        if owner in self.files:
            calendar.recurring, calendar.zone = self.describe(self._ics(owner), owner)
        else:
            user = self.users.get(owner)
            calendar.zone = ZoneInfo((user.timezone if user else None) or self.default_zone)
        calendar.inserted = _Inserted(owner, self)
        with self.lock:
            return self.calendars.setdefault(owner, calendar)

    def events(self, owner: str, start: datetime, end: datetime) -> list[Resource]:
        calendar = self.calendar(owner)
        key = (owner, start, end)
        with self.lock:
            blob = self._expanded.get(key)
        if blob is None:
            found: list[Resource] = []
            if owner in self.files:
                parsed = replace(calendar, ics=self._ics(owner), inserted={})
                found = list(expand_ics(parsed, start, end))
            blob = zlib.compress(json.dumps(found).encode(), 1)
            with self.lock:
                self._expanded[key] = blob
        items: list[Resource] = json.loads(zlib.decompress(blob))
        with self.lock:
            items += [
                r for r in calendar.inserted.values() if overlaps(r, calendar.zone, start, end)
            ]
            self.listed[key] = len(items)
        return sorted(items, key=lambda r: (sort_start(r, calendar.zone), r["id"]))

    def invitations(self, email: str, start: datetime, end: datetime) -> Iterator[Resource]:
        with self.lock:
            found = sorted(self.invited.get(email, ()))
        for owner, eid in found:
            calendar = self.calendars[owner]
            resource = calendar.inserted.get(eid)
            if resource is not None and overlaps(resource, calendar.zone, start, end):
                yield resource

    def pages(self, managers: Iterable[str], window: tuple[datetime, datetime]) -> int:
        """Listing pages a perfect client needs: what each manager's listing held."""
        return lower_bound_pages(
            managers, window, self.listed, lambda m: len(self.events(m, *window)), GOOGLE_PAGE
        )


@dataclass
class BenchOrganisation(Organisation):
    """The Graph emulator's organisation, light enough for 10,000 managers.

    As :class:`BenchOrg` does for Google: each ``.ics`` file is parsed on first use
    (only a few kept parsed), each listing's expansion is kept pickled and compressed,
    and a mailbox's time zone is read from its file's header at start, so the emulator
    starts at once and its memory stays near the size of the files.
    """

    files: dict[str, Path] = field(default_factory=dict)
    #: ICS items in each (mailbox, start, end) listing: the lower bound's pages come from these
    listed: dict[tuple[str, datetime, datetime], int] = field(default_factory=dict)
    _kept: dict[tuple[str, datetime, datetime], bytes] = field(default_factory=dict)
    _parsed: Recent[Path, icalendar.Calendar] = field(default_factory=parsed_files)
    #: listings unpacked lately: a manager's pages and free/busy come moments apart
    _recent: Recent[tuple[str, datetime, datetime], list[Item]] = field(init=False)

    def __post_init__(self) -> None:
        self._recent = Recent(self._listing, LISTINGS_KEPT)

    @classmethod
    def load(cls, folder: Path) -> BenchOrganisation:
        org = cls(roster_users(folder / "roster.yaml"), {})
        for path in (folder / "calendars").glob("*.ics"):
            email = path.stem.lower()
            org.files[email] = path
            user = org.users.setdefault(
                email, User(user_id(email), email, email.split("@")[0].title())
            )
            declared = _header_zone(path)
            if declared:
                user.timezone, user.zone_given = declared, True
        settle_zones(org.users)
        return org

    def calendar(self, email: str) -> icalendar.Calendar | None:
        path = self.files.get(email)
        return None if path is None else self._parsed.get(path)

    def items(self, email: str, start: datetime, end: datetime) -> list[Item]:
        """The listing's items, shared by the calls that ask for it soon after each other
        (its pages, a free/busy): callers build their own lists and never change an Item."""
        key = (email, start, end)
        found = self._recent.get(key)
        with self._lock:
            self.listed[key] = len(found)
        return found

    def _listing(self, key: tuple[str, datetime, datetime]) -> list[Item]:
        with self._lock:
            blob = self._kept.get(key)
        if blob is None:
            blob = _packed(self._expand(*key))
            with self._lock:
                self._kept[key] = blob
        return _unpacked(blob)

    def pages(self, managers: Iterable[str], window: tuple[datetime, datetime]) -> int:
        """Listing pages a perfect client needs: what each manager's calendarView held."""
        return lower_bound_pages(
            managers, window, self.listed, lambda m: len(self.items(m, *window)), GRAPH_PAGE
        )


#: an Item's fields but its people, so that a kept listing is plain tuples: a slotted
#: dataclass pickles through ``dataclasses.fields`` per object, a third of the emulator's CPU
_PLAIN = tuple(f.name for f in fields(Item) if f.name not in ("organizer", "attendees"))
_Person = tuple[str, str, str, str]


def _packed(items: list[Item]) -> bytes:
    rows = [
        (
            tuple(getattr(item, name) for name in _PLAIN),
            _person(item.organizer) if item.organizer else None,
            tuple(map(_person, item.attendees)),
        )
        for item in items
    ]
    return zlib.compress(pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL), 1)


def _unpacked(blob: bytes) -> list[Item]:
    rows: list[tuple[tuple[Any, ...], _Person | None, tuple[_Person, ...]]]
    rows = pickle.loads(zlib.decompress(blob))
    return [
        Item(
            **dict(zip(_PLAIN, plain, strict=True)),
            organizer=Attendee(*organizer) if organizer else None,
            attendees=tuple(Attendee(*a) for a in attendees),
        )
        for plain, organizer, attendees in rows
    ]


def _person(attendee: Attendee) -> _Person:
    return (attendee.email, attendee.name, attendee.type, attendee.response)


def _header_zone(path: Path) -> str | None:
    """X-WR-TIMEZONE from the calendar properties before the first component."""
    with path.open("rb") as ics:
        for raw in ics:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith("BEGIN:") and line != "BEGIN:VCALENDAR":
                return None
            if line.upper().startswith("X-WR-TIMEZONE:"):
                return str(graph_zone(line.partition(":")[2]))
    return None


def lower_bound_pages(
    managers: Iterable[str],
    window: tuple[datetime, datetime],
    listed: Mapping[tuple[str, datetime, datetime], int],
    count: Callable[[str], int],
    page_size: int,
) -> int:
    """One page per ``page_size`` events each manager's listing held (counted if not listed)."""
    start, end = window
    total = 0
    for manager in managers:
        held = listed.get((manager, start, end))
        total += max(1, math.ceil((count(manager) if held is None else held) / page_size))
    return total


class Served(Protocol):
    def stats(self) -> dict[str, Any]: ...

    def mark(self) -> None: ...


class GoogleServed:
    def __init__(self, args: argparse.Namespace, window: tuple[datetime, datetime]) -> None:
        org = BenchOrg.load(args.org)
        published = args.limits == "published"
        self.emulator = GoogleEmulator(org, page_size=GOOGLE_PAGE, directory_page_size=500)
        self.limits = google_limits.PublishedLimits(latency=args.latency)
        if not published:
            self.limits.per_user = self.limits.per_project = UNLIMITED
        if args.per_project is not None:  # a lowered quota, for the fleet bench
            self.limits.per_project = args.per_project
        self.emulator.faults = self.limits
        key_file = args.state / "service-account.json"
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(json.dumps(self.emulator.service_account()))
        admin = next(u.email for u in org.users.values() if u.admin)
        self.env = {
            "KINDLY_CALENDAR": "google",
            "KINDLY_GOOGLE__API_ENDPOINT": self.emulator.base_url,
            "KINDLY_GOOGLE__SERVICE_ACCOUNT_FILE": str(key_file.resolve()),
            "KINDLY_GOOGLE__ADMIN_SUBJECT": admin,
        }
        self.org, self.window = org, window
        self.managers = list(_managers(args.org))
        self._since, self._violations = 0, 0
        self.emulator.start()

    def stats(self) -> dict[str, Any]:
        log = self.emulator.log[self._since :]
        kinds = Counter(e.kind for e in log if e.kind != "batch")
        return {
            "pages": self.org.pages(self.managers, self.window),
            "requests": dict(sorted(kinds.items())),
            "round_trips": sum(1 for e in log if not e.in_batch),
            "violations": self.limits.violations - self._violations,
            "errors": sum(1 for e in log if e.status >= 400),
            "peak_per_mailbox": None,
        }

    def mark(self) -> None:
        self._since, self._violations = len(self.emulator.log), self.limits.violations


class GraphServed:
    def __init__(self, args: argparse.Namespace, window: tuple[datetime, datetime]) -> None:
        published = args.limits == "published"
        tls = make_certificate(args.state / "graph-tls")
        self.org = BenchOrganisation.load(args.org)
        self.emulator = GraphEmulator(
            self.org,
            tls=tls,
            page_size=GRAPH_PAGE,
            mailbox_concurrency=4 if published else UNLIMITED,
            mailboxes=(SENDER,),
            api=KeptReads,
        )
        self.emulator.latency = args.latency
        self.limits = graph_limits.PublishedLimits()
        if published:
            self.emulator.inject(self.limits)
        self.env = self.emulator.environment() | {
            "KINDLY_EMAIL__BACKEND": "graph",
            "KINDLY_EMAIL__FROM": SENDER,
        }
        self.window, self.managers = window, list(_managers(args.org))
        self._since, self._violations = 0, 0
        self.emulator.start()

    def stats(self) -> dict[str, Any]:
        log = self.emulator.log[self._since :]
        kinds = Counter(e.kind for e in log if e.kind != "batch")
        peak = self.emulator.peak
        return {
            "pages": self.org.pages(self.managers, self.window),
            "requests": dict(sorted(kinds.items())),
            "round_trips": sum(1 for e in log if not e.batched),
            # published limits (built-in concurrency, rate limits) answer 429; lifted: none
            "violations": sum(1 for e in log if e.status == 429),
            "errors": sum(1 for e in log if e.status >= 400),
            "peak_per_mailbox": max(peak.values(), default=0),
        }

    def mark(self) -> None:
        self._since, self._violations = len(self.emulator.log), self.limits.counters.violations
        with self.emulator.recorder.lock:
            self.emulator.recorder.peak.clear()


class KeptReads(GraphApi):
    """The Graph API keeping its answers to reads (calendarView, getSchedule) until a
    mailbox they show changes, so that the emulator is not the bench's bottleneck.

    The bench runs Kindly's dry run, then its real run, on one emulator: the real run reads
    what the dry run read, and Graph's own servers would not be on the machine under test.
    The answers stay byte for byte those of :class:`GraphApi`: the key is everything an
    answer depends on (the request, the time-zone preference, the app's roles) and the
    writes so far to every mailbox shown. Kept compressed, the oldest dropped past a size.
    """

    def __init__(self, org: Organisation, *, page_size: int) -> None:
        super().__init__(org, page_size=page_size)
        self._answers: OrderedDict[tuple[Any, ...], tuple[int, bytes, dict[str, str]]]
        self._answers = OrderedDict()
        self._size = 0
        #: writes so far per mailbox (events created: the only writes that change a read)
        self._writes: Counter[str] = Counter()

    def handle(self, call: Call) -> Reply:
        kind, key = classify(call.method, call.path)
        if kind not in KEPT_KINDS or key is None:
            reply = super().handle(call)
            if call.method != "GET" and key is not None and reply.status < 300:
                with self.lock:
                    self._writes[self._owner(key)] += 1
            return reply
        shown = self._shown(kind, key, call.body)
        with self.lock:
            writes = tuple(self._writes[email] for email in shown)
        wanted = (call.method, call.path, tuple(sorted(call.query.items())), call.body)
        wanted += (call.headers.get("prefer", ""), call.roles, shown, writes)
        with self.lock:
            kept = self._answers.get(wanted)
            if kept is not None:
                self._answers.move_to_end(wanted)
        if kept is not None:
            status, body, headers = kept
            return Reply(status, zlib.decompress(body), dict(headers))
        reply = super().handle(call)
        if reply.status == 200:
            self._keep(wanted, reply)
        return reply

    def _shown(self, kind: str, key: str, body: bytes) -> tuple[str, ...]:
        """The mailboxes whose events the answer shows: the owner's, or each schedule's."""
        if kind == "calendarView":
            return (self._owner(key),)
        try:
            return tuple(str(s).lower() for s in json.loads(body)["schedules"])
        except (ValueError, KeyError, TypeError):
            return ()

    def _owner(self, key: str) -> str:
        """The mailbox a request's path names (an id or an address), as its email."""
        user = self.org.user(key)
        return user.email if user else key.lower()

    def _keep(self, wanted: tuple[Any, ...], reply: Reply) -> None:
        packed = zlib.compress(reply.body, 1)
        with self.lock:
            self._answers[wanted] = (reply.status, packed, dict(reply.headers))
            self._size += len(packed)
            while self._size > KEPT_BYTES and self._answers:
                _, (_, dropped, _) = self._answers.popitem(last=False)
                self._size -= len(dropped)


def _managers(org: Path) -> Iterator[str]:
    """Manager emails from the roster, read line by line (the generator's layout)."""
    with (org / "roster.yaml").open(encoding="utf-8") as roster:
        for line in roster:
            if line.startswith("- email: "):
                yield line.removeprefix("- email: ").strip().lower()


def window(now: datetime, policy: Policy) -> tuple[datetime, datetime]:
    """The span Kindly lists for one manager (service/week.py: the lookback before, the
    lookahead after, where next 1:1s and returns from leave are seen)."""
    return now - timedelta(days=policy.lookback_days), now + timedelta(days=policy.reach_days)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__)
    parser.add_argument("--provider", choices=("google", "outlook"), required=True)
    parser.add_argument("--org", type=Path, required=True)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--limits", choices=("published", "lifted"), default="lifted")
    parser.add_argument("--state", type=Path, default=Path("var/bench/state"))
    parser.add_argument(
        "--per-project", type=int, default=None, help="Google's project quota a minute"
    )
    args = parser.parse_args(argv)
    span = window(NOW, Policy())
    served: GoogleServed | GraphServed = (
        GoogleServed(args, span) if args.provider == "google" else GraphServed(args, span)
    )
    print(json.dumps({"env": served.env}), flush=True)
    marked = time.process_time()
    for line in sys.stdin:
        command = line.strip()
        if command == "mark":
            served.mark()
            marked = time.process_time()
            print("{}", flush=True)
        elif command == "stats":
            # the emulator's own CPU since the mark: it shares the machine's cores with Kindly
            emulator_cpu = round(time.process_time() - marked, 1)
            print(json.dumps(served.stats() | {"emulator_cpu": emulator_cpu}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

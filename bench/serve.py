"""One emulator for one benchmark run, in its own process, steered over stdin/stdout.

    python -m bench.serve --provider google --org var/bench/org-200 --latency 0.05 \\
        --limits published --state var/bench/state

Prints one JSON line: the ``KINDLY_`` variables that point Kindly at it and the
number of event-listing pages a perfect client needs (the lower bound). Then it
answers one JSON line per command read from stdin: ``stats`` (requests by kind,
round trips, limit violations, peak concurrency per mailbox since the last
``mark``) and ``mark``. It exits when stdin closes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from bench.generate import NOW
from service.model import Policy
from tests.emulators.google import GoogleEmulator
from tests.emulators.google import limits as google_limits
from tests.emulators.google.org import Calendar, Org, Resource, sort_start
from tests.emulators.google.org import _expand as expand_ics
from tests.emulators.google.org import _overlaps as overlaps
from tests.emulators.graph import GraphEmulator, make_certificate
from tests.emulators.graph import limits as graph_limits

SENDER = "digests@bench.example"
GOOGLE_PAGE = 250  # connectors.google.PAGE_SIZE
GRAPH_PAGE = 100  # connectors.outlook.PAGE_SIZE
UNLIMITED = 1 << 30


class _Inserted(dict[str, Resource]):
    """A calendar's inserted events that tell the organisation which calendars have any."""

    def __init__(self, owner: str, index: set[str]) -> None:
        super().__init__()
        self.owner, self.index = owner, index

    def __setitem__(self, key: str, value: Resource) -> None:
        self.index.add(self.owner)
        super().__setitem__(key, value)


@dataclass
class BenchOrg(Org):
    """The Google emulator's organisation, fast at scale: ICS expansions are cached
    (the files never change) and invitations are looked up only on calendars that have
    inserted events, instead of on every calendar of the domain per free/busy request."""

    _expanded: dict[tuple[str, datetime, datetime], list[Resource]] = field(default_factory=dict)
    _with_inserts: set[str] = field(default_factory=set)

    def calendar(self, owner: str) -> Calendar:
        calendar = super().calendar(owner)
        if not isinstance(calendar.inserted, _Inserted):
            tracked = _Inserted(owner, self._with_inserts)
            tracked.update(calendar.inserted)
            calendar.inserted = tracked
        return calendar

    def events(self, owner: str, start: datetime, end: datetime) -> list[Resource]:
        calendar = self.calendar(owner)
        key = (owner, start, end)
        with self.lock:
            if key not in self._expanded:
                self._expanded[key] = list(expand_ics(calendar, start, end))
            found = list(self._expanded[key])
            found += [
                r for r in calendar.inserted.values() if overlaps(r, calendar.zone, start, end)
            ]
        return sorted(found, key=lambda r: (sort_start(r, calendar.zone), r["id"]))

    def invitations(self, email: str, start: datetime, end: datetime) -> Iterator[Resource]:
        with self.lock:
            owners = sorted(self._with_inserts - {email})
            for owner in owners:
                calendar = self.calendars[owner]
                for resource in calendar.inserted.values():
                    emails = {a.get("email") for a in resource.get("attendees", [])}
                    if email in emails and overlaps(resource, calendar.zone, start, end):
                        yield resource


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
        start, end = window
        self.pages = sum(
            max(1, math.ceil(len(org.events(m, start, end)) / GOOGLE_PAGE))
            for m in _managers(args.org)
        )
        self._since, self._violations = 0, 0
        self.emulator.start()

    def stats(self) -> dict[str, Any]:
        log = self.emulator.log[self._since :]
        kinds = Counter(e.kind for e in log if e.kind != "batch")
        return {
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
        self.emulator = GraphEmulator(
            args.org,
            tls=tls,
            page_size=GRAPH_PAGE,
            mailbox_concurrency=4 if published else UNLIMITED,
            mailboxes=(SENDER,),
        )
        self.emulator.latency = args.latency
        self.limits = graph_limits.PublishedLimits()
        if published:
            self.emulator.inject(self.limits)
        self.env = self.emulator.environment() | {
            "KINDLY_EMAIL__BACKEND": "graph",
            "KINDLY_EMAIL__FROM": SENDER,
        }
        start, end = window
        org = self.emulator.org
        self.pages = sum(
            max(1, math.ceil(len(org.items(m, start, end)) / GRAPH_PAGE))
            for m in _managers(args.org)
        )
        self._since, self._violations = 0, 0
        self.emulator.start()

    def stats(self) -> dict[str, Any]:
        log = self.emulator.log[self._since :]
        kinds = Counter(e.kind for e in log if e.kind != "batch")
        peak = self.emulator.peak
        return {
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


def _managers(org: Path) -> Iterator[str]:
    """Manager emails from the roster, read line by line (the generator's layout)."""
    with (org / "roster.yaml").open(encoding="utf-8") as roster:
        for line in roster:
            if line.startswith("- email: "):
                yield line.removeprefix("- email: ").strip().lower()


def window(now: datetime, policy: Policy) -> tuple[datetime, datetime]:
    """The span Kindly lists for one manager (pipeline: lookback before, horizon after)."""
    return now - timedelta(days=policy.lookback_days), now + timedelta(days=policy.horizon_days)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__)
    parser.add_argument("--provider", choices=("google", "outlook"), required=True)
    parser.add_argument("--org", type=Path, required=True)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--limits", choices=("published", "lifted"), default="lifted")
    parser.add_argument("--state", type=Path, default=Path("var/bench/state"))
    args = parser.parse_args(argv)
    span = window(NOW, Policy())
    served: GoogleServed | GraphServed = (
        GoogleServed(args, span) if args.provider == "google" else GraphServed(args, span)
    )
    print(json.dumps({"env": served.env, "pages": served.pages}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "mark":
            served.mark()
            print("{}", flush=True)
        elif command == "stats":
            print(json.dumps(served.stats()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

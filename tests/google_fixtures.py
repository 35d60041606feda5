"""Helpers for tests against the Google emulator: an org folder, the emulator, a connector.

Imported directly by the Google tests (no ``pytest_plugins``), so the lead's
conftest stays untouched.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from google.oauth2 import service_account

from connectors.google import GoogleConnector
from connectors.google_transport import Backoff
from tests.emulators.google import KINDLY_SCOPES, GoogleEmulator
from tests.emulators.google.keys import new_key

#: one RSA key for the whole session: generating one per test costs more than the test
KEY = new_key()

ROSTER = """\
managers:
  - email: maria@example.com
    name: Maria Jansen
    timezone: Europe/Amsterdam
    reports:
      - email: sam@example.com
        name: Sam Lee
      - email: noor@example.com
        name: Noor Ahmed
  - email: dan@example.com
    name: Dan Brooks
    reports:
      - email: ava@example.com
        name: Ava Stone
"""


def vcalendar(*events: str, zone: str | None = "Europe/Amsterdam") -> str:
    """A calendar file around the given VEVENT bodies (CRLF line ends, as exported)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Kindly tests//EN"]
    if zone:
        lines.append(f"X-WR-TIMEZONE:{zone}")
    for event in events:
        body = [line.strip() for line in event.strip().splitlines() if line.strip()]
        lines += ["BEGIN:VEVENT", *body, "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def write_org(root: Path, calendars: dict[str, str], roster: str = ROSTER) -> Path:
    (root / "calendars").mkdir(parents=True, exist_ok=True)
    (root / "roster.yaml").write_text(roster, encoding="utf-8")
    for email, text in calendars.items():
        (root / "calendars" / f"{email}.ics").write_text(text, encoding="utf-8")
    return root


class RecordedSleep:
    """An async sleep that returns at once and remembers what it was asked to wait."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class FakeClock:
    """A monotonic clock that moves only when advanced or slept on (by at least one tick,
    as a real one does); safe across threads."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now = max(self.now + seconds, math.nextafter(self.now, math.inf))


@contextmanager
def running(org: Path, **options: Any) -> Iterator[GoogleEmulator]:
    with GoogleEmulator.from_folder(org, **options) as emulator:
        yield emulator


#: one attempt, throttled or not: a test that looks at the first answer itself
NO_RETRIES = Backoff(attempts=1, rate_attempts=1)


def connector_for(
    emulator: GoogleEmulator,
    *,
    sleep: RecordedSleep | None = None,
    scopes: frozenset[str] | None = None,
    **options: Any,
) -> GoogleConnector:
    info = emulator.service_account(key=KEY, scopes=scopes if scopes is not None else KINDLY_SCOPES)
    # google-auth ships without annotations on this constructor
    credentials = service_account.Credentials.from_service_account_info(info)  # type: ignore[no-untyped-call]
    options.setdefault("backoff", Backoff(attempts=6, base=0.5, cap=30.0))
    return GoogleConnector(
        credentials, api_endpoint=emulator.base_url, sleep=sleep or RecordedSleep(), **options
    )

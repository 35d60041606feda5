"""What a test steers and reads: the app registration, faults, the request log, peak concurrency."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: every application permission the emulator knows (Microsoft's names)
ALL_ROLES = frozenset(
    {
        "Calendars.ReadBasic.All",
        "Calendars.Read",
        "Calendars.ReadWrite",
        "MailboxSettings.Read",
        "User.Read.All",
        "Mail.Send",
        "Mail.ReadBasic.All",
    }
)


@dataclass
class AppRegistration:
    """The one app the tenant knows: its credentials and granted application permissions."""

    tenant_id: str = "0c6f1e52-5b0e-4b8e-9d55-7a2f3c1b9e10"
    client_id: str = "6d1f0a3e-9c4b-4f7a-8e2d-1b5c9a7f3e21"
    client_secret: str = "emulator-secret"
    #: PEM of the certificate whose key may sign client assertions instead of the secret
    certificate_pem: str | None = None
    roles: frozenset[str] = ALL_ROLES


@dataclass
class Fault:
    """An injected failure for the next ``times`` requests that match ``kind`` and ``mailbox``."""

    status: int = 503
    kind: str | None = None
    mailbox: str | None = None
    times: int = 1
    #: sent as the Retry-After header as is (Microsoft sends whole seconds; tests send "0.05")
    retry_after: str | None = None
    #: carry out the request, then answer with the fault: a response lost on the way back
    after: bool = False

    def matches(self, kind: str, mailbox: str | None) -> bool:
        return (
            self.times > 0
            and (self.kind is None or self.kind == kind)
            and (self.mailbox is None or self.mailbox == mailbox)
        )

    def body(self) -> tuple[str, str]:
        if self.status == 429:
            return "TooManyRequests", "The request has been throttled. Retry after some time."
        if self.status == 504:
            return "GatewayTimeout", "The gateway did not receive a timely response."
        return "ServiceNotAvailable", "The service is temporarily unavailable. Try again later."


@dataclass
class Stall:
    """Holds every Graph request the emulator serves until released, so a test can have
    any number in flight at once without timing (``emulator.stall = Stall()``)."""

    arrived: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    released: threading.Event = field(default_factory=threading.Event)

    def hold(self) -> None:
        """Called by the emulator for each request it serves."""
        self.arrived.release()
        self.released.wait(timeout=30)

    def wait_for(self, count: int, timeout: float = 30) -> None:
        """Block until ``count`` more requests are held."""
        for _ in range(count):
            if not self.arrived.acquire(timeout=timeout):
                raise TimeoutError(f"fewer than {count} requests reached the emulator")

    def release(self) -> None:
        self.released.set()


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    method: str
    path: str
    #: the mailbox the request works on (lower-case email), None for tenant-wide calls
    mailbox: str | None
    #: calendarView, events.list, events.create, getSchedule, mailboxSettings, directReports,
    #: users, sendMail, sentItems, batch, token, discovery, openid
    kind: str
    status: int
    #: a part of a $batch (the batch itself is logged once, as kind "batch")
    batched: bool = False


@dataclass
class Recorder:
    """Thread-safe log, in-flight counters and the peak per mailbox."""

    log: list[LoggedRequest] = field(default_factory=list)
    in_flight: Counter[str] = field(default_factory=Counter)
    peak: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self, mailbox: str) -> int:
        with self.lock:
            self.in_flight[mailbox] += 1
            current = self.in_flight[mailbox]
            self.peak[mailbox] = max(self.peak[mailbox], current)
            return current

    def leave(self, mailbox: str) -> None:
        with self.lock:
            self.in_flight[mailbox] -= 1

    def record(self, entry: LoggedRequest) -> None:
        with self.lock:
            self.log.append(entry)

    def counts(self) -> dict[str, dict[str, int]]:
        """Requests per mailbox and kind: ``{"maria@…": {"calendarView": 3, …}}``;
        parts of a $batch count under their own kind with `` (in $batch)`` added."""
        table: dict[str, Counter[str]] = {}
        with self.lock:
            for entry in self.log:
                kind = entry.kind + (" (in $batch)" if entry.batched else "")
                table.setdefault(entry.mailbox or "-", Counter())[kind] += 1
        return {mailbox: dict(sorted(kinds.items())) for mailbox, kinds in sorted(table.items())}

    def summary(self) -> dict[str, Any]:
        with self.lock:
            peak = dict(sorted(self.peak.items()))
            trips = sum(1 for entry in self.log if not entry.batched)
        return {"requests": self.counts(), "round_trips": trips, "peak_concurrency": peak}

    def summary_json(self) -> str:
        return json.dumps(self.summary(), indent=2)

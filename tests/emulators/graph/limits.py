"""Microsoft Graph's published per-mailbox limits, as an emulator fault.

The emulator already refuses a fifth concurrent request per mailbox (its
``mailbox_concurrency``). :class:`PublishedLimits` adds the rate limits:
10,000 requests per 10 minutes per mailbox, and 30 messages per minute per
sender mailbox (Exchange Online). Append it to ``emulator.faults``: a request
over a limit is answered 429 with Retry-After and counted as a violation.
Both windows read ``Counters.clock`` (monotonic seconds), which a test pins.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.emulators.google.limits import SlidingWindow
from tests.emulators.graph.state import Fault

PER_MAILBOX_PER_10_MINUTES = 10_000
SENDS_PER_MINUTE = 30


@dataclass
class Counters:
    """Shared by every copy of the fault (the emulator replaces a fault each time it matches)."""

    clock: Callable[[], float] = time.monotonic
    #: seconds each limit counts over (Graph: ten minutes, a minute); tests shrink them
    request_window: float = 600.0
    send_window: float = 60.0
    requests: SlidingWindow = field(init=False)
    sends: SlidingWindow = field(init=False)
    violations: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.requests = SlidingWindow(self.request_window, self.clock)
        self.sends = SlidingWindow(self.send_window, self.clock)


@dataclass
class PublishedLimits(Fault):
    """Matches (and so answers 429) only a request over a published rate limit."""

    status: int = 429
    times: int = 1 << 62
    retry_after: str | None = "1"
    per_mailbox: int = PER_MAILBOX_PER_10_MINUTES
    sends_per_minute: int = SENDS_PER_MINUTE
    counters: Counters = field(default_factory=Counters)

    def matches(self, kind: str, mailbox: str | None) -> bool:
        if mailbox is None:
            return False
        counters = self.counters
        with counters.lock:
            over = counters.requests.add(mailbox) > self.per_mailbox
            if kind == "sendMail":
                over = counters.sends.add(mailbox) > self.sends_per_minute or over
            if over:
                counters.violations += 1
            return over

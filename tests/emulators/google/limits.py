"""Google Calendar's published request limits, as an emulator fault source.

Plugged in as the emulator's ``faults``: every API request (batched ones
included, as Google counts them) is counted per impersonated user and per
project in a sliding minute; a request over either limit is answered as Google
does (403 ``userRateLimitExceeded`` / ``rateLimitExceeded``) and counted as a
violation, so a client that respects the limits shows zero. Tests shrink the
``window`` (and the limits) so that pacing shows in a fraction of a second.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.emulators.google.faults import FaultKind, Faults

#: Calendar API: queries per minute per user, and per minute per project
PER_USER_PER_MINUTE = 600
PER_PROJECT_PER_MINUTE = 10_000


@dataclass
class SlidingWindow:
    """Events in the last ``span`` seconds, by key."""

    span: float
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, deque[float]] = field(default_factory=dict)

    def add(self, key: str) -> int:
        """Record one event now; returns how many there are in the window, this one included."""
        now = self.clock()
        seen = self._seen.setdefault(key, deque())
        while seen and seen[0] <= now - self.span:
            seen.popleft()
        seen.append(now)
        return len(seen)


@dataclass
class PublishedLimits(Faults):
    """Faults that answer only when a request goes over Google's published limits."""

    per_user: int = PER_USER_PER_MINUTE
    per_project: int = PER_PROJECT_PER_MINUTE
    violations: int = 0
    #: seconds the limits count over (Google: a minute)
    window: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _users: SlidingWindow = field(init=False, repr=False)
    _project: SlidingWindow = field(init=False, repr=False)
    _limit_lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._users = SlidingWindow(self.window, self.clock)
        self._project = SlidingWindow(self.window, self.clock)

    def draw(self, fingerprint: str) -> FaultKind | None:
        user = fingerprint.partition(" ")[0]
        with self._limit_lock:
            over_user = self._users.add(user) > self.per_user
            over_project = self._project.add("project") > self.per_project
            if over_user or over_project:
                self.violations += 1
                return "403-user-rate" if over_user else "403-rate"
        return super().draw(fingerprint)

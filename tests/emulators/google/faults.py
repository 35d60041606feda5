"""Faults a test switches on for one emulator: throttling, outages, latency.

Faults are drawn from a seeded generator so a run is reproducible, and one
request is never failed more than ``max_streak`` times in a row, so a client
that retries a few times always gets through: a storm, not an outage.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["429", "500", "503", "403-rate", "403-user-rate"]


@dataclass
class Faults:
    #: share of API requests (0..1) answered with one of ``kinds``
    rate: float = 0.0
    kinds: tuple[FaultKind, ...] = ("429",)
    #: seconds sent in Retry-After with a fault (None: no header)
    retry_after: float | None = None
    #: seconds added before every answer
    latency: float = 0.0
    #: a request already failed this many times in a row goes through
    max_streak: int = 2
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)
    _streaks: dict[str, int] = field(init=False, repr=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def draw(self, fingerprint: str) -> FaultKind | None:
        """The fault to answer this request with, if any."""
        if self.rate <= 0:
            return None
        with self._lock:
            streak = self._streaks.get(fingerprint, 0)
            if streak >= self.max_streak or self._rng.random() >= self.rate:
                self._streaks.pop(fingerprint, None)
                return None
            self._streaks[fingerprint] = streak + 1
            return self._rng.choice(self.kinds)

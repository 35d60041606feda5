"""Exponential backoff, the one formula behind provider retries and job retries."""

from __future__ import annotations


def exponential(attempt: int, *, base: float, cap: float) -> float:
    """Seconds to wait before retry ``attempt`` (from 1): base, 2×base, 4×base … at most cap."""
    return float(min(cap, base * 2 ** max(attempt - 1, 0)))


def equal_jitter(ceiling: float, rand: float) -> float:
    """Half of ``ceiling`` fixed, half random (``rand`` in [0, 1)): clients that failed
    together spread out, and none retries at once."""
    return ceiling / 2 + rand * ceiling / 2

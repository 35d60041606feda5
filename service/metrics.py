"""Kindly's Prometheus metrics, and the one-line hooks that record them.

The metrics live in prometheus-client's default registry (so the process and
Python collectors come along) and are served by :mod:`service.probes` at
``GET /metrics`` when ``KINDLY_METRICS__PORT`` is set. Recording is cheap and
thread-safe, so the hooks are called unconditionally: from the worker, the
connectors' pacing (Google's quota, Graph's throttling) and the SMTP send rate.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from service.errors import AuthFailed, ProviderUnavailable, RateLimited
from service.model import PlacedHold, Roster

# a ``*_created`` series beside every counter doubles a scrape and tells an admin nothing
disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream

DIGESTS = Counter(
    "kindly_digests",
    "Digest jobs by how they ended: sent, already_sent, failed, stale, already_settled, "
    "retry, retry_later, not_in_roster, error",
    ["outcome"],
)
HOLDS = Counter(
    "kindly_holds", "Holds by outcome: created, existing (already there), unplaced", ["outcome"]
)
JOBS_QUEUED = Gauge("kindly_jobs_queued", "Jobs waiting in the Redis queue (read at each scrape)")
JOBS_IN_PROGRESS = Gauge("kindly_jobs_in_progress", "Digest jobs running in this worker")
JOB_DURATION = Histogram(
    "kindly_job_duration_seconds",
    "Time one digest job took, whatever its outcome",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
PLANNER_RUNS = Counter(
    "kindly_planner_runs", "Planner runs: ok, or skipped with the reason", ["result"]
)
PLANNER_MANAGERS = Counter(
    "kindly_planner_managers",
    "Managers the planner looked at, by decision: enqueued, or skipped as not_due, "
    "settled (sent or failed for good) or gave_up",
    ["decision"],
)
PROVIDER_REQUESTS = Counter(
    "kindly_provider_requests",
    "Calendar provider calls by provider, kind and status "
    "(ok, rate_limited, unavailable, auth_failed, error)",
    ["provider", "kind", "status"],
)
WAITS = Counter(
    "kindly_wait_seconds",
    "Seconds spent waiting for provider quotas, throttling and send rates, by reason",
    ["reason"],
)
ROSTER_MANAGERS = Gauge("kindly_roster_managers", "Managers in the last roster loaded")
ROSTER_LOADED = Gauge(
    "kindly_roster_last_load_timestamp_seconds", "Unix time of the last roster that loaded"
)

#: the planner's actions (service.planner.Action values) as an admin reads them
_DECISIONS = {"enqueue": "enqueued", "wait": "not_due", "done": "settled", "give_up": "gave_up"}


def job_started() -> None:
    JOBS_IN_PROGRESS.inc()


def job_finished(outcome: str, seconds: float) -> None:
    JOBS_IN_PROGRESS.dec()
    DIGESTS.labels(outcome).inc()
    JOB_DURATION.observe(seconds)


def holds_placed(holds: Sequence[PlacedHold], unplaced: Sequence[str]) -> None:
    created = sum(hold.created for hold in holds)
    for outcome, count in (
        ("created", created),
        ("existing", len(holds) - created),
        ("unplaced", len(unplaced)),
    ):
        if count:
            HOLDS.labels(outcome).inc(count)


def planned(decisions: dict[str, int]) -> None:
    """One planner run: how many managers got each decision."""
    PLANNER_RUNS.labels("ok").inc()
    for action, count in decisions.items():
        PLANNER_MANAGERS.labels(_DECISIONS.get(action, action)).inc(count)


def planner_skipped(reason: str) -> None:
    PLANNER_RUNS.labels(reason).inc()


def waited(reason: str, seconds: float) -> None:
    """Time a quota, a throttling answer or the send rate made us wait."""
    if seconds > 0:
        WAITS.labels(reason).inc(seconds)


def roster_loaded(roster: Roster) -> None:
    ROSTER_MANAGERS.set(len(roster.managers))
    ROSTER_LOADED.set(time.time())


@contextmanager
def provider_request(provider: str, kind: str) -> Iterator[None]:
    """Counts one connector call by how it ended (the error is re-raised untouched)."""
    status = "ok"
    try:
        yield
    except RateLimited:
        status = "rate_limited"
        raise
    except ProviderUnavailable:
        status = "unavailable"
        raise
    except AuthFailed:
        status = "auth_failed"
        raise
    except BaseException:
        status = "error"
        raise
    finally:
        PROVIDER_REQUESTS.labels(provider, kind, status).inc()

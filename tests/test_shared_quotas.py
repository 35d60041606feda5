"""Quotas shared through Redis: separate clients together stay inside one provider quota.

Each "process" is a thread with its own event loop, its own connector and its own
Redis clients, against one emulator that enforces the limit over a real socket;
a Redis of the test's own holds the counts. Windows are a second or two, so the
pacing shows without waiting out a provider's minute.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from connectors.google_transport import Rates
from connectors.quota import Quota, SharedQuotas, connect
from service.errors import RateLimited
from tests.emulators.google import GoogleEmulator
from tests.emulators.google.limits import PublishedLimits
from tests.google_fixtures import NO_RETRIES, connector_for, running, write_org
from tests.own_redis import OwnRedis, free_port, own_redis

__all__ = ["own_redis"]  # the fixture, imported for its name

T = TypeVar("T")
USERS = ("maria@example.com", "dan@example.com", "sam@example.com", "noor@example.com")
#: the quota both clients are told; the emulator enforces the same one
QUOTA = 8
#: requests each client makes: together 2.5 times the quota
EACH = 10


def in_threads(count: int, work: Callable[[int], Awaitable[T]]) -> list[T]:
    """Run ``work(i)`` for each i in a thread of its own, each with its own event loop."""
    results: list[T | None] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            results[index] = asyncio.run(work(index))
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [r for r in results if r is not None]


@pytest.fixture
def google(tmp_path: Path) -> Iterator[GoogleEmulator]:
    with running(write_org(tmp_path / "org", {})) as emulator:
        yield emulator


def refused_of(
    google: GoogleEmulator,
    redis_url: str | None,
    *,
    rates: Rates,
    users: tuple[str, ...],
) -> int:
    """Two clients make ``EACH`` requests each at once; how many were refused as throttled."""

    async def client(_: int) -> int:
        quotas = SharedQuotas(redis_url) if redis_url else None
        connector = connector_for(google, rates=rates, backoff=NO_RETRIES, quotas=quotas)
        try:
            answers = await asyncio.gather(
                *(connector.timezone(users[i % len(users)]) for i in range(EACH)),
                return_exceptions=True,
            )
        finally:
            await connector.aclose()
        refused = [a for a in answers if isinstance(a, RateLimited)]
        assert [a for a in answers if isinstance(a, BaseException)] == refused
        return len(refused)

    return sum(in_threads(2, client))


class TestGoogle:
    """Two clients told Google's quota ask for no more than it, together."""

    @pytest.mark.parametrize(
        ("per_user", "per_project", "users"),
        [(1000, QUOTA, USERS), (QUOTA, 1000, USERS[:1])],
        ids=["per project", "per user"],
    )
    def test_two_clients_share_the_quota(
        self,
        google: GoogleEmulator,
        own_redis: OwnRedis,
        per_user: int,
        per_project: int,
        users: tuple[str, ...],
    ) -> None:
        limits = PublishedLimits(per_user=per_user, per_project=per_project, window=0.5)
        google.faults = limits
        rates = Rates(per_user=per_user, per_project=per_project, window=0.5, slack=0.5)
        refused = refused_of(google, own_redis.url, rates=rates, users=users)
        assert refused <= 0.01 * 2 * EACH
        assert limits.violations == refused

    def test_each_pacing_itself_goes_over(self, google: GoogleEmulator) -> None:
        """The control: the same two clients without Redis each take the whole quota."""
        limits = PublishedLimits(per_user=1000, per_project=QUOTA, window=0.5)
        google.faults = limits
        rates = Rates(per_user=1000, per_project=QUOTA, window=0.5, slack=0.5)
        refused = refused_of(google, None, rates=rates, users=USERS)
        assert refused >= QUOTA // 2


class TestConnect:
    """Without an answering Redis there is nothing to share: each process paces itself."""

    def test_no_redis_is_none(self) -> None:
        assert connect(f"redis://127.0.0.1:{free_port()}/0") is None
        assert connect(None) is None

    def test_an_answering_redis_is_shared(self, own_redis: OwnRedis) -> None:
        quotas = connect(own_redis.url)
        assert quotas is not None
        first = quotas.take(Quota(1, 2.0), "t", "a")
        assert (first, quotas.take(Quota(1, 2.0), "t", "b")) == (0.0, 0.0)
        assert 0 < quotas.take(Quota(1, 2.0), "t", "a") <= 2.0

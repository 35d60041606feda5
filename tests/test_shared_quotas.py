"""Quotas shared through Redis: separate clients together stay inside one provider quota.

Each "process" is a thread with its own event loop, its own connector and its own
Redis clients, against one emulator that enforces the limit over a real socket;
a Redis of the test's own holds the counts. Windows are a second or two, so the
pacing shows without waiting out a provider's minute.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import pytest

from connectors.google_transport import Rates, SharedRateLimiter
from connectors.graph_http import (
    MAILBOX_CONCURRENCY,
    MAILBOX_RATE,
    Credentials,
    GraphClient,
)
from connectors.mail.graph import GraphMailer, SendPace
from connectors.quota import (
    GATE_POLL_SECONDS,
    QUOTA_STEP,
    Pace,
    Quota,
    SendQuota,
    SharedQuotas,
    connect,
    quota_step,
)
from service.errors import DeliveryError, RateLimited
from service.ports import OutgoingMail
from tests.emulators.google import GoogleEmulator
from tests.emulators.google.limits import PublishedLimits
from tests.emulators.graph import GraphEmulator
from tests.emulators.graph.limits import Counters
from tests.emulators.graph.limits import PublishedLimits as GraphLimits
from tests.google_fixtures import NO_RETRIES, connector_for, running, write_org
from tests.graph_fixtures import trusted_bundle
from tests.own_redis import OwnRedis, free_port, own_redis

__all__ = ["own_redis"]  # the fixture, imported for its name

T = TypeVar("T")
USERS = ("maria@example.com", "dan@example.com", "sam@example.com", "noor@example.com")
#: the quota both clients are told; the emulator enforces the same one
QUOTA = 8
#: requests each client makes: together 2.5 times the quota
EACH = 10


def in_threads(count: int, work: Callable[[int], Coroutine[Any, Any, T]]) -> list[T]:
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


MARIA = "maria@example.com"
#: Monday of 2026-W48: the week the digests are for
NOW = datetime(2026, 11, 23, 7, tzinfo=UTC)


def graph_client(
    emulator: GraphEmulator, quotas: SharedQuotas | None, **options: Any
) -> GraphClient:
    """A Graph client of the emulator's app, its limits shared in ``quotas`` (or alone)."""
    app = emulator.app
    return GraphClient(
        Credentials(app.tenant_id, app.client_id, app.client_secret, emulator.origin),
        graph_endpoint=emulator.graph_endpoint,
        quotas=quotas,
        ca_bundle=trusted_bundle(),
        **options,
    )


def read_settings(graph: GraphClient) -> Coroutine[Any, Any, Any]:
    """One plain Graph call on Maria's mailbox."""
    return graph.call(
        "GET",
        f"/users/{MARIA}/mailboxSettings",
        mailbox=MARIA,
        what="read the settings",
        permission="MailboxSettings.Read",
    )


def graph_refused(
    emulator: GraphEmulator,
    redis_url: str | None,
    *,
    each: int = EACH,
    send: bool = False,
    mailbox_rate: Quota | None = None,
) -> int:
    """Two Graph clients call Maria's mailbox ``each`` times at once, or send as her;
    how many calls were refused as throttled."""

    async def client(_: int) -> int:
        quotas = SharedQuotas(redis_url) if redis_url else None
        graph = graph_client(
            emulator, quotas, max_attempts=1, mailbox_rate=mailbox_rate or MAILBOX_RATE
        )
        mailer = GraphMailer(graph, sender=MARIA, pace=send_pace(quotas), clock=lambda: NOW)
        calls = (
            (mailer.send(mail(f"<{uuid.uuid4().hex}@kindly.example.com>")) for _ in range(each))
            if send
            else (read_settings(graph) for _ in range(each))
        )
        try:
            answers = await asyncio.gather(*calls, return_exceptions=True)
        finally:
            await graph.aclose()
        refused = [a for a in answers if isinstance(a, (RateLimited, DeliveryError))]
        assert [a for a in answers if isinstance(a, BaseException)] == refused
        return len(refused)

    return sum(in_threads(2, client))


def send_pace(quotas: SharedQuotas | None) -> Pace:
    """``QUOTA`` sends in half a second: shared through Redis, or this client's alone."""
    if quotas is None:
        return SendPace(QUOTA, window=1.0)
    return SendQuota(quotas, MARIA, per_minute=QUOTA, window=0.5, slack=0.5)


def mail(message_id: str) -> OutgoingMail:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = MARIA, "olaf@example.com", "Your week"
    message["Message-ID"] = message_id
    message.set_content("Hello Olaf")
    return OutgoingMail("olaf@example.com", "2026-W48", message_id, message)


class TestGraph:
    """Two clients keep one mailbox's limits together: four in flight, its request budget,
    its sends a minute."""

    def test_four_in_flight_across_clients(
        self, emulator: GraphEmulator, own_redis: OwnRedis
    ) -> None:
        emulator.latency = 0.05
        assert graph_refused(emulator, own_redis.url) == 0
        assert emulator.peak[MARIA] == MAILBOX_CONCURRENCY

    def test_four_in_flight_each_goes_over(self, emulator: GraphEmulator) -> None:
        """The control: each client holding four of its own makes eight in flight (slow
        answers, so that the two overlap however late one starts on a busy machine)."""
        emulator.latency = 0.3
        assert graph_refused(emulator, None) > 0

    @pytest.mark.parametrize("redis", [True, False], ids=["shared", "each alone"])
    def test_request_budget(
        self, emulator: GraphEmulator, own_redis: OwnRedis, redis: bool
    ) -> None:
        limits = GraphLimits(per_mailbox=QUOTA, counters=Counters(request_window=0.5))
        emulator.faults.append(limits)
        budget = Quota(QUOTA, 1.0)
        refused = graph_refused(emulator, own_redis.url if redis else None, mailbox_rate=budget)
        assert limits.counters.violations == refused
        if redis:
            assert refused <= 0.01 * 2 * EACH
        else:  # alone, a client leaves the budget to Graph's 429s
            assert refused >= EACH

    @pytest.mark.parametrize("redis", [True, False], ids=["shared", "each alone"])
    def test_sends_per_sender(
        self, emulator: GraphEmulator, own_redis: OwnRedis, redis: bool
    ) -> None:
        counters = Counters(send_window=0.5)
        limits = GraphLimits(sends_per_minute=QUOTA, per_mailbox=10_000, counters=counters)
        emulator.faults.append(limits)
        failed = graph_refused(emulator, own_redis.url if redis else None, send=True)
        if redis:
            assert counters.violations <= 0.01 * 2 * EACH
            assert (failed, len(emulator.sent)) == (0, 2 * EACH)
        else:  # refused sends are retried, and refused again
            assert counters.violations >= QUOTA // 2


class TestGraphBudgetSteps:
    """A mailbox's budget is counted in Redis a step at a time and spent in the process: a
    manager's handful of calls cost one round trip, and no more than a step less one of the
    budget is ever counted but not sent."""

    @pytest.mark.parametrize(
        ("limit", "step"), [(10_000, QUOTA_STEP), (1_000, 10), (300, 3), (99, 1), (8, 1)]
    )
    def test_steps_are_a_small_share(self, limit: int, step: int) -> None:
        assert quota_step(Quota(limit, 601.0)) == step

    def test_seven_calls_count_one_step(self, emulator: GraphEmulator, own_redis: OwnRedis) -> None:
        app, quotas = emulator.app, SharedQuotas(own_redis.url)
        graph = graph_client(emulator, quotas)

        def counted() -> int:
            item = MAILBOX_RATE.item()
            stats = quotas._sync.get_window_stats(item, "graph", app.tenant_id, MARIA)
            return MAILBOX_RATE.limit - stats.remaining

        async def calls(count: int) -> None:
            for _ in range(count):
                await read_settings(graph)

        async def run() -> list[int]:
            try:
                await calls(7)
                first = counted()
                await calls(QUOTA_STEP - 7 + 1)  # one past the step takes the next
                return [first, counted()]
            finally:
                await graph.aclose()

        assert asyncio.run(run()) == [QUOTA_STEP, 2 * QUOTA_STEP]
        assert emulator.count("mailboxSettings", MARIA) == QUOTA_STEP + 1


class TestGraphGateWaiters:
    """While the gate shared with other processes is full, one request of this process asks
    Redis again every few milliseconds, not each of its four: the others wait in line here."""

    HELD = 0.3  # seconds another process holds all four slots

    def test_one_request_polls(self, emulator: GraphEmulator, own_redis: OwnRedis) -> None:
        app, quotas = emulator.app, SharedQuotas(own_redis.url)
        graph = graph_client(emulator, quotas)
        other = SharedQuotas(own_redis.url)  # another process, holding the mailbox's four
        key = f"graph:{app.tenant_id}:{MARIA}"

        async def hold() -> None:
            async with other.gate(key, size=MAILBOX_CONCURRENCY, slots=MAILBOX_CONCURRENCY):
                await asyncio.sleep(self.HELD)

        async def run() -> None:
            try:
                holder = asyncio.create_task(hold())
                await asyncio.sleep(0.05)  # the other process holds its slots first
                await asyncio.gather(*(read_settings(graph) for _ in range(MAILBOX_CONCURRENCY)))
                await holder
            finally:
                await graph.aclose()
                await other.aclose()

        before = evals(own_redis)
        asyncio.run(run())
        # one poller asks at most once per GATE_POLL_SECONDS while the slots are held (60 in
        # 0.3 s), plus each request's entry; four pollers would ask about four times as often
        assert evals(own_redis) - before <= 1.5 * self.HELD / GATE_POLL_SECONDS
        assert emulator.count("mailboxSettings", MARIA) == MAILBOX_CONCURRENCY


def evals(server: OwnRedis) -> int:
    """Lua scripts the Redis has run so far (the gate's entries are one each)."""
    stats = server.client().info("commandstats")
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("eval", "evalsha")
    )


class TestRedisGoesAway:
    """A Redis that stops answering mid-run leaves each process pacing itself, not failing."""

    def test_google(self, own_redis: OwnRedis) -> None:
        limiter = SharedRateLimiter(Rates(), SharedQuotas(own_redis.url, timeout=1), project="p")
        limiter.acquire("maria@example.com")
        own_redis.stop()
        # the slots counted in the first step are spent first, then Redis is asked again
        for _ in range(quota_step(Quota(Rates().per_user, 61.0))):
            limiter.acquire("maria@example.com")
        assert limiter.local is not None

    async def test_graph(self, emulator: GraphEmulator, own_redis: OwnRedis) -> None:
        quotas = SharedQuotas(own_redis.url, timeout=1)
        graph = graph_client(emulator, quotas)
        pace = SendQuota(quotas, MARIA, per_minute=QUOTA, fallback=SendPace(QUOTA))
        mailer = GraphMailer(graph, sender=MARIA, pace=pace, clock=lambda: NOW)
        assert (await mailer.send(mail("<one@kindly.example.com>"))).sent
        own_redis.stop()
        assert (await mailer.send(mail("<two@kindly.example.com>"))).sent
        await graph.aclose()
        assert graph.quotas is None
        assert len(emulator.sent) == 2

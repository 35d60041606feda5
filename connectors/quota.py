"""Provider quotas counted in Redis, so that every Kindly process shares them.

Google's quotas are per Cloud project and per user, Graph's per mailbox: a
count kept by each process lets N workers ask N times the quota. Rates are
the ``limits`` library's moving window (a list of timestamps per key in
Redis, checked and pushed by one Lua script; its sync API for the worker
threads that send Google requests, its async API on the event loop). Graph's
four requests in flight per mailbox are a lease-based semaphore of our own
(``limits`` counts rates, not concurrency): a sorted set of holders scored by
when their lease ends, so a crashed process's slots free themselves.

Timestamps are each host's wall clock (``limits`` stamps entries with
``time.time()``): hosts sharing one Redis keep their clocks in sync (NTP).
:func:`connect` answers None when Redis does not answer; the connectors then
pace each process on its own, as a single process needs. A Redis that fails
later raises :class:`QuotaUnavailable`, for the caller to fall back the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import redis
import redis.asyncio
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage as AsyncRedisStorage
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindow
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from service import metrics
from service.ledger import eval_script

log = logging.getLogger("kindly.quota")
PREFIX = "kindly:quota"
#: how long a shared in-flight slot is held at most: a request that outlives it (a
#: crashed process, a hung socket past every timeout) no longer blocks the mailbox
LEASE_SECONDS = 120.0
#: how often a full shared gate is asked again (waiters in this process queue locally)
GATE_POLL_SECONDS = 0.005
#: a Redis that takes longer than this to answer counts as not answering
PROBE_TIMEOUT = 0.5
#: the most slots of a quota counted in Redis at once (:func:`quota_step`)
QUOTA_STEP = 16

# KEYS[1]: the holders of a gate, scored by the end of their lease (Redis' own clock, ms).
# ARGV: size, slots wanted, lease ms, holder token. Returns 1 when the slots were taken.
_ENTER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local wanted = tonumber(ARGV[2])
if redis.call('ZCARD', KEYS[1]) + wanted > tonumber(ARGV[1]) then
  return 0
end
for i = 1, wanted do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4] .. ':' .. i)
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""


class QuotaUnavailable(Exception):
    """Redis stopped answering while a quota was being counted there."""


@dataclass(frozen=True, slots=True)
class Quota:
    """``limit`` requests in any ``seconds``; the window is whole seconds in Redis."""

    limit: int
    seconds: float

    def item(self) -> RateLimitItem:
        return RateLimitItemPerSecond(self.limit, max(1, math.ceil(self.seconds)))


def quota_step(quota: Quota) -> int:
    """Slots counted at once in ``quota``: :data:`QUOTA_STEP`, or one at a time for a
    quota so small that a step would be a noticeable share of it."""
    return max(1, min(QUOTA_STEP, quota.limit // 100))


class SharedQuotas:
    """Moving windows and in-flight gates in one Redis, for every Kindly process."""

    def __init__(self, url: str, *, prefix: str = PREFIX, timeout: float = 5.0) -> None:
        self.url = url
        self.prefix = prefix
        self._sync = MovingWindowRateLimiter(
            RedisStorage(
                url,
                key_prefix=prefix,
                wrap_exceptions=True,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
            )
        )
        self._async = AsyncMovingWindow(
            AsyncRedisStorage(
                "async+" + url,
                implementation="redispy",
                key_prefix=prefix,
                wrap_exceptions=True,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
            )
        )
        self._timeout = timeout
        self._redis: redis.asyncio.Redis | None = None

    def take(self, quota: Quota, *key: str, cost: int = 1) -> float:
        """Take ``cost`` slots now and return 0, or return the seconds until they may be."""
        item = quota.item()
        try:
            if self._sync.hit(item, *key, cost=cost):
                return 0.0
            reset = self._sync.get_window_stats(item, *key).reset_time
        except StorageError as exc:
            raise QuotaUnavailable(f"{self.url}: {exc.storage_error}") from None
        return max(reset - time.time(), GATE_POLL_SECONDS)

    async def take_async(self, quota: Quota, *key: str, cost: int = 1) -> float:
        """:meth:`take` for callers on the event loop."""
        item = quota.item()
        try:
            if await self._async.hit(item, *key, cost=cost):
                return 0.0
            reset = (await self._async.get_window_stats(item, *key)).reset_time
        except StorageError as exc:
            raise QuotaUnavailable(f"{self.url}: {exc.storage_error}") from None
        return max(reset - time.time(), GATE_POLL_SECONDS)

    def acquire(
        self,
        quota: Quota,
        *key: str,
        reason: str,
        sleep: Callable[[float], None] = time.sleep,
        cost: int = 1,
    ) -> None:
        """Block until ``cost`` slots of ``quota`` for ``key`` are taken (another process
        may take freed ones first: then wait again)."""
        while (wait := self.take(quota, *key, cost=cost)) > 0:
            metrics.waited(reason, wait)
            sleep(wait)

    async def acquire_async(self, quota: Quota, *key: str, reason: str, cost: int = 1) -> None:
        """:meth:`acquire` for callers on the event loop."""
        while (wait := await self.take_async(quota, *key, cost=cost)) > 0:
            metrics.waited(reason, wait)
            await asyncio.sleep(wait)

    @asynccontextmanager
    async def gate(self, key: str, *, size: int, slots: int = 1) -> AsyncIterator[None]:
        """Hold ``slots`` of the ``size`` in flight allowed for ``key``, across processes."""
        client = self._client()
        name = f"{self.prefix}:inflight:{key}"
        token = uuid.uuid4().hex
        lease = int(LEASE_SECONDS * 1000)
        try:
            # polled: the holders are other processes, no event of ours can say a slot is free
            while not await eval_script(client, _ENTER, name, size, slots, lease, token):  # noqa: ASYNC110
                await asyncio.sleep(GATE_POLL_SECONDS)
        except redis.RedisError as exc:
            raise QuotaUnavailable(f"{self.url}: {exc}") from None
        try:
            yield
        finally:
            holders = [f"{token}:{i}" for i in range(1, slots + 1)]
            with contextlib.suppress(redis.RedisError):  # else the lease frees them
                await client.zrem(name, *holders)

    def _client(self) -> redis.asyncio.Redis:
        if self._redis is None:
            self._redis = redis.asyncio.Redis.from_url(
                self.url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout
            )
        return self._redis

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


class Steps:
    """A quota counted in Redis a step at a time (:func:`quota_step`) and spent by this
    process's threads: a manager's handful of requests then cost one round trip, not
    one each.

    A slot counted in a step is spent at most ``spend`` seconds after it was counted,
    and the window is counted over that much longer (``quota`` is widened by it), so
    a slot spent late still falls in the window it was counted in. Slots a process
    counted but did not spend in time are lost to everyone for one window: at most a
    step less one per key.
    """

    def __init__(
        self,
        quotas: SharedQuotas,
        quota: Quota,
        *,
        reason: str,
        spend: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quotas, self.reason, self._clock = quotas, reason, clock
        self.step = quota_step(quota)
        self.spend = spend if self.step > 1 else 0.0
        self.quota = Quota(quota.limit, quota.seconds + self.spend)
        self._lock = threading.Lock()
        #: by key: slots counted and not yet spent, and until when they may be
        self._left: dict[tuple[str, ...], tuple[int, float]] = {}

    def acquire(self, *key: str) -> None:
        """Block until a slot for ``key`` is counted; :class:`QuotaUnavailable` if Redis
        stops answering (the slots counted before are spent, then it is asked again)."""
        with self._lock:
            now = self._clock()
            self._forget(now)
            left, until = self._left.get(key, (0, 0.0))
            if left and now < until:
                self._spent(key, left - 1, until)
                return
        counted = self._clock()  # before Redis stamps them: they are spent in time
        self.quotas.acquire(self.quota, *key, reason=self.reason, cost=self.step)
        if self.step > 1:
            with self._lock:
                self._left.pop(key, None)  # to the back: the order is the order counted
                self._left[key] = (self.step - 1, counted + self.spend)

    def _spent(self, key: tuple[str, ...], left: int, until: float) -> None:
        if left:
            self._left[key] = (left, until)
        else:
            del self._left[key]

    def _forget(self, now: float) -> None:
        """Drop keys whose slots are too old to spend, oldest counted first (each key
        keeps the place it was counted at), so memory follows the keys of one moment."""
        while self._left:
            key = next(iter(self._left))
            if self._left[key][1] > now:
                return
            del self._left[key]


def answers(url: str | None) -> bool:
    """Whether the Redis at ``url`` answers a ping within :data:`PROBE_TIMEOUT`."""
    if not url:
        return False
    probe = redis.Redis.from_url(
        url, socket_timeout=PROBE_TIMEOUT, socket_connect_timeout=PROBE_TIMEOUT
    )
    try:
        probe.ping()
    except (redis.RedisError, OSError, ValueError):
        return False
    finally:
        probe.close()
    return True


def connect(url: str | None, *, prefix: str = PREFIX) -> SharedQuotas | None:
    """Quotas shared through the Redis at ``url``, or None when it does not answer."""
    if not url or not answers(url):
        return None
    return SharedQuotas(url, prefix=prefix)


class Pace(Protocol):
    """Turns for sends from one sender mailbox."""

    def turn(self) -> AbstractAsyncContextManager[None]:
        """Wait for a free send slot and hold it while the send inside runs."""
        ...


class SendQuota:
    """At most ``per_minute`` messages from one sender mailbox in any minute, counted in
    Redis for every process and both mail backends (SMTP and Graph's sendMail).

    The window is ``window + slack``: the provider counts a message when it arrives, a
    moment after its slot was taken. If Redis stops answering, ``fallback`` (this
    process's own pacing) takes over; without one the error is raised.
    """

    def __init__(
        self,
        quotas: SharedQuotas,
        sender: str,
        *,
        per_minute: int,
        window: float = 60.0,
        slack: float = 1.0,
        fallback: Pace | None = None,
        reason: str = "send_rate",
    ) -> None:
        self.quotas = quotas
        self.reason = reason
        self.sender = sender.lower()
        self.per_minute = per_minute
        self.quota = Quota(per_minute, window + slack)
        self.fallback = fallback
        self._shared = True

    async def try_acquire(self) -> float:
        """0 when a send may start now, else the seconds until one may."""
        return await self.quotas.take_async(self.quota, "send", self.sender)

    async def acquire(self) -> None:
        """Wait for a free slot (another process may take the next one first)."""
        await self.quotas.acquire_async(self.quota, "send", self.sender, reason=self.reason)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if self._shared or self.fallback is None:
            try:
                await self.acquire()
            except QuotaUnavailable as exc:
                if self.fallback is None:
                    raise
                log.warning("sends no longer paced through Redis (%s); this process paces", exc)
                self._shared = False
            else:
                yield
                return
        async with self.fallback.turn():
            yield

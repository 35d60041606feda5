"""What every worker shares through Redis: the digest ledger, the hold ledger, the limits.

A side effect (an email, a hold) is bracketed by ledger writes: an *intent*
before it and the *result* after it, so a job retried after a crash resumes
where it stopped. A write that follows a side effect is retried until Redis
answers again (a digest delivered during an outage must never be sent twice);
every other ledger call fails fast with :class:`LedgerUnavailable` (transient),
so the job is retried later.

Keys (all under ``kindly:``, each expiring three weeks after its last write)::

    kindly:digest:<week>:<manager>    hash: state, message_id, reason
    kindly:sending:<week>:<manager>   lease of the one process sending that digest
    kindly:attempts:<week>:<manager>  runs started for that digest (crashes included)
    kindly:holds:<week>:<manager>     hash: report -> "start/end" of each hold placed
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar, cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.errors import LedgerUnavailable
from service.model import HoldKey, PlacedHold

log = logging.getLogger("kindly.ledger")
T = TypeVar("T")
PREFIX = "kindly:"
#: how long ledger entries outlive their week (status, audits, late retries)
TTL_SECONDS = 21 * 24 * 3600
#: Redis errors that mean "not answering right now", as opposed to a bad command
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class DigestState(StrEnum):
    PENDING = "pending"
    #: intent recorded, result not (yet): delivery may or may not have happened
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DigestRecord:
    manager: str
    week: str
    state: DigestState = DigestState.PENDING
    message_id: str | None = None
    reason: str | None = None

    @property
    def settled(self) -> bool:
        """Sent or failed for good: nothing more to do this week."""
        return self.state in (DigestState.SENT, DigestState.FAILED)


# Sets a state unless the digest is already sent (sent is final, whoever comes later).
_SET_STATE = """
if redis.call('HGET', KEYS[1], 'state') == 'sent' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'reason', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'message_id', ARGV[3]) end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""
# Deletes the sending lease only when it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLedger:
    """The digest and hold ledgers; implements the pipeline's ``HoldLedger``."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = PREFIX,
        retry_delay: float = 0.2,
        max_delay: float = 5.0,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.retry_delay = retry_delay
        self.max_delay = max_delay

    # keys

    def digest_key(self, manager: str, week: str) -> str:
        return f"{self.prefix}digest:{week}:{manager.lower()}"

    def _lease_key(self, manager: str, week: str) -> str:
        return f"{self.prefix}sending:{week}:{manager.lower()}"

    def _attempts_key(self, manager: str, week: str) -> str:
        return f"{self.prefix}attempts:{week}:{manager.lower()}"

    def _holds_key(self, manager: str, week: str) -> str:
        return f"{self.prefix}holds:{week}:{manager.lower()}"

    # digests

    async def digest(self, manager: str, week: str) -> DigestRecord:
        (record,) = await self.digests([(manager, week)])
        return record

    async def digests(self, wanted: Sequence[tuple[str, str]]) -> list[DigestRecord]:
        """The records of many (manager, week) pairs in one round trip."""

        async def read() -> list[dict[str, str]]:
            async with self.redis.pipeline(transaction=False) as pipe:
                for manager, week in wanted:
                    pipe.hgetall(self.digest_key(manager, week))
                return [_text_map(raw) for raw in await pipe.execute()]

        rows = await self._fast(read)
        return [_record(m, w, row) for (m, w), row in zip(wanted, rows, strict=True)]

    async def attempts(self, wanted: Sequence[tuple[str, str]]) -> list[int]:
        async def read() -> list[int]:
            async with self.redis.pipeline(transaction=False) as pipe:
                for manager, week in wanted:
                    pipe.get(self._attempts_key(manager, week))
                return [int(v or 0) for v in await pipe.execute()]

        return await self._fast(read)

    async def count_attempt(self, manager: str, week: str) -> int:
        """One more run of this digest started; returns how many have."""

        async def incr() -> int:
            key = self._attempts_key(manager, week)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, TTL_SECONDS)
                count, _ = await pipe.execute()
            return int(count)

        return await self._fast(incr)

    async def begin_send(
        self, manager: str, week: str, message_id: str, *, token: str, lease_seconds: float
    ) -> bool:
        """Record the intent and take the sending lease; False while another process holds it."""

        async def claim() -> bool:
            lease = self._lease_key(manager, week)
            taken = await self.redis.set(lease, token, nx=True, px=int(lease_seconds * 1000))
            if not taken:
                return False
            await self._set_state(manager, week, DigestState.SENDING, "", message_id)
            return True

        return await self._fast(claim)

    async def end_send(self, manager: str, week: str, *, token: str) -> None:
        """Hand the lease back early (a failed attempt); it expires on its own otherwise."""
        lease = self._lease_key(manager, week)
        await self._fast(lambda: eval_script(self.redis, _RELEASE, lease, token))

    async def record_sent(self, manager: str, week: str, message_id: str) -> None:
        """The digest went out: retried until Redis answers, so it is never sent again."""

        async def write() -> None:
            key = self.digest_key(manager, week)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping={"state": "sent", "message_id": message_id, "reason": ""})
                pipe.expire(key, TTL_SECONDS)
                await pipe.execute()

        await self._durably(write)

    async def record_failed(self, manager: str, week: str, reason: str) -> None:
        """Failed for good this week: shown by ``kindly status``, not retried."""
        await self._fast(lambda: self._set_state(manager, week, DigestState.FAILED, reason, ""))

    async def record_pending(self, manager: str, week: str, reason: str) -> None:
        """Still to do, with why the last try did not finish (a transient problem)."""
        await self._fast(lambda: self._set_state(manager, week, DigestState.PENDING, reason, ""))

    async def note_ambiguous(self, manager: str, week: str, reason: str) -> None:
        """The server may or may not have the message (connection lost after the data)."""
        await self._fast(lambda: self._set_state(manager, week, DigestState.SENDING, reason, ""))

    async def _set_state(
        self, manager: str, week: str, state: DigestState, reason: str, message_id: str
    ) -> None:
        key = self.digest_key(manager, week)
        await eval_script(self.redis, _SET_STATE, key, state.value, reason, message_id, TTL_SECONDS)

    # holds (the pipeline's HoldLedger)

    async def was_placed(self, key: HoldKey) -> bool:
        holds = self._holds_key(key.manager, key.week)
        found = await self._fast(
            lambda: cast(Awaitable[bool], self.redis.hexists(holds, key.report.lower()))
        )
        return bool(found)

    async def record_placed(self, hold: PlacedHold) -> None:
        """Follows the provider call that placed the hold, so it waits for Redis if need be."""
        key = hold.key
        holds = self._holds_key(key.manager, key.week)
        span = f"{hold.start.isoformat()}/{hold.end.isoformat()}"

        async def write() -> None:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(holds, key.report.lower(), span)
                pipe.expire(holds, TTL_SECONDS)
                await pipe.execute()

        await self._durably(write)

    # the roster the workers keep

    async def note_roster_kept(self, problem: str | None) -> None:
        """Why a worker keeps its last good roster (``kindly status`` says so), or None once
        a new roster loads again."""
        key = f"{self.prefix}roster:kept"
        if problem is None:
            await self._fast(lambda: cast(Awaitable[int], self.redis.delete(key)))
        else:
            await self._fast(
                lambda: cast(Awaitable[bool], self.redis.set(key, problem, ex=TTL_SECONDS))
            )

    async def roster_kept(self) -> str | None:
        key = f"{self.prefix}roster:kept"
        found = await self._fast(lambda: cast(Awaitable[bytes | None], self.redis.get(key)))
        return found.decode() if found is not None else None

    # the two ways of talking to Redis

    async def _fast(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except UNREACHABLE as exc:
            raise LedgerUnavailable(
                f"Redis is not answering ({type(exc).__name__}); check KINDLY_REDIS_URL "
                "and that Redis is running — the work is retried"
            ) from None
        except RedisError as exc:
            raise LedgerUnavailable(f"Redis refused a ledger call: {exc}") from None

    async def _durably(self, write: Callable[[], Awaitable[None]]) -> None:
        delay = self.retry_delay
        warned = False
        while True:
            try:
                await write()
            except (*UNREACHABLE, RedisError) as exc:
                if not warned:
                    log.warning(
                        "ledger write waits for Redis (%s); retrying until it answers",
                        type(exc).__name__,
                    )
                    warned = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay)
            else:
                if warned:
                    log.info("ledger write went through after Redis came back")
                return


async def eval_script(redis: Redis, script: str, key: str, *args: str | int) -> Any:
    """Run a Lua script on one key by its digest, sending its text only to a Redis that does
    not have it yet (a restarted one): the gate's script runs a few times a request."""
    values = [str(a) for a in args]
    try:
        return await cast(Awaitable[Any], redis.evalsha(_digest(script), 1, key, *values))
    except NoScriptError:
        return await cast(Awaitable[Any], redis.eval(script, 1, key, *values))


@functools.cache
def _digest(script: str) -> str:
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _text_map(raw: dict[bytes | str, bytes | str]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


def _record(manager: str, week: str, row: dict[str, str]) -> DigestRecord:
    if not row:
        return DigestRecord(manager.lower(), week)
    return DigestRecord(
        manager.lower(),
        week,
        state=DigestState(row.get("state", "pending")),
        message_id=row.get("message_id") or None,
        reason=row.get("reason") or None,
    )

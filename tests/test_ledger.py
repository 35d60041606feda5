"""The Redis ledger, against the real Redis on 127.0.0.1:6379 (keys under a per-test prefix)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from service.errors import KindlyError, LedgerUnavailable
from service.ledger import _SET_STATE, DigestState, RedisLedger, _digest
from service.model import HoldKey, PlacedHold
from service.settings import load_settings
from tests.own_redis import OwnRedis, own_redis

__all__ = ["own_redis"]  # the fixture, imported so pytest finds it
REDIS_URL = "redis://127.0.0.1:6379/0"
WEEK = "2026-W48"


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def ledger(redis: Redis) -> AsyncIterator[RedisLedger]:
    prefix = f"kindly-test-{uuid.uuid4().hex[:8]}:"
    yield RedisLedger(redis, prefix=prefix)
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)


def _hold(report: str = "sam@example.com") -> PlacedHold:
    start = datetime(2026, 11, 24, 9, tzinfo=UTC)
    return PlacedHold(HoldKey("maria@example.com", report, WEEK), start, start, created=True)


class TestDigestStates:
    """A digest moves pending → sending → sent, and sent is final whoever writes later."""

    async def test_unknown_digest_is_pending(self, ledger: RedisLedger) -> None:
        record = await ledger.digest("Maria@example.com", WEEK)
        assert (record.manager, record.state, record.settled) == (
            "maria@example.com",
            DigestState.PENDING,
            False,
        )

    async def test_intent_then_result(self, ledger: RedisLedger) -> None:
        assert await ledger.begin_send("m@x.org", WEEK, "<id@x>", token="t", lease_seconds=30)
        assert (await ledger.digest("m@x.org", WEEK)).state is DigestState.SENDING
        await ledger.record_sent("m@x.org", WEEK, "<id@x>")
        record = await ledger.digest("m@x.org", WEEK)
        assert (record.state, record.message_id, record.settled) == (
            DigestState.SENT,
            "<id@x>",
            True,
        )

    async def test_sent_is_not_overwritten_by_a_late_failure(self, ledger: RedisLedger) -> None:
        await ledger.record_sent("m@x.org", WEEK, "<id@x>")
        await ledger.record_failed("m@x.org", WEEK, "a late 550")
        await ledger.record_pending("m@x.org", WEEK, "a late 451")
        assert (await ledger.digest("m@x.org", WEEK)).state is DigestState.SENT

    async def test_failed_keeps_its_reason(self, ledger: RedisLedger) -> None:
        await ledger.record_failed("m@x.org", WEEK, "calendar not shared with Kindly")
        record = await ledger.digest("m@x.org", WEEK)
        assert (record.state, record.reason) == (
            DigestState.FAILED,
            "calendar not shared with Kindly",
        )

    async def test_many_records_in_one_call(self, ledger: RedisLedger) -> None:
        await ledger.record_sent("a@x.org", WEEK, "<a@x>")
        records = await ledger.digests([("a@x.org", WEEK), ("b@x.org", WEEK)])
        assert [r.state for r in records] == [DigestState.SENT, DigestState.PENDING]

    async def test_entries_expire(self, ledger: RedisLedger, redis: Redis) -> None:
        await ledger.record_sent("a@x.org", WEEK, "<a@x>")
        assert 0 < await redis.ttl(ledger.digest_key("a@x.org", WEEK)) <= 21 * 24 * 3600


class TestSendingLease:
    """Only one process at a time may be between intent and result for a digest."""

    async def test_second_claim_is_refused_until_released(self, ledger: RedisLedger) -> None:
        assert await ledger.begin_send("m@x.org", WEEK, "<i>", token="one", lease_seconds=30)
        assert not await ledger.begin_send("m@x.org", WEEK, "<i>", token="two", lease_seconds=30)
        await ledger.end_send("m@x.org", WEEK, token="two")  # not theirs: no effect
        assert not await ledger.begin_send("m@x.org", WEEK, "<i>", token="two", lease_seconds=30)
        await ledger.end_send("m@x.org", WEEK, token="one")
        assert await ledger.begin_send("m@x.org", WEEK, "<i>", token="two", lease_seconds=30)


class TestScripts:
    """Scripts run by their digest; a Redis that restarted without them is sent their text."""

    async def test_after_a_restart(self, own_redis: OwnRedis) -> None:
        before: Redis = Redis.from_url(own_redis.url)
        await RedisLedger(before, prefix="kindly-test:").record_failed("m@x.org", WEEK, "why")
        assert await before.script_exists(_digest(_SET_STATE)) == [True]
        await before.aclose()
        own_redis.stop()
        own_redis.start()
        client: Redis = Redis.from_url(own_redis.url)
        ledger = RedisLedger(client, prefix="kindly-test:")
        assert await client.script_exists(_digest(_SET_STATE)) == [False]
        await ledger.record_failed("n@x.org", WEEK, "why")
        assert (await ledger.digest("n@x.org", WEEK)).state is DigestState.FAILED
        assert await client.script_exists(_digest(_SET_STATE)) == [True]
        await client.aclose()


class TestAttempts:
    """Every started run counts, so a job that keeps crashing is noticed."""

    async def test_counting(self, ledger: RedisLedger) -> None:
        assert [await ledger.count_attempt("m@x.org", WEEK) for _ in range(3)] == [1, 2, 3]
        assert await ledger.attempts([("m@x.org", WEEK), ("n@x.org", WEEK)]) == [3, 0]


class TestHoldLedger:
    """A hold placed once this week is remembered, per (manager, report, week)."""

    async def test_placed_then_known(self, ledger: RedisLedger) -> None:
        hold = _hold()
        assert not await ledger.was_placed(hold.key)
        await ledger.record_placed(hold)
        assert await ledger.was_placed(hold.key)
        other = HoldKey("maria@example.com", "sam@example.com", "2026-W49")
        assert not await ledger.was_placed(other)


class TestRedisOutage:
    """Fast calls fail with a transient error; writes after a side effect wait for Redis."""

    async def test_fast_call_raises_transient(self) -> None:
        dead: Redis = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
        try:
            with pytest.raises(LedgerUnavailable) as caught:
                await RedisLedger(dead).digest("m@x.org", WEEK)
        finally:
            await dead.aclose()
        assert isinstance(caught.value, KindlyError)
        assert caught.value.transient
        assert "KINDLY_REDIS_URL" in str(caught.value)

    async def test_durable_write_retries_until_it_goes_through(
        self, ledger: RedisLedger, redis: Redis
    ) -> None:
        failures = iter([ConnectionError("down"), ConnectionError("still down")])
        calls: list[str] = []

        async def flaky() -> None:
            calls.append("try")
            error = next(failures, None)
            if error is not None:
                raise error
            await redis.set(f"{ledger.prefix}probe", "1")

        fast = RedisLedger(redis, prefix=ledger.prefix, retry_delay=0.0)
        await asyncio.wait_for(fast._durably(flaky), timeout=5)
        assert calls == ["try", "try", "try"]
        assert await redis.get(f"{ledger.prefix}probe") == b"1"


class TestLimits:
    """Worker tuning lives under KINDLY_WORKER__*; the old KINDLY_LIMITS__* names still work."""

    def test_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("KINDLY_LIMITS__SEND_PER_MINUTE", raising=False)
        assert load_settings().email.send_per_minute == 30

    @pytest.mark.parametrize(
        ("old", "value", "where"),
        [
            ("KINDLY_LIMITS__SEND_PER_MINUTE", "12", ("email", "send_per_minute")),
            ("KINDLY_LIMITS__STAGGER_SECONDS", "5", ("worker", "stagger_seconds")),
            ("KINDLY_LIMITS__MAX_ATTEMPTS", "7", ("worker", "max_attempts")),
        ],
    )
    def test_old_names_still_work(
        self, monkeypatch: pytest.MonkeyPatch, old: str, value: str, where: tuple[str, str]
    ) -> None:
        monkeypatch.setenv(old, value)
        section, field = where
        assert float(getattr(getattr(load_settings(), section), field)) == float(value)

    def test_old_and_new_name_together_is_an_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("KINDLY_LIMITS__STAGGER_SECONDS", "5")
        monkeypatch.setenv("KINDLY_WORKER__STAGGER_SECONDS", "6")
        with pytest.raises(KindlyError, match="keep only KINDLY_WORKER__STAGGER_SECONDS"):
            load_settings()

    def test_bad_value_names_the_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("KINDLY_LIMITS__SEND_PER_MINUTE", "0")
        with pytest.raises(KindlyError, match="KINDLY_LIMITS__SEND_PER_MINUTE"):
            load_settings()

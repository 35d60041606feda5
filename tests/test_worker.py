"""The arq worker end to end: the demo org, the real Redis (db 11), burst mode, pinned clocks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis

from service.clock import FixedClock
from service.ledger import DigestRecord, DigestState, RedisLedger
from service.planner import hashed, job_id
from service.settings import Settings
from service.worker import KindlyWorker, create_worker, plan
from tests.conftest import runner
from tests.smtpd import Fault, Recorder, SmtpServer, start_server

REDIS_URL = "redis://127.0.0.1:6379/11"
NOW_ISO = "2026-11-23T08:00:00+01:00"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MONDAY_0800_AMSTERDAM = datetime(2026, 11, 23, 7, tzinfo=UTC)
TUESDAY = datetime(2026, 11, 24, 15, tzinfo=UTC)
WEEK = "2026-W48"
ANOUK, DANIEL, PRIYA = "anouk@example.com", "daniel@example.com", "priya@example.com"
# arq 0.28 closes its pool with redis-py's deprecated close()
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")
#: no waiting between retries or before jobs, in tests
QUICK = {"retry_base_seconds": 0, "stagger_seconds": 0, "shutdown_grace_seconds": 0}


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(REDIS_URL)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def org(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES / "calendars", tmp_path / "calendars")
    shutil.copy(EXAMPLES / "roster.yaml", tmp_path / "roster.yaml")
    return tmp_path


@pytest.fixture
async def smtpd() -> AsyncIterator[SmtpServer]:
    server = await start_server(recorder=Recorder())
    yield server
    await server.close()


def _settings(org: Path, smtp: SmtpServer | None = None, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "roster_file": org / "roster.yaml",
        "ics": {"dir": org / "calendars", "holds_dir": org / "holds"},
        "email": {"outbox_dir": org / "outbox"},
        "redis_url": REDIS_URL,
        "worker": {"job_timeout": 20, "max_tries": 3, **QUICK},
    }
    if smtp is not None:
        values["email"] = {"backend": "smtp", "from": "kindly@example.org"}
        values["smtp"] = {"host": "127.0.0.1", "port": smtp.port, "starttls": False, "timeout": 5}
    worker = extra.pop("worker", {})
    values.update(extra)
    values["worker"] = {**values["worker"], **worker}
    return Settings(**values)


async def _burst(settings: Settings, now: datetime) -> int:
    worker = create_worker(settings, clock=FixedClock(now), burst=True, handle_signals=False)
    try:
        await worker.async_run()
    finally:
        await worker.close()
    return int(worker.jobs_complete)


async def _states(managers: list[str], week: str = WEEK) -> dict[str, DigestState]:
    client: Redis = Redis.from_url(REDIS_URL)
    try:
        records = await RedisLedger(client).digests([(m, week) for m in managers])
    finally:
        await client.aclose()
    return {r.manager: r.state for r in records}


async def _record(manager: str) -> DigestRecord:
    client: Redis = Redis.from_url(REDIS_URL)
    try:
        return await RedisLedger(client).digest(manager, WEEK)
    finally:
        await client.aclose()


def _outbox(org: Path) -> list[str]:
    return sorted(p.name for p in (org / "outbox").glob("*/*.eml"))


class TestSchedule:
    """Each manager's digest goes out once, after their own local digest hour."""

    async def test_only_due_managers_run(self, org: Path, redis: Redis) -> None:
        await _burst(_settings(org), MONDAY_0800_AMSTERDAM)
        assert _outbox(org) == [f"{ANOUK}.eml", f"{PRIYA}.eml"]  # 02:00 in New York: not yet
        assert await _states([ANOUK, DANIEL, PRIYA]) == {
            ANOUK: DigestState.SENT,
            DANIEL: DigestState.PENDING,
            PRIYA: DigestState.SENT,
        }

    async def test_second_run_sends_nothing_more(self, org: Path, redis: Redis) -> None:
        settings = _settings(org)
        assert await _burst(settings, MONDAY_0800_AMSTERDAM) == 2
        assert await _burst(settings, MONDAY_0800_AMSTERDAM) == 0
        assert len(_outbox(org)) == 2

    async def test_catch_up_after_downtime(self, org: Path, redis: Redis) -> None:
        """Started on Tuesday, the worker still sends Monday's digests, once each."""
        await _burst(_settings(org), TUESDAY)
        await _burst(_settings(org), TUESDAY)
        assert _outbox(org) == [f"{ANOUK}.eml", f"{DANIEL}.eml", f"{PRIYA}.eml"]
        holds = sorted(p.name for p in (org / "holds").glob("*.ics"))
        assert holds == [f"{ANOUK}.ics", f"{DANIEL}.ics", f"{PRIYA}.ics"]


class TestSmtpDelivery:
    """With the SMTP backend, transient replies are retried and 5xx ends in a recorded failure."""

    async def test_transient_then_sent_once(
        self, org: Path, redis: Redis, smtpd: SmtpServer
    ) -> None:
        smtpd.recorder.fail_data_times = 2
        await _burst(_settings(org, smtpd), MONDAY_0800_AMSTERDAM)
        ids = sorted(r.message_id for r in smtpd.received)
        assert len(ids) == len(set(ids)) == 2
        assert sorted(r.recipients[0] for r in smtpd.received) == [ANOUK, PRIYA]

    async def test_permanent_failure_is_recorded_not_retried(
        self, org: Path, redis: Redis, smtpd: SmtpServer
    ) -> None:
        smtpd.fault = Fault.DATA_5XX
        settings = _settings(org, smtpd)
        await _burst(settings, MONDAY_0800_AMSTERDAM)
        assert await _burst(settings, MONDAY_0800_AMSTERDAM) == 0  # nothing planned again
        record = await _record(ANOUK)
        assert record.state is DigestState.FAILED
        assert "554" in (record.reason or "")

    async def test_transient_past_max_tries_is_planned_again(
        self, org: Path, redis: Redis, smtpd: SmtpServer
    ) -> None:
        smtpd.fault = Fault.DATA_4XX
        settings = _settings(org, smtpd)
        await _burst(settings, MONDAY_0800_AMSTERDAM)
        assert await _states([ANOUK]) == {ANOUK: DigestState.PENDING}
        smtpd.fault = Fault.NONE
        await _burst(settings, MONDAY_0800_AMSTERDAM)
        assert await _states([ANOUK, PRIYA]) == {ANOUK: DigestState.SENT, PRIYA: DigestState.SENT}
        assert len(smtpd.received) == 2

    async def test_gives_up_after_max_attempts(
        self, org: Path, redis: Redis, smtpd: SmtpServer
    ) -> None:
        smtpd.fault = Fault.DATA_4XX
        settings = _settings(org, smtpd, worker={"max_tries": 1, "max_attempts": 2})
        for _ in range(3):
            await _burst(settings, MONDAY_0800_AMSTERDAM)
        record = await _record(ANOUK)
        assert record.state is DigestState.FAILED
        assert "gave up after 2 runs" in (record.reason or "")


class TestReconciler:
    """Jobs arq has given up on (too many crashes, expired) are planned again."""

    async def test_after_max_tries_of_crashes(self, org: Path, redis: Redis) -> None:
        settings = _settings(org, worker={"job_timeout": 20, "max_tries": 3})
        jid = job_id(ANOUK, WEEK)
        pool: ArqRedis = ArqRedis.from_url(REDIS_URL)
        try:
            await pool.enqueue_job(
                "digest", hashed(ANOUK), WEEK, _job_id=jid, _queue_name="kindly:queue"
            )
        finally:
            await pool.aclose()
        await redis.set(f"arq:retry:{jid}", 3)  # three runs started and died
        await _burst(settings, MONDAY_0800_AMSTERDAM)  # arq drops it: max tries exceeded
        assert await _states([ANOUK]) == {ANOUK: DigestState.PENDING}
        await _burst(settings, MONDAY_0800_AMSTERDAM)  # the next planner run queues it again
        assert await _states([ANOUK]) == {ANOUK: DigestState.SENT}

    async def test_after_expiry(self, org: Path, redis: Redis) -> None:
        jid = job_id(ANOUK, WEEK)
        await redis.zadd("kindly:queue", {jid: 1})  # queued, its job key expired by Redis
        await _burst(_settings(org), MONDAY_0800_AMSTERDAM)
        await _burst(_settings(org), MONDAY_0800_AMSTERDAM)
        assert f"{ANOUK}.eml" in _outbox(org)


class TestJobLog:
    """One structured line per job: hashed manager, week, outcome, duration, requests."""

    async def test_line(self, org: Path, redis: Redis, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.INFO)
        await _burst(_settings(org), MONDAY_0800_AMSTERDAM)
        lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "kindly.worker"]
        jobs = [line for line in lines if line["event"] == "job"]
        assert {j["manager"] for j in jobs} == {hashed(ANOUK), hashed(PRIYA)}
        assert {j["outcome"] for j in jobs} == {"sent"}
        assert all(j["week"] == WEEK and j["duration_ms"] >= 0 for j in jobs)
        assert all(j["requests"]["events"] == 1 for j in jobs)
        assert "example.com" not in caplog.text  # arq's own lines included


class TestRedisOutage:
    """A Redis error pauses the poll loop instead of ending the worker (arq's own loop ends)."""

    async def test_poll_survives(self, org: Path) -> None:
        worker = create_worker(_settings(org), burst=False, handle_signals=False)
        worker.redis_retry_seconds = 0
        dead: ArqRedis = ArqRedis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
        worker._pool = dead
        try:
            await worker._poll_iteration()  # no exception: it waits and polls again
            assert worker._redis_down_since is not None
        finally:
            await dead.aclose()


async def _until(done: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait for the running worker to get somewhere (it polls Redis every half second)."""
    for _ in range(400):
        if await done():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the worker never got there: {what}")


NEWCOMER = "noor@example.com"
NEWCOMER_ENTRY = f"""
  - email: {NEWCOMER}
    name: Noor Haddad
    timezone: Europe/Amsterdam
    reports:
      - email: omar@example.com
"""


class TestFollowsTheRoster:
    """A running worker reads the roster file again when it changes: no restart needed."""

    @pytest.fixture
    async def running(self, org: Path, redis: Redis) -> AsyncIterator[KindlyWorker]:
        settings = _settings(org, worker={"plan_every_seconds": 3600})  # the test plans itself
        worker = create_worker(
            settings, clock=FixedClock(MONDAY_0800_AMSTERDAM), handle_signals=False
        )
        task = asyncio.create_task(worker.async_run())
        await _until(lambda: _sent(ANOUK, PRIYA), "the first digests")
        try:
            yield worker
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await worker.close()

    async def test_a_manager_added_gets_a_digest(self, org: Path, running: KindlyWorker) -> None:
        shutil.copy(org / "calendars" / f"{ANOUK}.ics", org / "calendars" / f"{NEWCOMER}.ics")
        with (org / "roster.yaml").open("a", encoding="utf-8") as roster:
            roster.write(NEWCOMER_ENTRY)
        summary = await plan(running.ctx)
        assert summary.enqueued == 1
        await _until(lambda: _sent(NEWCOMER), "the newcomer's digest")
        assert _outbox(org) == [f"{ANOUK}.eml", f"{NEWCOMER}.eml", f"{PRIYA}.eml"]

    async def test_an_invalid_roster_keeps_the_last_good_one(
        self, org: Path, running: KindlyWorker, caplog: pytest.LogCaptureFixture
    ) -> None:
        (org / "roster.yaml").write_text("managers:\n  - email: not-an-address\n")
        summary = await plan(running.ctx)
        assert (summary.done, summary.due) == (2, 0)  # Anouk and Priya sent; Daniel not yet due
        [warning] = [r.getMessage() for r in caplog.records if "roster not reloaded" in r.message]
        assert "keeping the last good one (3 managers)" in warning
        assert "not-an-address" in warning
        caplog.clear()
        await plan(running.ctx)  # the same bad file is not reported again at every run
        assert not [r for r in caplog.records if "roster not reloaded" in r.message]

    async def test_kindly_status_says_the_last_good_roster_is_kept(
        self, org: Path, running: KindlyWorker
    ) -> None:
        good = (org / "roster.yaml").read_text(encoding="utf-8")
        (org / "roster.yaml").write_text("managers:\n  - email: not-an-address\n")
        await plan(running.ctx)
        env = {
            "KINDLY_ROSTER_FILE": str(org / "roster.yaml"),
            "KINDLY_ICS__DIR": str(org / "calendars"),
            "KINDLY_REDIS_URL": REDIS_URL,
        }
        shown = await asyncio.to_thread(runner(org), "status", "--now", NOW_ISO, env=env)
        [line] = [x for x in shown.stderr.splitlines() if x.startswith("kindly: roster: ")]
        assert "not-an-address" in line
        assert "keeps the last good roster (3 managers) until it is fixed" in line
        (org / "roster.yaml").write_text(good + "\n", encoding="utf-8")  # fixed: a new stamp
        await plan(running.ctx)
        shown = await asyncio.to_thread(runner(org), "status", "--now", NOW_ISO, env=env)
        assert shown.returncode == 0, shown.stderr
        assert "roster:" not in shown.stderr


async def _sent(*managers: str) -> bool:
    states = await _states(list(managers))
    return all(state is DigestState.SENT for state in states.values())


class TestOneUnreadableManager:
    """A manager whose zone cannot be looked up is failed with the reason; the others go on."""

    async def test_recorded_then_lifted_once_readable(self, org: Path, redis: Redis) -> None:
        roster = (org / "roster.yaml").read_text(encoding="utf-8")
        (org / "roster.yaml").write_text(roster.replace("    timezone: Asia/Kolkata\n", ""))
        calendar = org / "calendars" / f"{PRIYA}.ics"
        good = calendar.read_bytes()
        calendar.write_text("not a calendar\n")
        await _burst(_settings(org), MONDAY_0800_AMSTERDAM)
        assert _outbox(org) == [f"{ANOUK}.eml"]
        record = await _record(PRIYA)
        assert record.state is DigestState.FAILED
        assert f"{PRIYA}.ics: is not a valid iCalendar file" in (record.reason or "")

        calendar.write_bytes(good)  # fixed: the next planning run sends it after all
        await _burst(_settings(org), TUESDAY)
        assert await _states([PRIYA]) == {PRIYA: DigestState.SENT}

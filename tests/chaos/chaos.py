"""Chaos run of the worker: crashes, a Redis restart, transient faults, 25 hours of downtime.

    python -m tests.chaos.chaos                 # the full run (>= 200 managers, >= 20 kills)
    python -m tests.chaos.chaos --managers 12 --kills 3 --crash-times 0   # a quick one

Everything runs on this machine: a redis-server on its own port with
append-only persistence (fsync on every write), an aiosmtpd sink on port 0,
two worker processes (tests/chaos/worker_proc.py) and the demo org scaled up
from examples/. The run:

1. Monday 09:00 UTC (simulated): managers in Amsterdam, Kolkata, London and
   Tokyo are due, New York is not. Two workers run while this script SIGKILLs
   one at random moments and restarts it, and SIGKILLs and restarts Redis once.
   20 % of calendar calls and of SMTP replies fail transiently; one manager's
   job kills its worker the first ``--crash-times`` times it runs.
2. Once about half the due digests are out, every worker is killed. 25 hours
   pass: the clock jumps and the keys Redis would have expired in that time
   (queued jobs, retry counters, locks) are removed.
3. Tuesday 10:00 UTC: two workers start again (kills go on) until every manager
   — including New York's, due during the downtime — has a digest.

Two more managers can never be served: one whose calendar is no calendar, one
the provider answers 404 for. Each must be failed in the ledger, with no digest,
while every other manager gets exactly one.

Then it counts at the sink by Message-ID and in the calendars by hold UID and
prints the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import icalendar
import redis
import yaml

from service.model import HoldKey
from tests.own_redis import OwnRedis
from tests.smtpd import Recorder, SmtpServer, start_server

REPO = Path(__file__).resolve().parents[2]
ZONES = ("Europe/Amsterdam", "Asia/Kolkata", "UTC", "Asia/Tokyo", "America/New_York")
PHASE_A = datetime(2026, 11, 23, 9, tzinfo=UTC)
DOWNTIME = timedelta(hours=25)
WEEK = "2026-W48"
#: managers no run can serve: a calendar that is no calendar, a mailbox the provider lost
BROKEN_CALENDAR, MISSING = "broken-calendar@example.com", "gone@example.com"


@dataclass
class Config:
    managers: int = 200
    kills: int = 20
    fault_rate: float = 0.2
    crash_times: int = 6
    redis_restarts: int = 1
    deadline_seconds: float = 900.0
    seed: int = 1
    keep: bool = False


@dataclass
class Figures:
    managers: int = 0
    kills: int = 0
    redis_restarts: int = 0
    crashes: int = 0
    provider_faults: int = 0
    smtp_faults: int = 0
    deliveries: int = 0
    distinct_message_ids: int = 0
    managers_with_one_digest: int = 0
    duplicate_digests: int = 0
    lost_digests: int = 0
    failed_in_ledger: int = 0
    #: of the two managers no run can serve, those failed in the ledger without a digest
    unservable_failed: int = 0
    holds: int = 0
    distinct_holds: int = 0
    duplicate_holds: int = 0
    lost_holds: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def exactly_once(self) -> bool:
        return (
            self.managers_with_one_digest == self.managers
            and self.duplicate_digests == 0
            and self.lost_digests == 0
            and self.duplicate_holds == 0
            and self.lost_holds == 0
            and self.unservable_failed == 2
        )


# the scaled-up organisation


def scale_org(folder: Path, managers: int) -> list[str]:
    """``managers`` copies of the demo teams with their calendars; returns manager emails."""
    roster = yaml.safe_load((REPO / "examples" / "roster.yaml").read_text())
    calendars = REPO / "examples" / "calendars"
    (folder / "calendars").mkdir(parents=True)
    out: list[dict[str, Any]] = []
    for i in range(managers):
        template = roster["managers"][i % len(roster["managers"])]
        team = [template["email"], *(r["email"] for r in template["reports"])]
        renamed = {email: f"m{i:03d}-{email}" for email in team}
        manager = copy.deepcopy(template)
        manager["email"] = renamed[template["email"]]
        manager["timezone"] = ZONES[i % len(ZONES)]
        for report in manager["reports"]:
            report["email"] = renamed[report["email"]]
        out.append(manager)
        for email in team:
            source = calendars / f"{email}.ics"
            if source.exists():
                text = source.read_text(encoding="utf-8")
                for old, new in renamed.items():
                    text = re.sub(re.escape(old), new, text, flags=re.IGNORECASE)
                (folder / "calendars" / f"{renamed[email]}.ics").write_text(text, encoding="utf-8")
    for email in (BROKEN_CALENDAR, MISSING):  # no zone in the roster: it is looked up
        out.append({"email": email, "reports": [{"email": f"report-of-{email}"}]})
    (folder / "calendars" / f"{BROKEN_CALENDAR}.ics").write_text("not a calendar\n")
    (folder / "roster.yaml").write_text(yaml.safe_dump({"managers": out}, sort_keys=False))
    return [m["email"] for m in out[:managers]]


# the pieces this script runs


class Sink:
    """The aiosmtpd sink in a thread of its own, failing transiently at a rate."""

    def __init__(self, rate: float, seed: int) -> None:
        self.recorder = Recorder(transient_rate=rate, rng=random.Random(seed))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: SmtpServer | None = None

    def start(self) -> int:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(start_server(recorder=self.recorder), self.loop)
        self.server = future.result(timeout=10)
        return self.server.port

    def stop(self) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


class Workers:
    """Two worker processes whose clock starts at the simulated instant."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env = env
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes] | None] = [None, None]
        self.anchor = PHASE_A
        self.started = time.monotonic()

    def sim_now(self) -> datetime:
        return self.anchor + timedelta(seconds=time.monotonic() - self.started)

    def start(self, slot: int) -> None:
        log = (self.folder / f"worker-{slot}.log").open("ab")
        self.processes[slot] = subprocess.Popen(
            [sys.executable, "-m", "tests.chaos.worker_proc", self.sim_now().isoformat()],
            env=self.env,
            cwd=self.folder,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_all(self, anchor: datetime | None = None) -> None:
        if anchor is not None:
            self.anchor, self.started = anchor, time.monotonic()
        for slot in range(len(self.processes)):
            self.start(slot)

    def kill(self, slot: int) -> None:
        process = self.processes[slot]
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def kill_all(self) -> None:
        for slot in range(len(self.processes)):
            self.kill(slot)

    def revive(self) -> None:
        """Restart any worker that died (the crashing manager kills its own process)."""
        for slot, process in enumerate(self.processes):
            if process is not None and process.poll() is not None:
                self.start(slot)

    def stop(self) -> None:
        for process in self.processes:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            if process is not None:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


# reading the outcome


def sent_count(client: redis.Redis) -> int:
    try:
        keys = [_text(k) for k in client.scan_iter(match="kindly:digest:*", count=1000)]
        states = [_hget(client, key, "state") for key in keys]
    except redis.exceptions.RedisError:
        return -1
    return sum(state == b"sent" for state in states)


def _text(key: bytes | str) -> str:
    return key.decode() if isinstance(key, bytes) else key


def _hget(client: redis.Redis, key: str, name: str) -> bytes | None:
    """redis-py types sync and async results alike; this client is sync."""
    return cast("bytes | None", client.hget(key, name))


def expire_as_redis_would(client: redis.Redis, span: timedelta) -> int:
    """Remove every key whose time to live is shorter than ``span``."""
    gone = 0
    for key in list(client.scan_iter(count=1000)):
        ttl = cast(int, client.pttl(key))
        if 0 <= ttl < span.total_seconds() * 1000:
            gone += cast(int, client.delete(key))
    return gone


def count(
    figures: Figures, managers: list[str], sink: Sink, client: redis.Redis, holds_dir: Path
) -> None:
    received = list(sink.recorder.received)
    figures.deliveries = len(received)
    figures.distinct_message_ids = len({r.message_id for r in received})
    per_manager = Counter(r.recipients[0] for r in received)
    figures.managers_with_one_digest = sum(per_manager[m] == 1 for m in managers)
    figures.duplicate_digests = sum(max(per_manager[m] - 1, 0) for m in managers)
    figures.lost_digests = sum(per_manager[m] == 0 for m in managers)
    figures.failed_in_ledger = sum(
        _hget(client, f"kindly:digest:{WEEK}:{m}", "state") == b"failed" for m in managers
    )
    figures.unservable_failed = sum(
        per_manager[m] == 0 and _hget(client, f"kindly:digest:{WEEK}:{m}", "state") == b"failed"
        for m in (BROKEN_CALENDAR, MISSING)
    )
    uids: Counter[str] = Counter()
    for path in holds_dir.glob("*.ics"):
        calendar = icalendar.Calendar.from_ical(path.read_bytes())
        uids.update(str(event["UID"]) for event in calendar.walk("VEVENT"))
    figures.holds = sum(uids.values())
    figures.distinct_holds = len(uids)
    figures.duplicate_holds = figures.holds - figures.distinct_holds
    recorded = []
    for manager in managers:
        for report in cast(list[bytes], client.hkeys(f"kindly:holds:{WEEK}:{manager}")):
            recorded.append(HoldKey(manager, report.decode(), WEEK).hex_id())
    figures.lost_holds = sum(not any(h in uid for uid in uids) for h in recorded)


# the run


def _environment(folder: Path, redis_url: str, smtp_port: int, config: Config) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KINDLY_", "CHAOS_"))}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "KINDLY_ROSTER_FILE": str(folder / "roster.yaml"),
            "KINDLY_ICS__DIR": str(folder / "calendars"),
            "KINDLY_ICS__HOLDS_DIR": str(folder / "holds"),
            "KINDLY_REDIS_URL": redis_url,
            "KINDLY_EMAIL__BACKEND": "smtp",
            "KINDLY_EMAIL__FROM": "kindly@example.org",
            "KINDLY_SMTP__HOST": "127.0.0.1",
            "KINDLY_SMTP__PORT": str(smtp_port),
            "KINDLY_SMTP__STARTTLS": "false",
            "KINDLY_SMTP__TIMEOUT": "5",
            "KINDLY_WORKER__JOB_TIMEOUT": "10",
            "KINDLY_WORKER__MAX_TRIES": "5",
            "KINDLY_WORKER__PLAN_EVERY_SECONDS": "1",
            "KINDLY_WORKER__STAGGER_SECONDS": "2",
            "KINDLY_WORKER__RETRY_BASE_SECONDS": "0.2",
            "KINDLY_WORKER__RETRY_MAX_SECONDS": "2",
            # 20 % of every call failing makes ~3 of 4 runs fail: allow more runs than 3 x 5
            "KINDLY_WORKER__MAX_ATTEMPTS": "60",
            "KINDLY_EMAIL__SEND_PER_MINUTE": "100000",
            "KINDLY_WORKER__SHUTDOWN_GRACE_SECONDS": "0",
            "CHAOS_FAULT_RATE": str(config.fault_rate),
            "CHAOS_STATE_DIR": str(folder),
        }
    )
    return env


@contextmanager
def _workspace(keep: bool) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="kindly-chaos-"))
    try:
        yield folder
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def run(config: Config) -> Figures:
    rng = random.Random(config.seed)
    figures = Figures(managers=config.managers)
    began = time.monotonic()
    with _workspace(config.keep) as folder:
        managers = scale_org(folder, config.managers)
        due_first = [
            m for i, m in enumerate(managers) if ZONES[i % len(ZONES)] != "America/New_York"
        ]
        server = OwnRedis(folder, durable=True)
        server.start()
        sink = Sink(config.fault_rate, config.seed)
        env = _environment(folder, server.url, sink.start(), config)
        env["CHAOS_CRASH_MANAGER"] = due_first[len(due_first) // 2]
        env["CHAOS_CRASH_TIMES"] = str(config.crash_times)
        env["CHAOS_MISSING_MANAGER"] = MISSING
        workers = Workers(env, folder)
        deadline = began + config.deadline_seconds
        try:
            workers.start_all(PHASE_A)
            # phase A: until about half of Monday's digests are out
            _churn(
                workers,
                server,
                figures,
                rng,
                config,
                until=len(due_first) // 2,
                deadline=deadline,
                kills=config.kills // 2,
            )
            workers.kill_all()
            client = server.client()
            removed = expire_as_redis_would(client, DOWNTIME)
            figures.notes.append(
                f"downtime: all workers stopped at {sent_count(client)} sent; "
                f"{removed} keys expired over 25 h"
            )
            # phase B: 25 hours later, until everyone has a digest
            workers.start_all(workers.sim_now() + DOWNTIME)
            _churn(
                workers,
                server,
                figures,
                rng,
                config,
                until=config.managers,
                deadline=deadline,
                kills=config.kills,
            )
            time.sleep(3)  # let a late duplicate, if any, arrive before counting
        finally:
            workers.stop()
            sink.stop()
        client = server.client()
        count(figures, managers, sink, client, folder / "holds")
        figures.crashes = _tally(folder / "crashes")
        figures.provider_faults = _tally(folder / "provider-faults")
        figures.smtp_faults = sink.recorder.faults
        server.kill()
        if config.keep:
            figures.notes.append(f"kept {folder}")
    figures.seconds = round(time.monotonic() - began, 1)
    return figures


def _churn(
    workers: Workers,
    server: OwnRedis,
    figures: Figures,
    rng: random.Random,
    config: Config,
    *,
    until: int,
    deadline: float,
    kills: int,
) -> None:
    """Kill and restart workers at random moments (and Redis once) until ``until`` are sent."""
    client = server.client()
    while time.monotonic() < deadline:
        workers.revive()
        sent = sent_count(client)
        if sent >= until and figures.kills >= kills:
            return
        time.sleep(rng.uniform(0.2, 1.5))
        if figures.redis_restarts < config.redis_restarts and sent >= max(1, until // 2):
            # mid-run, while jobs are in flight
            server.kill()
            time.sleep(rng.uniform(0.5, 2.0))
            server.start()
            figures.redis_restarts += 1
        elif figures.kills < kills:
            slot = rng.randrange(len(workers.processes))
            workers.kill(slot)
            workers.start(slot)
            figures.kills += 1
    figures.notes.append(f"deadline reached with {sent_count(client)} sent (wanted {until})")


def _tally(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = Config()
    parser.add_argument("--managers", type=int, default=defaults.managers)
    parser.add_argument("--kills", type=int, default=defaults.kills)
    parser.add_argument("--fault-rate", type=float, default=defaults.fault_rate)
    parser.add_argument("--crash-times", type=int, default=defaults.crash_times)
    parser.add_argument("--deadline", type=float, default=defaults.deadline_seconds)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    args = parser.parse_args()
    figures = run(
        Config(
            managers=args.managers,
            kills=args.kills,
            fault_rate=args.fault_rate,
            crash_times=args.crash_times,
            deadline_seconds=args.deadline,
            seed=args.seed,
            keep=args.keep,
        )
    )
    for name, value in asdict(figures).items():
        print(f"{name:>26}: {value}")
    print(f"{'exactly once':>26}: {'yes' if figures.exactly_once else 'NO'}")
    raise SystemExit(0 if figures.exactly_once else 1)


if __name__ == "__main__":
    main()

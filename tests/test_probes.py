"""`kindly worker`'s /metrics, /healthz and /readyz over real HTTP, against a Redis of the
test's own that it stops and starts (tests/own_redis.py); the demo org, the clock pinned."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import KINDLY, REPO, clean_environ
from tests.own_redis import OwnRedis, free_port, own_redis

__all__ = ["own_redis"]  # the fixture, imported so pytest finds it

NOW = "2026-11-23T08:00:00+01:00"
#: at NOW, Anouk (Amsterdam) and Priya (Kolkata) are due; Daniel (New York) is not yet
DUE = 2


@dataclass
class Answer:
    status: int
    body: str


def get(port: int, path: str) -> Answer:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return Answer(response.status, response.read().decode())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read().decode())


def until(check: Callable[[], bool], *, within: float, what: str) -> None:
    """Poll a real server until ``check`` holds, failing after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        time.sleep(0.1)


def answers(port: int, path: str, status: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return get(port, path).status == status
        except OSError:  # not listening yet
            return False

    return check


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, parsed with prometheus-client's own parser."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@dataclass
class Worker:
    process: subprocess.Popen[str]
    port: int
    folder: Path
    log: Path

    def digests(self) -> int:
        return len(list((self.folder / "outbox").glob("*/*.eml")))


@pytest.fixture
def worker(tmp_path: Path, own_redis: OwnRedis) -> Iterator[Worker]:
    """`kindly worker` (no --burst) with metrics on a free port, its clock at NOW."""
    shutil.copytree(REPO / "examples" / "calendars", tmp_path / "calendars")
    shutil.copy(REPO / "examples" / "roster.yaml", tmp_path / "roster.yaml")
    port = free_port()
    env = {
        "KINDLY_ROSTER_FILE": str(tmp_path / "roster.yaml"),
        "KINDLY_ICS__DIR": str(tmp_path / "calendars"),
        "KINDLY_ICS__HOLDS_DIR": str(tmp_path / "holds"),
        "KINDLY_EMAIL__OUTBOX_DIR": str(tmp_path / "outbox"),
        "KINDLY_REDIS_URL": own_redis.url,
        "KINDLY_LIMITS__STAGGER_SECONDS": "0",
        "KINDLY_METRICS__PORT": str(port),
    }
    log = tmp_path / "worker.log"
    process = subprocess.Popen(
        [str(KINDLY), "worker", "--now", NOW],
        cwd=tmp_path,
        env=clean_environ(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        text=True,
    )
    running = Worker(process, port, tmp_path, log)
    try:
        until(answers(port, "/healthz", 200), within=30, what="/healthz answers")
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


class TestScrape:
    """After the due digests went out, a scrape shows what the worker did."""

    def test_counters(self, worker: Worker) -> None:
        until(lambda: worker.digests() == DUE, within=60, what=f"{DUE} digests in the outbox")
        # the job's counters are recorded as it returns, just after the file is written
        until(
            lambda: 'kindly_digests_total{outcome="sent"} 2.0' in get(worker.port, "/metrics").body,
            within=10,
            what="the sent digests counted",
        )
        scrape = get(worker.port, "/metrics")
        seen = samples(scrape.body)

        def value(name: str, **labels: str) -> float:
            return seen.get((name, frozenset(labels.items())), 0.0)

        assert value("kindly_digests_total", outcome="sent") == DUE
        assert value("kindly_digests_total", outcome="failed") == 0
        assert value("kindly_job_duration_seconds_count") == DUE
        assert value("kindly_job_duration_seconds_sum") > 0
        assert value("kindly_planner_runs_total", result="ok") >= 1
        assert value("kindly_planner_managers_total", decision="enqueued") >= DUE
        assert value("kindly_planner_managers_total", decision="not_due") >= 1  # Daniel
        # each due manager's run read their calendar and placed holds (examples/README.md)
        assert value("kindly_provider_requests_total", provider="ics", kind="events", status="ok")
        assert value("kindly_holds_total", outcome="created") >= 1
        assert value("kindly_jobs_in_progress") == 0
        assert value("kindly_jobs_queued") == 0
        assert value("kindly_roster_managers") == 3
        assert value("kindly_roster_last_load_timestamp_seconds") > time.time() - 600
        assert "process_cpu_seconds_total" in scrape.body  # the standard collectors come along


class TestProbes:
    """/readyz follows Redis and the roster; /healthz stays 200 while the worker runs."""

    def test_redis_stops_and_comes_back(self, worker: Worker, own_redis: OwnRedis) -> None:
        until(answers(worker.port, "/readyz", 200), within=30, what="ready at start")
        assert get(worker.port, "/readyz").body == "ready\n"
        own_redis.stop()
        until(answers(worker.port, "/readyz", 503), within=5, what="unready once Redis stops")
        down = get(worker.port, "/readyz")
        assert down.body.startswith("not ready: Redis is not answering")
        assert down.body.count("\n") == 1
        assert get(worker.port, "/healthz") == Answer(200, "ok\n")
        own_redis.start()
        until(answers(worker.port, "/readyz", 200), within=10, what="ready once Redis is back")
        assert get(worker.port, "/healthz").status == 200
        assert worker.process.poll() is None

    def test_roster_breaks(self, worker: Worker) -> None:
        until(answers(worker.port, "/readyz", 200), within=30, what="ready at start")
        roster = worker.folder / "roster.yaml"
        good = roster.read_text(encoding="utf-8")
        roster.write_text("managers: [\n", encoding="utf-8")
        broken = get(worker.port, "/readyz")
        assert broken.status == 503
        assert broken.body.startswith("not ready: the roster does not load:")
        assert str(roster) in broken.body
        roster.write_text(good, encoding="utf-8")
        assert get(worker.port, "/readyz").status == 200

    def test_other_paths(self, worker: Worker) -> None:
        assert get(worker.port, "/nothing").status == 404
        request = urllib.request.Request(f"http://127.0.0.1:{worker.port}/healthz", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 405


class TestPortTaken:
    """A port already in use stops the worker with one line naming the variable."""

    def test_one_line(self, tmp_path: Path) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = subprocess.run(
                [str(KINDLY), "worker"],
                cwd=tmp_path,
                env=clean_environ(
                    {
                        "KINDLY_ROSTER_FILE": str(REPO / "examples" / "roster.yaml"),
                        "KINDLY_ICS__DIR": str(REPO / "examples" / "calendars"),
                        "KINDLY_METRICS__PORT": str(port),
                    }
                ),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            f"kindly: KINDLY_METRICS__PORT={port}: cannot listen on 127.0.0.1:{port} "
            "(Address already in use); choose a free port, or check KINDLY_METRICS__HOST"
        ]

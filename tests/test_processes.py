"""`kindly run --once` over several processes (KINDLY_PROCESSES, service/processes.py).

The count and the limits' shares are pure and checked as tables and properties. The
runs go through the installed `kindly` command on the demo organisations, with two
processes forced (the demo is far below the floor that would spread it by itself), and
their `--json` lines must be the one-process run's, byte for byte. A child is stopped
mid-run by holding one manager's calendar back: the file is a named pipe, so the child
reading it waits until the test opens the other end, and is then killed by its pid.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.processes import child_settings, processes_wanted, usable_cores
from service.settings import Settings
from service.speed import MANAGERS_PER_PROCESS, processes_for
from tests.conftest import KINDLY, clean_environ
from tests.emulators.google import GoogleEmulator
from tests.google_fixtures import KEY
from tests.own_redis import OwnRedis, own_redis
from tests.scenarios import DEMO, SCENARIOS, Scenario

__all__ = ["own_redis"]  # the fixture, imported for its name

#: a port nothing answers on: Redis "not configured", so each process paces itself
NO_REDIS = "redis://127.0.0.1:1/0"
#: the demo manager whose calendar is held back: second of the first child's share
HELD = "priya@example.com"


class TestHowMany:
    """Derived: one process per core, each with MANAGERS_PER_PROCESS managers at least;
    asked for: that many, up to one per manager."""

    @pytest.mark.parametrize(
        ("managers", "cores", "asked", "expected"),
        [
            (7, 16, None, 1),  # the demo: one process, as before
            (0, 4, None, 1),
            (MANAGERS_PER_PROCESS * 2 - 1, 8, None, 1),
            (MANAGERS_PER_PROCESS * 2, 8, None, 2),
            (MANAGERS_PER_PROCESS * 3, 2, None, 2),  # never more than the cores
            (10_000, 1, None, 1),
            (10_000, 64, None, 64),
            (3, 2, 2, 2),  # asked: honoured below the floor
            (3, 2, 8, 3),  # ... up to one per manager
            (10_000, 64, 1, 1),
            (0, 4, 4, 1),
        ],
    )
    def test_table(self, managers: int, cores: int, asked: int | None, expected: int) -> None:
        assert processes_for(managers, cores, asked) == expected

    @given(st.integers(0, 100_000), st.integers(1, 512))
    def test_derived_never_exceeds_cores_or_the_floor(self, managers: int, cores: int) -> None:
        found = processes_for(managers, cores)
        assert 1 <= found <= cores
        assert found == 1 or found <= managers // MANAGERS_PER_PROCESS

    @given(st.integers(0, 100_000), st.integers(1, 512), st.integers(1, 256))
    def test_asked_is_honoured_up_to_the_managers(
        self, managers: int, cores: int, asked: int
    ) -> None:
        assert processes_for(managers, cores, asked) == max(1, min(asked, managers))

    def test_usable_cores_and_the_setting(self) -> None:
        cores = usable_cores()
        assert 1 <= cores <= (os.cpu_count() or 1)
        assert processes_wanted(Settings(processes=2), 3) == 2
        assert processes_wanted(Settings(), 7) == 1
        assert processes_wanted(Settings(), MANAGERS_PER_PROCESS * 1000) == cores


LIMITS = (
    ("google", "requests_per_minute"),
    ("google", "requests_per_minute_per_user"),
    ("email", "send_per_minute"),
)


def limits_of(settings: Settings) -> dict[tuple[str, str], int]:
    return {(s, f): getattr(getattr(settings, s), f) for s, f in LIMITS}


def paced(**limits: int) -> Settings:
    """Google calendars and Graph mail, with these per-minute limits."""
    return Settings.model_validate(
        {
            "calendar": "google",
            "email": {"backend": "graph", "send_per_minute": limits.get("send", 30)},
            "google": {
                "requests_per_minute": limits.get("project", 10_000),
                "requests_per_minute_per_user": limits.get("user", 600),
            },
        }
    )


class TestShares:
    """Without Redis each process gets its share of every limit; with it, the whole."""

    def test_divided_without_redis(self) -> None:
        processes, child = child_settings(paced(), 4, shared=False)
        assert processes == 4
        assert limits_of(child) == {
            ("google", "requests_per_minute"): 2_500,
            ("google", "requests_per_minute_per_user"): 150,
            ("email", "send_per_minute"): 7,
        }
        assert child.google.in_flight == 17  # the pool follows the share of the quota
        assert child.managers_in_flight == 17

    def test_unchanged_with_redis(self) -> None:
        settings = paced()
        assert child_settings(settings, 4, shared=True) == (4, settings)

    def test_the_smallest_limit_caps_the_processes(self) -> None:
        processes, child = child_settings(paced(send=3), 8, shared=False)
        assert processes == 3
        assert child.email.send_per_minute == 1

    def test_limits_not_in_use_neither_cap_nor_change(self) -> None:
        settings = Settings.model_validate({"email": {"send_per_minute": 1}})  # ics and file
        assert child_settings(settings, 4, shared=False) == (4, settings)

    def test_concurrency_set_is_for_the_whole_run(self) -> None:
        settings = Settings(concurrency=6)
        processes, child = child_settings(settings, 4, shared=True)
        assert (processes, child.managers_in_flight) == (4, 1)
        assert child_settings(Settings(concurrency=2), 4, shared=True)[0] == 2

    @given(
        st.integers(1, 20_000),
        st.integers(1, 2_000),
        st.integers(1, 200),
        st.integers(1, 256),
    )
    def test_together_inside_every_limit(
        self, project: int, user: int, send: int, asked: int
    ) -> None:
        settings = paced(project=project, user=user, send=send)
        processes, child = child_settings(settings, asked, shared=False)
        assert 1 <= processes <= asked
        for path, limit in limits_of(settings).items():
            share = limits_of(child)[path]
            assert share >= 1
            assert share * processes <= limit


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines()]

    def by_manager(self) -> dict[str, dict[str, Any]]:
        return {line["manager"]: line for line in self.lines()}

    def explain(self) -> str:
        return f"exit {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def environment(scenario: Scenario, work: Path, calendars: Path | None = None) -> dict[str, str]:
    return clean_environ(
        {
            "KINDLY_ROSTER_FILE": str(scenario.roster),
            "KINDLY_ICS__DIR": str(calendars or scenario.calendars),
            "KINDLY_ICS__HOLDS_DIR": str(work / "holds"),
            "KINDLY_EMAIL__OUTBOX_DIR": str(work / "outbox"),
            "KINDLY_REDIS_URL": NO_REDIS,
        }
    )


def command(scenario: Scenario) -> list[str]:
    return [str(KINDLY), "run", "--once", "--now", scenario.now, "--json"]


def kindly(
    scenario: Scenario, work: Path, processes: int, *, as_json: bool = True, **extra: str
) -> Run:
    env = environment(scenario, work) | {"KINDLY_PROCESSES": str(processes), **extra}
    done = subprocess.run(
        command(scenario)[: None if as_json else -1],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def emails(work: Path) -> dict[str, bytes]:
    return {p.relative_to(work).as_posix(): p.read_bytes() for p in work.glob("outbox/*/*.eml")}


def ledger_ids(work: Path) -> list[str]:
    return [
        json.loads(line)["message_id"]
        for path in sorted(work.glob("outbox/*/ledger.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_two_processes_write_what_one_does(scenario: Scenario, tmp_path: Path) -> None:
    """Same lines in the same order, the same digests once each; a re-run sends nothing."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    alone = kindly(scenario, one, 1)
    spread = kindly(scenario, two, 2)
    assert alone.returncode == 0, alone.explain()
    assert spread.returncode == 0, spread.explain()
    assert spread.stdout == alone.stdout
    assert spread.stderr == alone.stderr
    assert [line["manager"] for line in spread.lines()] == [
        line["manager"] for line in alone.lines()
    ]
    assert emails(two) == emails(one)
    assert sorted(ledger_ids(two)) == sorted(ledger_ids(one))
    assert len(set(ledger_ids(two))) == len(ledger_ids(two)) == len(scenario.managers)

    again = kindly(scenario, two, 2)
    assert again.returncode == 0, again.explain()
    assert {m: line["email"]["sent"] for m, line in again.by_manager().items()} == dict.fromkeys(
        scenario.managers, False
    )
    assert len(ledger_ids(two)) == len(scenario.managers)


def test_the_summary_table_too(tmp_path: Path) -> None:
    done = kindly(DEMO, tmp_path, 2, as_json=False)
    assert done.returncode == 0, done.explain()
    assert done.stdout == ""
    table = done.stderr
    assert table.index("anouk@") < table.index("daniel@") < table.index("priya@")
    assert "Digests are in" in table


def test_settings_a_child_refuses_end_the_run_as_one_process_does(tmp_path: Path) -> None:
    """Adapters are built in each child: their refusal is still one line and status 2."""
    runs = [kindly(DEMO, tmp_path, n, KINDLY_CALENDAR="google") for n in (1, 2)]
    assert [(r.returncode, r.stdout) for r in runs] == [(2, ""), (2, "")]
    assert runs[1].stderr == runs[0].stderr
    assert runs[0].stderr.count("\n") == 1
    assert "KINDLY_GOOGLE__SERVICE_ACCOUNT_FILE" in runs[0].stderr


# -- a child stopped mid-run -------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def holding(pid: int, path: Path) -> bool:
    """Whether the process has ``path`` open."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if Path(os.readlink(fd)) == path:
                return True
        except OSError:
            continue
    return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(what: str, check: Any, timeout: float = 60.0) -> Any:
    """Poll a condition of another process (its start takes real time)."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)
    return found


@dataclass
class Held:
    """A run whose child is reading ``HELD``'s calendar: a named pipe the test holds open."""

    process: subprocess.Popen[str]
    fifo: Path
    writer: int
    #: the child reading the pipe
    child: int

    def finish(self) -> Run:
        stdout, stderr = self.process.communicate(timeout=60)
        return Run(self.process.returncode, stdout, stderr)


@contextmanager
def held_run(work: Path) -> Iterator[Held]:
    """The demo over two processes, one child stuck reading ``HELD``'s calendar."""
    calendars = work / "calendars"
    shutil.copytree(DEMO.calendars, calendars)
    fifo = calendars / f"{HELD}.ics"
    fifo.unlink()
    os.mkfifo(fifo)
    env = environment(DEMO, work, calendars) | {"KINDLY_PROCESSES": "2"}
    process = subprocess.Popen(
        command(DEMO),
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    writer = -1
    try:

        def opened() -> int:
            try:  # succeeds once a reader waits on the other end, and lets it through
                return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                return 0

        writer = wait_for("a child to read the held calendar", opened)
        child = wait_for(
            "the reader's pid",
            lambda: next((c for c in children_of(process.pid) if holding(c, fifo)), 0),
        )
        yield Held(process, fifo, writer, child)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        if writer > 0:
            os.close(writer)
        fifo.unlink(missing_ok=True)
        shutil.copy(DEMO.calendars / f"{HELD}.ics", fifo)


class TestChildStops:
    """A killed child never hangs the run: its unfinished managers fail, saying so once,
    and the next run finishes them without sending anything twice."""

    def test_killed_child(self, tmp_path: Path) -> None:
        with held_run(tmp_path) as held:
            # the first manager of the same share is done before the kill
            wait_for("anouk's digest", lambda: list(tmp_path.glob("outbox/*/anouk@*.eml")))
            os.kill(held.child, signal.SIGKILL)
            first = held.finish()
        assert first.returncode == 1, first.explain()
        lines = first.by_manager()
        assert [line["manager"] for line in first.lines()] == [
            "anouk@example.com",
            "daniel@example.com",
            HELD,
        ]
        assert lines["daniel@example.com"]["errors"] == []
        (error,) = lines[HELD]["errors"]
        assert "stopped (killed by SIGKILL)" in error
        assert "run again" in error
        assert lines[HELD]["email"] is None
        problems = [line for line in first.stderr.splitlines() if HELD in line]
        assert problems == [f"kindly: {HELD}: {error}"], first.explain()

        second = kindly(DEMO, tmp_path, 2, KINDLY_ICS__DIR=str(tmp_path / "calendars"))
        assert second.returncode == 0, second.explain()
        sent = {m: line["email"]["sent"] for m, line in second.by_manager().items()}
        assert sent == {"anouk@example.com": False, "daniel@example.com": False, HELD: True}
        ids = ledger_ids(tmp_path)
        assert len(ids) == len(set(ids)) == 3
        assert len(emails(tmp_path)) == 3

    @pytest.mark.parametrize(
        ("sent", "status"), [(signal.SIGINT, 1), (signal.SIGTERM, -signal.SIGTERM)]
    )
    def test_stopping_the_parent_stops_the_children(
        self, tmp_path: Path, sent: signal.Signals, status: int
    ) -> None:
        with held_run(tmp_path) as held:
            children = {c: cmdline(c) for c in children_of(held.process.pid)}
            runs = [c for c, line in children.items() if b"spawn_main" in line]
            assert held.child in runs
            # the other child may already have run its share and ended (or not yet started)
            assert len(runs) <= 2
            held.process.send_signal(sent)
            stopped = held.finish()
        assert stopped.returncode == status, stopped.explain()
        assert [c for c in runs if alive(c)] == []
        # multiprocessing's resource tracker ends when it sees the parent's pipe close
        wait_for("every child to end", lambda: not any(alive(c) for c in children), 10)


# -- quotas shared through Redis ---------------------------------------------------------


def test_children_count_in_the_shared_redis(tmp_path: Path, own_redis: OwnRedis) -> None:
    """With Redis answering, each child counts Google's quotas there, under every
    manager it runs (so both children did), and nothing is divided."""
    with GoogleEmulator.from_folder(DEMO.folder, port=0) as google:
        key = tmp_path / "service-account.json"
        key.write_text(json.dumps(google.service_account(key=KEY)), encoding="utf-8")
        env: Mapping[str, str] = {
            "KINDLY_CALENDAR": "google",
            "KINDLY_GOOGLE__API_ENDPOINT": google.base_url,
            "KINDLY_GOOGLE__SERVICE_ACCOUNT_FILE": str(key),
            "KINDLY_REDIS_URL": own_redis.url,
        }
        run = kindly(DEMO, tmp_path, 2, **env)
    assert run.returncode == 0, run.explain()
    assert [line["errors"] for line in run.lines()] == [[]] * 3
    keys = [k.decode() for k in own_redis.client().keys("kindly:quota*")]
    for manager in DEMO.managers:
        assert any(manager in k and "/600/" in k for k in keys), (manager, keys)

"""`kindly worker` and `kindly status` as a user runs them (subprocesses, the demo org, db 11)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import REPO, clean_environ

REDIS_URL = "redis://127.0.0.1:6379/11"
NOW = "2026-11-23T08:00:00+01:00"


@pytest.fixture
def org(tmp_path: Path) -> Iterator[dict[str, str]]:
    shutil.copytree(REPO / "examples" / "calendars", tmp_path / "calendars")
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield {
        "KINDLY_ROSTER_FILE": str(REPO / "examples" / "roster.yaml"),
        "KINDLY_ICS__DIR": str(tmp_path / "calendars"),
        "KINDLY_ICS__HOLDS_DIR": str(tmp_path / "holds"),
        "KINDLY_EMAIL__OUTBOX_DIR": str(tmp_path / "outbox"),
        "KINDLY_REDIS_URL": REDIS_URL,
        "KINDLY_LIMITS__STAGGER_SECONDS": "0",
        "PYTHONPATH": str(REPO),
    }
    client.flushdb()
    client.close()


def _command(name: str) -> list[str]:
    return [sys.executable, "-c", f"from service.worker_cli import {name}; {name}()"]


def _kindly(
    name: str, *args: str, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_command(name), *args],
        env=clean_environ(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


class TestCheck:
    """`kindly worker --check` exits 0 only when settings and Redis are fine."""

    def test_ok(self, org: dict[str, str], tmp_path: Path) -> None:
        done = _kindly("worker", "--check", env=org, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "3 managers" in done.stderr

    def test_redis_down(self, org: dict[str, str], tmp_path: Path) -> None:
        env = {**org, "KINDLY_REDIS_URL": "redis://:hunter2@127.0.0.1:1/0"}
        done = _kindly("worker", "--check", env=env, cwd=tmp_path)
        assert done.returncode == 1
        assert "KINDLY_REDIS_URL" in done.stderr
        assert "hunter2" not in done.stderr
        assert "Traceback" not in done.stderr

    def test_bad_settings(self, org: dict[str, str], tmp_path: Path) -> None:
        env = {**org, "KINDLY_DIGEST_HOUR": "25", "KINDLY_LIMITS__SEND_PER_MINUTE": "-1"}
        done = _kindly("worker", "--check", env=env, cwd=tmp_path)
        assert done.returncode == 2
        assert "KINDLY_DIGEST_HOUR" in done.stderr
        assert "Traceback" not in done.stderr


class TestBurstAndStatus:
    """A burst run at a pinned hour sends what is due; status shows sent and pending."""

    def test_demo_org(self, org: dict[str, str], tmp_path: Path) -> None:
        done = _kindly("worker", "--burst", "--now", NOW, env=org, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        sent = sorted(p.name for p in (tmp_path / "outbox").glob("*/*.eml"))
        assert sent == ["anouk@example.com.eml", "priya@example.com.eml"]

        shown = _kindly("status", "--json", "--now", NOW, env=org, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        lines = [json.loads(line) for line in shown.stdout.splitlines()]
        assert [(x["manager"], x["week"], x["state"]) for x in lines] == [
            ("anouk@example.com", "2026-W48", "sent"),
            ("daniel@example.com", "2026-W48", "pending"),
            ("priya@example.com", "2026-W48", "sent"),
        ]
        assert lines[1]["reason"] == "due Mon 23 Nov 08:00 (America/New_York)"

    def test_table(self, org: dict[str, str], tmp_path: Path) -> None:
        shown = _kindly("status", "--now", NOW, env=org, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert "daniel@example.com" in shown.stdout
        assert "pending" in shown.stdout


class TestSigterm:
    """SIGTERM lets the worker finish and exit cleanly."""

    def test_graceful(self, org: dict[str, str], tmp_path: Path) -> None:
        env = {**org, "KINDLY_LIMITS__PLAN_EVERY_SECONDS": "3600"}
        process = subprocess.Popen(
            [*_command("worker"), "--now", NOW],
            env=clean_environ(env),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        outbox = tmp_path / "outbox"
        try:
            logged = _until_sent(process, digests=2)
            os.kill(process.pid, signal.SIGTERM)
            _, rest = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        err = logged + rest
        assert process.returncode == 0, err
        assert "shutdown on SIGTERM" in err
        assert len(list(outbox.glob("*/*.eml"))) == 2


def _until_sent(process: subprocess.Popen[str], *, digests: int, timeout: float = 60) -> str:
    """The worker's log up to its ``digests``-th sent digest, read as it is written."""
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        sent = 0
        for line in iter(process.stderr.readline, ""):
            seen.append(line)
            if '"event": "job"' in line and '"outcome": "sent"' in line:
                sent += 1
                if sent == digests:
                    break
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(timeout), "".join(seen)
    return "".join(seen)


class TestStatusWeek:
    """`kindly status --week` shows an earlier week, named as an ISO week or by a date in it."""

    LATER = "2026-11-30T09:00:00+01:00"  # the week after the burst

    def test_earlier_week(self, org: dict[str, str], tmp_path: Path) -> None:
        done = _kindly("worker", "--burst", "--now", NOW, env=org, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        for week in ("2026-W48", "2026-11-25"):
            shown = _kindly(
                "status", "--json", "--now", self.LATER, "--week", week, env=org, cwd=tmp_path
            )
            assert shown.returncode == 0, shown.stderr
            lines = [json.loads(line) for line in shown.stdout.splitlines()]
            assert [(x["manager"], x["week"], x["state"], x["reason"]) for x in lines] == [
                ("anouk@example.com", "2026-W48", "sent", None),
                ("daniel@example.com", "2026-W48", "pending", FORGOTTEN),
                ("priya@example.com", "2026-W48", "sent", None),
            ]
        this_week = _kindly("status", "--json", "--now", self.LATER, env=org, cwd=tmp_path)
        assert {json.loads(line)["week"] for line in this_week.stdout.splitlines()} == {"2026-W49"}

    def test_later_week_is_due(self, org: dict[str, str], tmp_path: Path) -> None:
        shown = _kindly(
            "status", "--json", "--now", NOW, "--week", "2026-W50", env=org, cwd=tmp_path
        )
        assert shown.returncode == 0, shown.stderr
        reasons = [json.loads(line)["reason"] for line in shown.stdout.splitlines()]
        assert reasons[0] == "due Mon 07 Dec 08:00 (Europe/Amsterdam)"

    def test_bad_week(self, org: dict[str, str], tmp_path: Path) -> None:
        shown = _kindly("status", "--week", "2026-W54", env=org, cwd=tmp_path)
        assert shown.returncode == 2
        assert "neither an ISO week such as 2026-W47 nor a date" in shown.stderr

    def test_help_says_how_long(self, org: dict[str, str], tmp_path: Path) -> None:
        shown = _kindly("status", "--help", env=org, cwd=tmp_path)
        assert "keeps each week 21 days" in " ".join(shown.stdout.split())


FORGOTTEN = "nothing recorded: not sent that week, or longer ago than the ledger keeps (21 days)"


class TestOneUnreadableManager:
    """A manager whose calendar cannot be read fails alone: the others' digests still go out."""

    def test_issue_reproduction(self, org: dict[str, str], tmp_path: Path) -> None:
        """Priya's zone removed from the roster and her .ics broken: Anouk still gets hers."""
        roster = (REPO / "examples" / "roster.yaml").read_text(encoding="utf-8")
        zone = "    timezone: Asia/Kolkata\n"
        assert zone in roster
        (tmp_path / "roster.yaml").write_text(roster.replace(zone, ""), encoding="utf-8")
        (tmp_path / "calendars" / "priya@example.com.ics").write_text("not a calendar\n")
        env = {**org, "KINDLY_ROSTER_FILE": str(tmp_path / "roster.yaml")}

        done = _kindly("worker", "--burst", "--now", NOW, env=env, cwd=tmp_path)
        assert "Traceback" not in done.stderr
        sent = sorted(p.name for p in (tmp_path / "outbox").glob("*/*.eml"))
        assert sent == ["anouk@example.com.eml"]
        unreadable = [line for line in done.stderr.splitlines() if "manager_unreadable" in line]
        assert len(unreadable) == 1

        shown = _kindly("status", "--json", "--now", NOW, env=env, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        lines = {x["manager"]: x for x in map(json.loads, shown.stdout.splitlines())}
        assert [lines[m]["state"] for m in sorted(lines)] == ["sent", "pending", "failed"]
        reason = lines["priya@example.com"]["reason"]
        assert reason.startswith("cannot read the calendar to plan this digest: ")
        assert "priya@example.com.ics: is not a valid iCalendar file" in reason

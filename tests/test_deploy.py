"""Deployment as documented: the Procfile run by a Procfile runner (honcho) against a Redis
of the test's own, and the systemd unit example checked by ``systemd-analyze verify``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import KINDLY, REPO, clean_environ
from tests.own_redis import OwnRedis, free_port, own_redis
from tests.test_probes import Answer, answers, get, until

__all__ = ["own_redis"]  # the fixture, imported so pytest finds it

HONCHO = Path(sys.executable).with_name("honcho")
UNIT = REPO / "docs" / "deploy" / "kindly-worker.service"


class TestProcfile:
    """`honcho start` runs the Procfile's worker with settings from .env, as a PaaS would."""

    def test_worker_sends_the_due_digests(self, tmp_path: Path, own_redis: OwnRedis) -> None:
        port = free_port()
        # a Procfile takes no flags: KINDLY_NOW pins the worker's clock where --now cannot
        (tmp_path / ".env").write_text(
            "\n".join(
                [
                    f"KINDLY_ROSTER_FILE={REPO / 'examples' / 'roster.yaml'}",
                    f"KINDLY_ICS__DIR={REPO / 'examples' / 'calendars'}",
                    f"KINDLY_ICS__HOLDS_DIR={tmp_path / 'holds'}",
                    f"KINDLY_EMAIL__OUTBOX_DIR={tmp_path / 'outbox'}",
                    f"KINDLY_REDIS_URL={own_redis.url}",
                    "KINDLY_LIMITS__STAGGER_SECONDS=0",
                    f"KINDLY_METRICS__PORT={port}",
                    "KINDLY_NOW=2026-11-23T08:00:00+01:00",
                ]
            )
            + "\n"
        )
        env = clean_environ({"PATH": f"{KINDLY.parent}{os.pathsep}{os.environ['PATH']}"})
        log = tmp_path / "honcho.log"
        process = subprocess.Popen(
            [str(HONCHO), "--no-colour", "-f", str(REPO / "Procfile"), "start"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        outbox = tmp_path / "outbox"
        try:
            until(answers(port, "/readyz", 200), within=30, what="the worker is ready")
            until(lambda: len(list(outbox.glob("*/*.eml"))) == 2, within=60, what="2 digests")
            assert get(port, "/healthz") == Answer(200, "ok\n")
            os.kill(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        written = log.read_text()
        sent = sorted(p.name for p in outbox.glob("2026-W48/*.eml"))
        assert sent == ["anouk@example.com.eml", "priya@example.com.eml"], written
        assert "worker.1 | " in written
        assert "shutdown on SIGTERM" in written
        assert "Traceback" not in written


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
class TestSystemdUnit:
    """The unit example parses cleanly; only its ExecStart is pointed at this installation."""

    def verify(self, tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
        unit = tmp_path / UNIT.name
        unit.write_text(text.replace("/opt/kindly/.venv/bin/kindly", str(KINDLY)))
        return subprocess.run(
            ["systemd-analyze", "verify", str(unit)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def test_verifies(self, tmp_path: Path) -> None:
        result = self.verify(tmp_path, UNIT.read_text())
        assert (result.returncode, result.stderr) == (0, "")

    def test_a_mistake_is_caught(self, tmp_path: Path) -> None:
        result = self.verify(
            tmp_path, UNIT.read_text().replace("ProtectHome=yes", "ProtectHome=maybe")
        )
        assert "ProtectHome" in result.stderr or "protect home" in result.stderr

    def test_hardened(self) -> None:
        text = UNIT.read_text()
        for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "DynamicUser=yes"):
            assert line in text.splitlines()

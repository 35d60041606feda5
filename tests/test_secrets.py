"""Secrets: no configured secret appears in anything Kindly prints, logs, sends or writes.

Distinctive values for the SMTP password, the Redis password, the Graph
client secret and the Google service-account key; full runs through the real
``kindly`` command (ICS with SMTP to the aiosmtpd sink and Redis, the worker
too; Microsoft 365 against the Graph emulator; Google against its emulator),
plus ``check``, ``status`` and ``--json``, with right and wrong secrets.
Every stdout, stderr (logs included), delivered mail and file written is
scanned for each secret, also base64-encoded as SMTP AUTH would carry it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import SecretStr
from redis import Redis

from service.settings import OutlookSettings, SmtpSettings, load_settings
from tests.conftest import EXAMPLES
from tests.emulators.google import GoogleEmulator
from tests.emulators.graph import AppRegistration, CertificatePair, GraphEmulator
from tests.fuzzing import environment
from tests.google_fixtures import KEY
from tests.test_output_safety import SmtpSink, runner, written

NOW = "2026-11-23T08:00:00+01:00"
NEXT_WEEK = "2026-11-30T08:00:00+01:00"
SENDER = "kindly@example.com"
SMTP_USER = "kindly-mailer"
SMTP_PASSWORD = "smtp-pw-CANARY-7f1c2a"
REDIS_PASSWORD = "redis-pw-CANARY-9b2c44"
GRAPH_SECRET = "graph-secret-CANARY-41d8e0"
#: its own Redis database: the worker's queue and ledger keys are removed after
REDIS_URL = f"redis://default:{REDIS_PASSWORD}@127.0.0.1:6379/13"


def _encodings(secret: str) -> list[str]:
    """The secret and the forms a leak could take: base64 alone and in SMTP AUTH PLAIN."""
    plain = f"\0{SMTP_USER}\0{secret}".encode()
    return [secret, base64.b64encode(secret.encode()).decode(), base64.b64encode(plain).decode()]


@dataclass
class Captured:
    """Everything a user or an admin could see from the runs, by where it came from."""

    texts: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)

    def add(self, name: str, text: str) -> None:
        self.texts[name] = text

    def command(self, name: str, done: object) -> None:
        self.add(f"{name} stdout", getattr(done, "stdout", ""))
        self.add(f"{name} stderr", getattr(done, "stderr", ""))

    def files(self, name: str, folder: Path) -> None:
        for path, data in written(folder).items():
            self.add(f"{name} file {path}", data.decode("utf-8", "replace"))


def _forget_redis() -> None:
    client = Redis.from_url(REDIS_URL)
    keys = [*client.scan_iter(match="kindly:*"), *client.scan_iter(match="arq:*")]
    if keys:
        client.delete(*keys)
    client.close()


def _ics_smtp(captured: Captured, work: Path) -> None:
    run_kindly = runner(work)
    sink = SmtpSink(credentials=(SMTP_USER, SMTP_PASSWORD))
    _forget_redis()
    env = {
        "KINDLY_ROSTER_FILE": str(EXAMPLES / "roster.yaml"),
        "KINDLY_ICS__DIR": str(EXAMPLES / "calendars"),
        "KINDLY_ICS__HOLDS_DIR": str(work / "holds"),
        "KINDLY_EMAIL__BACKEND": "smtp",
        "KINDLY_EMAIL__FROM": SENDER,
        "KINDLY_SMTP__HOST": "127.0.0.1",
        "KINDLY_SMTP__PORT": str(sink.port),
        "KINDLY_SMTP__STARTTLS": "false",
        "KINDLY_SMTP__USERNAME": SMTP_USER,
        "KINDLY_SMTP__PASSWORD": SMTP_PASSWORD,
        "KINDLY_REDIS_URL": REDIS_URL,
        "KINDLY_LIMITS__STAGGER_SECONDS": "0",
    }
    try:
        commands = {
            "smtp check": ("check",),
            "smtp run --json": ("run", "--once", "--json", "--now", NOW),
            "smtp run": ("run", "--once", "--now", NOW),
            "smtp worker": ("worker", "--burst", "--now", NEXT_WEEK),
            "smtp status": ("status", "--now", NEXT_WEEK),
            "smtp status --json": ("status", "--json", "--now", NEXT_WEEK),
        }
        for name, args in commands.items():
            done = run_kindly(*args, env=env)
            captured.command(name, done)
            assert done.returncode == 0, (name, done.stderr)
        wrong = env | {"KINDLY_SMTP__PASSWORD": SMTP_PASSWORD + "-wrong"}
        captured.command(
            "smtp wrong password",
            run_kindly("run", "--once", "--json", "--now", NEXT_WEEK, env=wrong),
        )
        bad = env | {"KINDLY_SMTP__PORT": "not-a-port", "KINDLY_SMTP": '{"password": 1}'}
        captured.command("smtp bad settings", run_kindly("check", env=bad))
        down = env | {"KINDLY_REDIS_URL": f"redis://default:{REDIS_PASSWORD}@127.0.0.1:1/0"}
        captured.command("smtp redis down", run_kindly("check", env=down))
        captured.command("smtp worker redis down", run_kindly("worker", "--check", env=down))
        for number, mail in enumerate(sink.received()):
            captured.add(f"smtp mail {number}", mail.decode("utf-8", "replace"))
        # three this week; next week the worker sends those whose local digest hour has come
        assert len(sink.received()) > 3
    finally:
        sink.close()
        _forget_redis()
    captured.files("smtp", work)
    captured.secrets += [SMTP_PASSWORD, REDIS_PASSWORD]


def _graph(captured: Captured, work: Path, tls: CertificatePair) -> None:
    run_kindly = runner(work)
    app = AppRegistration(client_secret=GRAPH_SECRET)
    with GraphEmulator(EXAMPLES, tls=tls, app=app, page_size=50, mailboxes=[SENDER]) as graph:
        env = graph.environment() | {
            "KINDLY_ROSTER_FILE": str(EXAMPLES / "roster.yaml"),
            "KINDLY_EMAIL__BACKEND": "graph",
            "KINDLY_EMAIL__FROM": SENDER,
        }
        for name, args in {
            "graph check": ("check",),
            "graph run --json": ("run", "--once", "--json", "--now", NOW),
            "graph run": ("run", "--once", "--now", NOW),
        }.items():
            done = run_kindly(*args, env=env)
            captured.command(name, done)
            assert done.returncode == 0, (name, done.stderr)
        wrong = env | {"KINDLY_OUTLOOK__CLIENT_SECRET": GRAPH_SECRET + "-wrong"}
        done = run_kindly("run", "--once", "--json", "--now", NOW, env=wrong)
        captured.command("graph wrong secret", done)
        assert done.returncode == 1
        for number, mail in enumerate(graph.sent):
            captured.add(f"graph mail {number}", (mail.mime or b"").decode("utf-8", "replace"))
        for manager in ("anouk@example.com", "daniel@example.com", "priya@example.com"):
            for hold in graph.created_events(manager):
                captured.add(f"graph hold {hold.id}", f"{hold.subject}\n{hold.body}")
    captured.files("graph", work)
    captured.secrets.append(GRAPH_SECRET)


def _google(captured: Captured, work: Path) -> None:
    run_kindly = runner(work)
    with GoogleEmulator.from_folder(EXAMPLES) as google:
        info = google.service_account(key=KEY)
        key_file = work / "service-account.json"
        key_file.write_text(json.dumps(info), encoding="utf-8")
        env = {
            "KINDLY_CALENDAR": "google",
            "KINDLY_GOOGLE__API_ENDPOINT": google.base_url,
            "KINDLY_GOOGLE__SERVICE_ACCOUNT_FILE": str(key_file),
            "KINDLY_ROSTER_FILE": str(EXAMPLES / "roster.yaml"),
            "KINDLY_EMAIL__OUTBOX_DIR": str(work / "outbox"),
        }
        for name, args in {
            "google check": ("check",),
            "google run --json": ("run", "--once", "--json", "--now", NOW),
        }.items():
            done = run_kindly(*args, env=env)
            captured.command(name, done)
            assert done.returncode == 0, (name, done.stderr)
    key_file.unlink()  # the admin's own file, not something Kindly wrote
    captured.files("google", work)
    # a line from the middle of the private key: any part of it printed is a leak
    key_lines = info["private_key"].splitlines()
    captured.secrets.append(key_lines[len(key_lines) // 2])


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory, tls: CertificatePair) -> Captured:
    found = Captured()
    _ics_smtp(found, tmp_path_factory.mktemp("smtp"))
    _graph(found, tmp_path_factory.mktemp("graph"), tls)
    _google(found, tmp_path_factory.mktemp("google"))
    return found


class TestSecretScan:
    """No secret, in any encoding, appears in any output of any run."""

    def test_no_secret_anywhere(self, captured: Captured) -> None:
        leaks = [
            (where, secret)
            for secret in captured.secrets
            for form in _encodings(secret)
            for where, text in captured.texts.items()
            if form in text
        ]
        assert leaks == []

    def test_the_scan_saw_the_runs(self, captured: Captured) -> None:
        assert len(captured.secrets) == 4
        assert sum(name.endswith("stderr") for name in captured.texts) >= 15
        assert sum(" mail " in name for name in captured.texts) >= 8
        assert any("kindly.worker" in text for text in captured.texts.values())  # worker logs
        assert "KINDLY_REDIS_URL" in captured.texts["smtp redis down stderr"]
        assert "KINDLY_OUTLOOK__CLIENT_SECRET" in captured.texts["graph wrong secret stderr"]
        assert "KINDLY_SMTP__PASSWORD" in captured.texts["smtp wrong password stderr"]


class TestSecretTypes:
    """Client secrets and passwords are SecretStr: their repr and str hide the value."""

    def test_fields_are_secret(self) -> None:
        assert SmtpSettings.model_fields["password"].annotation == SecretStr | None
        assert OutlookSettings.model_fields["client_secret"].annotation == SecretStr | None

    def test_settings_repr_hides_them(self) -> None:
        env = {
            "KINDLY_SMTP__PASSWORD": SMTP_PASSWORD,
            "KINDLY_OUTLOOK__CLIENT_SECRET": GRAPH_SECRET,
        }
        with environment(env):
            settings = load_settings(_env_file=None)
        shown = f"{settings!r} {settings} {settings.model_dump()} {settings.model_dump_json()}"
        assert SMTP_PASSWORD not in shown
        assert GRAPH_SECRET not in shown

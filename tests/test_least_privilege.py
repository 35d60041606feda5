"""Least privilege: with KINDLY_HOLDS__ENABLED=false Kindly asks for read access only.

Proven against the emulators, which enforce scopes and permissions as Google
and Microsoft do: an organisation that granted only read access runs the
demo week read-only without an error, the same grant refuses a write, and
``kindly check`` says which scopes or permissions are in use.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.oauth2 import service_account

from connectors.google import READ_SCOPES, WRITE_SCOPES
from connectors.google_transport import SCOPE, GoogleTransport
from connectors.outlook import READ_PERMISSIONS, WRITE_PERMISSIONS
from service.errors import ConnectorError
from tests.conftest import EXAMPLES, RunKindly
from tests.emulators.google import GoogleEmulator
from tests.emulators.graph import AppRegistration, CertificatePair, GraphEmulator
from tests.google_fixtures import KEY, NO_RETRIES
from tests.graph_fixtures import make_client

NOW = "2026-11-23T08:00:00+01:00"
MANAGER = "anouk@example.com"
READONLY = frozenset({SCOPE + "calendar.readonly"})
READ_ONLY_ENV = {"KINDLY_HOLDS__ENABLED": "false"}


def lines(stdout: str) -> dict[str, dict[str, object]]:
    return {line["manager"]: line for line in map(json.loads, stdout.splitlines())}


@pytest.fixture
def google() -> Iterator[GoogleEmulator]:
    with GoogleEmulator.from_folder(EXAMPLES) as running:
        yield running


def google_env(google: GoogleEmulator, tmp_path: Path, scopes: frozenset[str]) -> dict[str, str]:
    key_file = tmp_path / "service-account.json"
    info = google.service_account(key=KEY, scopes=scopes)
    key_file.write_text(json.dumps(info), encoding="utf-8")
    return {
        "KINDLY_CALENDAR": "google",
        "KINDLY_GOOGLE__API_ENDPOINT": google.base_url,
        "KINDLY_GOOGLE__SERVICE_ACCOUNT_FILE": str(key_file),
        "KINDLY_ROSTER_FILE": str(EXAMPLES / "roster.yaml"),
        "KINDLY_EMAIL__OUTBOX_DIR": str(tmp_path / "outbox"),
    }


class TestGoogleReadOnly:
    """A service account granted calendar.readonly only runs read-only, and cannot write.

    (The read-only run is the proof that this grant reads; the write is refused with 403.)
    """

    def test_read_only_run_succeeds(
        self, run_kindly: RunKindly, google: GoogleEmulator, tmp_path: Path
    ) -> None:
        env = google_env(google, tmp_path, READONLY) | READ_ONLY_ENV
        done = run_kindly("run", "--once", "--json", "--now", NOW, env=env)
        assert done.returncode == 0, done.stderr
        outcomes = lines(done.stdout)
        assert len(outcomes) == 3
        assert all(o["errors"] == [] and o["holds"] == [] for o in outcomes.values())
        assert all(o["overdue"] for o in outcomes.values())  # there was something to hold
        assert all(not google.inserted(manager) for manager in outcomes)

    def test_holds_need_the_write_scope(
        self, run_kindly: RunKindly, google: GoogleEmulator, tmp_path: Path
    ) -> None:
        done = run_kindly(
            "run", "--once", "--json", "--now", NOW, env=google_env(google, tmp_path, READONLY)
        )
        assert done.returncode == 1
        assert "calendar.events" in done.stderr
        assert "Traceback" not in done.stderr

    async def test_read_only_token_cannot_insert(self, google: GoogleEmulator) -> None:
        info = google.service_account(key=KEY, scopes=READONLY)
        # google-auth ships without annotations on this constructor
        credentials = service_account.Credentials.from_service_account_info(info)  # type: ignore[no-untyped-call]
        transport = GoogleTransport(
            credentials, api_endpoint=google.base_url, backoff=NO_RETRIES, timeout=10
        )
        body = {"summary": "x", "start": {"dateTime": "2026-11-24T10:00:00Z"}}
        body["end"] = {"dateTime": "2026-11-24T10:30:00Z"}
        try:
            with pytest.raises(ConnectorError) as refused:
                await transport.call(
                    "calendar",
                    MANAGER,
                    READ_SCOPES,
                    lambda c: c.events().insert(calendarId="primary", body=body),
                    what="place a hold",
                )
        finally:
            await transport.aclose()
        assert refused.value.status == 403
        assert not google.inserted(MANAGER)

    @pytest.mark.parametrize(
        ("env", "scopes"), [(READ_ONLY_ENV, READ_SCOPES), ({}, WRITE_SCOPES)], ids=["read", "write"]
    )
    def test_check_lists_the_scopes(
        self,
        run_kindly: RunKindly,
        google: GoogleEmulator,
        tmp_path: Path,
        env: dict[str, str],
        scopes: tuple[str, ...],
    ) -> None:
        granted = READONLY if scopes == READ_SCOPES else frozenset(SCOPE + s for s in WRITE_SCOPES)
        done = run_kindly("check", env=google_env(google, tmp_path, granted) | env)
        assert done.returncode == 0, done.stderr
        (line,) = [line for line in done.stderr.splitlines() if line.startswith("calendar access")]
        assert line.endswith(": " + ", ".join(SCOPE + s for s in scopes))
        assert ("read-only" in line) == (scopes == READ_SCOPES)


@pytest.fixture
def graph_read_only(trust: CertificatePair) -> Iterator[GraphEmulator]:
    app = AppRegistration(roles=frozenset(READ_PERMISSIONS))
    with GraphEmulator(EXAMPLES, tls=trust, app=app, page_size=50) as running:
        yield running


def graph_env(graph: GraphEmulator, tmp_path: Path) -> dict[str, str]:
    return graph.environment() | {
        "KINDLY_ROSTER_FILE": str(EXAMPLES / "roster.yaml"),
        "KINDLY_EMAIL__OUTBOX_DIR": str(tmp_path / "outbox"),
    }


class TestGraphReadOnly:
    """An app granted Calendars.Read and MailboxSettings.Read only runs read-only, cannot write."""

    def test_read_only_run_succeeds(
        self, run_kindly: RunKindly, graph_read_only: GraphEmulator, tmp_path: Path
    ) -> None:
        env = graph_env(graph_read_only, tmp_path) | READ_ONLY_ENV
        done = run_kindly("run", "--once", "--json", "--now", NOW, env=env)
        assert done.returncode == 0, done.stderr
        outcomes = lines(done.stdout)
        assert len(outcomes) == 3
        assert all(o["errors"] == [] and o["holds"] == [] for o in outcomes.values())
        assert all(o["overdue"] for o in outcomes.values())
        assert graph_read_only.count("events.create", None) == 0
        assert all(entry.status < 400 for entry in graph_read_only.log)

    def test_holds_need_read_write(
        self, run_kindly: RunKindly, graph_read_only: GraphEmulator, tmp_path: Path
    ) -> None:
        done = run_kindly("run", "--once", "--now", NOW, env=graph_env(graph_read_only, tmp_path))
        assert done.returncode == 1
        assert "Calendars.ReadWrite" in done.stderr
        assert "Traceback" not in done.stderr

    async def test_read_only_token_cannot_create(self, graph_read_only: GraphEmulator) -> None:
        client = make_client(graph_read_only)
        body = {
            "subject": "x",
            "start": {"dateTime": "2026-11-24T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-11-24T10:30:00", "timeZone": "UTC"},
        }
        try:
            with pytest.raises(ConnectorError) as refused:
                await client.call(
                    "POST",
                    f"/users/{MANAGER}/events",
                    mailbox=MANAGER,
                    what="placing a hold",
                    permission="Calendars.ReadWrite",
                    json=body,
                )
        finally:
            await client.aclose()
        assert refused.value.status == 403
        assert graph_read_only.created_events(MANAGER) == []

    @pytest.mark.parametrize(
        ("env", "permissions"),
        [(READ_ONLY_ENV, READ_PERMISSIONS), ({}, WRITE_PERMISSIONS)],
        ids=["read", "write"],
    )
    def test_check_lists_the_permissions(
        self,
        run_kindly: RunKindly,
        graph_read_only: GraphEmulator,
        tmp_path: Path,
        env: dict[str, str],
        permissions: tuple[str, ...],
    ) -> None:
        done = run_kindly("check", env=graph_env(graph_read_only, tmp_path) | env)
        (line,) = [line for line in done.stderr.splitlines() if line.startswith("calendar access")]
        assert line.endswith(": " + ", ".join(permissions))


class TestIcsReadOnly:
    """With holds disabled the ICS connector writes no hold file."""

    def test_nothing_written_but_the_digests(self, run_kindly: RunKindly, tmp_path: Path) -> None:
        env = READ_ONLY_ENV | {
            "KINDLY_ROSTER_FILE": str(EXAMPLES / "roster.yaml"),
            "KINDLY_ICS__DIR": str(EXAMPLES / "calendars"),
            "KINDLY_ICS__HOLDS_DIR": str(tmp_path / "holds"),
            "KINDLY_EMAIL__OUTBOX_DIR": str(tmp_path / "outbox"),
        }
        done = run_kindly("run", "--once", "--json", "--now", NOW, env=env)
        assert done.returncode == 0, done.stderr
        assert not (tmp_path / "holds").exists()
        assert len(list((tmp_path / "outbox").rglob("*.eml"))) == 3

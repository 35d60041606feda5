"""The Google emulator speaks Google's wire protocol to Google's own client libraries."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google_auth_httplib2
import httplib2
import pytest
from google.auth.exceptions import RefreshError
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from tests.emulators.google import Faults, GoogleEmulator
from tests.emulators.google.keys import service_account_info
from tests.google_fixtures import KEY, running, vcalendar, write_org

REPO = Path(__file__).resolve().parent.parent
READONLY = "https://www.googleapis.com/auth/calendar.readonly"
EVENTS = "https://www.googleapis.com/auth/calendar.events"
MARIA = "maria@example.com"
WINDOW = {"timeMin": "2026-11-01T00:00:00Z", "timeMax": "2026-12-01T00:00:00Z"}
WEEKLY = vcalendar(
    """
    UID:weekly
    DTSTART;TZID=Europe/Amsterdam:20261102T100000
    DTEND;TZID=Europe/Amsterdam:20261102T103000
    RRULE:FREQ=WEEKLY;COUNT=4
    """
)


@pytest.fixture
def google(tmp_path: Path) -> Iterator[GoogleEmulator]:
    with running(write_org(tmp_path, {MARIA: WEEKLY}), page_size=3) as emulator:
        yield emulator


def client(
    google: GoogleEmulator,
    *,
    subject: str = MARIA,
    scopes: tuple[str, ...] = (READONLY,),
    info: dict[str, Any] | None = None,
) -> Any:
    info = info or google.service_account(key=KEY)
    # google-auth ships without annotations on this constructor
    credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
        info, scopes=list(scopes)
    )
    http = google_auth_httplib2.AuthorizedHttp(
        credentials.with_subject(subject), http=httplib2.Http()
    )
    return build(
        "calendar",
        "v3",
        http=http,
        static_discovery=True,
        client_options={"api_endpoint": google.base_url + "calendar/v3/"},
    )


def error_body(caught: pytest.ExceptionInfo[HttpError]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(caught.value.content)["error"]
    return body


class TestTokenEndpoint:
    """The JWT grant is verified like Google does: key, subject, delegated scopes."""

    def test_a_key_google_does_not_know_is_refused(self, google: GoogleEmulator) -> None:
        info = google.service_account(key=KEY)
        stranger = service_account_info(
            KEY,
            token_uri=google.token_uri,
            client_email=info["client_email"],
            client_id=info["client_id"],
            key_id="unknown-key",
        )
        with pytest.raises(RefreshError, match="invalid_grant: Invalid JWT Signature"):
            client(google, info=stranger).settings().get(setting="timezone").execute()

    def test_subject_must_be_a_user_of_the_domain(self, google: GoogleEmulator) -> None:
        with pytest.raises(RefreshError, match="Invalid email or User ID"):
            client(google, subject="ghost@example.com").settings().get(setting="timezone").execute()

    def test_scopes_must_be_delegated(self, google: GoogleEmulator) -> None:
        info = google.service_account(key=KEY, scopes=frozenset({READONLY}))
        with pytest.raises(RefreshError, match="unauthorized_client"):
            client(google, info=info, scopes=(READONLY, EVENTS)).settings().get(
                setting="timezone"
            ).execute()


class TestCalendar:
    """Calendar v3 answers, paging and errors in Google's shapes."""

    def test_events_list_pages_through_expanded_series(self, google: GoogleEmulator) -> None:
        service = client(google)
        request = service.events().list(
            calendarId="primary", singleEvents=True, orderBy="startTime", **WINDOW
        )
        pages = []
        while request is not None:
            page = service_page = request.execute()
            pages.append(page)
            request = service.events().list_next(request, service_page)
        items = [i for p in pages for i in p["items"]]
        assert [len(p["items"]) for p in pages] == [3, 1]
        assert [i["start"]["dateTime"][:10] for i in items] == [
            "2026-11-02",
            "2026-11-09",
            "2026-11-16",
            "2026-11-23",
        ]
        assert len({i["recurringEventId"] for i in items}) == 1
        assert pages[0]["timeZone"] == "Europe/Amsterdam"

    def test_insufficient_scope_error_has_google_shape(self, google: GoogleEmulator) -> None:
        body = {
            "id": "abcde12345",
            "start": {"dateTime": "2026-11-24T10:00:00Z"},
            "end": {"dateTime": "2026-11-24T10:30:00Z"},
        }
        with pytest.raises(HttpError) as caught:
            client(google).events().insert(calendarId="primary", body=body).execute()
        assert error_body(caught) == {
            "code": 403,
            "message": "Request had insufficient authentication scopes.",
            "errors": [
                {
                    "message": "Request had insufficient authentication scopes.",
                    "domain": "global",
                    "reason": "insufficientPermissions",
                }
            ],
            "status": "PERMISSION_DENIED",
        }

    def test_duplicate_id_is_409(self, google: GoogleEmulator) -> None:
        service = client(google, scopes=(READONLY, EVENTS))
        body = {
            "id": "abcde12345",
            "start": {"dateTime": "2026-11-24T10:00:00Z"},
            "end": {"dateTime": "2026-11-24T10:30:00Z"},
        }
        service.events().insert(calendarId="primary", body=body).execute()
        with pytest.raises(HttpError) as caught:
            service.events().insert(calendarId="primary", body=body).execute()
        assert (caught.value.status_code, error_body(caught)["errors"][0]["reason"]) == (
            409,
            "duplicate",
        )
        got = service.events().get(calendarId="primary", eventId="abcde12345").execute()
        assert got["organizer"] == {"email": MARIA, "self": True}

    def test_other_calendars_are_free_busy_only(self, google: GoogleEmulator) -> None:
        service = client(google)
        with pytest.raises(HttpError) as caught:
            service.events().list(calendarId="sam@example.com", singleEvents=True).execute()
        assert caught.value.status_code == 404
        answer = (
            service.freebusy()
            .query(body={**WINDOW, "items": [{"id": MARIA}, {"id": "nobody@else.org"}]})
            .execute()
        )
        assert len(answer["calendars"][MARIA]["busy"]) == 4
        assert answer["calendars"]["nobody@else.org"]["errors"][0]["reason"] == "notFound"

    def test_faults_carry_retry_after_and_stop_after_a_streak(self, google: GoogleEmulator) -> None:
        google.faults = Faults(rate=1.0, kinds=("429",), retry_after=3, max_streak=1)
        service = client(google)
        with pytest.raises(HttpError) as caught:
            service.settings().get(setting="timezone").execute()
        assert caught.value.resp["retry-after"] == "3"
        assert error_body(caught)["errors"][0]["reason"] == "rateLimitExceeded"
        assert service.settings().get(setting="timezone").execute()["value"] == "Europe/Amsterdam"


class TestBatchAndLog:
    """Batch requests follow the configured endpoint; every request is logged."""

    def test_batch(self, google: GoogleEmulator) -> None:
        service = client(google)
        answers: dict[str, Any] = {}

        def collect(request_id: str, response: Any, exception: Exception | None) -> None:
            answers[request_id] = response if exception is None else exception

        batch = BatchHttpRequest(callback=collect, batch_uri=google.base_url + "batch/calendar/v3")
        batch.add(service.settings().get(setting="timezone"), request_id="zone")
        batch.add(service.calendarList().get(calendarId="primary"), request_id="primary")
        batch.add(service.settings().get(setting="nope"), request_id="missing")
        batch.execute()
        assert answers["zone"]["value"] == "Europe/Amsterdam"
        assert answers["primary"]["id"] == MARIA
        assert isinstance(answers["missing"], HttpError)
        kinds = [(e.kind, e.in_batch, e.user) for e in google.log if e.kind != "token"]
        assert kinds == [
            ("settings.get", True, MARIA),
            ("calendarList.get", True, MARIA),
            ("settings.get", True, MARIA),
            ("batch", False, MARIA),
        ]


class TestStandalone:
    """`python -m tests.emulators.google` serves an org, writes a key file it trusts and
    prints its request counts when stopped."""

    def test_runs_and_reports_counts(self, tmp_path: Path) -> None:
        org = write_org(tmp_path / "org", {MARIA: WEEKLY})
        key = tmp_path / "sa.json"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.emulators.google",
                "--org",
                str(org),
                "--port",
                "0",
                "--service-account",
                str(key),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline() for _ in range(3)]
            endpoint = lines[2].strip().partition("=")[2]
            with urllib.request.urlopen(endpoint + "_emulator/requests", timeout=5) as answer:
                assert json.loads(answer.read()) == {}
            assert json.loads(key.read_text())["token_uri"] == endpoint + "token"
        finally:
            process.terminate()
            _, stderr = process.communicate(timeout=10)
        assert json.loads(stderr) == {}, "the counts are printed when it is stopped"

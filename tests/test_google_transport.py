"""The Google transport at scale: one client for all threads, a bounded set of signed-in users."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httplib2
from google.oauth2 import service_account
from googleapiclient.discovery import build

from connectors.google import READ_SCOPES
from connectors.google_transport import Collections, GoogleTransport
from tests.emulators.google import GoogleEmulator
from tests.google_fixtures import KEY, running, write_org

USERS = ("maria@example.com", "dan@example.com", "sam@example.com")


def transport_for(emulator: GoogleEmulator, **options: object) -> GoogleTransport:
    info = emulator.service_account(key=KEY)
    # google-auth ships without annotations on this constructor
    credentials = service_account.Credentials.from_service_account_info(info)  # type: ignore[no-untyped-call]
    return GoogleTransport(credentials, api_endpoint=emulator.base_url, **options)  # type: ignore[arg-type]


async def timezone_of(transport: GoogleTransport, user: str) -> str:
    answer = await transport.call(
        "calendar",
        user,
        READ_SCOPES,
        lambda c: c.settings().get(setting="timezone"),
        what="read the time zone",
    )
    return str(answer["value"])


class TestSignedInUsers:
    async def test_recent_users_keep_their_token(self, tmp_path: Path) -> None:
        with running(write_org(tmp_path, {})) as google:
            transport = transport_for(google, subjects_kept=2, max_concurrency=4)
            try:
                for user in (*USERS[:2], *USERS[:2]):
                    await timezone_of(transport, user)
            finally:
                await transport.aclose()
            assert [google.counts(u)["token"] for u in USERS[:2]] == [1, 1]

    async def test_the_least_recent_user_is_forgotten_beyond_the_bound(
        self, tmp_path: Path
    ) -> None:
        """Memory follows the bound, not the organisation: a forgotten user signs in again."""
        with running(write_org(tmp_path, {})) as google:
            transport = transport_for(google, subjects_kept=2, max_concurrency=4)
            try:
                for user in (USERS[0], USERS[1], USERS[2], USERS[1], USERS[0]):
                    await timezone_of(transport, user)
            finally:
                await transport.aclose()
            tokens = [google.counts(u)["token"] for u in USERS]
            assert tokens == [2, 1, 1]

    async def test_every_thread_answers_through_one_client(self, tmp_path: Path) -> None:
        """Many worker threads share one client; each request still runs as its own user."""
        with running(write_org(tmp_path, {})) as google:
            transport = transport_for(google, max_concurrency=8)
            try:
                expected = {u: google.org.calendar(u).zone.key for u in USERS}
                users = [USERS[n % 3] for n in range(24)]
                zones = await asyncio.gather(*(timezone_of(transport, u) for u in users))
            finally:
                await transport.aclose()
        assert zones == [expected[u] for u in users]
        assert len(set(zones)) > 1


class TestCollections:
    """The client's collections are built once and shared, its own methods pass through."""

    def client(self) -> Collections:
        service = build(
            "calendar",
            "v3",
            http=httplib2.Http(),
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": "http://127.0.0.1:9/calendar/v3/"},
        )
        return Collections(service)

    def test_a_collection_is_built_once(self) -> None:
        client = self.client()
        assert client.events() is client.events()
        assert client.events() is not client.freebusy()

    def test_requests_are_built_as_by_the_library(self) -> None:
        client = self.client()
        request = client.events().list(calendarId="primary", maxResults=5, singleEvents=True)
        assert request.method == "GET"
        assert request.uri.startswith("http://127.0.0.1:9/calendar/v3/calendars/primary/events?")
        assert "maxResults=5" in request.uri

    def test_the_clients_own_methods_pass_through(self) -> None:
        client = self.client()
        assert type(client.new_batch_http_request()).__name__ == "BatchHttpRequest"

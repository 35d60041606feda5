"""The Outlook connector with real msal and real HTTP against the Graph emulator."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from connectors.graph_http import Credentials, GraphClient, environment_proxy
from connectors.outlook import OutlookConnector, from_settings
from service.errors import AuthFailed, ConnectorError, ProviderUnavailable, RateLimited
from service.model import HoldKey, HoldRequest, Response, ShowAs, Status
from service.settings import Settings
from tests.emulators.graph import CertificatePair, Fault, GraphEmulator
from tests.graph_fixtures import Sleeps, make_client, outlook_settings, trusted_bundle

AMS = ZoneInfo("Europe/Amsterdam")
START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 11, 30, tzinfo=UTC)
MARIA = "maria@example.com"


def hold_request(report: str = "sam@example.com", week: str = "2026-W48") -> HoldRequest:
    start = datetime(2026, 11, 24, 10, 0, tzinfo=AMS)
    return HoldRequest(
        key=HoldKey(MARIA, report, week),
        start=start,
        end=start + timedelta(minutes=30),
        title="1:1 Maria and Sam",
        description="A warm invitation",
        stamp=datetime(2026, 11, 23, 8, tzinfo=AMS),
        timezone="Europe/Amsterdam",
    )


class TestEvents:
    """calendarView is read across pages and every Graph field maps onto the model."""

    async def test_pages_are_followed(
        self, connector: OutlookConnector, emulator: GraphEmulator
    ) -> None:
        events = await connector.events(MARIA, START, END, tz=AMS)
        assert len(events) == 9
        assert emulator.count("calendarView", MARIA) == 5  # page size 2 in the emulator

    async def test_field_rules(self, connector: OutlookConnector) -> None:
        events = await connector.events(MARIA, START, END, tz=AMS)
        by_start = {e.start: e for e in events}
        moved = by_start[datetime(2026, 11, 10, 14, tzinfo=AMS)]
        assert moved.original_start == datetime(2026, 11, 9, 9, tzinfo=UTC)
        assert moved.series_id is not None
        plain = by_start[datetime(2026, 11, 2, 10, tzinfo=AMS)]
        assert plain.original_start is None
        assert plain.series_id == moved.series_id
        assert by_start[datetime(2026, 11, 4, 9, tzinfo=UTC)].status is Status.CANCELLED
        declined = by_start[datetime(2026, 11, 5, 9, tzinfo=UTC)]
        assert declined.response_of(MARIA) is Response.DECLINED
        offsite = by_start[datetime(2026, 11, 6, tzinfo=AMS)]
        assert offsite.all_day
        assert offsite.end == datetime(2026, 11, 7, tzinfo=AMS)
        assert offsite.show_as is ShowAs.OOF
        assert by_start[datetime(2026, 11, 5, 12, tzinfo=UTC)].show_as is ShowAs.FREE
        room = by_start[datetime(2026, 11, 12, 9, tzinfo=UTC)]
        assert room.people() == {MARIA, "ria@example.com"}
        assert room.description == "Agreed: Ria leads the retro"
        assert room.link is not None
        assert room.link.startswith("https://")

    async def test_unknown_mailbox_is_one_clear_error(self, connector: OutlookConnector) -> None:
        with pytest.raises(AuthFailed, match=r"nobody@example\.com") as caught:
            await connector.events("nobody@example.com", START, END, tz=AMS)
        assert "\n" not in str(caught.value)


class TestTimezone:
    """mailboxSettings gives Windows zone names, mapped to IANA zones."""

    async def test_windows_names(self, connector: OutlookConnector) -> None:
        assert await connector.timezone("olaf@example.com") == ZoneInfo("America/New_York")
        zone = await connector.timezone(MARIA)
        assert zone is not None
        winter = datetime(2026, 1, 15, 12, tzinfo=UTC)
        summer = datetime(2026, 7, 15, 12, tzinfo=UTC)
        for moment in (winter, summer):
            assert moment.astimezone(zone).utcoffset() == moment.astimezone(AMS).utcoffset()


class TestBusy:
    """getSchedule gives each person's busy time; unknown people come back as None."""

    async def test_free_busy(self, connector: OutlookConnector) -> None:
        day = datetime(2026, 11, 16, tzinfo=UTC)
        busy = await connector.busy(
            MARIA, ["sam@example.com", "ghost@example.com"], day, day + timedelta(days=1), tz=AMS
        )
        assert busy["ghost@example.com"] is None
        sam = busy["sam@example.com"]
        assert sam is not None
        assert [(i.start, i.end) for i in sam] == [
            (datetime(2026, 11, 16, 8, tzinfo=UTC), datetime(2026, 11, 16, 9, tzinfo=UTC))
        ]


class TestBusyBatched:
    """More than 20 people: getSchedule calls share $batch requests, four per mailbox."""

    async def test_same_answer_fewer_round_trips(
        self, connector: OutlookConnector, emulator: GraphEmulator
    ) -> None:
        emulator.latency = 0.02  # parts overlap in the emulator, as they do in Graph
        day = datetime(2026, 11, 16, tzinfo=UTC)
        ghosts = [f"ghost{i:03d}@example.com" for i in range(100)]
        busy = await connector.busy(
            MARIA, ["sam@example.com", *ghosts], day, day + timedelta(days=1), tz=AMS
        )
        alone = await connector.busy(
            MARIA, ["sam@example.com"], day, day + timedelta(days=1), tz=AMS
        )
        assert busy["sam@example.com"] == alone["sam@example.com"]
        assert all(busy[g] is None for g in ghosts)
        # six calls of up to 20 people: two batches (four parts, then two) and the lone one
        assert emulator.count("getSchedule", MARIA) == 7
        assert emulator.count("batch") == 2
        assert emulator.peak[MARIA] <= 4
        assert all(e.status != 429 for e in emulator.log)


class TestHolds:
    """A hold costs one POST, and its transactionId keeps retries to one event."""

    async def test_one_post_per_hold(
        self, connector: OutlookConnector, emulator: GraphEmulator
    ) -> None:
        placed = await connector.create_hold(MARIA, hold_request())
        assert placed.created
        assert placed.start == datetime(2026, 11, 24, 9, tzinfo=UTC)
        (stored,) = emulator.created_events(MARIA)
        assert stored.show_as == "tentative"
        assert stored.attendees == ()
        assert [e.kind for e in emulator.log if e.mailbox == MARIA] == ["events.create"]

    async def test_repeated_create_makes_one_event(
        self, connector: OutlookConnector, emulator: GraphEmulator
    ) -> None:
        """Graph answers a repeated transactionId with the event it made; a re-run never gets
        here, as the pipeline finds the hold in its calendarView (tests/test_outlook_parity.py)."""
        first = await connector.create_hold(MARIA, hold_request())
        second = await connector.create_hold(MARIA, hold_request())
        assert (second.start, second.end, second.link) == (first.start, first.end, first.link)
        assert len(emulator.created_events(MARIA)) == 1
        assert emulator.count("events.list") == 0

    async def test_hold_comes_back_with_its_key(self, connector: OutlookConnector) -> None:
        await connector.create_hold(MARIA, hold_request())
        events = await connector.events(MARIA, START, END, tz=AMS)
        keys = [e.hold_key for e in events if e.hold_key is not None]
        assert keys == [HoldKey(MARIA, "sam@example.com", "2026-W48")]

    async def test_lost_answer_retried_makes_one_event(
        self, connector: OutlookConnector, emulator: GraphEmulator, sleeps: Sleeps
    ) -> None:
        emulator.inject(Fault(status=503, kind="events.create", after=True, retry_after="0.2"))
        placed = await connector.create_hold(MARIA, hold_request())
        assert placed.start == datetime(2026, 11, 24, 9, tzinfo=UTC)
        assert len(emulator.created_events(MARIA)) == 1
        assert emulator.count("events.create", MARIA) == 2
        assert emulator.count("events.list", MARIA) == 0
        assert sleeps.waits == [0.2]

    async def test_moved_hold_is_found_by_its_key(
        self, connector: OutlookConnector, emulator: GraphEmulator
    ) -> None:
        """The manager moved the hold out of the window Kindly reads, so a re-run picks
        another slot: Graph refuses the transactionId, and the hold is looked up instead."""
        first = await connector.create_hold(MARIA, hold_request())
        elsewhere = hold_request()
        later = elsewhere.start + timedelta(days=1)
        elsewhere = replace(elsewhere, start=later, end=later + timedelta(minutes=30))
        again = await connector.create_hold(MARIA, elsewhere)
        assert not again.created
        assert again.start == first.start
        assert len(emulator.created_events(MARIA)) == 1
        assert emulator.count("events.list", MARIA) == 1

    async def test_refused_transaction_without_a_live_hold(
        self, connector: OutlookConnector, emulator: GraphEmulator
    ) -> None:
        await connector.create_hold(MARIA, hold_request())
        emulator.created_events(MARIA)[0].cancelled = True
        moved = hold_request()
        later = moved.start + timedelta(days=1)
        moved = replace(moved, start=later, end=later + timedelta(minutes=30))
        with pytest.raises(ConnectorError, match="ErrorDuplicateTransactionId") as caught:
            await connector.create_hold(MARIA, moved)
        assert caught.value.manager == MARIA
        assert "\n" not in str(caught.value)
        assert len(emulator.created_events(MARIA)) == 1

    async def test_read_only_permissions_refused(
        self, connector: OutlookConnector, emulator: GraphEmulator
    ) -> None:
        emulator.app.roles = frozenset({"Calendars.ReadBasic.All"})
        with pytest.raises(AuthFailed, match=r"403.*Calendars\.ReadWrite") as caught:
            await connector.create_hold(MARIA, hold_request())
        assert caught.value.manager == MARIA
        assert emulator.created_events(MARIA) == []


class TestNetwork:
    """Graph out of reach is one line naming the host and what to check, never a traceback."""

    async def test_nobody_listening(self, emulator: GraphEmulator) -> None:
        client = make_client(emulator)
        await OutlookConnector(client).timezone(MARIA)
        emulator.stop()
        with pytest.raises(ProviderUnavailable, match=r"cannot reach 127\.0\.0\.1:\d+ "):
            await OutlookConnector(client).timezone("olaf@example.com")
        await client.aclose()

    async def test_silence_times_out(self, emulator: GraphEmulator) -> None:
        app = emulator.app
        creds = Credentials(app.tenant_id, app.client_id, app.client_secret, emulator.origin)
        client = GraphClient(
            creds, graph_endpoint=emulator.graph_endpoint, ca_bundle=trusted_bundle(), timeout=0.05
        )
        await OutlookConnector(client).timezone(MARIA)
        emulator.latency = 0.5
        with pytest.raises(ProviderUnavailable, match=r"cannot reach .*TimeoutError"):
            await OutlookConnector(client).timezone("olaf@example.com")
        await client.aclose()

    async def test_graph_certificate_not_trusted(self, emulator: GraphEmulator) -> None:
        """Signed in (msal trusts the environment's bundle), but the Graph client was given
        no CA bundle for the emulator's certificate."""
        app = emulator.app
        creds = Credentials(app.tenant_id, app.client_id, app.client_secret, emulator.origin)
        client = GraphClient(creds, graph_endpoint=emulator.graph_endpoint)
        with pytest.raises(ConnectorError, match="REQUESTS_CA_BUNDLE or SSL_CERT_FILE") as caught:
            await OutlookConnector(client).timezone(MARIA)
        assert not isinstance(caught.value, ProviderUnavailable)
        assert emulator.count("token") == 1
        await client.aclose()


class TestThrottling:
    """429/503 are retried after Retry-After; at most four requests per mailbox at once."""

    async def test_fractional_retry_after(
        self, connector: OutlookConnector, emulator: GraphEmulator, sleeps: Sleeps
    ) -> None:
        emulator.inject(Fault(status=429, kind="calendarView", retry_after="0.35", times=2))
        events = await connector.events(MARIA, START, END, tz=AMS)
        assert len(events) == 9
        assert sleeps.waits == [0.35, 0.35]

    async def test_backoff_without_retry_after(
        self, connector: OutlookConnector, emulator: GraphEmulator, sleeps: Sleeps
    ) -> None:
        emulator.inject(Fault(status=504, kind="mailboxSettings", times=2))
        await connector.timezone(MARIA)
        assert sleeps.waits == [0.5, 1.0]

    async def test_gives_up_with_a_transient_error(
        self, connector: OutlookConnector, emulator: GraphEmulator
    ) -> None:
        emulator.inject(Fault(status=429, kind="mailboxSettings", retry_after="1", times=99))
        with pytest.raises(RateLimited) as caught:
            await connector.timezone(MARIA)
        assert caught.value.transient
        assert caught.value.retry_after == 1.0
        emulator.faults.clear()
        emulator.inject(Fault(status=503, kind="mailboxSettings", times=99))
        with pytest.raises(ProviderUnavailable):
            await connector.timezone(MARIA)

    async def test_peak_concurrency_per_mailbox(
        self, connector: OutlookConnector, emulator: GraphEmulator
    ) -> None:
        emulator.latency = 0.02
        managers = [MARIA, "olaf@example.com", "sam@example.com"]
        reads = [connector.events(m, START, END, tz=AMS) for m in managers for _ in range(4)]
        zones = [connector.timezone(m) for m in managers for _ in range(4)]
        await asyncio.gather(*reads, *zones)
        assert max(emulator.peak.values()) == 4
        assert all(entry.status != 429 for entry in emulator.log)

    def test_emulator_throttles_a_fifth_request(self, emulator: GraphEmulator) -> None:
        """The limit is real: five raw requests at once get a MailboxConcurrency 429."""
        import concurrent.futures

        import requests

        client = make_client(emulator)
        token, _ = client._token()
        # long enough that all six overlap even on a loaded machine (TLS handshakes included)
        emulator.latency = 1.5
        url = f"{emulator.graph_endpoint}/users/{MARIA}/mailboxSettings"

        def get(_: int) -> requests.Response:
            return requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(get, range(6)))
        throttled = [a for a in answers if a.status_code == 429]
        assert throttled
        assert throttled[0].json()["error"]["code"] == "ApplicationThrottled"
        assert "MailboxConcurrency" in throttled[0].json()["error"]["message"]
        assert throttled[0].headers["Retry-After"] == "0.01"


class TestSignIn:
    """msal's client-credentials flow: errors are one clear line, tokens are reused."""

    async def test_wrong_secret(self, emulator: GraphEmulator) -> None:
        outlook = OutlookConnector(make_client(emulator, secret="not-the-secret"))
        with pytest.raises(AuthFailed) as caught:
            await outlook.timezone(MARIA)
        message = str(caught.value)
        assert "\n" not in message
        assert "invalid_client" in message
        assert "AADSTS7000215" in message
        assert "KINDLY_OUTLOOK__CLIENT_SECRET" in message
        await outlook.aclose()

    async def test_token_reused_and_renewed(
        self, connector: OutlookConnector, emulator: GraphEmulator
    ) -> None:
        await connector.timezone(MARIA)
        await connector.timezone(MARIA)
        assert emulator.count("token") == 1
        emulator.expire_tokens()
        await connector.timezone(MARIA)
        assert emulator.count("token") == 2

    async def test_ca_bundle_from_settings(
        self, emulator: GraphEmulator, tls: CertificatePair, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The emulator's CA reaches the client through Settings.ca_bundle alone."""
        monkeypatch.delenv("REQUESTS_CA_BUNDLE")
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        settings = outlook_settings(emulator, REQUESTS_CA_BUNDLE=str(tls.cert))
        trusting = from_settings(settings)
        assert await trusting.timezone("olaf@example.com") == ZoneInfo("America/New_York")
        await trusting.aclose()
        untrusting = OutlookConnector(make_client(emulator))
        with pytest.raises(ConnectorError, match="REQUESTS_CA_BUNDLE or SSL_CERT_FILE"):
            await untrusting.timezone(MARIA)
        await untrusting.aclose()

    async def test_from_settings_with_certificate(
        self, emulator: GraphEmulator, tmp_path: object
    ) -> None:
        from pathlib import Path

        from tests.emulators.graph import make_certificate

        pair = make_certificate(Path(str(tmp_path)) / "app", name="kindly-app")
        emulator.app.certificate_pem = pair.cert.read_text()
        pem = Path(str(tmp_path)) / "app.pem"
        pem.write_text(pair.combined_pem())
        settings = Settings(
            calendar="outlook",
            outlook={
                "tenant_id": emulator.app.tenant_id,
                "client_id": emulator.app.client_id,
                "client_certificate_file": pem,
                "authority_host": emulator.origin,
                "graph_endpoint": emulator.graph_endpoint,
            },
        )
        outlook = from_settings(settings)
        assert await outlook.timezone("olaf@example.com") == ZoneInfo("America/New_York")
        await outlook.aclose()


PROXY_ENVIRONMENTS = [
    {},
    {"HTTPS_PROXY": "http://proxy.example:3128"},
    {"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": "graph.example"},
    {"https_proxy": "http://kindly:s3cret@proxy.example:3128", "no_proxy": ".example"},
    {"REQUESTS_CA_BUNDLE": "/etc/kindly/company-ca.pem"},
]
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE")


class TunnelProxy:
    """An HTTP CONNECT proxy, as companies run them in front of Microsoft: it records
    every tunnel it opens."""

    def __init__(self) -> None:
        self.tunnels: list[str] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ")
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        host, port = target.rsplit(":", 1)
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        self.tunnels.append(target)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


class TestProxy:
    """Admins behind a proxy: Graph calls and sign-ins go through HTTPS_PROXY unless
    NO_PROXY exempts the host, as with every other tool on their machines."""

    @pytest.mark.parametrize("environment", PROXY_ENVIRONMENTS)
    def test_the_proxy_requests_would_use(
        self, environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name in PROXY_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        for url in ("https://graph.example/v1.0/$batch", "https://login.other/tenant/token"):
            theirs = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
            host = url.split("/")[2]
            assert environment_proxy("https", host) == theirs

    @pytest.mark.parametrize("exempt", [False, True])
    async def test_calls_go_through_the_proxy(
        self, emulator: GraphEmulator, monkeypatch: pytest.MonkeyPatch, exempt: bool
    ) -> None:
        proxy = TunnelProxy()
        server = await asyncio.start_server(proxy.serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        for name in PROXY_VARIABLES[:4]:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
        if exempt:
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        connector = OutlookConnector(make_client(emulator))
        try:
            assert await connector.timezone("olaf@example.com") == ZoneInfo("America/New_York")
        finally:
            await connector.aclose()
            server.close()
        target = emulator.origin.removeprefix("https://")
        # one tunnel for msal's sign-in, one for Graph's calls
        assert proxy.tunnels == ([] if exempt else [target, target])

"""The Graph emulator speaks Microsoft's wire formats (checked with plain requests)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import jwt
import requests
from hypothesis import assume, given
from hypothesis import strategies as st

from connectors.outlook import parse_graph_time, zone_named
from tests.emulators.graph import GraphEmulator
from tests.emulators.graph.graph import AVAILABILITY, _availability
from tests.emulators.graph.org import Item
from tests.emulators.graph.wire import format_local, windows_name, zone


def token(emulator: GraphEmulator, secret: str | None = None) -> requests.Response:
    app = emulator.app
    return requests.post(
        f"{emulator.origin}/{app.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app.client_id,
            "client_secret": secret or app.client_secret,
            "scope": "https://graph.microsoft.com/.default",
        },
        timeout=10,
    )


class TestIdentity:
    """The token endpoint answers like Microsoft's, roles carried in the token."""

    def test_roles_in_token(self, emulator: GraphEmulator) -> None:
        answer = token(emulator).json()
        claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
        assert answer["token_type"] == "Bearer"
        assert answer["expires_in"] == 3599
        assert "Calendars.ReadWrite" in claims["roles"]

    def test_wrong_secret(self, emulator: GraphEmulator) -> None:
        answer = token(emulator, "wrong")
        assert answer.status_code == 401
        body = answer.json()
        assert body["error"] == "invalid_client"
        assert body["error_codes"] == [7000215]
        assert body["error_description"].startswith("AADSTS7000215: ")


class TestGraphShapes:
    """Graph's error body, time windows, batches and seven-digit date-times."""

    def test_errors_and_batch(self, emulator: GraphEmulator) -> None:
        headers = {"Authorization": "Bearer " + token(emulator).json()["access_token"]}
        base = emulator.graph_endpoint
        missing = requests.get(f"{base}/users/maria@example.com/calendarView", headers=headers)
        assert missing.status_code == 400
        assert set(missing.json()["error"]) == {"code", "message", "innerError"}
        parts = [
            {"id": str(i), "method": "GET", "url": "/users/maria@example.com/mailboxSettings"}
            for i in range(21)
        ]
        too_many = requests.post(f"{base}/$batch", json={"requests": parts}, headers=headers)
        assert too_many.status_code == 400
        batch = requests.post(f"{base}/$batch", json={"requests": parts[:3]}, headers=headers)
        assert [r["status"] for r in batch.json()["responses"]] == [200, 200, 200]
        assert batch.json()["responses"][0]["body"]["timeZone"] == "W. Europe Standard Time"

    def test_batch_parts_share_the_mailbox_limit(self, emulator: GraphEmulator) -> None:
        """Graph runs a batch's parts in parallel: a fifth part on one mailbox is throttled."""
        headers = {"Authorization": "Bearer " + token(emulator).json()["access_token"]}
        emulator.latency = 0.2
        parts = [
            {"id": str(i), "method": "GET", "url": "/users/maria@example.com/mailboxSettings"}
            for i in range(5)
        ]
        batch = requests.post(
            f"{emulator.graph_endpoint}/$batch", json={"requests": parts}, headers=headers
        )
        statuses = sorted(r["status"] for r in batch.json()["responses"])
        assert statuses == [200, 200, 200, 200, 429]
        assert emulator.peak["maria@example.com"] == 5

    def test_seven_digit_date_times(self, emulator: GraphEmulator) -> None:
        headers = {
            "Authorization": "Bearer " + token(emulator).json()["access_token"],
            "Prefer": 'outlook.timezone="Eastern Standard Time"',
        }
        answer = requests.get(
            f"{emulator.graph_endpoint}/users/maria@example.com/calendarView",
            params={"startDateTime": "2026-11-02T00:00:00Z", "endDateTime": "2026-11-03T00:00:00Z"},
            headers=headers,
            timeout=10,
        ).json()
        (event,) = answer["value"]
        assert event["start"] == {
            "dateTime": "2026-11-02T04:00:00.0000000",
            "timeZone": "Eastern Standard Time",
        }


def bearer(emulator: GraphEmulator) -> dict[str, str]:
    return {"Authorization": "Bearer " + token(emulator).json()["access_token"]}


def send_raw(emulator: GraphEmulator, message_id: str, at: datetime) -> None:
    """One MIME sendMail from maria, stamped ``at`` by the emulator's clock."""
    message = EmailMessage()
    message["To"], message["Subject"], message["Message-ID"] = "olaf@example.com", "Hi", message_id
    message.set_content("Hello")
    emulator.api.clock = lambda: at
    answer = requests.post(
        f"{emulator.graph_endpoint}/users/maria@example.com/sendMail",
        data=base64.b64encode(message.as_bytes()),
        headers=bearer(emulator) | {"Content-Type": "text/plain"},
        timeout=10,
    )
    assert answer.status_code == 202


class TestSentItems:
    """Sent Items: $filter on sentDateTime and internetMessageId, $select, $top, paging."""

    SENT = "/users/maria@example.com/mailFolders/sentitems/messages"
    MONDAY = datetime(2026, 11, 23, 7, tzinfo=UTC)

    def get(self, emulator: GraphEmulator, params: dict[str, str]) -> requests.Response:
        url = emulator.graph_endpoint + self.SENT
        return requests.get(url, params=params, headers=bearer(emulator), timeout=10)

    def test_week_in_pages_newest_first(self, emulator: GraphEmulator) -> None:
        send_raw(emulator, "<old@x>", self.MONDAY - timedelta(days=8))
        for hour in range(3):
            send_raw(emulator, f"<new{hour}@x>", self.MONDAY + timedelta(hours=hour))
        params = {
            "$filter": "sentDateTime ge 2026-11-22T00:00:00Z",
            "$select": "internetMessageId",
            "$top": "1000",
        }
        page = self.get(emulator, params).json()
        seen: list[dict[str, Any]] = list(page["value"])
        while "@odata.nextLink" in page:  # the emulator pages 2 at a time in these tests
            page = requests.get(page["@odata.nextLink"], headers=bearer(emulator), timeout=10)
            page = page.json()
            seen += page["value"]
        assert [m["internetMessageId"] for m in seen] == ["<new2@x>", "<new1@x>", "<new0@x>"]
        assert set(seen[0]) == {"@odata.etag", "id", "internetMessageId"}

    def test_filters_combine(self, emulator: GraphEmulator) -> None:
        send_raw(emulator, "<a@x>", self.MONDAY)
        send_raw(emulator, "<b@x>", self.MONDAY + timedelta(hours=1))
        found = self.get(
            emulator,
            {"$filter": "sentDateTime lt 2026-11-23T08:00:00Z and internetMessageId eq '<a@x>'"},
        ).json()["value"]
        assert [m["internetMessageId"] for m in found] == ["<a@x>"]
        assert found[0]["sentDateTime"] == "2026-11-23T07:00:00Z"

    def test_what_graph_refuses(self, emulator: GraphEmulator) -> None:
        quoted = self.get(emulator, {"$filter": "sentDateTime ge '2026-11-22T00:00:00Z'"})
        assert quoted.status_code == 400
        assert "incompatible types" in quoted.json()["error"]["message"]
        assert self.get(emulator, {"$top": "1001"}).status_code == 400
        assert self.get(emulator, {"$select": "body"}).status_code == 400
        assert self.get(emulator, {"$filter": "subject eq 'x'"}).status_code == 400
        emulator.app.roles = frozenset({"Mail.Send"})
        assert self.get(emulator, {}).status_code == 403


class TestTransactionId:
    """A repeated transactionId: the same event gives the one already made, another is refused."""

    def post(self, emulator: GraphEmulator, hour: int) -> requests.Response:
        body: dict[str, Any] = {
            "subject": "1:1",
            "start": {"dateTime": f"2026-11-24T{hour:02d}:00:00", "timeZone": "UTC"},
            "end": {"dateTime": f"2026-11-24T{hour:02d}:30:00", "timeZone": "UTC"},
            "transactionId": "b1f2c3d4e5f60718293a4b5c6d7e8f90",
        }
        return requests.post(
            f"{emulator.graph_endpoint}/users/maria@example.com/events",
            json=body,
            headers=bearer(emulator),
            timeout=10,
        )

    def test_repeat_and_conflict(self, emulator: GraphEmulator) -> None:
        first, again = self.post(emulator, 9), self.post(emulator, 9)
        assert first.status_code == again.status_code == 201
        assert first.json()["id"] == again.json()["id"]
        other = self.post(emulator, 10)
        assert other.status_code == 400
        assert other.json()["error"]["code"] == "ErrorDuplicateTransactionId"
        assert len(emulator.created_events("maria@example.com")) == 1


class TestTimeRoundTrip:
    """What the emulator writes, the connector reads back to the same instant."""

    @given(
        st.datetimes(
            min_value=datetime(2000, 1, 1),
            max_value=datetime(2100, 1, 1),
            timezones=st.just(UTC),
        ),
        st.sampled_from(
            ["UTC", "W. Europe Standard Time", "India Standard Time", "Pacific Standard Time"]
        ),
    )
    def test_round_trip(self, moment: datetime, name: str) -> None:
        # a local wall-clock text cannot say which pass of the repeated autumn hour it means
        assume(moment.astimezone(zone(name)).fold == 0)
        text = format_local(moment, zone(name))
        assert len(text.rpartition(".")[2]) == 7
        # compared in UTC: comparing across zones is never equal in the repeated hour (PEP 495)
        assert parse_graph_time({"dateTime": text, "timeZone": name}).astimezone(UTC) == moment

    def test_seventh_digit(self) -> None:
        parsed = parse_graph_time({"dateTime": "2026-11-16T09:00:00.1234560", "timeZone": "UTC"})
        assert parsed == datetime(2026, 11, 16, 9, tzinfo=UTC) + timedelta(microseconds=123456)

    def test_windows_names_both_ways(self) -> None:
        assert windows_name("America/New_York") == "Eastern Standard Time"
        assert zone_named("Eastern Standard Time") == zone("America/New_York")
        assert zone_named("Asia/Kolkata") is not None
        assert zone_named("Not A Zone") is None


_BASE = datetime(2026, 11, 23, tzinfo=UTC)
_minutes = st.integers(min_value=-900, max_value=3_600).map(lambda m: _BASE + timedelta(minutes=m))


def _slot_by_slot(items: list[Item], start: datetime, end: datetime, interval: int) -> str:
    """availabilityView as Graph documents it: each slot, the strongest item overlapping it."""
    digits, cursor = [], start
    while cursor < end:
        after = cursor + timedelta(minutes=interval)
        overlapping = [
            AVAILABILITY.get(i.show_as, 2) for i in items if i.start < after and i.end > cursor
        ]
        digits.append(str(max(overlapping, default=0)))
        cursor = after
    return "".join(digits)


@given(
    spans=st.lists(
        st.tuples(_minutes, st.integers(0, 900), st.sampled_from([*AVAILABILITY, "unknown"])),
        max_size=12,
    ),
    start=_minutes,
    length=st.integers(0, 3_000),
    interval=st.sampled_from([5, 7, 15, 30, 60]),
)
def test_availability_view_is_the_slot_by_slot_definition(
    spans: list[tuple[datetime, int, str]], start: datetime, length: int, interval: int
) -> None:
    items = [
        Item(f"id{n}", at, at + timedelta(minutes=minutes), show_as=status)
        for n, (at, minutes, status) in enumerate(spans)
    ]
    end = start + timedelta(minutes=length)
    assert _availability(items, start, end, interval) == _slot_by_slot(items, start, end, interval)

"""Fixtures for the Microsoft 365 tests: a certificate, an organisation, the emulator, clients."""

from __future__ import annotations

import os
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.graph_http import Credentials, GraphClient
from connectors.outlook import OutlookConnector
from service.settings import Settings
from tests.emulators.graph import CertificatePair, GraphEmulator, make_certificate

ROSTER = """\
managers:
  - email: maria@example.com
    name: Maria Jansen
    reports:
      - email: sam@example.com
        name: Sam Lee
      - email: ria@example.com
        name: Ria Kok
  - email: olaf@example.com
    name: Olaf Berg
    reports:
      - email: ida@example.com
        name: Ida Berg
"""

# Every field rule in one calendar: a weekly series with a moved occurrence, a
# cancelled 1:1, a declined one, an all-day out-of-office, a free reminder, and
# a 1:1 in a meeting room (a resource attendee).
MARIA = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Kindly tests//EN
X-WR-TIMEZONE:Europe/Amsterdam
BEGIN:VEVENT
UID:series-sam
DTSTAMP:20261101T000000Z
DTSTART;TZID=Europe/Amsterdam:20261102T100000
DTEND;TZID=Europe/Amsterdam:20261102T103000
RRULE:FREQ=WEEKLY;COUNT=4
SUMMARY:Maria / Sam
ORGANIZER:mailto:maria@example.com
ATTENDEE;PARTSTAT=ACCEPTED:mailto:sam@example.com
END:VEVENT
BEGIN:VEVENT
UID:series-sam
DTSTAMP:20261101T000000Z
RECURRENCE-ID;TZID=Europe/Amsterdam:20261109T100000
DTSTART;TZID=Europe/Amsterdam:20261110T140000
DTEND;TZID=Europe/Amsterdam:20261110T143000
SUMMARY:Maria / Sam (moved)
ORGANIZER:mailto:maria@example.com
ATTENDEE;PARTSTAT=ACCEPTED:mailto:sam@example.com
END:VEVENT
BEGIN:VEVENT
UID:cancelled-ria
DTSTAMP:20261101T000000Z
DTSTART:20261104T090000Z
DTEND:20261104T093000Z
STATUS:CANCELLED
SUMMARY:Maria / Ria
ORGANIZER:mailto:maria@example.com
ATTENDEE;PARTSTAT=ACCEPTED:mailto:ria@example.com
END:VEVENT
BEGIN:VEVENT
UID:declined-by-maria
DTSTAMP:20261101T000000Z
DTSTART:20261105T090000Z
DTEND:20261105T093000Z
SUMMARY:Ria / Maria
ORGANIZER:mailto:ria@example.com
ATTENDEE;PARTSTAT=DECLINED:mailto:maria@example.com
END:VEVENT
BEGIN:VEVENT
UID:offsite
DTSTAMP:20261101T000000Z
DTSTART;VALUE=DATE:20261106
DTEND;VALUE=DATE:20261107
X-MICROSOFT-CDO-BUSYSTATUS:OOF
SUMMARY:Offsite
END:VEVENT
BEGIN:VEVENT
UID:reminder
DTSTAMP:20261101T000000Z
DTSTART:20261105T120000Z
DTEND:20261105T121500Z
TRANSP:TRANSPARENT
SUMMARY:Water the plants
END:VEVENT
BEGIN:VEVENT
UID:room-ria
DTSTAMP:20261101T000000Z
DTSTART:20261112T090000Z
DTEND:20261112T093000Z
SUMMARY:Maria / Ria in Room 4
DESCRIPTION:Agreed: Ria leads the retro
ORGANIZER:mailto:maria@example.com
ATTENDEE;PARTSTAT=ACCEPTED:mailto:ria@example.com
ATTENDEE;CUTYPE=ROOM;PARTSTAT=ACCEPTED:mailto:room4@example.com
END:VEVENT
END:VCALENDAR
"""

SAM = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Kindly tests//EN
BEGIN:VEVENT
UID:sam-dentist
DTSTAMP:20261101T000000Z
DTSTART:20261116T080000Z
DTEND:20261116T090000Z
SUMMARY:Dentist
END:VEVENT
BEGIN:VEVENT
UID:sam-lunch
DTSTAMP:20261101T000000Z
DTSTART:20261116T110000Z
DTEND:20261116T120000Z
TRANSP:TRANSPARENT
SUMMARY:Lunch
END:VEVENT
END:VCALENDAR
"""

OLAF = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Kindly tests//EN
X-WR-TIMEZONE:America/New_York
END:VCALENDAR
"""


def write_org(folder: Path) -> Path:
    (folder / "calendars").mkdir(parents=True)
    (folder / "roster.yaml").write_text(ROSTER)
    calendars = {"maria@example.com": MARIA, "sam@example.com": SAM, "olaf@example.com": OLAF}
    for email, text in calendars.items():
        (folder / "calendars" / f"{email}.ics").write_text(textwrap.dedent(text))
    return folder


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> CertificatePair:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def trust(tls: CertificatePair, monkeypatch: pytest.MonkeyPatch) -> CertificatePair:
    """Clients trust the emulator's certificate the standard way: REQUESTS_CA_BUNDLE."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.cert))
    return tls


@pytest.fixture
def org(tmp_path: Path) -> Path:
    return write_org(tmp_path / "org")


@pytest.fixture
def emulator(org: Path, trust: CertificatePair) -> Iterator[GraphEmulator]:
    with GraphEmulator(org, tls=trust, page_size=2, concurrency_retry_after="0.01") as running:
        yield running


class Sleeps:
    """A sleep that records what it was asked to wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_client(
    emulator: GraphEmulator, sleeps: Sleeps | None = None, *, secret: str | None = None
) -> GraphClient:
    app = emulator.app
    creds = Credentials(app.tenant_id, app.client_id, secret or app.client_secret, emulator.origin)
    return GraphClient(
        creds,
        graph_endpoint=emulator.graph_endpoint,
        sleep=sleeps or Sleeps(),
        ca_bundle=trusted_bundle(),
    )


def trusted_bundle() -> Path | None:
    """The CA bundle the environment names, as Settings would read it for a real client."""
    named = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    return Path(named) if named else None


def outlook_settings(emulator: GraphEmulator, **more: Any) -> Settings:
    """Settings pointing Kindly's Outlook connector at the emulator's app registration."""
    app = emulator.app
    outlook = {
        "tenant_id": app.tenant_id,
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "authority_host": emulator.origin,
        "graph_endpoint": emulator.graph_endpoint,
    }
    return Settings(calendar="outlook", outlook=outlook, **more)


@pytest.fixture
async def connector(emulator: GraphEmulator, sleeps: Sleeps) -> AsyncIterator[OutlookConnector]:
    outlook = OutlookConnector(make_client(emulator, sleeps))
    yield outlook
    await outlook.aclose()

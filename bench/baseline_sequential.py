"""The baseline: Kindly's weekly job as an admin would write it by hand.

    python -m bench.baseline_sequential --provider google|outlook --roster ROSTER [--outbox DIR]

A plain loop over the managers, one request at a time, with the provider's own
client library: google-api-python-client (service account, domain-wide
delegation, one subject per manager) or requests + msal (one app token). It
reads the same ``KINDLY_`` variables as Kindly to find the endpoints. What it
decides and writes is Kindly's pure core (analysis, slots, agenda, digest), so
the comparison is about the I/O pattern only: list the events up to the
lookahead (next 1:1s), read every report's free/busy (absences), insert one hold
per overdue report, send the digest; then the next manager: the calls Kindly
makes. Prints one JSON line: managers, holds, digests, seconds.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import google_auth_httplib2
import httplib2
import msal
import requests
from google.oauth2 import service_account
from googleapiclient.discovery import build

from bench.generate import NOW
from connectors import google_mapping, outlook
from service.agenda import team_agendas
from service.busy import busy_intervals
from service.cadence import analyse
from service.digest import build_digest, render_digest
from service.digest_email import compose_email, message_id_for
from service.hold_text import hold_texts
from service.model import (
    Event,
    HoldKey,
    HoldRequest,
    Interval,
    Manager,
    PlacedHold,
    Policy,
    iso_week,
)
from service.recap import agreed_expectations
from service.roster import load_roster_file
from service.slots import find_slot
from service.week import ManagerWeek

SCOPES = [
    "https://www.googleapis.com/auth/calendar.readonly",
    "https://www.googleapis.com/auth/calendar.events",
]
SENDER = "digests@bench.example"

ListEvents = Callable[[Manager, datetime, datetime, ZoneInfo], list[Event]]
ReadBusy = Callable[[Manager, list[str], datetime, datetime], Mapping[str, list[Interval] | None]]
Insert = Callable[[Manager, HoldRequest], None]
Send = Callable[[Manager, str, bytes], None]


def run_one(
    manager: Manager,
    *,
    now: datetime,
    policy: Policy,
    list_events: ListEvents,
    read_busy: ReadBusy,
    insert: Insert,
    send: Send,
) -> int:
    """One manager, start to end; returns the number of holds placed."""
    tz = ZoneInfo(manager.timezone or "UTC")
    week = iso_week(now.astimezone(tz))
    # the windows Kindly reads (service/week.py), so both make the same calls
    span = ManagerWeek.of(manager, now=now, tz=tz, policy=policy, default_language="en")
    end = span.lookahead_end
    events = list_events(manager, span.lookback_start, end, tz)
    analysis = analyse(manager, events, now=now, policy=policy, tz=tz)
    language = manager.language or "en"
    agendas = team_agendas(analysis, week=week, language=language, policy=policy)
    holds: dict[str, PlacedHold] = {}
    reports = [r.email for r in manager.reports]
    theirs = read_busy(manager, reports, span.free_busy_start, end) if reports else {}
    if analysis.overdue:
        busy = busy_intervals(events, manager.email)
        for status in analysis.overdue:
            slot = find_slot(
                [*busy, *(theirs.get(status.report.email) or ())], now=now, policy=policy, tz=tz
            )
            if slot is None:
                continue
            busy.append(slot)
            key = HoldKey(manager.email, status.report.email, week)
            title, description = hold_texts(
                manager, status, agenda=agendas[status.report.email], policy=policy
            )
            request = HoldRequest(
                key,
                slot.start.astimezone(tz),
                slot.end.astimezone(tz),
                title,
                description,
                stamp=now,
                timezone=str(tz),
            )
            insert(manager, request)
            holds[status.report.email] = PlacedHold(key, request.start, request.end, created=True)
    agreed = {
        r.email: agreed_expectations(events, manager.email, r.email, now=now)
        for r in manager.reports
    }
    digest = build_digest(
        analysis, holds=holds, agreed=agreed, policy=policy, language=language, agendas=agendas
    )
    message_id = message_id_for(manager.email, week, SENDER)
    message = compose_email(
        render_digest(digest),
        sender=SENDER,
        manager=manager,
        message_id=message_id,
        now=now.astimezone(tz),
    )
    send(manager, message_id, message.as_bytes())
    return len(holds)


# -- Google: google-api-python-client --------------------------------------------------------


class GoogleScript:
    def __init__(self, outbox: Path) -> None:
        key_file = os.environ["KINDLY_GOOGLE__SERVICE_ACCOUNT_FILE"]
        endpoint = os.environ["KINDLY_GOOGLE__API_ENDPOINT"]
        self.credentials = service_account.Credentials.from_service_account_file(
            key_file, scopes=SCOPES
        )  # type: ignore[no-untyped-call]
        self.calendar = build(
            "calendar",
            "v3",
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": endpoint + "calendar/v3/"},
            http=httplib2.Http(),
        )
        self.outbox = outbox
        self._http: tuple[str, Any] | None = None

    def _as(self, manager: Manager) -> Any:
        if self._http is None or self._http[0] != manager.email:
            subject = self.credentials.with_subject(manager.email)
            self._http = (
                manager.email,
                google_auth_httplib2.AuthorizedHttp(subject, http=httplib2.Http()),
            )
        return self._http[1]

    def list_events(
        self, manager: Manager, start: datetime, end: datetime, tz: ZoneInfo
    ) -> list[Event]:
        items: list[dict[str, Any]] = []
        token = None
        zone = tz
        while True:
            page = (
                self.calendar.events()
                .list(
                    calendarId="primary",
                    timeMin=start.isoformat(),
                    timeMax=end.isoformat(),
                    singleEvents=True,
                    orderBy="startTime",
                    showDeleted=True,
                    maxResults=250,
                    pageToken=token,
                )
                .execute(http=self._as(manager))
            )
            zone = ZoneInfo(page.get("timeZone") or tz.key)
            items += page.get("items", [])
            token = page.get("nextPageToken")
            if not token:
                return google_mapping.events_from_items(items, zone=zone)

    def read_busy(
        self, manager: Manager, people: list[str], start: datetime, end: datetime
    ) -> Mapping[str, list[Interval] | None]:
        body = {
            "timeMin": start.isoformat(),
            "timeMax": end.isoformat(),
            "items": [{"id": p} for p in people],
        }
        answer = self.calendar.freebusy().query(body=body).execute(http=self._as(manager))
        return google_mapping.busy_from(answer, people)

    def insert(self, manager: Manager, hold: HoldRequest) -> None:
        body = google_mapping.hold_body(hold, manager.email)
        self.calendar.events().insert(calendarId="primary", body=body).execute(
            http=self._as(manager)
        )

    def send(self, manager: Manager, message_id: str, raw: bytes) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        (self.outbox / f"{manager.email}.eml").write_bytes(raw)


# -- Microsoft 365: requests + msal ----------------------------------------------------------


class GraphScript:
    def __init__(self) -> None:
        env = os.environ
        self.root = env["KINDLY_OUTLOOK__GRAPH_ENDPOINT"].rstrip("/")
        host, tenant = env["KINDLY_OUTLOOK__AUTHORITY_HOST"], env["KINDLY_OUTLOOK__TENANT_ID"]
        authority = f"{host.rstrip('/')}/{tenant}"
        self.session = requests.Session()
        self.session.verify = env.get("REQUESTS_CA_BUNDLE", True)
        app = msal.ConfidentialClientApplication(
            env["KINDLY_OUTLOOK__CLIENT_ID"],
            client_credential=env["KINDLY_OUTLOOK__CLIENT_SECRET"],
            authority=authority,
            http_client=self.session,
            instance_discovery=False,
        )
        token = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
        self.session.headers["Authorization"] = f"Bearer {token['access_token']}"

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        answer = self.session.request(
            method, url if url.startswith("http") else self.root + url, timeout=60, **kwargs
        )
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def list_events(
        self, manager: Manager, start: datetime, end: datetime, tz: ZoneInfo
    ) -> list[Event]:
        url: str | None = f"/users/{manager.email}/calendarView"
        params: dict[str, str] | None = {
            "startDateTime": _utc(start),
            "endDateTime": _utc(end),
            "$top": "100",
            "$select": outlook.EVENT_FIELDS,
            "$expand": f"singleValueExtendedProperties($filter=id eq '{outlook.HOLD_PROPERTY}')",
        }
        items: list[dict[str, Any]] = []
        while url:
            page = self._call("GET", url, params=params, headers=outlook.UTC_PREFERENCE)
            items += page.get("value", [])
            url, params = page.get("@odata.nextLink"), None
        return [outlook.to_event(item, manager.email, tz) for item in items]

    def read_busy(
        self, manager: Manager, people: list[str], start: datetime, end: datetime
    ) -> Mapping[str, list[Interval] | None]:
        body = {
            "schedules": people,
            "startTime": {"dateTime": _utc(start)[:-1], "timeZone": "UTC"},
            "endTime": {"dateTime": _utc(end)[:-1], "timeZone": "UTC"},
            "availabilityViewInterval": 15,
        }
        answer = self._call(
            "POST",
            f"/users/{manager.email}/calendar/getSchedule",
            json=body,
            headers=outlook.UTC_PREFERENCE,
        )
        found: dict[str, list[Interval] | None] = {}
        for schedule in answer.get("value", []):
            found[str(schedule.get("scheduleId", "")).lower()] = [
                Interval(outlook.parse_graph_time(i["start"]), outlook.parse_graph_time(i["end"]))
                for i in schedule.get("scheduleItems") or []
                if i.get("status") != "free"
            ]
        return found

    def insert(self, manager: Manager, hold: HoldRequest) -> None:
        self._call("POST", f"/users/{manager.email}/events", json=outlook.hold_body(hold))

    def send(self, manager: Manager, message_id: str, raw: bytes) -> None:
        self._call(
            "POST",
            f"/users/{SENDER}/sendMail",
            data=base64.b64encode(raw),
            headers={"Content-Type": "text/plain"},
        )


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run(managers: Sequence[Manager], script: GoogleScript | GraphScript, *, now: datetime) -> int:
    policy = Policy()
    return sum(
        run_one(
            manager,
            now=now,
            policy=policy,
            list_events=script.list_events,
            read_busy=script.read_busy,
            insert=script.insert,
            send=script.send,
        )
        for manager in managers
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.baseline_sequential", description=__doc__
    )
    parser.add_argument("--provider", choices=("google", "outlook"), required=True)
    parser.add_argument("--roster", type=Path, required=True)
    parser.add_argument("--outbox", type=Path, default=Path("var/bench/baseline-outbox"))
    parser.add_argument("--limit", type=int, default=None, help="only the first N managers")
    args = parser.parse_args(argv)
    managers = load_roster_file(args.roster).managers[: args.limit]
    started = time.perf_counter()
    script = GoogleScript(args.outbox) if args.provider == "google" else GraphScript()
    holds = run(managers, script, now=NOW)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "managers": len(managers),
                "holds": holds,
                "digests": len(managers),
                "seconds": round(seconds, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

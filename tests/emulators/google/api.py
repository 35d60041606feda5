"""What the emulator answers, request by request, independent of the socket.

Paths, parameters, scopes, error bodies and reasons follow Google's public
reference for OAuth 2.0 service accounts, Calendar v3 and the Admin SDK
Directory API (scopes are read from the discovery documents the client
library ships, so they are Google's own).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.emulators.google import fields
from tests.emulators.google.auth import Authority, Grant, TokenError, method_scopes
from tests.emulators.google.faults import FaultKind, Faults
from tests.emulators.google.org import (
    Org,
    Resource,
    html_link,
    parse_when,
    rfc3339,
)

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")
BATCH_LIMIT = 50
FREEBUSY_LIMIT = 50
#: the longest window freeBusy answers (Google: "The requested time range is too long")
FREEBUSY_SPAN = timedelta(days=90)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json; charset=UTF-8"),)


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the emulator saw it; ``user`` is the impersonated subject."""

    method: str
    path: str
    kind: str
    user: str | None
    status: int
    in_batch: bool = False


class ApiError(Exception):
    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.domain, self.headers = code, reason, domain, headers

    def reply(self) -> Reply:
        body = {
            "error": {
                "code": self.code,
                "message": str(self),
                "errors": [{"message": str(self), "domain": self.domain, "reason": self.reason}],
                "status": STATUS_NAMES.get(self.code, "UNKNOWN"),
            }
        }
        return Reply(self.code, _json(body), (*Reply.headers, *self.headers))


@dataclass(frozen=True)
class Call:
    grant: Grant
    params: dict[str, list[str]]
    body: Any
    match: re.Match[str]

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.params.get(name)
        return values[0] if values else default

    @property
    def user(self) -> str:
        return self.grant.subject or ""


Handler = Callable[["Api", Call], Any]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    kind: str
    document: str
    method_id: str
    handler: Handler


@dataclass
class Api:
    """Routes one request (from the socket or from inside a batch) and logs it."""

    org: Org
    authority: Authority
    token_uri: str
    page_size: int = 250
    directory_page_size: int = 100
    faults: Faults = field(default_factory=Faults)
    log: list[LoggedRequest] = field(default_factory=list)
    _log_lock: threading.Lock = field(default_factory=threading.Lock)

    def counts(self, user: str | None = None) -> Counter[str]:
        """Requests per kind (of one impersonated user, or of everyone)."""
        with self._log_lock:
            return Counter(e.kind for e in self.log if user is None or e.user == user)

    def record(self, entry: LoggedRequest) -> None:
        with self._log_lock:
            self.log.append(entry)

    def handle(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        *,
        in_batch: bool = False,
    ) -> Reply:
        parts = urlsplit(target)
        path, params = parts.path, parse_qs(parts.query)
        if path == "/token" and method == "POST":
            return self._token(path, body)
        if path == "/batch/calendar/v3" and method == "POST":
            return self._batch(path, headers, body)
        for route in ROUTES:
            match = route.pattern.fullmatch(path)
            if match and route.method == method:
                return self._api(route, match, path, params, headers, body, in_batch=in_batch)
        reply = ApiError(404, "notFound", "Not Found").reply()
        self.record(LoggedRequest(method, path, "unknown", None, 404, in_batch))
        return reply

    def _token(self, path: str, body: bytes) -> Reply:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        user = _unverified_subject(form.get("assertion", ""))
        try:
            reply = Reply(200, _json(self.authority.grant(form, audience=self.token_uri)))
        except TokenError as exc:
            reply = Reply(exc.status, _json(exc.body()))
        self.record(LoggedRequest("POST", path, "token", user, reply.status))
        return reply

    def _api(
        self,
        route: Route,
        match: re.Match[str],
        path: str,
        params: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        *,
        in_batch: bool,
    ) -> Reply:
        grant = self.authority.lookup(headers.get("authorization"))
        try:
            if grant is None:
                raise ApiError(
                    401,
                    "authError",
                    "Invalid Credentials",
                    headers=(("WWW-Authenticate", 'Bearer realm="https://accounts.google.com/"'),),
                )
            self._check_scopes(grant, route)
            wanted = _fields(route, params)
            self._inject_fault(route, grant, path, params)
            payload = json.loads(body) if body else None
            result = route.handler(self, Call(grant, params, payload, match))
            reply = Reply(200, _json(fields.select(result, wanted)))
        except ApiError as exc:
            reply = exc.reply()
        except (ValueError, KeyError, TypeError) as exc:
            reply = ApiError(400, "invalid", f"Bad Request: {exc}").reply()
        user = grant.subject if grant else None
        self.record(LoggedRequest(route.method, path, route.kind, user, reply.status, in_batch))
        return reply

    def _check_scopes(self, grant: Grant, route: Route) -> None:
        if not grant.scopes & method_scopes(route.document, route.method_id):
            raise ApiError(
                403, "insufficientPermissions", "Request had insufficient authentication scopes."
            )

    def _inject_fault(
        self, route: Route, grant: Grant, path: str, params: dict[str, list[str]]
    ) -> None:
        if self.faults.latency:
            time.sleep(self.faults.latency)
        fingerprint = f"{grant.subject} {route.method} {path} {sorted(params.items())}"
        kind = self.faults.draw(fingerprint)
        if kind is not None:
            retry = self.faults.retry_after
            headers = (("Retry-After", f"{retry:g}"),) if retry is not None else ()
            raise _fault(kind, headers)

    def _batch(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        content_type = headers.get("content-type", "")
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        if not message.is_multipart():
            reply = ApiError(400, "badContent", "Batch requests must be multipart/mixed.").reply()
            self.record(LoggedRequest("POST", path, "batch", None, reply.status))
            return reply
        parts = list(message.iter_parts())
        if len(parts) > BATCH_LIMIT:
            reply = ApiError(
                400, "limitExceeded", f"Too many requests in batch (max {BATCH_LIMIT})."
            ).reply()
            self.record(LoggedRequest("POST", path, "batch", None, reply.status))
            return reply
        boundary = f"batch_{uuid.uuid4().hex}"
        chunks = []
        for part in parts:
            inner = part.get_payload(decode=True)
            assert isinstance(inner, bytes)
            method, target, inner_headers, inner_body = _parse_http(inner)
            inner_headers.setdefault("authorization", headers.get("authorization", ""))
            answer = self.handle(method, target, inner_headers, inner_body, in_batch=True)
            content_id = str(part.get("Content-ID", "")).strip("<>")
            chunks.append(_part(boundary, f"<response-{content_id}>", answer))
        outer = (*chunks, f"--{boundary}--\r\n".encode())
        user = _bearer_user(self.authority, headers.get("authorization"))
        self.record(LoggedRequest("POST", path, "batch", user, 200))
        return Reply(
            200, b"".join(outer), (("Content-Type", f"multipart/mixed; boundary={boundary}"),)
        )

    # Calendar v3 --------------------------------------------------------------

    def events_list(self, call: Call) -> Resource:
        owner = self._own_calendar(call)
        if call.param("singleEvents") != "true":
            raise ApiError(400, "invalid", "This emulator serves singleEvents=true listings only.")
        order = call.param("orderBy")
        if order not in (None, "startTime"):
            raise ApiError(
                400, "invalid", "The requested ordering is not available for the particular query."
            )
        start = _time_param(call, "timeMin") or datetime(1970, 1, 1, tzinfo=UTC)
        end = _time_param(call, "timeMax") or datetime(9999, 1, 1, tzinfo=UTC)
        if end <= start:
            raise ApiError(
                400, "timeRangeEmpty", "The specified time range is empty.", domain="calendar"
            )
        items = self.org.events(owner, start, end)
        if call.param("showDeleted") != "true":
            items = [i for i in items if i.get("status") != "cancelled"]
        for wanted in call.params.get("privateExtendedProperty", []):
            name, _, value = wanted.partition("=")
            items = [i for i in items if _private(i).get(name) == value]
        size = min(int(call.param("maxResults", "250") or 250), self.page_size, 2500)
        query = f"{owner}|{start}|{end}|{call.param('showDeleted')}"
        offset = _offset(call.param("pageToken"), query)
        calendar = self.org.calendar(owner)
        page: Resource = {
            "kind": "calendar#events",
            "etag": f'"{self.org.version}"',
            "summary": owner,
            "updated": rfc3339(datetime.now(UTC).replace(microsecond=0)),
            "timeZone": calendar.zone.key,
            "accessRole": "owner",
            "defaultReminders": [],
            "items": items[offset : offset + size],
        }
        if offset + size < len(items):
            page["nextPageToken"] = _page_token(query, offset + size)
        else:
            page["nextSyncToken"] = _page_token(query, -1)
        return page

    def events_insert(self, call: Call) -> Resource:
        owner = self._own_calendar(call)
        body = dict(call.body or {})
        calendar = self.org.calendar(owner)
        eid = str(body.get("id") or uuid.uuid4().hex)
        if not EVENT_ID.fullmatch(eid):
            raise ApiError(400, "invalid", "Invalid resource id value.")
        for part in ("start", "end"):
            if parse_when(body.get(part), calendar.zone) is None:
                raise ApiError(400, "required", f"Missing {part} time.")
        with self.org.lock:
            if eid in calendar.inserted or eid in calendar.ids_from_ics():
                raise ApiError(409, "duplicate", "The requested identifier already exists.")
            stamp = rfc3339(datetime.now(UTC).replace(microsecond=0))
            me = {"email": owner, "self": True}
            resource: Resource = {
                "eventType": "default",
                **body,
                "kind": "calendar#event",
                "etag": f'"{uuid.uuid4().hex}"',
                "id": eid,
                "status": body.get("status", "confirmed"),
                "htmlLink": html_link(eid, owner),
                "created": stamp,
                "updated": stamp,
                "creator": me,
                "organizer": me,
                "iCalUID": f"{eid}@google.com",
                "sequence": 0,
            }
            if body.get("attendees"):
                resource["attendees"] = _with_organizer(body["attendees"], owner)
            calendar.inserted[eid] = resource
            self.org.version += 1
        return resource

    def events_get(self, call: Call) -> Resource:
        owner = self._own_calendar(call)
        eid = call.match["event"]
        calendar = self.org.calendar(owner)
        with self.org.lock:
            if eid in calendar.inserted:
                return calendar.inserted[eid]
        for item in self.org.events(
            owner, datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)
        ):
            if item["id"] == eid:
                return item
        raise ApiError(404, "notFound", "Not Found")

    def freebusy_query(self, call: Call) -> Resource:
        body = call.body or {}
        start = _parse_rfc3339(body.get("timeMin"), "timeMin")
        end = _parse_rfc3339(body.get("timeMax"), "timeMax")
        items = [str(i["id"]).lower() for i in body.get("items", [])]
        if end - start > FREEBUSY_SPAN:
            raise ApiError(
                400, "timeRangeTooLong", "The requested time range is too long.", domain="calendar"
            )
        if len(items) > FREEBUSY_LIMIT:
            raise ApiError(
                400, "tooManyCalendarsRequested", "Too many calendars requested.", domain="calendar"
            )
        calendars: dict[str, Resource] = {}
        for person in items:
            user = self.org.users.get(person)
            if user is None or user.suspended:
                calendars[person] = {
                    "errors": [{"domain": "global", "reason": "notFound"}],
                    "busy": [],
                }
                continue
            calendars[person] = {"busy": self._busy(person, start, end)}
        return {
            "kind": "calendar#freeBusy",
            "timeMin": rfc3339(start.astimezone(UTC)),
            "timeMax": rfc3339(end.astimezone(UTC)),
            "calendars": calendars,
        }

    def _busy(self, person: str, start: datetime, end: datetime) -> list[Resource]:
        zone = self.org.calendar(person).zone
        spans: list[tuple[datetime, datetime]] = []
        events = [*self.org.events(person, start, end), *self.org.invitations(person, start, end)]
        for item in events:
            if item.get("status") == "cancelled" or item.get("transparency") == "transparent":
                continue
            if item.get("eventType") == "workingLocation":
                continue
            mine = [a for a in item.get("attendees", []) if a.get("email") == person]
            if mine and mine[0].get("responseStatus") == "declined":
                continue
            begin, finish = parse_when(item["start"], zone), parse_when(item["end"], zone)
            assert begin is not None
            assert finish is not None
            spans.append((max(begin, start), min(finish, end)))
        merged: list[list[datetime]] = []
        for begin, finish in sorted(spans):
            if merged and begin <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], finish)
            else:
                merged.append([begin, finish])
        return [
            {"start": rfc3339(b.astimezone(UTC)), "end": rfc3339(f.astimezone(UTC))}
            for b, f in merged
        ]

    def settings_get(self, call: Call) -> Resource:
        if call.match["setting"] != "timezone":
            raise ApiError(404, "notFound", "Not Found")
        zone = self.org.calendar(call.user).zone.key
        return {"kind": "calendar#setting", "etag": '"1"', "id": "timezone", "value": zone}

    def calendar_list_get(self, call: Call) -> Resource:
        owner = self._own_calendar(call)
        return {
            "kind": "calendar#calendarListEntry",
            "etag": '"1"',
            "id": owner,
            "summary": owner,
            "timeZone": self.org.calendar(owner).zone.key,
            "accessRole": "owner",
            "primary": True,
        }

    def _own_calendar(self, call: Call) -> str:
        """The subject's calendar; other people's calendars are free/busy only, as by default."""
        wanted = unquote(call.match["calendar"]).lower()
        if wanted in ("primary", call.user):
            return call.user
        raise ApiError(404, "notFound", "Not Found")

    # Admin SDK Directory ------------------------------------------------------

    def users_list(self, call: Call) -> Resource:
        me = self.org.users.get(call.user)
        if me is None or not me.admin:
            raise ApiError(403, "forbidden", "Not Authorized to access this resource/api")
        if call.param("customer") not in ("my_customer", None) or not (
            call.param("customer") or call.param("domain")
        ):
            raise ApiError(400, "badRequest", "Bad Request")
        users = sorted(self.org.users.values(), key=lambda u: u.email)
        size = min(int(call.param("maxResults", "100") or 100), self.directory_page_size, 500)
        offset = _offset(call.param("pageToken"), "users")
        page: Resource = {
            "kind": "admin#directory#users",
            "etag": f'"{self.org.version}"',
            "users": [_directory_user(u) for u in users[offset : offset + size]],
        }
        if offset + size < len(users):
            page["nextPageToken"] = _page_token("users", offset + size)
        return page


CAL = "calendar.v3.json"
DIRECTORY = "admin.directory_v1.json"
ROUTES = (
    Route(
        "GET",
        re.compile(r"/calendar/v3/calendars/(?P<calendar>[^/]+)/events"),
        "events.list",
        CAL,
        "calendar.events.list",
        Api.events_list,
    ),
    Route(
        "POST",
        re.compile(r"/calendar/v3/calendars/(?P<calendar>[^/]+)/events"),
        "events.insert",
        CAL,
        "calendar.events.insert",
        Api.events_insert,
    ),
    Route(
        "GET",
        re.compile(r"/calendar/v3/calendars/(?P<calendar>[^/]+)/events/(?P<event>[^/]+)"),
        "events.get",
        CAL,
        "calendar.events.get",
        Api.events_get,
    ),
    Route(
        "POST",
        re.compile(r"/calendar/v3/freeBusy"),
        "freebusy.query",
        CAL,
        "calendar.freebusy.query",
        Api.freebusy_query,
    ),
    Route(
        "GET",
        re.compile(r"/calendar/v3/users/me/settings/(?P<setting>[^/]+)"),
        "settings.get",
        CAL,
        "calendar.settings.get",
        Api.settings_get,
    ),
    Route(
        "GET",
        re.compile(r"/calendar/v3/users/me/calendarList/(?P<calendar>[^/]+)"),
        "calendarList.get",
        CAL,
        "calendar.calendarList.get",
        Api.calendar_list_get,
    ),
    Route(
        "GET",
        re.compile(r"/admin/directory/v1/users"),
        "users.list",
        DIRECTORY,
        "directory.users.list",
        Api.users_list,
    ),
)


def _fields(route: Route, params: dict[str, list[str]]) -> fields.Selection | None:
    """The partial response asked for with ``fields``; None: the whole resource."""
    wanted = params.get("fields")
    if not wanted:
        return None
    try:
        tree = fields.parse(wanted[0])
        fields.check(tree, route.document, route.method_id)
    except fields.FieldsError as exc:
        raise ApiError(400, "invalidParameter", str(exc)) from None
    return tree


def _fault(kind: FaultKind, headers: tuple[tuple[str, str], ...]) -> ApiError:
    if kind == "429":
        return ApiError(
            429, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits", headers=headers
        )
    if kind == "403-rate":
        return ApiError(
            403, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits", headers=headers
        )
    if kind == "403-user-rate":
        return ApiError(
            403,
            "userRateLimitExceeded",
            "User Rate Limit Exceeded",
            domain="usageLimits",
            headers=headers,
        )
    return ApiError(int(kind), "backendError", "Backend Error", headers=headers)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _parse_rfc3339(value: object, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ApiError(400, "badRequest", f"Bad Request: {name}") from None
    if moment.tzinfo is None:
        raise ApiError(400, "badRequest", f"Bad Request: {name} needs a time zone offset")
    return moment


def _time_param(call: Call, name: str) -> datetime | None:
    value = call.param(name)
    return None if value is None else _parse_rfc3339(value, name)


def _page_token(query: str, offset: int) -> str:
    raw = json.dumps({"q": hashlib.sha1(query.encode()).hexdigest()[:12], "o": offset})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _offset(token: str | None, query: str) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["q"] != hashlib.sha1(query.encode()).hexdigest()[:12] or data["o"] < 0:
            raise ValueError(token)
        return int(data["o"])
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "invalid", "Invalid page token value.") from None


def _private(item: Resource) -> dict[str, str]:
    return dict(item.get("extendedProperties", {}).get("private", {}))


def _with_organizer(attendees: list[Resource], owner: str) -> list[Resource]:
    found = [dict(a, email=str(a["email"]).lower()) for a in attendees]
    for attendee in found:
        attendee.setdefault("responseStatus", "needsAction")
        if attendee["email"] == owner:
            attendee.update(organizer=True, self=True, responseStatus="accepted")
    if not any(a["email"] == owner for a in found):
        found.insert(
            0, {"email": owner, "organizer": True, "self": True, "responseStatus": "accepted"}
        )
    return found


def _directory_user(user: Any) -> Resource:
    given, _, family = user.name.partition(" ")
    resource: Resource = {
        "kind": "admin#directory#user",
        "id": str(int(hashlib.sha1(user.email.encode()).hexdigest()[:15], 16)),
        "primaryEmail": user.email,
        "name": {"givenName": given, "familyName": family, "fullName": user.name},
        "isAdmin": user.admin,
        "suspended": user.suspended,
        "orgUnitPath": "/",
    }
    if user.manager:
        resource["relations"] = [{"value": user.manager, "type": "manager"}]
    return resource


def _parse_http(raw: bytes) -> tuple[str, str, dict[str, str], bytes]:
    """One ``application/http`` part: request line, headers, body."""
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    request_line, *header_lines = head.decode().split("\n")
    method, target, _ = request_line.split(" ", 2)
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, target, headers, body.rstrip(b"\n")


def _part(boundary: str, content_id: str, reply: Reply) -> bytes:
    reason = {
        200: "OK",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        409: "Conflict",
        429: "Too Many Requests",
    }.get(reply.status, "Error")
    headers = "".join(f"{name}: {value}\r\n" for name, value in reply.headers)
    return (
        (
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: {content_id}\r\n\r\n"
            f"HTTP/1.1 {reply.status} {reason}\r\n{headers}"
            f"Content-Length: {len(reply.body)}\r\n\r\n"
        ).encode()
        + reply.body
        + b"\r\n"
    )


def _unverified_subject(assertion: str) -> str | None:
    try:
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("sub") or claims.get("iss"))
    except (IndexError, ValueError):
        return None


def _bearer_user(authority: Authority, authorization: str | None) -> str | None:
    grant = authority.lookup(authorization)
    return grant.subject if grant else None

"""Microsoft Graph v1.0, the calendar, mail and directory parts Kindly uses.

Shapes follow Microsoft's public reference: calendarView and events with
``$select``/``$top``/``@odata.nextLink``, extended properties through ``$filter``
and ``$expand``, a repeated ``transactionId`` (the same event again: the one
already made; a different one: ``ErrorDuplicateTransactionId``), getSchedule,
mailboxSettings, directReports, users, sendMail (JSON or MIME), and Sent Items
filtered by internetMessageId and/or sentDateTime, with ``$select``, ``$top``
(1-1000, default 10) and paging, newest first. Every route checks the token's
application permissions like Graph does.
"""

from __future__ import annotations

import base64
import email.policy
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from typing import Any
from urllib.parse import urlencode

from tests.emulators.graph.identity import Reply
from tests.emulators.graph.org import Attendee, Item, Organisation, User, item_id
from tests.emulators.graph.wire import (
    date_time_time_zone,
    error_body,
    format_offset,
    parse_local,
    windows_name,
    zone,
)

#: getSchedule's longest window (ErrorTimeIntervalTooBig beyond it; the reference said 42
#: days for years, the service allows 62); Kindly reads at most KINDLY_LOOKAHEAD_DAYS <= 41
SCHEDULE_SPAN = timedelta(days=62)
READ_CALENDAR = frozenset({"Calendars.ReadBasic.All", "Calendars.Read", "Calendars.ReadWrite"})
READ_FULL_CALENDAR = frozenset({"Calendars.Read", "Calendars.ReadWrite"})
WRITE_CALENDAR = frozenset({"Calendars.ReadWrite"})
READ_USERS = frozenset({"User.Read.All", "User.ReadBasic.All", "Directory.Read.All"})
READ_SETTINGS = frozenset({"MailboxSettings.Read", "MailboxSettings.ReadWrite"})
SEND_MAIL = frozenset({"Mail.Send"})
HEADERS = BytesHeaderParser(policy=email.policy.default)
READ_MAIL = frozenset({"Mail.ReadBasic.All", "Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite"})

EVENT_FIELDS = frozenset(
    [
        "id",
        "subject",
        "body",
        "bodyPreview",
        "start",
        "end",
        "isAllDay",
        "isCancelled",
        "showAs",
        "type",
        "seriesMasterId",
        "originalStart",
        "organizer",
        "attendees",
        "responseStatus",
        "webLink",
        "iCalUId",
        "transactionId",
        "createdDateTime",
        "lastModifiedDateTime",
        "changeKey",
        "categories",
        "sensitivity",
        "location",
        "isOrganizer",
        "importance",
        "isReminderOn",
        "originalStartTimeZone",
        "originalEndTimeZone",
    ]
)
_EXT_FILTER = re.compile(
    r"singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id eq '((?:[^']|'')*)'"
    r"\s+and\s+\1/value eq '((?:[^']|'')*)'\s*\)",
    re.IGNORECASE,
)
_EXT_EXPAND = re.compile(
    r"singleValueExtendedProperties\(\s*\$filter\s*=\s*id eq '((?:[^']|'')*)'\s*\)", re.IGNORECASE
)
#: one comparison of a Sent Items $filter; clauses are joined with "and"
_MESSAGE_CLAUSE = re.compile(
    r"\s*(internetMessageId|sentDateTime)\s+(eq|ne|ge|gt|le|lt)\s+('(?:[^']|'')*'|[^\s']+)\s*",
    re.IGNORECASE,
)
MESSAGE_FIELDS = frozenset(
    [
        "id",
        "internetMessageId",
        "subject",
        "sentDateTime",
        "receivedDateTime",
        "createdDateTime",
        "lastModifiedDateTime",
        "toRecipients",
        "from",
        "sender",
        "isDraft",
        "isRead",
        "parentFolderId",
        "conversationId",
    ]
)
#: Graph's documented range of $top for messages; 10 when the client gives none
MESSAGES_TOP = range(1, 1001)
MESSAGES_DEFAULT_TOP = 10
_TIMEZONE_PREFERENCE = re.compile(r'outlook\.timezone\s*=\s*"([^"]+)"', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Call:
    """One Graph request, relative to the version root (``/users/…``)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    #: scheme://host:port/v1.0, for nextLinks and webLinks
    root: str
    roles: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SentMail:
    sender: str
    internet_message_id: str
    subject: str
    to: tuple[str, ...]
    mime: bytes | None
    sent_at: datetime


def graph_error(status: int, code: str, message: str, **headers: str) -> Reply:
    return Reply(status, error_body(code, message), {"Content-Type": "application/json"} | headers)


def _unquote(value: str) -> str:
    return value.replace("''", "'")


def classify(method: str, path: str) -> tuple[str, str | None]:
    """(kind, mailbox key as written) for the request log and concurrency accounting."""
    parts = [p for p in path.split("/") if p]
    if parts == ["$batch"]:
        return "batch", None
    if parts == ["users"]:
        return "users", None
    if len(parts) < 3 or parts[0] != "users":
        return "other", parts[1] if len(parts) > 1 and parts[0] == "users" else None
    mailbox, rest = parts[1], [p for p in parts[2:] if p != "calendar"]
    kinds = {
        ("GET", "calendarView"): "calendarView",
        ("GET", "events"): "events.list",
        ("POST", "events"): "events.create",
        ("POST", "getSchedule"): "getSchedule",
        ("GET", "mailboxSettings"): "mailboxSettings",
        ("GET", "directReports"): "directReports",
        ("POST", "sendMail"): "sendMail",
    }
    if rest[:1] == ["mailFolders"] and rest[-1:] == ["messages"]:
        return "sentItems", mailbox
    return kinds.get((method, rest[0] if rest else ""), "other"), mailbox


@dataclass
class GraphApi:
    org: Organisation
    page_size: int = 5
    created: dict[str, list[Item]] = field(default_factory=dict)
    sent: list[SentMail] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: stamps sentDateTime; a test sets it to put mail in another week
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    #: a fault switch: while set, mail is delivered but not yet filed in Sent Items, as
    #: Exchange sometimes files it minutes late; :meth:`file_sent_items` files it
    sent_items_lag: bool = False
    #: ids of the messages sent while Sent Items lagged, not filed there yet
    unfiled: set[int] = field(default_factory=set)

    def file_sent_items(self) -> None:
        """Sent Items catch up: every message sent so far shows there."""
        with self.lock:
            self.unfiled.clear()

    def handle(self, call: Call) -> Reply:
        kind, mailbox = classify(call.method, call.path)
        if kind == "users":
            return self._users(call)
        if kind == "other" or mailbox is None:
            return graph_error(
                400, "BadRequest", f"Resource not found for the segment '{call.path}'."
            )
        user = self.org.user(mailbox)
        if user is None:
            return graph_error(
                404, "ErrorInvalidUser", f"The requested user '{mailbox}' is invalid."
            )
        handler = getattr(self, "_" + kind.replace(".", "_"))
        reply: Reply = handler(call, user)
        return reply

    # -- permissions ---------------------------------------------------------------

    @staticmethod
    def _denied(call: Call, needed: frozenset[str]) -> Reply | None:
        if call.roles & needed:
            return None
        return graph_error(
            403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
        )

    # -- calendar ------------------------------------------------------------------

    def _items(self, user: User, start: datetime, end: datetime) -> list[Item]:
        with self.lock:
            mine = [i for i in self.created.get(user.email, []) if i.start < end and i.end > start]
        found = self.org.items(user.email, start, end) + mine
        return sorted(found, key=lambda i: (i.start, i.id))

    def _calendarView(self, call: Call, user: User) -> Reply:
        if (refused := self._denied(call, READ_CALENDAR)) is not None:
            return refused
        try:
            start = _instant_param(call.query["startDateTime"])
            end = _instant_param(call.query["endDateTime"])
        except (KeyError, ValueError):
            return graph_error(
                400,
                "ErrorInvalidParameter",
                "This request requires a time window specified by the query string parameters "
                "StartDateTime and EndDateTime.",
            )
        return self._page(call, user, self._items(user, start, end))

    def _events_list(self, call: Call, user: User) -> Reply:
        if (refused := self._denied(call, READ_CALENDAR)) is not None:
            return refused
        wanted = call.query.get("$filter")
        with self.lock:
            items = list(self.created.get(user.email, []))
        if wanted:
            match = _EXT_FILTER.fullmatch(wanted.strip())
            if match is None:
                return graph_error(
                    400, "ErrorInvalidUrlQueryFilter", "The $filter is not supported."
                )
            if (refused := self._denied(call, READ_FULL_CALENDAR)) is not None:
                return refused
            prop, value = _unquote(match.group(2)).lower(), _unquote(match.group(3)).lower()
            items = [
                i
                for i in items
                if any(k.lower() == prop and v.lower() == value for k, v in i.extended.items())
            ]
        return self._page(call, user, items)

    def _page(self, call: Call, user: User, items: list[Item]) -> Reply:
        select = [s.strip() for s in call.query.get("$select", "").split(",") if s.strip()]
        unknown = [s for s in select if s not in EVENT_FIELDS]
        if unknown:
            return graph_error(
                400,
                "RequestBroker--ParseUri",
                f"Could not find a property named '{unknown[0]}' on type 'microsoft.graph.event'.",
            )
        expand = _EXT_EXPAND.fullmatch(call.query.get("$expand", "").strip())
        if call.query.get("$expand") and expand is None:
            return graph_error(400, "BadRequest", "Parsing OData Select and Expand failed.")
        tz_name = _preferred_zone(call.headers)
        skip = int(call.query.get("$skip", "0"))
        top = min(int(call.query.get("$top", "10")), self.page_size)
        page = items[skip : skip + top]
        prop = _unquote(expand.group(1)) if expand else None
        basic = not (call.roles & READ_FULL_CALENDAR)
        payload: dict[str, Any] = {
            "@odata.context": f"{call.root}/$metadata#users('{user.email}')/events",
            "value": [self._render(i, user, tz_name, select, prop, basic, call.root) for i in page],
        }
        if skip + top < len(items):
            query = dict(call.query) | {"$skip": str(skip + top)}
            payload["@odata.nextLink"] = f"{call.root}{call.path}?{urlencode(query)}"
        headers = {"Preference-Applied": f'outlook.timezone="{tz_name}"'}
        return Reply.json(200, payload, **headers)

    def _render(
        self,
        item: Item,
        user: User,
        tz_name: str,
        select: list[str],
        prop: str | None,
        basic: bool,
        root: str,
    ) -> dict[str, Any]:
        full = _event_json(item, user, tz_name, root)
        if basic:
            full.pop("body"), full.pop("bodyPreview")
        shown = {k: v for k, v in full.items() if not select or k in select or k == "id"}
        shown["@odata.etag"] = 'W/"' + item.id[-16:] + '"'
        if prop is not None and not basic:
            found = [
                {"id": k, "value": v} for k, v in item.extended.items() if k.lower() == prop.lower()
            ]
            if found:
                shown["singleValueExtendedProperties"] = found
        return shown

    def _events_create(self, call: Call, user: User) -> Reply:
        if (refused := self._denied(call, WRITE_CALENDAR)) is not None:
            return refused
        try:
            body = json.loads(call.body)
            start, end = parse_local(body["start"]), parse_local(body["end"])
        except (ValueError, KeyError, TypeError):
            return graph_error(
                400,
                "ErrorInvalidRequest",
                "Your request can't be completed. start and end are required.",
            )
        if end <= start:
            return graph_error(
                400, "ErrorInvalidRequest", "The end of the event must be after its start."
            )
        tz_name = _preferred_zone(call.headers, str(body["start"].get("timeZone") or "UTC"))
        with self.lock:
            mine = self.created.setdefault(user.email, [])
            transaction = body.get("transactionId")
            existing = next(
                (i for i in mine if transaction and i.transaction_id == transaction), None
            )
            if existing is None:
                existing = _created_item(user, body, start, end)
                mine.append(existing)
            elif not _same_event(existing, body, start, end):
                return graph_error(
                    400,
                    "ErrorDuplicateTransactionId",
                    "Your request can't be completed. The TransactionId specified in the "
                    "request has already been used to create a different event.",
                )
        return Reply.json(201, _event_json(existing, user, tz_name, call.root))

    def _getSchedule(self, call: Call, user: User) -> Reply:
        if (refused := self._denied(call, READ_CALENDAR)) is not None:
            return refused
        try:
            body = json.loads(call.body)
            start, end = parse_local(body["startTime"]), parse_local(body["endTime"])
            interval = int(body.get("availabilityViewInterval", 30))
            schedules = [str(s) for s in body["schedules"]]
        except (ValueError, KeyError, TypeError):
            return graph_error(
                400, "ErrorInvalidRequest", "schedules, startTime and endTime are required."
            )
        if end - start > SCHEDULE_SPAN:
            return graph_error(
                400,
                "ErrorTimeIntervalTooBig",
                "The requested time duration specified for FreeBusyViewOptions.TimeWindow is "
                f"too long. The allowed limit = {SCHEDULE_SPAN.days} days.",
            )
        tz_name = _preferred_zone(call.headers)
        value = [self._schedule(s, start, end, interval, tz_name) for s in schedules]
        return Reply.json(
            200,
            {
                "@odata.context": (
                    f"{call.root}/$metadata#Collection(microsoft.graph.scheduleInformation)"
                ),
                "value": value,
            },
        )

    def _schedule(
        self, who: str, start: datetime, end: datetime, interval: int, tz_name: str
    ) -> dict[str, Any]:
        person = self.org.user(who)
        if person is None:
            return {
                "scheduleId": who,
                "availabilityView": "",
                "scheduleItems": [],
                "error": {
                    "message": f"The user '{who}' wasn't found.",
                    "responseCode": "UserNotFound",
                },
            }
        items = [
            i
            for i in self._items(person, start, end)
            if not i.cancelled and i.show_as != "free" and i.response_of(person.email) != "declined"
        ]
        return {
            "scheduleId": who,
            "availabilityView": _availability(items, start, end, interval),
            "scheduleItems": [
                {
                    "isPrivate": False,
                    "status": i.show_as,
                    "subject": i.subject,
                    "location": "",
                    "start": date_time_time_zone(i.start, tz_name),
                    "end": date_time_time_zone(i.end, tz_name),
                }
                for i in items
            ],
            "workingHours": working_hours(person),
        }

    # -- mailbox settings and directory -------------------------------------------

    def _mailboxSettings(self, call: Call, user: User) -> Reply:
        if (refused := self._denied(call, READ_SETTINGS)) is not None:
            return refused
        windows = windows_name(user.timezone)
        return Reply.json(
            200,
            {
                "@odata.context": f"{call.root}/$metadata#users('{user.email}')/mailboxSettings",
                "timeZone": windows,
                "dateFormat": "dd-MM-yyyy",
                "timeFormat": "HH:mm",
                "workingHours": working_hours(user),
            },
        )

    def _directReports(self, call: Call, user: User) -> Reply:
        if (refused := self._denied(call, READ_USERS)) is not None:
            return refused
        reports = [u for u in self.org.users.values() if u.manager == user.email]
        return self._user_page(call, reports, f"users('{user.email}')/directReports")

    def _users(self, call: Call) -> Reply:
        if (refused := self._denied(call, READ_USERS)) is not None:
            return refused
        return self._user_page(call, list(self.org.users.values()), "users")

    def _user_page(self, call: Call, users: list[User], context: str) -> Reply:
        select = [s.strip() for s in call.query.get("$select", "").split(",") if s.strip()]
        skip = int(call.query.get("$skip", "0"))
        top = min(int(call.query.get("$top", "100")), self.page_size)
        value = [_user_json(u, select) for u in users[skip : skip + top]]
        payload: dict[str, Any] = {
            "@odata.context": f"{call.root}/$metadata#{context}",
            "value": value,
        }
        if skip + top < len(users):
            query = dict(call.query) | {"$skip": str(skip + top)}
            payload["@odata.nextLink"] = f"{call.root}{call.path}?{urlencode(query)}"
        return Reply.json(200, payload)

    # -- mail ----------------------------------------------------------------------

    def _sendMail(self, call: Call, user: User) -> Reply:
        if (refused := self._denied(call, SEND_MAIL)) is not None:
            return refused
        content_type = call.headers.get("content-type", "")
        try:
            if content_type.startswith("text/plain"):
                mail = _mime_mail(user, base64.b64decode(call.body, validate=True), self.clock())
            else:
                mail = _json_mail(user, json.loads(call.body), self.clock())
        except (ValueError, KeyError, TypeError):
            return graph_error(
                400,
                "ErrorMimeContentInvalidBase64String",
                "Invalid base64 string for MIME content.",
            )
        with self.lock:
            self.sent.append(mail)
            if self.sent_items_lag:
                self.unfiled.add(id(mail))
        return Reply(202)

    def _sentItems(self, call: Call, user: User) -> Reply:
        if (refused := self._denied(call, READ_MAIL)) is not None:
            return refused
        folder = call.path.split("/")[4] if len(call.path.split("/")) > 4 else ""
        if folder.lower() not in ("sentitems", "('sentitems')"):
            return graph_error(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        select = [s.strip() for s in call.query.get("$select", "").split(",") if s.strip()]
        unknown = [s for s in select if s not in MESSAGE_FIELDS]
        if unknown:
            return graph_error(
                400,
                "RequestBroker--ParseUri",
                f"Could not find a property named '{unknown[0]}' on type "
                "'microsoft.graph.message'.",
            )
        top = _count(call.query.get("$top", str(MESSAGES_DEFAULT_TOP)))
        skip = _count(call.query.get("$skip", "0"))
        # Graph documents 1-1000; refusing more keeps a client from relying on more
        if top not in MESSAGES_TOP or skip < 0:
            return graph_error(
                400, "ErrorInvalidParameter", "$top must be from 1 to 1000 and $skip not negative."
            )
        with self.lock:
            mine = [m for m in self.sent if m.sender == user.email and id(m) not in self.unfiled]
        wanted = call.query.get("$filter", "").strip()
        if wanted:
            kept = _filter_messages(mine, wanted)
            if isinstance(kept, Reply):
                return kept
            mine = kept
        mine.sort(key=lambda m: m.sent_at, reverse=True)
        size = min(top, self.page_size)
        payload: dict[str, Any] = {
            "@odata.context": (
                f"{call.root}/$metadata#users('{user.email}')/mailFolders('sentitems')/messages"
                + (f"({','.join(select)})" if select else "")
            ),
            "value": [_message_json(m, user, select) for m in mine[skip : skip + size]],
        }
        if skip + size < len(mine):
            query = dict(call.query) | {"$skip": str(skip + size)}
            payload["@odata.nextLink"] = f"{call.root}{call.path}?{urlencode(query)}"
        return Reply.json(200, payload)


def _filter_messages(mail: list[SentMail], wanted: str) -> list[SentMail] | Reply:
    """The messages a Sent Items ``$filter`` keeps, or Graph's 400 for one it cannot read."""
    kept = list(mail)
    for clause in re.split(r"\s+and\s+", wanted, flags=re.IGNORECASE):
        match = _MESSAGE_CLAUSE.fullmatch(clause)
        if match is None:
            return graph_error(400, "ErrorInvalidUrlQueryFilter", "The $filter is not supported.")
        name, op, literal = match.group(1).lower(), match.group(2).lower(), match.group(3)
        if name == "internetmessageid":
            if op != "eq" or not literal.startswith("'"):
                return graph_error(
                    400, "ErrorInvalidUrlQueryFilter", "The $filter is not supported."
                )
            value = _unquote(literal[1:-1])
            kept = [m for m in kept if m.internet_message_id == value]
            continue
        try:
            # a DateTimeOffset literal is written bare; a quoted one is an Edm.String
            moment = datetime.fromisoformat(literal.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            return graph_error(
                400,
                "BadRequest",
                "A binary operator with incompatible types was detected. Found operand types "
                "'Edm.DateTimeOffset' and 'Edm.String' for operator kind "
                f"'{_OPERATOR_KINDS[op]}'.",
            )
        kept = [m for m in kept if _COMPARE[op](_second(m.sent_at), moment)]
    return kept


_OPERATOR_KINDS = {
    "eq": "Equal",
    "ne": "NotEqual",
    "ge": "GreaterThanOrEqual",
    "gt": "GreaterThan",
    "le": "LessThanOrEqual",
    "lt": "LessThan",
}
_COMPARE: dict[str, Callable[[datetime, datetime], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "ge": lambda a, b: a >= b,
    "gt": lambda a, b: a > b,
    "le": lambda a, b: a <= b,
    "lt": lambda a, b: a < b,
}


def _count(text: str) -> int:
    """A $top or $skip number; -1 for one that is not."""
    return int(text) if text.isdigit() else -1


def _second(moment: datetime) -> datetime:
    """sentDateTime as Graph keeps it: whole seconds, UTC."""
    return moment.astimezone(UTC).replace(microsecond=0)


def _message_json(mail: SentMail, user: User, select: list[str]) -> dict[str, Any]:
    stamp = format_offset(mail.sent_at)
    me = {"emailAddress": {"name": user.name, "address": user.email}}
    full: dict[str, Any] = {
        "id": item_id(user.email, "message", mail.internet_message_id),
        "createdDateTime": stamp,
        "lastModifiedDateTime": stamp,
        "receivedDateTime": stamp,
        "sentDateTime": stamp,
        "internetMessageId": mail.internet_message_id,
        "subject": mail.subject,
        "isRead": True,
        "isDraft": False,
        "parentFolderId": item_id(user.email, "folder", "sentitems"),
        "conversationId": item_id(user.email, "conversation", mail.internet_message_id),
        "from": me,
        "sender": me,
        "toRecipients": [{"emailAddress": {"address": a}} for a in mail.to],
    }
    shown = {k: v for k, v in full.items() if not select or k in select or k == "id"}
    return {"@odata.etag": 'W/"' + shown["id"][-16:] + '"', **shown}


def _same_event(item: Item, body: dict[str, Any], start: datetime, end: datetime) -> bool:
    """Whether a create repeats the event its transactionId made (a client's retry)."""
    return (item.start, item.end, item.subject) == (start, end, str(body.get("subject", "")))


def _instant_param(text: str) -> datetime:
    """startDateTime/endDateTime: ISO 8601, UTC unless an offset is given."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _preferred_zone(headers: dict[str, str], default: str = "UTC") -> str:
    match = _TIMEZONE_PREFERENCE.search(headers.get("prefer", ""))
    if match is None:
        return default
    try:
        zone(match.group(1))
    except KeyError:
        return default
    return match.group(1)


def _person(attendee: Attendee) -> dict[str, Any]:
    return {"emailAddress": {"name": attendee.name, "address": attendee.email}}


def _event_json(item: Item, user: User, tz_name: str, root: str) -> dict[str, Any]:
    """The whole event resource as Graph shows it to ``user`` in zone ``tz_name``."""
    if item.all_day:
        # all-day events keep their dates whatever zone is asked for
        local = zone(tz_name)
        start = item.start.replace(tzinfo=local)
        end = item.end.replace(tzinfo=local)
    else:
        start, end = item.start, item.end
    response = item.response_of(user.email)
    origin = root.rsplit("/", 1)[0]
    return {
        "id": item.id,
        "createdDateTime": "2026-01-05T09:00:00.0000000Z",
        "lastModifiedDateTime": "2026-01-05T09:00:00.0000000Z",
        "changeKey": item.id[-16:],
        "transactionId": item.transaction_id,
        "iCalUId": item.ical_uid or item.id,
        "subject": item.subject,
        "bodyPreview": item.body[:255],
        "body": {"contentType": item.body_type, "content": item.body},
        "importance": "normal",
        "sensitivity": "normal",
        "isAllDay": item.all_day,
        "isCancelled": item.cancelled,
        "isOrganizer": response == "organizer",
        "showAs": item.show_as,
        "type": item.type,
        "seriesMasterId": item.series_master_id,
        "originalStart": format_offset(item.original_start) if item.original_start else None,
        "start": date_time_time_zone(start, tz_name),
        "end": date_time_time_zone(end, tz_name),
        "responseStatus": {"response": response, "time": "0001-01-01T00:00:00Z"},
        "organizer": _person(item.organizer) if item.organizer else None,
        "attendees": [
            {
                "type": a.type,
                "status": {"response": a.response, "time": "0001-01-01T00:00:00Z"},
                **_person(a),
            }
            for a in item.attendees
        ],
        "webLink": f"{origin}/owa/?itemid={item.id}&exvsurl=1&path=/calendar/item",
    }


def _created_item(user: User, body: dict[str, Any], start: datetime, end: datetime) -> Item:
    attendees = tuple(
        Attendee(
            str(a["emailAddress"]["address"]).lower(),
            str(a["emailAddress"].get("name") or a["emailAddress"]["address"]),
            str(a.get("type", "required")),
            "none",
        )
        for a in body.get("attendees") or []
    )
    props = {str(p["id"]): str(p["value"]) for p in body.get("singleValueExtendedProperties") or []}
    content = body.get("body") or {}
    return Item(
        id=item_id(user.email, "created", str(uuid.uuid4())),
        start=start,
        end=end,
        subject=str(body.get("subject", "")),
        body=str(content.get("content", "")),
        body_type=str(content.get("contentType", "text")).lower(),
        show_as=str(body.get("showAs", "busy")),
        organizer=Attendee(user.email, user.name, "required", "organizer"),
        attendees=attendees,
        transaction_id=body.get("transactionId"),
        extended=props,
    )


def _availability(items: list[Item], start: datetime, end: datetime, interval: int) -> str:
    """One digit per ``interval`` minutes from ``start``: the strongest status of the items
    overlapping that slot (0 free, 1 tentative, 2 busy, 3 away).

    Each item marks only the slots it overlaps, found by division, so a long window
    costs its slots once rather than once per item.
    """
    step = timedelta(minutes=interval)
    levels = [0] * -((start - end) // step)  # slots until ``end``, the last one cut short
    for item in items:
        weight = AVAILABILITY.get(item.show_as, 2)
        first = max(0, (item.start - start) // step)  # the first slot ending after it starts
        last = min(len(levels), -((start - item.end) // step))  # slots starting before it ends
        for slot in range(first, last):
            levels[slot] = max(levels[slot], weight)
    return "".join(map(str, levels))


#: availabilityView's digit for each showAs
AVAILABILITY = {"free": 0, "workingElsewhere": 0, "tentative": 1, "busy": 2, "oof": 3}


def _user_json(user: User, select: list[str]) -> dict[str, Any]:
    full: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.user",
        "id": user.id,
        "displayName": user.name,
        "mail": user.email,
        "userPrincipalName": user.email,
        "givenName": user.name.split(" ")[0],
        "surname": user.name.split(" ")[-1],
        "jobTitle": None,
        "businessPhones": [],
    }
    extra = {"accountEnabled": user.enabled}
    if not select:
        return full
    return {k: v for k, v in (full | extra).items() if k in select or k in ("id", "@odata.type")}


def _mime_mail(user: User, raw: bytes, now: datetime) -> SentMail:
    # the headers are all a send needs; the body is kept as sent (parsing its parts was
    # three quarters of the emulator's CPU in a 2,000-manager run)
    message = HEADERS.parsebytes(raw)
    message_id = str(message.get("Message-ID") or f"<{uuid.uuid4()}@emulator.outlook.com>").strip()
    to: Any = message.get("To")
    recipients = tuple(str(a.addr_spec).lower() for a in to.addresses) if to else ()
    return SentMail(user.email, message_id, str(message.get("Subject", "")), recipients, raw, now)


def _json_mail(user: User, body: dict[str, Any], now: datetime) -> SentMail:
    message = body["message"]
    message_id = str(message.get("internetMessageId") or f"<{uuid.uuid4()}@emulator.outlook.com>")
    recipients = tuple(
        str(r["emailAddress"]["address"]).lower() for r in message.get("toRecipients") or []
    )
    return SentMail(user.email, message_id, str(message.get("subject", "")), recipients, None, now)


__all__ = ["Call", "GraphApi", "SentMail", "classify", "graph_error", "replace"]


def working_hours(user: User) -> dict[str, Any]:
    """A mailbox's ``workingHours`` as Graph shows it (mailboxSettings, getSchedule)."""
    return {
        "daysOfWeek": list(user.working_days),
        "startTime": f"{user.work_start}:00.0000000",
        "endTime": f"{user.work_end}:00.0000000",
        "timeZone": {"name": windows_name(user.timezone)},
    }

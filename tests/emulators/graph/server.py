"""The emulator's socket: one ThreadingHTTPServer (HTTPS or HTTP) for identity and Graph."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.emulators.graph.certs import CertificatePair
from tests.emulators.graph.graph import Call, GraphApi, classify, graph_error
from tests.emulators.graph.identity import Identity, Reply
from tests.emulators.graph.org import Organisation, User, load_organisation, user_id
from tests.emulators.graph.state import AppRegistration, Fault, LoggedRequest, Recorder, Stall
from tests.emulators.tls_server import EmulatorServer

VERSION = "/v1.0"
BATCH_LIMIT = 20


class GraphEmulator:
    """Microsoft's identity platform and Graph on a real socket (port 0: any free port).

    Tests steer it through ``faults``, ``latency``, ``stall``, ``api.clock``, ``app.roles``
    and ``expire_tokens()``, and read ``log``, ``peak``, ``counts()`` and ``sent``.
    """

    def __init__(
        self,
        org: Organisation | Path,
        *,
        tls: CertificatePair | None,
        app: AppRegistration | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = 5,
        mailbox_concurrency: int = 4,
        concurrency_retry_after: str = "1",
        mailboxes: Sequence[str] = (),
        api: type[GraphApi] = GraphApi,
    ) -> None:
        self.org = org if isinstance(org, Organisation) else load_organisation(org)
        for address in mailboxes:
            # a mailbox outside the roster, such as the shared one digests are sent from
            email = address.lower()
            self.org.users.setdefault(email, User(user_id(email), email, email.split("@")[0]))
        self.app = app or AppRegistration()
        self.identity = Identity(self.app)
        self.api = api(self.org, page_size=page_size)
        self.recorder = Recorder()
        self.faults: list[Fault] = []
        #: seconds every Graph request takes (keeps requests in flight so concurrency shows)
        self.latency = 0.0
        #: when set, every served Graph request waits for ``stall.release()``
        self.stall: Stall | None = None
        self.mailbox_concurrency = mailbox_concurrency
        self.concurrency_retry_after = concurrency_retry_after
        self._lock = threading.Lock()
        self._server = _Server((host, port), _Handler, self, tls)

    # -- lifecycle -----------------------------------------------------------------

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        scheme = "https" if self._server.tls is not None else "http"
        return f"{scheme}://{host}:{port}"

    @property
    def graph_endpoint(self) -> str:
        return self.origin + VERSION

    def start(self) -> GraphEmulator:
        self._server.serve_in_background("graph-emulator")
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> GraphEmulator:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests read and steer -------------------------------------------------

    @property
    def log(self) -> list[LoggedRequest]:
        with self.recorder.lock:
            return list(self.recorder.log)

    @property
    def peak(self) -> dict[str, int]:
        with self.recorder.lock:
            return dict(self.recorder.peak)

    def counts(self) -> dict[str, dict[str, int]]:
        return self.recorder.counts()

    def count(self, kind: str, mailbox: str | None = None) -> int:
        """Requests of this kind, whether sent alone or as a part of a $batch."""
        return sum(
            1 for e in self.log if e.kind == kind and (mailbox is None or e.mailbox == mailbox)
        )

    def round_trips(self) -> int:
        """HTTP requests the emulator answered (a $batch is one, whatever its parts)."""
        return sum(1 for e in self.log if not e.batched)

    @property
    def sent(self) -> list[Any]:
        with self.api.lock:
            return list(self.api.sent)

    def created_events(self, mailbox: str) -> list[Any]:
        with self.api.lock:
            return list(self.api.created.get(mailbox.lower(), []))

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def expire_tokens(self) -> None:
        """Every token issued so far is refused from now on, as when it has expired."""
        self.identity.expire_tokens()

    def environment(self) -> dict[str, str]:
        """The KINDLY_ variables that point Kindly at this emulator."""
        env = {
            "KINDLY_CALENDAR": "outlook",
            "KINDLY_OUTLOOK__TENANT_ID": self.app.tenant_id,
            "KINDLY_OUTLOOK__CLIENT_ID": self.app.client_id,
            "KINDLY_OUTLOOK__CLIENT_SECRET": self.app.client_secret,
            "KINDLY_OUTLOOK__AUTHORITY_HOST": self.origin,
            "KINDLY_OUTLOOK__GRAPH_ENDPOINT": self.graph_endpoint,
        }
        if self._server.tls is not None:
            env["REQUESTS_CA_BUNDLE"] = str(self._server.tls.cert.resolve())
        return env

    # -- dispatch ------------------------------------------------------------------

    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(target)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if path.startswith(VERSION + "/") or path == VERSION:
            return self._graph(method, path[len(VERSION) :], query, headers, body)
        return self._identity(method, path, query, body)

    def _identity(self, method: str, path: str, query: dict[str, str], body: bytes) -> Reply:
        segments = [s for s in path.split("/") if s]
        if path == "/_emulator/summary":
            return Reply(
                200, self.recorder.summary_json().encode(), {"Content-Type": "application/json"}
            )
        if path == "/common/discovery/instance":
            kind, reply = "discovery", self.identity.instance_discovery(self.origin, query)
        elif segments[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            kind, reply = "openid", self.identity.openid_configuration(self.origin, segments[0])
        elif segments[1:] == ["oauth2", "v2.0", "token"] and method == "POST":
            kind = "token"
            reply = self._fault_or(kind, None) or self.identity.token(
                self.origin, segments[0], body
            )
        else:
            kind, reply = "other", Reply.json(404, {"error": "not_found"})
        self.recorder.record(LoggedRequest(method, path, None, kind, reply.status))
        return reply

    def _graph(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Reply:
        roles, reason = self.identity.verify(headers.get("authorization"))
        if roles is None:
            reply = graph_error(401, "InvalidAuthenticationToken", reason)
            kind, mailbox = classify(method, path)
            self.recorder.record(LoggedRequest(method, path, self._mailbox(mailbox), kind, 401))
            return reply
        call = Call(method, path, query, headers, body, self.graph_endpoint, roles)
        if path == "/$batch" and method == "POST":
            reply = self._batch(call)
            self.recorder.record(LoggedRequest(method, path, None, "batch", reply.status))
            return reply
        return self._one(call)

    def _one(self, call: Call, *, batched: bool = False) -> Reply:
        kind, key = classify(call.method, call.path)
        mailbox = self._mailbox(key)
        if mailbox is not None:
            level = self.recorder.enter(mailbox)
        try:
            if mailbox is not None and level > self.mailbox_concurrency:
                reply = graph_error(
                    429,
                    "ApplicationThrottled",
                    "Application is over its MailboxConcurrency limit.",
                    **{"Retry-After": self.concurrency_retry_after},
                )
            else:
                reply = self._serve(call, kind, mailbox)
        finally:
            if mailbox is not None:
                self.recorder.leave(mailbox)
        self.recorder.record(
            LoggedRequest(call.method, call.path, mailbox, kind, reply.status, batched)
        )
        return reply

    def _serve(self, call: Call, kind: str, mailbox: str | None) -> Reply:
        if self.stall is not None:
            self.stall.hold()
        if self.latency:
            time.sleep(self.latency)
        fault = self._take_fault(kind, mailbox)
        if fault is not None and not fault.after:
            return self._fault_reply(fault)
        reply = self.api.handle(call)
        return self._fault_reply(fault) if fault is not None else reply

    def _mailbox(self, key: str | None) -> str | None:
        if key is None:
            return None
        user = self.org.user(key)
        return user.email if user is not None else key.lower()

    def _take_fault(self, kind: str, mailbox: str | None) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self.faults):
                if fault.matches(kind, mailbox):
                    self.faults[index] = replace(fault, times=fault.times - 1)
                    return fault
        return None

    def _fault_or(self, kind: str, mailbox: str | None) -> Reply | None:
        fault = self._take_fault(kind, mailbox)
        return self._fault_reply(fault) if fault is not None else None

    @staticmethod
    def _fault_reply(fault: Fault) -> Reply:
        code, message = fault.body()
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return graph_error(fault.status, code, message, **headers)

    def _batch(self, call: Call) -> Reply:
        try:
            requests = json.loads(call.body)["requests"]
        except (ValueError, KeyError, TypeError):
            return graph_error(400, "BadRequest", "Invalid batch payload format.")
        if len(requests) > BATCH_LIMIT:
            return graph_error(400, "BadRequest", "Maximum number of requests in a batch is 20.")
        # Graph runs the parts in parallel: each takes its mailbox's concurrency slot
        with ThreadPoolExecutor(max_workers=max(1, len(requests))) as pool:
            responses = list(pool.map(lambda part: self._batch_part(call, part), requests))
        return Reply.json(200, {"responses": responses})

    def _batch_part(self, call: Call, part: dict[str, Any]) -> dict[str, Any]:
        parts = urlsplit(str(part.get("url", "")))
        headers = {k.lower(): str(v) for k, v in (part.get("headers") or {}).items()}
        body = part.get("body")
        raw = json.dumps(body).encode() if body is not None else b""
        inner = replace(
            call,
            method=str(part.get("method", "GET")).upper(),
            path="/" + parts.path.lstrip("/"),
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=headers | {"authorization": call.headers.get("authorization", "")},
            body=raw,
        )
        reply = self._one(inner, batched=True)
        return {
            "id": str(part.get("id")),
            "status": reply.status,
            "headers": {k: v for k, v in reply.headers.items()},
            "body": json.loads(reply.body) if reply.body else None,
        }


class _Server(EmulatorServer):
    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        emulator: GraphEmulator,
        tls: CertificatePair | None,
    ) -> None:
        self.emulator = emulator
        super().__init__(address, handler, tls)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    #: headers and body go out in two writes: with Nagle on, each answer waits for a delayed ACK
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the emulator's own request log is what tests read."""

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.emulator.dispatch(self.command, self.path, headers, body)
        request_id = headers.get("client-request-id") or str(uuid.uuid4())
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("request-id", request_id)
        self.send_header("client-request-id", request_id)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        try:
            self.wfile.write(reply.body)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True

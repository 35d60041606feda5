"""The emulator on a real socket: a threading HTTP/1.1 server around :class:`Api`."""

from __future__ import annotations

import json
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from tests.emulators.google.api import Api, LoggedRequest, Reply
from tests.emulators.google.auth import Authority
from tests.emulators.google.faults import Faults
from tests.emulators.google.keys import new_key, new_key_id, public_pem, service_account_info
from tests.emulators.google.org import Org
from tests.emulators.graph.certs import CertificatePair
from tests.emulators.tls_server import EmulatorServer

#: every scope Kindly may ask for; what an admin grants in the Admin console
KINDLY_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/calendar.readonly",
        "https://www.googleapis.com/auth/calendar.events",
        "https://www.googleapis.com/auth/admin.directory.user.readonly",
    }
)


class GoogleEmulator:
    """Google's token endpoint, Calendar v3 and Directory users.list for one organisation.

    ``base_url`` is what ``KINDLY_GOOGLE__API_ENDPOINT`` points at; the token
    endpoint is ``base_url + "token"`` (the ``token_uri`` of the key files it
    hands out). ``faults`` can be replaced at any time; ``log`` records every
    request. With ``tls`` it speaks HTTPS only, as Google does, with a
    certificate clients must be told to trust (``REQUESTS_CA_BUNDLE``).
    """

    def __init__(
        self,
        org: Org,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = 250,
        directory_page_size: int = 100,
        tls: CertificatePair | None = None,
    ) -> None:
        self.org = org
        self.authority = Authority(org)
        self.tls = tls
        self._server = _Server((host, port), _Handler, tls)
        self.host, self.port = host, int(self._server.server_address[1])
        self.api = Api(
            org,
            self.authority,
            token_uri=self.base_url + "token",
            page_size=page_size,
            directory_page_size=directory_page_size,
        )
        self._server.api = self.api  # type: ignore[attr-defined]

    @classmethod
    def from_folder(cls, folder: Path, **options: Any) -> GoogleEmulator:
        return cls(Org.load(folder), **options)

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}/"

    @property
    def token_uri(self) -> str:
        return self.base_url + "token"

    @property
    def faults(self) -> Faults:
        return self.api.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self.api.faults = faults

    @property
    def log(self) -> list[LoggedRequest]:
        return self.api.log

    def counts(self, user: str | None = None) -> Counter[str]:
        return self.api.counts(user)

    def service_account(
        self,
        *,
        client_email: str = "kindly@kindly-emulated.iam.gserviceaccount.com",
        client_id: str = "100000000000000000001",
        scopes: frozenset[str] = KINDLY_SCOPES,
        key: rsa.RSAPrivateKey | None = None,
    ) -> dict[str, Any]:
        """A new key for a service account whose client id was granted ``scopes``
        domain-wide; returns the key file's JSON."""
        key = key or new_key()
        key_id = new_key_id()
        self.authority.register(
            client_email, client_id, key_id, public_pem(key), scopes=set(scopes)
        )
        return service_account_info(
            key,
            token_uri=self.token_uri,
            client_email=client_email,
            client_id=client_id,
            key_id=key_id,
        )

    def add_event(self, owner: str, resource: dict[str, Any]) -> None:
        """Put an event on a user's calendar as if they had made it (fields as Google has them)."""
        calendar = self.org.calendar(owner.lower())
        with self.org.lock:
            calendar.inserted[str(resource["id"])] = {"kind": "calendar#event", **resource}
            self.org.version += 1

    def inserted(self, owner: str) -> list[dict[str, Any]]:
        """Events created on a user's calendar through the API (and by :meth:`add_event`)."""
        with self.org.lock:
            return list(self.org.calendar(owner.lower()).inserted.values())

    def start(self) -> GoogleEmulator:
        self._server.serve_in_background("google-emulator")
        return self

    def stop(self) -> None:
        self._server.stop()

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def __enter__(self) -> GoogleEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def request_counts(api: Api, *, since: int = 0) -> dict[str, dict[str, int]]:
    """Requests per impersonated user and kind, for the closing note and ``/_emulator``;
    ``since`` skips the log's first entries, so one run among several can be counted."""
    table: dict[str, Counter[str]] = {}
    for entry in list(api.log)[since:]:
        table.setdefault(entry.user or "-", Counter())[entry.kind] += 1
    return {user: dict(sorted(kinds.items())) for user, kinds in sorted(table.items())}


_Server = EmulatorServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ESF"

    def _answer(self) -> None:
        api: Api = self.server.api  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/_emulator/requests"):
            reply = Reply(200, json.dumps(request_counts(api), indent=2).encode())
        else:
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = api.handle(self.command, self.path, headers, body)
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is the record."""

"""Microsoft Graph over HTTP: msal client credentials, per-mailbox limits, retries, errors.

Everything msal and requests can raise is translated here, once, into
:mod:`service.errors`; callers only see Graph's JSON or a Kindly error.
Graph allows four concurrent requests per mailbox, so each mailbox has a
semaphore of four; 429/503/504 are retried after ``Retry-After`` (seconds,
fractions allowed) or an exponential backoff, with an injectable sleep.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import certifi
import msal
import requests
from requests.adapters import HTTPAdapter

from service.errors import AuthFailed, ConnectorError, ProviderUnavailable, RateLimited

Sleep = Callable[[float], Awaitable[None]]
#: Microsoft's own sign-in hosts: msal validates these through instance discovery
KNOWN_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "login.microsoftonline.us",
        "login.partner.microsoftonline.cn",
        "login.chinacloudapi.cn",
    }
)
MAILBOX_CONCURRENCY = 4
TRANSIENT = frozenset({429, 503, 504})


@dataclass(frozen=True, slots=True)
class Credentials:
    tenant_id: str
    client_id: str
    #: a client secret, or msal's certificate mapping (private_key, public_certificate)
    credential: str | dict[str, str]
    authority_host: str


class _TrustAdapter(HTTPAdapter):
    """Trusts the system store (so SSL_CERT_FILE/SSL_CERT_DIR count) plus certifi's bundle;
    a REQUESTS_CA_BUNDLE that requests passes as ``verify`` is added on top."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        context = ssl.create_default_context()
        context.load_verify_locations(certifi.where())
        kwargs["ssl_context"] = context
        super().init_poolmanager(*args, **kwargs)


class _Session(requests.Session):
    """A session whose every request has a timeout, msal's included."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout
        adapter = _TrustAdapter(pool_connections=8, pool_maxsize=32)
        self.mount("https://", adapter)
        self.mount("http://", HTTPAdapter(pool_connections=8, pool_maxsize=32))

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return super().request(*args, **kwargs)


def _first_line(text: object) -> str:
    return str(text).strip().splitlines()[0] if str(text).strip() else ""


class GraphClient:
    """One app's authenticated access to Graph, shared by every manager's run."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        graph_endpoint: str,
        sleep: Sleep = asyncio.sleep,
        max_attempts: int = 6,
        timeout: float = 30.0,
        workers: int = 32,
    ) -> None:
        self.credentials = credentials
        self.endpoint = graph_endpoint.rstrip("/")
        parts = urlsplit(self.endpoint)
        self.scope = f"{parts.scheme}://{parts.netloc}/.default"
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.session = _Session(timeout)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="graph")
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._app: msal.ConfidentialClientApplication | None = None
        self._token_lock = threading.Lock()

    # -- tokens (worker threads) --------------------------------------------------------

    def _msal(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            creds = self.credentials
            host = urlsplit(creds.authority_host).hostname or ""
            try:
                self._app = msal.ConfidentialClientApplication(
                    creds.client_id,
                    client_credential=creds.credential,
                    authority=f"{creds.authority_host.rstrip('/')}/{creds.tenant_id}",
                    http_client=self.session,
                    # elsewhere (an emulator, a proxy) there is no Microsoft host to ask
                    instance_discovery=None if host in KNOWN_AUTHORITY_HOSTS else False,
                    token_cache=msal.TokenCache(),
                )
            except ValueError as exc:
                raise AuthFailed(
                    f"Microsoft sign-in rejected tenant {creds.tenant_id!r} at "
                    f"{creds.authority_host} ({_first_line(exc)[:160]}); check "
                    "KINDLY_OUTLOOK__TENANT_ID and KINDLY_OUTLOOK__AUTHORITY_HOST"
                ) from None
        return self._app

    def _token(self) -> str:
        with self._token_lock:
            try:
                result = self._msal().acquire_token_for_client(scopes=[self.scope])
            except requests.RequestException as exc:
                raise _network_error(exc, self.credentials.authority_host) from None
        if "access_token" in result:
            return str(result["access_token"])
        error = result.get("error", "unknown_error")
        description = _first_line(result.get("error_description", ""))
        hint = {
            "invalid_client": "check KINDLY_OUTLOOK__CLIENT_SECRET (the secret's value, not its "
            "id) or KINDLY_OUTLOOK__CLIENT_CERTIFICATE_FILE",
            "unauthorized_client": "check KINDLY_OUTLOOK__CLIENT_ID and that the app is "
            "registered in this tenant",
        }.get(error, "check the KINDLY_OUTLOOK__ settings and the app registration")
        raise AuthFailed(
            f"Microsoft sign-in refused client {self.credentials.client_id}: {error} "
            f"({description}); {hint}",
            status=401,
        )

    def _forget(self, token: str) -> None:
        """Drop a token Graph refused, so the next call fetches a fresh one."""
        with self._token_lock:
            if self._app is None:
                return
            cache = self._app.token_cache
            for entry in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                if entry.get("secret") == token:
                    cache.remove_at(entry)

    def _send(
        self, method: str, url: str, kwargs: Mapping[str, Any]
    ) -> tuple[str, requests.Response]:
        token = self._token()
        headers = {"Authorization": f"Bearer {token}", **kwargs.get("headers", {})}
        try:
            response = self.session.request(method, url, **{**kwargs, "headers": headers})
        except requests.RequestException as exc:
            raise _network_error(exc, url) from None
        return token, response

    # -- calls (event loop) ----------------------------------------------------------------

    def _gate(self, mailbox: str | None) -> asyncio.Semaphore:
        key = (mailbox or "").lower()
        if key not in self._gates:
            self._gates[key] = asyncio.Semaphore(MAILBOX_CONCURRENCY)
        return self._gates[key]

    async def call(
        self,
        method: str,
        path: str,
        *,
        mailbox: str | None,
        what: str,
        permission: str,
        resend: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Graph's JSON answer (None for an empty body); one Kindly error otherwise.

        ``resend=False`` for calls that are not idempotent (sendMail): only a 429,
        which Graph never carried out, is retried; a 503/504 may have been.
        """
        url = path if path.startswith(("https://", "http://")) else self.endpoint + path
        loop = asyncio.get_running_loop()
        refreshed = False
        attempt = 0
        while True:
            async with self._gate(mailbox):
                send = functools.partial(self._send, method, url, kwargs)
                token, response = await loop.run_in_executor(self._executor, send)
            status = response.status_code
            if status < 300:
                return response.json() if response.content else None
            if status == 401 and not refreshed:
                refreshed = True
                await loop.run_in_executor(self._executor, self._forget, token)
                continue
            attempt += 1
            retryable = status in TRANSIENT if resend else status == 429
            if retryable and attempt < self.max_attempts:
                await self.sleep(_delay(response, attempt))
                continue
            raise _graph_error(response, mailbox=mailbox, what=what, permission=permission)

    async def pages(
        self, path: str, *, mailbox: str | None, what: str, permission: str, **kwargs: Any
    ) -> list[dict[str, Any]]:
        """Every item of a collection, following ``@odata.nextLink`` to the end."""
        items: list[dict[str, Any]] = []
        page = await self.call(
            "GET", path, mailbox=mailbox, what=what, permission=permission, **kwargs
        )
        while True:
            items.extend(page.get("value", []))
            link = page.get("@odata.nextLink")
            if not link:
                return items
            rest = {k: v for k, v in kwargs.items() if k != "params"}
            page = await self.call(
                "GET", link, mailbox=mailbox, what=what, permission=permission, **rest
            )

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.session.close()


def _delay(response: requests.Response, attempt: int) -> float:
    """Retry-After when Graph gives one (seconds, fractions allowed), else exponential backoff."""
    given = response.headers.get("Retry-After")
    if given is not None:
        try:
            return max(0.0, float(given))
        except ValueError:
            pass
    return float(min(30.0, 0.5 * 2 ** (attempt - 1)))


def _network_error(exc: requests.RequestException, where: str) -> ConnectorError:
    if isinstance(exc, requests.exceptions.SSLError):
        return ConnectorError(
            f"TLS verification failed for {urlsplit(where).netloc or where}; point "
            "REQUESTS_CA_BUNDLE or SSL_CERT_FILE at the CA that signed its certificate"
        )
    return ProviderUnavailable(
        f"cannot reach {urlsplit(where).netloc or where} ({type(exc).__name__}); "
        "check the network and KINDLY_OUTLOOK__ endpoints, then retry"
    )


def _graph_error(
    response: requests.Response, *, mailbox: str | None, what: str, permission: str
) -> ConnectorError:
    status = response.status_code
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    code = str(error.get("code", "")) or response.reason
    message = _first_line(error.get("message", ""))[:200]
    who = f" for {mailbox}" if mailbox else ""
    said = f"{status} {code}" + (f": {message}" if message else "")
    if status == 429:
        retry = response.headers.get("Retry-After")
        return RateLimited(
            f"Microsoft Graph kept throttling {what}{who} ({said}); the next run retries",
            manager=mailbox,
            retry_after=_delay(response, 1) if retry else None,
        )
    if status >= 500:
        return ProviderUnavailable(
            f"Microsoft Graph failed {what}{who} ({said}); the next run retries",
            manager=mailbox,
            status=status,
        )
    if status in (401, 403):
        return AuthFailed(
            f"Microsoft Graph refused {what}{who} ({said}); grant the app the {permission} "
            "application permission (admin consent) and include this mailbox in its "
            "Exchange Online RBAC management scope",
            manager=mailbox,
            status=status,
        )
    if status == 404:
        return AuthFailed(
            f"Microsoft Graph does not know {mailbox or 'the resource'} ({said}); check the "
            "address in the roster",
            manager=mailbox,
            status=status,
        )
    return ConnectorError(
        f"Microsoft Graph rejected {what}{who} ({said})", manager=mailbox, status=status
    )

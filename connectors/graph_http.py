"""Microsoft Graph over HTTP: msal client credentials, per-mailbox limits, $batch, retries.

Graph's calls go through aiohttp on the event loop: no thread hop a request,
which at a few thousand managers was a quarter of Kindly's CPU. msal keeps its
own requests session for tokens, fetched in a thread only when the one held has
run out. Everything msal, requests and aiohttp can raise is translated here,
once, into :mod:`service.errors`; callers only see Graph's JSON or a Kindly
error.
Graph allows four concurrent requests per mailbox, and runs the parts of a
``$batch`` in parallel, so each mailbox has a gate of four slots and a batch
takes one slot per part it holds for that mailbox. 429/503/504 are retried
after ``Retry-After`` (seconds, fractions allowed) or an exponential backoff,
with an injectable sleep; inside a batch, each part is retried on its own.
Any other 4xx is a :class:`service.errors.Rejected` carrying Graph's error code, for the
callers that handle one code themselves (a repeated ``transactionId``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import certifi
import msal
import orjson
import requests
from requests.adapters import HTTPAdapter
from requests.utils import guess_json_utf
from yarl import URL

from connectors.quota import Quota, QuotaUnavailable, SharedQuotas, connect, quota_step
from service import metrics
from service.backoff import exponential
from service.errors import (
    AuthFailed,
    ConfigError,
    ConnectorError,
    ProviderUnavailable,
    RateLimited,
    Rejected,
)
from service.settings import Settings
from service.speed import GRAPH_IN_FLIGHT

Sleep = Callable[[float], Awaitable[None]]
log = logging.getLogger("kindly.graph")
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
#: Graph's request budget per app and mailbox: 10,000 in ten minutes, counted over a
#: second more, as Graph counts a request when it arrives
MAILBOX_RATE = Quota(10_000, 601.0)
#: Graph's limit on the requests in one $batch
BATCH_LIMIT = 20
TRANSIENT = frozenset({429, 503, 504})
#: a token is renewed this long before msal says it expires (seconds), so that no request
#: carries one that runs out on its way
TOKEN_MARGIN = 300.0


@dataclass(frozen=True, slots=True)
class Credentials:
    tenant_id: str
    client_id: str
    #: a client secret, or msal's certificate mapping (private_key, public_certificate)
    credential: str | dict[str, str]
    authority_host: str


@dataclass(frozen=True, slots=True)
class Part:
    """One request of a ``$batch``: a path under the Graph root and what it is for."""

    method: str
    path: str
    #: the mailbox whose concurrency slot the part takes (None: tenant-wide)
    mailbox: str | None
    what: str
    permission: str
    params: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def url(self) -> str:
        return with_query(self.path, self.params)


def with_query(path: str, params: Mapping[str, str] | None) -> str:
    """``path`` with ``params`` appended, encoded as Graph's own links are (``$`` and
    OData's punctuation left as they are)."""
    query = urlencode(params, quote_via=quote, safe="$,()'") if params else ""
    return path + (("&" if "?" in path else "?") + query if query else "")


@dataclass(frozen=True, slots=True)
class Request:
    """What a call sends besides its method and URL: query, headers and a JSON or raw body."""

    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    data: bytes | None = None

    def body(self) -> tuple[bytes | None, dict[str, str]]:
        """The bytes to send and the headers that go with them."""
        headers = dict(self.headers)
        if self.json is not None:
            headers.setdefault("Content-Type", "application/json")
            return orjson.dumps(self.json), headers
        return self.data, headers


def trust_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """The system store and certifi's bundle, plus the CA bundle from settings
    (REQUESTS_CA_BUNDLE / SSL_CERT_FILE, read by service/settings.py, not here)."""
    context = ssl.create_default_context()
    context.load_verify_locations(certifi.where())
    if ca_bundle is not None:
        context.load_verify_locations(ca_bundle)
    return context


class _TrustAdapter(HTTPAdapter):
    """Trusts what :func:`trust_context` trusts."""

    def __init__(self, ca_bundle: Path | None, **kwargs: Any) -> None:
        self.ca_bundle = ca_bundle
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = trust_context(self.ca_bundle)
        super().init_poolmanager(*args, **kwargs)


class _Session(requests.Session):
    """msal's session for tokens: every request has a timeout."""

    def __init__(self, timeout: float, ca_bundle: Path | None) -> None:
        super().__init__()
        self.timeout = timeout
        self.mount("https://", _TrustAdapter(ca_bundle, pool_connections=2, pool_maxsize=2))
        self.mount("http://", HTTPAdapter(pool_connections=2, pool_maxsize=2))

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return super().request(*args, **kwargs)


def _first_line(text: object) -> str:
    return str(text).strip().splitlines()[0] if str(text).strip() else ""


class _Gate:
    """A mailbox's four concurrency slots; a batch takes all the slots it needs at once,
    so two batches never each hold some and wait forever for the rest."""

    def __init__(self, size: int) -> None:
        self.free = size
        self._changed = asyncio.Condition()
        #: held while one request of this process waits its turn at the gate shared with
        #: the other processes, so that one, not four, polls Redis while it is full
        self.entering = asyncio.Lock()

    async def acquire(self, slots: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.free >= slots)
            self.free -= slots

    async def release(self, slots: int) -> None:
        async with self._changed:
            self.free += slots
            self._changed.notify_all()


@dataclass(frozen=True, slots=True)
class _Answer:
    """A status, headers and JSON body: a whole response or one part of a batch."""

    status: int
    headers: Mapping[str, str]
    body: Any
    reason: str = ""


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
        in_flight: int = GRAPH_IN_FLIGHT,
        ca_bundle: Path | None = None,
        quotas: SharedQuotas | None = None,
        mailbox_rate: Quota = MAILBOX_RATE,
    ) -> None:
        """``quotas``: each mailbox's request budget (``mailbox_rate``) and its four in
        flight, shared with every Kindly process through Redis; None keeps the four per
        process and leaves the budget to Graph's 429s, as a process alone needs."""
        self.credentials = credentials
        self.quotas = quotas
        self.mailbox_rate = mailbox_rate
        self.endpoint = graph_endpoint.rstrip("/")
        parts = urlsplit(self.endpoint)
        self.scope = f"{parts.scheme}://{parts.netloc}/.default"
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.in_flight = in_flight
        self.timeout = timeout
        self.session = _Session(timeout, ca_bundle)
        self._trust = trust_context(ca_bundle)
        #: the aiohttp session of the event loop it was opened on (one loop a process)
        self._http: tuple[aiohttp.ClientSession, asyncio.AbstractEventLoop] | None = None
        #: the proxy for each origin, read from the environment once
        self._proxies: dict[tuple[str, str], str | None] = {}
        #: msal's calls block; they run here, and only when the token held runs out
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graph-token")
        #: the access token in use and until when (monotonic) it is used without asking msal
        self._held: tuple[str, float] | None = None
        self._gates: dict[str, _Gate] = {}
        #: per mailbox: requests of its budget already counted in Redis, and until when
        #: (monotonic) they may be spent
        self._allowance: dict[str, tuple[int, float]] = {}
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

    def _token(self) -> tuple[str, float]:
        """An access token and the seconds it has left, from msal's cache or a sign-in."""
        with self._token_lock:
            try:
                result = self._msal().acquire_token_for_client(scopes=[self.scope])
            except requests.RequestException as exc:
                raise _network_error(exc, self.credentials.authority_host) from None
        if "access_token" in result:
            return str(result["access_token"]), float(result.get("expires_in") or 0)
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
        if self._held is not None and self._held[0] == token:
            self._held = None
        with self._token_lock:
            if self._app is None:
                return
            cache = self._app.token_cache
            for entry in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                if entry.get("secret") == token:
                    cache.remove_at(entry)

    # -- calls (event loop) ----------------------------------------------------------------

    async def _bearer(self) -> str:
        """The token held while it has more than :data:`TOKEN_MARGIN` left, else msal's."""
        held = self._held
        if held is not None and time.monotonic() < held[1]:
            return held[0]
        loop = asyncio.get_running_loop()
        token, seconds = await loop.run_in_executor(self._executor, self._token)
        self._held = (token, time.monotonic() + seconds - TOKEN_MARGIN)
        return token

    def _session(self) -> aiohttp.ClientSession:
        """This loop's HTTP session: the CA bundle from settings, requests' timeouts. Not
        aiohttp's ``trust_env``: it reads the environment in a thread on every request."""
        loop = asyncio.get_running_loop()
        if self._http is not None and self._http[1] is loop and not self._http[0].closed:
            return self._http[0]
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._trust, limit=self.in_flight),
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=self.timeout, sock_read=self.timeout
            ),
        )
        self._http = (session, loop)
        return session

    async def _round_trip(self, method: str, url: str, request: Request, token: str) -> _Answer:
        data, headers = request.body()
        headers["Authorization"] = f"Bearer {token}"
        target = URL(with_query(url, request.params), encoded=True)
        origin = (target.scheme, target.host or "")
        if origin not in self._proxies:
            self._proxies[origin] = environment_proxy(*origin)
        try:
            async with self._session().request(
                method, target, data=data, headers=headers, proxy=self._proxies[origin]
            ) as response:
                content = await response.read()
                return _Answer(
                    response.status,
                    response.headers,
                    _json(content, response.charset),
                    response.reason or "",
                )
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError) as exc:
            raise _network_error(exc, url) from None

    @asynccontextmanager
    async def _slots(self, mailboxes: Sequence[str | None]) -> AsyncIterator[None]:
        """One slot per request for its mailbox, taken in a fixed order (no lock cycles):
        this process's gate, then the one shared by every process; the shared budget is
        taken first, so waiting for it holds no slot."""
        wanted = Counter((mailbox or "").lower() for mailbox in mailboxes)
        await self._budget(wanted)
        async with AsyncExitStack() as stack:
            for key in sorted(wanted):
                gate = self._gates.setdefault(key, _Gate(MAILBOX_CONCURRENCY))
                await gate.acquire(wanted[key])
                stack.push_async_callback(gate.release, wanted[key])
                if key and self.quotas is not None:
                    shared = self.quotas.gate(
                        f"graph:{self.credentials.tenant_id}:{key}",
                        size=MAILBOX_CONCURRENCY,
                        slots=wanted[key],
                    )
                    try:
                        async with gate.entering:
                            await stack.enter_async_context(shared)
                    except QuotaUnavailable as exc:
                        self._alone(exc)
            yield

    async def _budget(self, wanted: Mapping[str, int]) -> None:
        """Count the requests in each mailbox's budget, shared in Redis. They are taken a
        few at a time (:func:`connectors.quota.quota_step`) and spent here: a manager's
        handful of calls then costs one Redis round trip, not one each."""
        for key, count in sorted(wanted.items()):
            if not key or self.quotas is None:
                continue
            left, until = self._allowance.get(key, (0, 0.0))
            now = time.monotonic()
            if left >= count and now < until:
                self._allowance[key] = (left - count, until)
                continue
            step = max(count, quota_step(self.mailbox_rate))
            try:
                await self.quotas.acquire_async(
                    self.mailbox_rate,
                    "graph",
                    self.credentials.tenant_id,
                    key,
                    reason="graph_mailbox_rate",
                    cost=step,
                )
            except QuotaUnavailable as exc:
                self._alone(exc)
                continue
            # counted now: spent well inside the window they were counted in
            self._allowance[key] = (step - count, time.monotonic() + self.mailbox_rate.seconds / 2)

    def _alone(self, exc: QuotaUnavailable) -> None:
        """Redis stopped answering: this process keeps Graph's limits on its own from now."""
        if self.quotas is not None:
            log.warning("Graph's limits no longer shared (%s); this process paces itself", exc)
            self.quotas = None

    async def _exchange(
        self, method: str, url: str, request: Request, slots: Sequence[str | None]
    ) -> _Answer:
        """One HTTP round trip (a token Graph refuses is renewed once); transient
        statuses come back as they are, for the caller to retry."""
        token = await self._bearer()
        async with self._slots(slots):
            answer = await self._round_trip(method, url, request, token)
        if answer.status == 401:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._forget, token)
            token = await self._bearer()
            async with self._slots(slots):
                answer = await self._round_trip(method, url, request, token)
        return answer

    async def call(
        self,
        method: str,
        path: str,
        *,
        mailbox: str | None,
        what: str,
        permission: str,
        resend: bool = True,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: bytes | None = None,
    ) -> Any:
        """Graph's JSON answer (None for an empty body); one Kindly error otherwise.

        ``path`` is under the Graph root, or a whole link Graph gave (``@odata.nextLink``),
        already encoded. ``resend=False`` for calls that are not idempotent (sendMail):
        only a 429, which Graph never carried out, is retried; a 503/504 may have been.
        """
        url = path if path.startswith(("https://", "http://")) else self.endpoint + path
        request = Request(params, headers or {}, json, data)
        attempt = 0
        while True:
            answer = await self._exchange(method, url, request, [mailbox])
            if answer.status < 300:
                return answer.body
            attempt += 1
            retryable = answer.status in TRANSIENT if resend else answer.status == 429
            if retryable and attempt < self.max_attempts:
                await self._wait(answer.status, _delay(answer.headers, attempt))
                continue
            raise _graph_error(answer, mailbox=mailbox, what=what, permission=permission)

    async def pages(
        self,
        path: str,
        *,
        mailbox: str | None,
        what: str,
        permission: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Every item of a collection, following ``@odata.nextLink`` to the end (the link
        carries the query; the headers go with every page)."""
        items: list[dict[str, Any]] = []
        link: str | None = path
        while link:
            page = await self.call(
                "GET",
                link,
                mailbox=mailbox,
                what=what,
                permission=permission,
                params=params if link is path else None,
                headers=headers,
            )
            items.extend(page.get("value", []))
            link = page.get("@odata.nextLink")
        return items

    async def batch(self, parts: Sequence[Part]) -> list[Any]:
        """Each part's JSON answer, in order, sent as few ``$batch`` requests as the
        limits allow (20 parts, four per mailbox); a part that keeps failing raises."""
        if len(parts) == 1:
            (part,) = parts
            return [await self._one(part)]
        results: list[Any] = [None] * len(parts)
        attempts = [0] * len(parts)
        pending = list(range(len(parts)))
        while pending:
            retry: list[int] = []
            waits: list[float] = []
            statuses: set[int] = set()
            for chunk in _chunks(pending, parts):
                answers = await self._send_batch([parts[i] for i in chunk])
                for index, answer in zip(chunk, answers, strict=True):
                    if answer.status < 300:
                        results[index] = answer.body
                        continue
                    attempts[index] += 1
                    if answer.status in TRANSIENT and attempts[index] < self.max_attempts:
                        retry.append(index)
                        waits.append(_delay(answer.headers, attempts[index]))
                        statuses.add(answer.status)
                        continue
                    part = parts[index]
                    raise _graph_error(
                        answer, mailbox=part.mailbox, what=part.what, permission=part.permission
                    )
            if retry:
                await self._wait(429 if 429 in statuses else 503, max(waits))
            pending = retry
        return results

    async def batch_pages(self, parts: Sequence[Part]) -> list[list[dict[str, Any]]]:
        """Every item of each part's collection; the next pages of all parts go in
        batches too, round after round, until no part has an ``@odata.nextLink``."""
        items: list[list[dict[str, Any]]] = [[] for _ in parts]
        pending = list(enumerate(parts))
        while pending:
            pages = await self.batch([part for _, part in pending])
            following = []
            for (index, part), page in zip(pending, pages, strict=True):
                items[index].extend((page or {}).get("value", []))
                link = (page or {}).get("@odata.nextLink")
                if link:
                    following.append((index, self._next_part(part, str(link))))
            pending = following
        return items

    def _next_part(self, part: Part, link: str) -> Part:
        """The part that asks for the page ``link`` names (relative to the Graph root)."""
        path = link[len(self.endpoint) :] if link.startswith(self.endpoint + "/") else link
        return Part(part.method, path, part.mailbox, part.what, part.permission)

    async def _one(self, part: Part) -> Any:
        return await self.call(
            part.method,
            part.path,
            mailbox=part.mailbox,
            what=part.what,
            permission=part.permission,
            params=part.params,
            headers=part.headers,
            json=part.body,
        )

    async def _send_batch(self, parts: Sequence[Part]) -> list[_Answer]:
        """One ``$batch`` round trip holding a slot per part; its own 429/5xx are retried."""
        requests_ = []
        for number, part in enumerate(parts):
            entry: dict[str, Any] = {"id": str(number), "method": part.method, "url": part.url()}
            headers = dict(part.headers)
            if part.body is not None:
                entry["body"] = part.body
                headers.setdefault("Content-Type", "application/json")
            if headers:
                entry["headers"] = headers
            requests_.append(entry)
        request = Request(json={"requests": requests_})
        mailboxes = [part.mailbox for part in parts]
        what = ", ".join(sorted({part.what for part in parts}))
        attempt = 0
        while True:
            answer = await self._exchange("POST", self.endpoint + "/$batch", request, mailboxes)
            if answer.status < 300 and isinstance(answer.body, dict):
                return _unbatch(answer.body, len(parts))
            attempt += 1
            if answer.status in TRANSIENT and attempt < self.max_attempts:
                await self._wait(answer.status, _delay(answer.headers, attempt))
                continue
            raise _graph_error(answer, mailbox=None, what=what, permission=parts[0].permission)

    async def _wait(self, status: int, seconds: float) -> None:
        """Wait before a retry; throttling (429) and outages are counted apart."""
        metrics.waited("graph_throttled" if status == 429 else "graph_retry", seconds)
        await self.sleep(seconds)

    async def aclose(self) -> None:
        """Idempotent: the connector and the mailer may share this client and both close it."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.session.close()
        if self._http is not None:
            session, self._http = self._http[0], None
            await session.close()
        if self.quotas is not None:
            await self.quotas.aclose()


def environment_proxy(scheme: str, host: str) -> str | None:
    """The proxy HTTPS_PROXY / HTTP_PROXY name for ``host``, unless NO_PROXY exempts it: what
    requests, curl and aiohttp's ``trust_env`` find (credentials stay in the proxy's URL)."""
    if host and urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies().get(scheme)


def _json(content: bytes, charset: str | None = None) -> Any:
    """The body as JSON, None when there is none or it is not JSON. Graph sends UTF-8,
    which orjson decodes fastest; anything else is decoded in the charset the answer
    names or, as requests did, the UTF its first bytes show."""
    if not content:
        return None
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(content.decode(charset or guess_json_utf(content) or "utf-8"))
    except (LookupError, UnicodeDecodeError, ValueError):
        return None


def _chunks(pending: Sequence[int], parts: Sequence[Part]) -> list[list[int]]:
    """Batches of at most 20 parts with at most four for any one mailbox, in order."""
    chunks: list[list[int]] = []
    loads: list[Counter[str]] = []
    for index in pending:
        key = (parts[index].mailbox or "").lower()
        for chunk, load in zip(chunks, loads, strict=True):
            if len(chunk) < BATCH_LIMIT and load[key] < MAILBOX_CONCURRENCY:
                chunk.append(index)
                load[key] += 1
                break
        else:
            chunks.append([index])
            loads.append(Counter({key: 1}))
    return chunks


def _unbatch(body: Mapping[str, Any], count: int) -> list[_Answer]:
    """The parts' answers in request order (Graph returns them in any order)."""
    by_id = {str(r.get("id")): r for r in body.get("responses") or []}
    answers = []
    for number in range(count):
        found = by_id.get(str(number))
        if found is None:
            answers.append(_Answer(502, {}, None, "batch answer missing"))
            continue
        headers = {str(k): str(v) for k, v in (found.get("headers") or {}).items()}
        answers.append(_Answer(int(found.get("status", 502)), headers, found.get("body")))
    return answers


def _delay(headers: Mapping[str, str], attempt: int) -> float:
    """Retry-After when Graph gives one (seconds, fractions allowed), else exponential backoff."""
    given = _header(headers, "Retry-After")
    if given is not None:
        try:
            return max(0.0, float(given))
        except ValueError:
            pass
    return exponential(attempt, base=0.5, cap=30.0)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever its case (batch parts carry plain dicts)."""
    if name in headers:
        return headers[name]
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _network_error(exc: Exception, where: str) -> ConnectorError:
    """What requests (tokens) or aiohttp (Graph) raised when the other side was not reached."""
    if isinstance(exc, requests.exceptions.SSLError | aiohttp.ClientSSLError | ssl.SSLError):
        return ConnectorError(
            f"TLS verification failed for {urlsplit(where).netloc or where}; point "
            "REQUESTS_CA_BUNDLE or SSL_CERT_FILE at the CA that signed its certificate"
        )
    return ProviderUnavailable(
        f"cannot reach {urlsplit(where).netloc or where} ({type(exc).__name__}); "
        "check the network and KINDLY_OUTLOOK__ endpoints, then retry"
    )


def _graph_error(
    answer: _Answer, *, mailbox: str | None, what: str, permission: str
) -> ConnectorError:
    status = answer.status
    error = (answer.body.get("error") or {}) if isinstance(answer.body, dict) else {}
    code = str(error.get("code", "")) or answer.reason
    message = _first_line(error.get("message", ""))[:200]
    who = f" for {mailbox}" if mailbox else ""
    said = f"{status} {code}" + (f": {message}" if message else "")
    if status == 429:
        retry = _header(answer.headers, "Retry-After")
        return RateLimited(
            f"Microsoft Graph kept throttling {what}{who} ({said}); the next run retries",
            manager=mailbox,
            retry_after=_delay(answer.headers, 1) if retry else None,
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
    return Rejected(
        f"Microsoft Graph rejected {what}{who} ({said})",
        manager=mailbox,
        status=status,
        reason=code,
    )


# -- wiring -------------------------------------------------------------------------------


def client_from_settings(settings: Settings) -> GraphClient:
    """The one Graph client the connector, directory and mailer share."""
    outlook = settings.outlook
    if not outlook.tenant_id or not outlook.client_id:
        raise ConfigError(
            "KINDLY_OUTLOOK__TENANT_ID and KINDLY_OUTLOOK__CLIENT_ID are required with "
            "KINDLY_CALENDAR=outlook or KINDLY_EMAIL__BACKEND=graph"
        )
    credential: str | dict[str, str]
    if outlook.client_secret is not None:
        credential = outlook.client_secret.get_secret_value()
    elif outlook.client_certificate_file is not None:
        credential = _certificate(outlook.client_certificate_file)
    else:
        raise ConfigError(
            "set KINDLY_OUTLOOK__CLIENT_SECRET or KINDLY_OUTLOOK__CLIENT_CERTIFICATE_FILE "
            "(a PEM file with the private key and the certificate)"
        )
    creds = Credentials(
        outlook.tenant_id, outlook.client_id, credential, str(outlook.authority_host).rstrip("/")
    )
    return GraphClient(
        creds,
        graph_endpoint=str(outlook.graph_endpoint),
        ca_bundle=settings.ca_bundle,
        in_flight=GRAPH_IN_FLIGHT,
        quotas=connect(settings.redis_url),
    )


def _certificate(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"KINDLY_OUTLOOK__CLIENT_CERTIFICATE_FILE={path}: cannot read it ({exc}); "
            "check the path and its permissions"
        ) from None
    key = re.search(
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----.+?-----END [A-Z ]*PRIVATE KEY-----", text, re.S
    )
    cert = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, re.S)
    if key is None or cert is None:
        raise ConfigError(
            f"KINDLY_OUTLOOK__CLIENT_CERTIFICATE_FILE={path}: needs both the private key and "
            "the certificate in PEM form (cat key.pem cert.pem > app.pem)"
        )
    return {"private_key": key.group(0), "public_certificate": cert.group(0)}

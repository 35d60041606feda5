"""Calls into google-api-python-client: worker threads, retries, and the error edge.

The client library is synchronous and its httplib2 transport is not
thread-safe, so every worker thread keeps its own connection and its own
built API clients; the pool's size bounds how many calls are in flight.
Retries happen on the event loop (exponential backoff with jitter, honouring
Retry-After) with an injectable ``sleep`` so tests drive time. Google's
per-user and per-project request quotas are kept by a :class:`RateLimiter`
that each worker thread passes just before its request leaves. Every
googleapiclient / google-auth / httplib2 exception is translated here, once,
into :mod:`service.errors`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import ssl
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import google_auth_httplib2
import httplib2
import orjson
from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import Error as ClientError
from googleapiclient.errors import HttpError
from googleapiclient.model import JsonModel

from connectors.quota import Quota, QuotaUnavailable, SharedQuotas, Steps
from service import metrics
from service.backoff import equal_jitter, exponential
from service.errors import (
    AuthFailed,
    ConnectorError,
    ProviderUnavailable,
    RateLimited,
    Rejected,
)

SCOPE = "https://www.googleapis.com/auth/"
#: (name, version, path under the API endpoint) of each API Kindly calls
#: the client's own methods, which are not collections
SERVICE_METHODS = frozenset({"new_batch_http_request", "close"})
#: impersonated users whose credentials (and tokens) are kept: far more than are ever in flight
SUBJECTS_KEPT = 1024
APIS = {"calendar": ("calendar", "v3", "calendar/v3/"), "directory": ("admin", "directory_v1", "")}
RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
#: seconds a step of the shared quotas may be spent in (:class:`~connectors.quota.Steps`;
#: its window is counted as much longer). A manager's few requests can span seconds on
#: a busy machine, and the per-user quota never binds Kindly (600 a minute against a
#: manager's handful); the project's does, so its steps are spent within a second
USER_STEP_SPEND, PROJECT_STEP_SPEND = 5.0, 1.0
log = logging.getLogger("kindly.google")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
#: a blocking sleep: the rate limiter waits in the worker thread that is about to send
Block = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with equal jitter; a Retry-After longer than ``cap`` ends the retries.

    Throttling gets ``rate_attempts``: Google's quotas count per minute, and one shared
    with other clients of the project (or an earlier run that minute) can stay used up for
    most of one, so those retries wait at least a whole minute in all before giving up.
    """

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    rate_attempts: int = 10

    def delay(self, attempt: int, retry_after: float | None, rand: Callable[[], float]) -> float:
        if retry_after is not None:
            return retry_after
        return equal_jitter(exponential(attempt, base=self.base, cap=self.cap), rand())


DEFAULT_BACKOFF = Backoff()


@dataclass(frozen=True, slots=True)
class Rates:
    """Google Calendar's request quotas: per impersonated user, and per Cloud project."""

    per_user: int = 600
    per_project: int = 10_000
    #: seconds Google counts over; tests shrink it so pacing shows in a fraction of a second
    window: float = 60.0
    #: Google counts a request when it arrives, a varying moment after its slot was taken;
    #: pacing over ``window + slack`` keeps that jitter from putting one too many in a window
    slack: float = 1.0

    def __post_init__(self) -> None:
        if min(self.per_user, self.per_project) < 1 or self.window <= 0 or self.slack < 0:
            raise ValueError(f"{self}: limits must be at least 1, the window above 0, slack >= 0")


DEFAULT_RATES = Rates()


class RateLimiter:
    """At most ``per_user`` requests of one user, and ``per_project`` in all, in any
    ``window + slack`` seconds: a sliding log of slot times, safe across worker threads.

    Google counts a request when it arrives, so the slot is taken in the worker thread
    just before sending, not on the event loop, where a queue for the pool would stand
    between slot and send. A wait holds that thread: harmless when the project quota
    binds (everyone waits), and the per-user quota is far above one manager's requests.

    Only the newest ``limit`` slots of each log matter (a new slot must wait until the
    oldest of them has left the window), so each log is a bounded deque and a slot under
    the limit costs a lock and two appends. Users idle for a whole window are forgotten,
    so memory follows the users active in the last minute, not the organisation.
    """

    def __init__(
        self,
        rates: Rates = DEFAULT_RATES,
        *,
        clock: Clock = time.monotonic,
        sleep: Block = time.sleep,
    ) -> None:
        self.rates = rates
        self._span = rates.window + rates.slack
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._project: deque[float] = deque(maxlen=rates.per_project)
        #: least recently seen user first, so idle ones are found at the front
        self._users: OrderedDict[str, deque[float]] = OrderedDict()

    def acquire(self, user: str) -> float:
        """Take a slot for one request of ``user``, blocking until there is one; returns
        the clock's time of the slot. Waiters retry after their wait rather than queue,
        so a slot freed is taken by whoever asks first."""
        while True:
            with self._lock:
                now = self._clock()
                mine = self._user(user, now)
                wait = max(self._wait(self._project, now), self._wait(mine, now))
                if wait <= 0:
                    self._project.append(now)
                    mine.append(now)
                    return now
            metrics.waited("google_quota", wait)
            self._sleep(wait)

    def _wait(self, slots: deque[float], now: float) -> float:
        """Seconds until the oldest slot of a full log leaves the window; 0 if not full."""
        if len(slots) < (slots.maxlen or 0):
            return 0.0
        # as Google's window is drawn: a slot at or before ``now - span`` has left it
        return slots[0] - (now - self._span)

    def _user(self, user: str, now: float) -> deque[float]:
        self._forget(now - self._span)
        slots = self._users.get(user)
        if slots is None:
            slots = self._users[user] = deque(maxlen=self.rates.per_user)
        else:
            self._users.move_to_end(user)
        return slots

    def _forget(self, horizon: float) -> None:
        """Drop the least recently seen users while all their slots are at or before ``horizon``."""
        while self._users:
            oldest = next(iter(self._users.values()))
            if oldest and oldest[-1] > horizon:
                return
            self._users.popitem(last=False)


class SharedRateLimiter:
    """Google's quotas counted in Redis by every Kindly process of one Cloud project
    (:mod:`connectors.quota`), taken just before sending as :class:`RateLimiter` does.

    The user's slot first, then the project's: the project quota is the one that binds,
    and a user slot taken while the project is full only waits with it (600 a minute is
    far above one manager's requests). Both are counted a few slots at a time
    (:class:`~connectors.quota.Steps`): two Redis round trips a request were a tenth of
    the connector's CPU. If Redis stops answering, this process paces itself with its
    own :class:`RateLimiter` from then on.
    """

    def __init__(self, rates: Rates, quotas: SharedQuotas, *, project: str) -> None:
        self.rates = rates
        self.quotas = quotas
        self.project = project
        span = rates.window + rates.slack
        per_user, per_project = Quota(rates.per_user, span), Quota(rates.per_project, span)
        self._user = Steps(quotas, per_user, reason="google_quota", spend=USER_STEP_SPEND)
        self._project = Steps(quotas, per_project, reason="google_quota", spend=PROJECT_STEP_SPEND)
        self.local: RateLimiter | None = None

    def acquire(self, user: str) -> float:
        """Take a slot for one request of ``user``, blocking until there is one."""
        if self.local is None:
            try:
                self._user.acquire("google", self.project, user.lower())
                self._project.acquire("google", self.project)
                return time.monotonic()
            except QuotaUnavailable as exc:
                log.warning("Google quotas no longer shared (%s); this process paces itself", exc)
                self.local = RateLimiter(self.rates)
        return self.local.acquire(user)


class Collections:
    """A client whose collections (``events()``, ``freebusy()``...) are built once.

    The library builds a collection anew on every call, every method of it with a
    docstring rendered from the discovery schemas: that cost more CPU than the
    request it was for. A collection only builds requests, so one serves every
    thread; anything else is the client's own attribute.
    """

    def __init__(self, service: Any) -> None:
        self._service = service
        self._built: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        made = getattr(self._service, name)
        if not callable(made) or name.startswith("_") or name in SERVICE_METHODS:
            return made
        return partial(self._collection, name)

    def _collection(self, name: str) -> Any:
        with self._lock:
            if name not in self._built:
                self._built[name] = getattr(self._service, name)()
            return self._built[name]


class GoogleTransport:
    """Runs one client-library request at a time per worker thread, as a chosen user."""

    def __init__(
        self,
        credentials: service_account.Credentials,
        *,
        api_endpoint: str,
        max_concurrency: int = 8,
        backoff: Backoff = DEFAULT_BACKOFF,
        rates: Rates = DEFAULT_RATES,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        timeout: float = 30.0,
        ca_certs: str | None = None,
        subjects_kept: int = SUBJECTS_KEPT,
        quotas: SharedQuotas | None = None,
    ) -> None:
        self._credentials = credentials
        self._subjects_kept = subjects_kept
        self._endpoint = api_endpoint if api_endpoint.endswith("/") else api_endpoint + "/"
        self._pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="kindly-google")
        self._backoff, self._sleep, self._rand = backoff, sleep, rand
        self._limiter: RateLimiter | SharedRateLimiter = (
            RateLimiter(rates)
            if quotas is None
            else SharedRateLimiter(rates, quotas, project=_project(credentials))
        )
        self._timeout, self._ca_certs = timeout, ca_certs
        self._local = threading.local()
        self._lock = threading.Lock()
        self._subjects: OrderedDict[tuple[str, tuple[str, ...]], service_account.Credentials] = (
            OrderedDict()
        )
        self._clients: dict[str, Any] = {}
        self._https: list[httplib2.Http] = []

    @property
    def rates(self) -> Rates:
        return self._limiter.rates

    async def call(
        self,
        api: str,
        subject: str,
        scopes: tuple[str, ...],
        make: Callable[[Any], Any],
        *,
        what: str,
    ) -> Any:
        """``make(client)`` builds the request; it runs as ``subject`` with ``scopes``."""
        loop = asyncio.get_running_loop()
        for attempt in itertools.count(1):
            try:
                return await loop.run_in_executor(
                    self._pool, self._execute, api, subject, scopes, make
                )
            except (ClientError, GoogleAuthError, httplib2.HttpLib2Error, OSError) as exc:
                error = translate(exc, subject=subject, what=what, scopes=scopes)
                retry_after = _retry_after(exc) if isinstance(exc, HttpError) else None
            budget = (
                self._backoff.rate_attempts
                if isinstance(error, RateLimited)
                else self._backoff.attempts
            )
            if not error.transient or attempt >= budget:
                raise error
            if retry_after is not None and retry_after > self._backoff.cap:
                raise error
            delay = self._backoff.delay(attempt, retry_after, self._rand)
            reason = "google_throttled" if isinstance(error, RateLimited) else "google_retry"
            metrics.waited(reason, delay)
            await self._sleep(delay)
        raise AssertionError("unreachable: the loop ends by returning or raising")

    def _execute(
        self, api: str, subject: str, scopes: tuple[str, ...], make: Callable[[Any], Any]
    ) -> Any:
        http = self._thread_http()
        client = self._client(api)
        credentials = self._as(subject, scopes)
        if not credentials.valid:
            # the token first: it is no Calendar quota, and the slot is taken as the request leaves
            # (google-auth ships without annotations on this method)
            credentials.refresh(google_auth_httplib2.Request(http))  # type: ignore[no-untyped-call]
        authorised = google_auth_httplib2.AuthorizedHttp(
            credentials, http=http, max_refresh_attempts=1
        )
        self._limiter.acquire(subject)
        return make(client).execute(http=authorised, num_retries=0)

    def _as(self, subject: str, scopes: tuple[str, ...]) -> service_account.Credentials:
        """The subject's credentials; the most recently used are kept with their tokens (a
        manager's run makes a handful of requests close together), the rest forgotten, so
        memory does not grow with the organisation."""
        with self._lock:
            key = (subject, scopes)
            credentials = self._subjects.get(key)
            if credentials is None:
                scoped = self._credentials.with_scopes([SCOPE + s for s in scopes])
                credentials = self._subjects[key] = scoped.with_subject(subject)
                while len(self._subjects) > self._subjects_kept:
                    self._subjects.popitem(last=False)
            else:
                self._subjects.move_to_end(key)
            return credentials

    def _thread_http(self) -> httplib2.Http:
        http: httplib2.Http | None = getattr(self._local, "http", None)
        if http is None:
            http = httplib2.Http(timeout=self._timeout, ca_certs=self._ca_certs)
            self._local.http = http
            with self._lock:
                self._https.append(http)
        return http

    def _client(self, api: str) -> Any:
        """One client per API for every thread: it only builds requests, and each request
        is executed with its thread's own ``http`` (the library's documented thread-safe
        use); a client per thread would hold a parsed discovery document per thread."""
        with self._lock:
            if api not in self._clients:
                name, version, path = APIS[api]
                service = build(
                    name,
                    version,
                    http=httplib2.Http(timeout=self._timeout, ca_certs=self._ca_certs),
                    static_discovery=True,
                    cache_discovery=False,
                    client_options={"api_endpoint": self._endpoint + path},
                    model=OrjsonModel(),
                )
                self._clients[api] = Collections(service)
            return self._clients[api]

    async def aclose(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for http in self._https:
                http.close()
            self._https.clear()


def _project(credentials: service_account.Credentials) -> str:
    """What Google counts the project quota against: the service account's Cloud project."""
    return str(credentials.project_id or credentials.service_account_email).lower()


class OrjsonModel(JsonModel):  # type: ignore[misc]
    """The library's JSON model, decoding with orjson: a listing page of 250 events
    decodes in a third of the time, and decoding was an eighth of a run's CPU."""

    def deserialize(self, content: bytes | str) -> Any:
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            return super().deserialize(content)  # what the library makes of it


def translate(
    exc: BaseException, *, subject: str, what: str, scopes: tuple[str, ...] = ()
) -> ConnectorError:
    """One clear Kindly error for a client-library exception met while doing ``what``."""
    if isinstance(exc, HttpError):
        return _http_error(exc, subject=subject, what=what, scopes=scopes)
    if isinstance(exc, RefreshError):
        return _refresh_error(exc, subject=subject, what=what, scopes=scopes)
    untrusted = _untrusted_certificate(exc)
    if untrusted is not None:
        return ConnectorError(
            f"Google's certificate is not trusted, so Kindly cannot {what} for {subject} "
            f"({untrusted.verify_message or untrusted}); add the CA that signed it to the PEM "
            "bundle named by REQUESTS_CA_BUNDLE or SSL_CERT_FILE, or fix "
            "KINDLY_GOOGLE__API_ENDPOINT",
            manager=subject,
        )
    if isinstance(exc, (TransportError, httplib2.HttpLib2Error, OSError)):
        return ProviderUnavailable(
            f"Google could not be reached to {what} for {subject} ({exc}); "
            "check the network and KINDLY_GOOGLE__API_ENDPOINT",
            manager=subject,
        )
    return ConnectorError(f"Google failed to {what} for {subject}: {exc}", manager=subject)


def _untrusted_certificate(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The verification failure behind ``exc``: retrying cannot fix a trust problem."""
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        visited.add(id(seen))
        wrapped = next((a for a in seen.args if isinstance(a, BaseException)), None)
        seen = seen.__cause__ or wrapped
    return None


def _reason(exc: HttpError) -> tuple[str, str]:
    try:
        error = json.loads(exc.content or b"{}")["error"]
        return str(error["errors"][0].get("reason", "")), str(error.get("message", ""))
    except (ValueError, KeyError, IndexError, TypeError):
        return "", exc.reason or ""


def _retry_after(exc: HttpError) -> float | None:
    value = exc.resp.get("retry-after") if exc.resp is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _http_error(
    exc: HttpError, *, subject: str, what: str, scopes: tuple[str, ...]
) -> ConnectorError:
    status = int(exc.status_code or exc.resp.status)
    reason, message = _reason(exc)
    said = f"Google said {status} {reason or ''}: {message}".rstrip(": ")
    if status == 429 or (status == 403 and reason in RATE_REASONS):
        return RateLimited(
            f"Google throttled Kindly while trying to {what} for {subject} ({said}); "
            "it will be retried; if it keeps happening, lower "
            "KINDLY_GOOGLE__REQUESTS_PER_MINUTE_PER_USER or KINDLY_GOOGLE__REQUESTS_PER_MINUTE",
            manager=subject,
            status=status,
            retry_after=_retry_after(exc),
        )
    if status >= 500:
        return ProviderUnavailable(
            f"Google is unavailable to {what} for {subject} ({said}); it will be retried",
            manager=subject,
            status=status,
        )
    if status == 401:
        return AuthFailed(
            f"Google rejected Kindly's credentials to {what} for {subject} ({said}); "
            "check KINDLY_GOOGLE__SERVICE_ACCOUNT_FILE and the key's status in the Cloud console",
            manager=subject,
            status=status,
        )
    if status == 403:
        return AuthFailed(
            f"Google refused to {what} for {subject} ({said}); in the Admin console's "
            f"domain-wide delegation grant the service account {_scopes(scopes)}",
            manager=subject,
            status=status,
        )
    if status == 404:
        return AuthFailed(
            f"Google does not know {subject} to {what} ({said}); "
            "check the email in the roster is the user's primary address",
            manager=subject,
            status=status,
        )
    return Rejected(
        f"Google refused to {what} for {subject} ({said})",
        manager=subject,
        status=status,
        reason=reason,
    )


def _refresh_error(
    exc: RefreshError, *, subject: str, what: str, scopes: tuple[str, ...]
) -> ConnectorError:
    detail = str(exc.args[0]) if exc.args else str(exc)
    if exc.retryable:
        return ProviderUnavailable(
            f"Google's token endpoint failed for {subject} ({detail}); it will be retried",
            manager=subject,
        )
    if "invalid_grant" in detail and "email" in detail.lower():
        return AuthFailed(
            f"{subject} is not an active user of the Google Workspace domain ({detail}); "
            "fix the email in the roster or restore the user",
            manager=subject,
        )
    if "unauthorized_client" in detail:
        return AuthFailed(
            f"the service account may not act for {subject} to {what} ({detail}); in the Admin "
            f"console (Security > API controls > Domain-wide delegation) grant {_scopes(scopes)}",
            manager=subject,
        )
    return AuthFailed(
        f"Google refused a token to {what} for {subject} ({detail}); "
        "check KINDLY_GOOGLE__SERVICE_ACCOUNT_FILE",
        manager=subject,
    )


def _scopes(scopes: tuple[str, ...]) -> str:
    return ", ".join(SCOPE + s for s in scopes) or "the scopes listed in the README"

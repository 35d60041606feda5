"""``kindly worker``'s HTTP endpoints: ``/metrics``, ``/healthz`` and ``/readyz``.

Served on ``KINDLY_METRICS__HOST``:``KINDLY_METRICS__PORT`` (off when the port is
unset) by a small asyncio HTTP/1.1 server in the worker's own event loop, so:

- ``/healthz`` answers 200 as long as that loop runs (a wedged worker stops answering);
- ``/readyz`` answers 200 when Redis answers a PING, the roster loads and the worker
  has started, else 503 with a one-line reason (settings were loaded at start: a
  worker with bad ones never gets this far);
- ``/metrics`` is prometheus-client's text format; the queue length is read from
  Redis at each scrape.

Each request is answered and the connection closed: probes and scrapers ask one
thing at a time, and a server this small need not keep connections.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from service import metrics
from service.errors import ConfigError, KindlyError
from service.ledger import UNREACHABLE
from service.model import Roster
from service.settings import Settings
from service.wiring import load_roster

log = logging.getLogger("kindly.probes")
#: how long a probe waits for Redis before calling it unready
REDIS_TIMEOUT = 2.0
#: how long a client may take to send its request line and headers
REQUEST_TIMEOUT = 5.0


@dataclass
class Readiness:
    """Why the worker is not ready, or None. The roster file is read again when it has
    changed since the last probe (a large one takes a while to parse, on the worker's
    loop); a directory roster only at start (it costs provider requests)."""

    settings: Settings
    queue: str
    redis: Redis
    started: bool = False
    #: the roster file's (mtime, size) at the last probe, and what loading it said then
    _roster_seen: tuple[int, int] | None = None
    _roster_problem: str | None = None

    async def reason(self) -> str | None:
        try:
            await asyncio.wait_for(self.redis.ping(), REDIS_TIMEOUT)
        except (RedisError, TimeoutError, *UNREACHABLE) as exc:
            return f"Redis is not answering ({type(exc).__name__}: {exc or 'timed out'})"
        if self.settings.roster_source == "file" and (problem := await self._roster()):
            return f"the roster does not load: {problem}"
        if not self.started:
            return "the worker is starting"
        return None

    async def _roster(self) -> str | None:
        try:
            stat = self.settings.roster_file.stat()
            seen: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            seen = None  # load_roster says what is wrong with it
        if seen is None or seen != self._roster_seen:
            self._roster_seen = seen
            try:
                metrics.roster_loaded(await load_roster(self.settings))
                self._roster_problem = None
            except KindlyError as exc:
                self._roster_problem = str(exc).splitlines()[0]
        return self._roster_problem

    async def count_queued(self) -> None:
        try:
            queued = await asyncio.wait_for(self.redis.zcard(self.queue), REDIS_TIMEOUT)
        except (RedisError, TimeoutError, *UNREACHABLE):
            return  # the last value stays; /readyz says why
        metrics.JOBS_QUEUED.set(queued)


@dataclass
class ProbeServer:
    """The running endpoint; :meth:`close` stops it and its Redis client."""

    readiness: Readiness
    server: asyncio.Server
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def port(self) -> int:
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()
        await self.readiness.redis.aclose()


async def serve(settings: Settings, *, queue: str) -> ProbeServer | None:
    """Start the endpoint when ``KINDLY_METRICS__PORT`` is set (None otherwise)."""
    port, host = settings.metrics.port, settings.metrics.host
    if port is None:
        return None
    redis: Redis = Redis.from_url(
        settings.redis_url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
    )
    readiness = Readiness(settings, queue, redis)
    try:
        server = await asyncio.start_server(
            lambda r, w: _answer(readiness, r, w), host, port, reuse_address=True
        )
    except OSError as exc:
        await redis.aclose()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigError(
            f"KINDLY_METRICS__PORT={port}: cannot listen on {host}:{port} ({reason}); "
            "choose a free port, or check KINDLY_METRICS__HOST"
        ) from None
    log.info("metrics and probes on http://%s:%d/metrics, /healthz, /readyz", host, port)
    return ProbeServer(readiness, server)


async def attach(ctx: dict[str, Any], settings: Settings, roster: Roster, *, queue: str) -> None:
    """The worker has started: serve the endpoint unless ``kindly worker`` already does
    (it starts it before Redis answers, so /healthz is up while the worker waits)."""
    metrics.roster_loaded(roster)
    if "probes" not in ctx:
        ctx["probes"] = await serve(settings, queue=queue)
        ctx["probes_owned"] = True
    server: ProbeServer | None = ctx["probes"]
    if server is not None:
        server.readiness.started = True


async def detach(ctx: dict[str, Any]) -> None:
    """The worker stops: close the endpoint if :func:`attach` started it."""
    server: ProbeServer | None = ctx.get("probes")
    if server is not None and ctx.get("probes_owned"):
        await server.close()


async def _answer(
    readiness: Readiness, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        method, path = await asyncio.wait_for(_request(reader), REQUEST_TIMEOUT)
        status, content_type, body = await _route(readiness, method, path)
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode("ascii") + (b"" if method == "HEAD" else body))
        await writer.drain()
    except (TimeoutError, ValueError, ConnectionError):
        pass  # a client that went away or spoke no HTTP gets nothing
    finally:
        writer.close()


async def _request(reader: asyncio.StreamReader) -> tuple[str, str]:
    """The method and path; the headers are read and ignored."""
    line = (await reader.readline()).decode("latin-1")
    parts = line.split()
    if len(parts) != 3:
        raise ValueError(f"not an HTTP request line: {line[:80]!r}")
    while (await reader.readline()).strip():
        pass
    return parts[0], parts[1].split("?", 1)[0]


TEXT = "text/plain; charset=utf-8"


async def _route(readiness: Readiness, method: str, path: str) -> tuple[str, str, bytes]:
    if method not in ("GET", "HEAD"):
        return "405 Method Not Allowed", TEXT, b"use GET\n"
    if path == "/healthz":
        return "200 OK", TEXT, b"ok\n"
    if path == "/readyz":
        reason = await readiness.reason()
        if reason is None:
            return "200 OK", TEXT, b"ready\n"
        return "503 Service Unavailable", TEXT, f"not ready: {reason}\n".encode()
    if path == "/metrics":
        await readiness.count_queued()
        return "200 OK", CONTENT_TYPE_LATEST, generate_latest(REGISTRY)
    return "404 Not Found", TEXT, b"not found; try /metrics, /healthz or /readyz\n"

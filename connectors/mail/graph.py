"""Digest delivery through Microsoft Graph (``KINDLY_EMAIL__BACKEND=graph``).

The sender's Sent Items are the ledger: a digest whose Message-ID is there
already went out. ``kindly run --once`` reads them once per run
(:meth:`GraphMailer.prefetch_sent`: the week's messages, pages of 1,000) and
the mailer adds what it sends, so a digest costs one sendMail. Without that
call (the worker, which lives for weeks and shares the mailbox with other
workers) each digest is looked up by its Message-ID before it is sent. A send
whose answer was lost is looked up again before it is retried. The message
goes as MIME, so its Message-ID, both parts and inline styles arrive exactly
as rendered.

Exchange can show a sent message in Sent Items seconds or minutes late, so what
this mailer sends is also recorded in the outbox ledger
(``KINDLY_EMAIL__OUTBOX_DIR/<week>/ledger.jsonl``, as the file backend keeps it)
and looked up there first: an immediate re-run never sends again. The record
is a second ledger, never a reason to fail: if it cannot be read or written,
Sent Items decide alone and the log says so.

Exchange Online takes 30 messages a minute from one sender:
``KINDLY_EMAIL__SEND_PER_MINUTE`` is counted in Redis for every process
(:class:`connectors.quota.SendQuota`, the count SMTP takes too), or by
:class:`SendPace` in a process alone; a 429 is still retried by the client
after Retry-After.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from connectors.graph_http import GraphClient, client_from_settings
from connectors.mail.outbox import OutboxLedger
from connectors.quota import Pace, SendQuota
from service import metrics
from service.errors import ConnectorError, DeliveryError
from service.model import iso_week
from service.ports import Mailer, OutgoingMail, SendResult
from service.settings import Settings

log = logging.getLogger("kindly.graph")
SEND_ATTEMPTS = 3
#: the largest page of messages Graph gives ($top from 1 to 1000)
SENT_PAGE = 1000
#: local time runs from UTC-12 to UTC+14: the ISO weeks a manager can be in at one instant
EARLIEST_OFFSET, LATEST_OFFSET = timedelta(hours=-12), timedelta(hours=14)
#: read before the earliest Monday 00:00 UTC: UTC+14 reaches it 14 h sooner, and clocks drift
SENT_MARGIN = timedelta(days=1)

Sleep = Callable[[float], Awaitable[None]]


class SendPace:
    """At most ``per_minute`` sends from this process in any ``window`` seconds.

    A slot is busy while its send runs and for a whole window after Graph
    answered: Exchange counts a message when it arrives, somewhere inside that
    span, so sends a window apart by this count are a window apart there too.
    ``clock`` (monotonic seconds) and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.per_minute = per_minute
        self.window = window
        self.clock = clock
        self.sleep = sleep
        self._running = 0
        #: when the slots of finished sends are free again, earliest first
        self._free_at: deque[float] = deque()
        self._queue = asyncio.Lock()
        self._finished = asyncio.Event()

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        async with self._queue:  # first come, first served
            await self._wait_for_slot()
            self._running += 1
        try:
            yield
        finally:
            self._running -= 1
            self._free_at.append(self.clock() + self.window)
            self._finished.set()

    async def _wait_for_slot(self) -> None:
        while True:
            now = self.clock()
            while self._free_at and self._free_at[0] <= now:
                self._free_at.popleft()
            if self._running + len(self._free_at) < self.per_minute:
                return
            if self._free_at:
                metrics.waited("graph_send_rate", self._free_at[0] - now)
                await self.sleep(self._free_at[0] - now)
            else:  # every slot is a send still running: its end starts the count
                self._finished.clear()
                await self._finished.wait()


@dataclass(frozen=True, slots=True)
class _SentItems:
    """The Message-IDs in Sent Items for some ISO weeks, as read at the start of a run."""

    weeks: frozenset[str]
    ids: set[str]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class GraphMailer(Mailer):
    """A :class:`service.ports.Mailer` sending as ``sender`` with Graph's sendMail."""

    def __init__(
        self,
        client: GraphClient,
        *,
        sender: str,
        owns_client: bool = True,
        pace: Pace | None = None,
        clock: Callable[[], datetime] = _utc_now,
        ledger: OutboxLedger | None = None,
    ) -> None:
        self.client = client
        self.sender = sender.lower()
        self.owns_client = owns_client
        self.pace = pace or SendPace(30)
        #: what this host sent, known before Sent Items show it
        self.ledger = ledger
        #: the real clock, for digests sent while a run had its clock pinned
        self.clock = clock
        self._sent: _SentItems | None = None

    def scopes(self) -> tuple[str, ...]:
        """The application permissions sending uses (``kindly check`` lists them)."""
        return ("Mail.Send", "Mail.ReadBasic.All")

    async def prefetch_sent(self, now: datetime) -> None:
        """Read the Sent Items of every ISO week a manager can be in at ``now``, once for a
        run, so each digest costs one sendMail. Only for a run that ends with the process:
        a long-lived one would miss what other processes send later. If Graph refuses,
        each digest is looked up on its own, as without this call."""
        since = _sent_since(min(now, self.clock()))
        try:
            items = await self.client.pages(
                self._folder(),
                mailbox=self.sender,
                what="reading Sent Items",
                permission="Mail.ReadBasic.All",
                params={
                    "$filter": f"sentDateTime ge {since:%Y-%m-%dT%H:%M:%SZ}",
                    "$select": "internetMessageId",
                    "$top": str(SENT_PAGE),
                },
            )
        except ConnectorError as exc:
            log.warning("%s; each digest is looked up in Sent Items instead", exc)
            self._sent = None
            return
        ids = {str(i["internetMessageId"]) for i in items if i.get("internetMessageId")}
        self._sent = _SentItems(_weeks_at(now), ids)

    async def already_sent(self, message_id: str, *, manager: str, week: str) -> bool:
        if await self._recorded(week, message_id):
            return True
        known = self._sent
        if known is not None and week in known.weeks:
            return message_id in known.ids
        return await self._in_sent_items(message_id, manager=manager)

    async def send(self, mail: OutgoingMail) -> SendResult:
        if await self.already_sent(mail.message_id, manager=mail.manager, week=mail.week):
            return SendResult(mail.message_id, sent=False)
        await self._deliver(mail)
        if self._sent is not None:
            self._sent.ids.add(mail.message_id)
        await self._record(mail)
        return SendResult(mail.message_id, sent=True)

    async def _recorded(self, week: str, message_id: str) -> bool:
        if self.ledger is None:
            return False
        try:
            return await asyncio.to_thread(self.ledger.holds, week, message_id)
        except (DeliveryError, OSError) as exc:
            log.warning("%s; Sent Items decide alone whether a digest went out", exc)
            return False

    async def _record(self, mail: OutgoingMail) -> None:
        if self.ledger is None:
            return

        def add(ledger: OutboxLedger) -> None:
            with ledger.week(mail.week) as week:
                week.add(mail)

        try:
            await asyncio.to_thread(add, self.ledger)
        except (DeliveryError, OSError) as exc:
            log.warning("digest for %s sent, but not recorded: %s", mail.manager, exc)

    async def _deliver(self, mail: OutgoingMail) -> None:
        """sendMail, retried after a transient failure unless Sent Items show it went out."""
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                async with self.pace.turn():
                    await self._send_mime(mail)
                return
            except ConnectorError as exc:
                if not exc.transient or attempt == SEND_ATTEMPTS:
                    raise _delivery_error(exc, mail.manager) from None
            # the answer may have been lost while the mail went out: look before sending again
            if await self._in_sent_items(mail.message_id, manager=mail.manager):
                return

    async def _in_sent_items(self, message_id: str, *, manager: str) -> bool:
        quoted = message_id.replace("'", "''")
        try:
            answer = await self.client.call(
                "GET",
                self._folder(),
                mailbox=self.sender,
                what="checking Sent Items",
                permission="Mail.ReadBasic.All",
                params={"$filter": f"internetMessageId eq '{quoted}'", "$select": "id"},
            )
        except ConnectorError as exc:
            raise _delivery_error(exc, manager) from None
        return bool(answer.get("value"))

    async def _send_mime(self, mail: OutgoingMail) -> None:
        raw = base64.b64encode(mail.message.as_bytes())
        await self.client.call(
            "POST",
            f"/users/{quote(self.sender, safe='@.')}/sendMail",
            mailbox=self.sender,
            what="sending the digest",
            permission="Mail.Send",
            resend=False,
            data=raw,
            headers={"Content-Type": "text/plain"},
        )

    def _folder(self) -> str:
        return f"/users/{quote(self.sender, safe='@.')}/mailFolders/sentitems/messages"

    async def aclose(self) -> None:
        self._sent = None
        if self.owns_client:
            await self.client.aclose()


def _weeks_at(now: datetime) -> frozenset[str]:
    """The ISO weeks it is somewhere on Earth at ``now`` (one, or two around Monday 00:00)."""
    utc = now.astimezone(UTC)
    return frozenset({iso_week(utc + EARLIEST_OFFSET), iso_week(utc + LATEST_OFFSET)})


def _sent_since(now: datetime) -> datetime:
    """From when Sent Items can hold a digest of the weeks :func:`_weeks_at` gives."""
    earliest = (now.astimezone(UTC) + EARLIEST_OFFSET).date()
    monday = datetime.combine(earliest - timedelta(days=earliest.weekday()), datetime.min.time())
    return monday.replace(tzinfo=UTC) - SENT_MARGIN


def _delivery_error(exc: ConnectorError, manager: str) -> DeliveryError:
    return DeliveryError(f"digest for {manager}: {exc}", transient=exc.transient, status=exc.status)


def from_settings(settings: Settings, *, client: GraphClient | None = None) -> GraphMailer:
    """``client``: the Graph client the calendar connector shares, when it reads Outlook."""
    client = client or client_from_settings(settings)
    sender = str(settings.email.from_)
    per_minute = settings.email.send_per_minute
    pace: Pace = SendPace(per_minute)
    if client.quotas is not None:
        pace = SendQuota(
            client.quotas, sender, per_minute=per_minute, fallback=pace, reason="graph_send_rate"
        )
    return GraphMailer(
        client, sender=sender, pace=pace, ledger=OutboxLedger(settings.email.outbox_dir)
    )

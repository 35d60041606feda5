"""Digest delivery through Microsoft Graph (``KINDLY_EMAIL__BACKEND=graph``).

The sender's Sent Items are the ledger: a digest whose Message-ID is there
already went out. The message is sent as MIME so its Message-ID, both
parts and inline styles arrive exactly as rendered; a send whose answer was
lost is checked against Sent Items again before it is retried.
"""

from __future__ import annotations

import base64
from urllib.parse import quote

from connectors.graph_http import GraphClient
from connectors.outlook import client_from_settings
from service.errors import ConnectorError, DeliveryError
from service.mailer import OutgoingMail, SendResult
from service.settings import Settings

SEND_ATTEMPTS = 3


class GraphMailer:
    """A :class:`service.mailer.Mailer` sending as ``sender`` with Graph's sendMail."""

    def __init__(self, client: GraphClient, *, sender: str, owns_client: bool = True) -> None:
        self.client = client
        self.sender = sender.lower()
        self.owns_client = owns_client

    def scopes(self) -> tuple[str, ...]:
        """The application permissions sending uses (``kindly check`` lists them)."""
        return ("Mail.Send", "Mail.ReadBasic.All")

    async def already_sent(self, message_id: str, *, manager: str, week: str) -> bool:
        quoted = message_id.replace("'", "''")
        try:
            answer = await self.client.call(
                "GET",
                f"/users/{quote(self.sender, safe='@.')}/mailFolders/sentitems/messages",
                mailbox=self.sender,
                what="checking Sent Items",
                permission="Mail.ReadBasic.All",
                params={"$filter": f"internetMessageId eq '{quoted}'", "$select": "id"},
            )
        except ConnectorError as exc:
            raise _delivery_error(exc, manager) from None
        return bool(answer.get("value"))

    async def send(self, mail: OutgoingMail) -> SendResult:
        for attempt in range(SEND_ATTEMPTS):
            if await self.already_sent(mail.message_id, manager=mail.manager, week=mail.week):
                return SendResult(mail.message_id, sent=attempt > 0)
            try:
                await self._send_mime(mail)
            except ConnectorError as exc:
                if exc.transient and attempt + 1 < SEND_ATTEMPTS:
                    continue  # the answer may be lost while the mail went out: look again
                raise _delivery_error(exc, mail.manager) from None
            return SendResult(mail.message_id, sent=True)
        raise DeliveryError(f"digest for {mail.manager}: Graph kept failing", transient=True)

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

    async def aclose(self) -> None:
        if self.owns_client:
            await self.client.aclose()


def _delivery_error(exc: ConnectorError, manager: str) -> DeliveryError:
    return DeliveryError(f"digest for {manager}: {exc}", transient=exc.transient, code=exc.status)


def from_settings(settings: Settings) -> GraphMailer:
    return GraphMailer(client_from_settings(settings), sender=str(settings.email.from_))

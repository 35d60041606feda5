"""The digest as an email: one multipart/alternative message, the same bytes for the same inputs.

The email package parses and folds the headers (addresses, encoded words, the
boundary parameter). The two quoted-printable parts are framed here, as RFC 2046
lays them out: flattening them through the package's generator, line by line,
cost more than building the digest, and their layout never varies. The bytes are
the ones the generator writes for the same message (``tests/test_digest.py``
``TestEmail`` compares the two on any input).
"""

from __future__ import annotations

import binascii
import hashlib
from datetime import datetime
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from functools import cache
from typing import Any

from service.digest import RenderedDigest
from service.errors import DeliveryError
from service.model import Manager
from service.recap import untrusted

__all__ = ["DigestEmail", "compose_email", "message_id_for"]

CRLF = b"\r\n"


class _Registry(HeaderRegistry):
    """The package's header registry, making each header class once: its own makes a new
    class for every header set, a third of the cost of composing a digest's headers."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        made = self._made.get(name.lower())
        if made is None:
            made = self._made[name.lower()] = super().__getitem__(name)
        return made


#: the SMTP policy (CRLF, RFC 2047 encoded words, folding at 78), header classes made once
POLICY = SMTP.clone(header_factory=_Registry())


class DigestEmail:
    """A composed digest: its headers to read like a message's, its bytes to send."""

    __slots__ = ("_bytes", "headers")

    def __init__(self, headers: EmailMessage, raw: bytes) -> None:
        self.headers = headers
        self._bytes = raw

    def __getitem__(self, name: str) -> Any:
        return self.headers[name]

    def get_boundary(self) -> str | None:
        return self.headers.get_boundary()

    def as_bytes(self) -> bytes:
        """The whole message with CRLF line ends, as SMTP and Graph's MIME upload take it."""
        return self._bytes


def message_id_for(manager: str, week: str, sender: str) -> str:
    """``<kindly.<hash>@<sender domain>>``: the same for every run of one manager's week."""
    raw = f"kindly-digest\n{manager.strip().lower()}\n{week}".encode()
    domain = sender.rpartition("@")[2].strip().lower() or "localhost"
    return f"<kindly.{hashlib.sha256(raw).hexdigest()[:32]}@{_ascii_domain(domain)}>"


def _ascii_domain(domain: str) -> str:
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return "localhost"


def compose_email(
    rendered: RenderedDigest,
    *,
    sender: str,
    manager: Manager,
    message_id: str,
    now: datetime,
) -> DigestEmail:
    """One multipart/alternative message (text, HTML), identical bytes for identical inputs."""
    headers = EmailMessage(policy=POLICY)
    try:
        headers["From"] = Address(display_name="Kindly", addr_spec=sender)
        headers["To"] = Address(display_name=untrusted(manager.name), addr_spec=manager.email)
    except (ValueError, IndexError) as exc:
        raise DeliveryError(
            f"cannot address the digest for {manager.email!r} from {sender!r} ({exc}); "
            "check KINDLY_EMAIL__FROM and the manager's email in the roster"
        ) from None
    headers["Subject"] = untrusted(rendered.subject)
    headers["Date"] = format_datetime(now)
    headers["Message-ID"] = message_id
    # RFC 3834: tells auto-responders not to answer a weekly digest
    headers["Auto-Submitted"] = "auto-generated"
    headers["MIME-Version"] = "1.0"
    headers["Content-Type"] = "multipart/alternative"
    boundary = _boundary(message_id)
    headers.set_boundary(boundary)
    delimiter = b"--" + boundary.encode("ascii")
    raw = b"".join(
        (
            header_block(headers),
            CRLF,
            delimiter + CRLF,
            _part_head("plain") + CRLF + quoted_printable(rendered.text),
            CRLF + delimiter + CRLF,
            _part_head("html") + CRLF + quoted_printable(rendered.html),
            CRLF + delimiter + b"--" + CRLF,
        )
    )
    return DigestEmail(headers, raw)


def header_block(message: EmailMessage) -> bytes:
    """The message's headers as its generator writes them: each folded by the SMTP policy."""
    return b"".join(POLICY.fold_binary(name, value) for name, value in message.raw_items())


@cache
def _part_head(subtype: str) -> bytes:
    part = EmailMessage(policy=POLICY)
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "quoted-printable"
    return header_block(part)


def quoted_printable(body: str) -> bytes:
    """UTF-8, quoted-printable by ``binascii`` (C; the email package's encoder is pure
    Python), CRLF line ends, ending with one: any body decodes to its text."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(lines, istext=True)
    if not encoded.endswith(b"\n"):
        encoded += b"\n"
    return encoded.replace(b"\n", CRLF)


def _boundary(message_id: str) -> str:
    """Derived from the Message-ID; its '=' can never occur in a quoted-printable body."""
    return f"==kindly-{hashlib.sha256(message_id.encode()).hexdigest()[:32]}=="

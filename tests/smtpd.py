"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, port 0, recording every message.

Faults are switched on per test (``server.fault = Fault.DATA_4XX`` ...) and
TLS uses a throw-away self-signed certificate made with ``cryptography``.
The chaos script runs the same server as its sink, with a fault rate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import random
import ssl
from dataclasses import dataclass, field
from email import message_from_bytes
from enum import Enum
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class Fault(Enum):
    NONE = "none"
    RCPT_4XX = "rcpt_4xx"
    RCPT_5XX = "rcpt_5xx"
    DATA_4XX = "data_4xx"
    DATA_5XX = "data_5xx"
    #: the message arrives whole, then the connection drops before the reply
    DROP_AFTER_DATA = "drop_after_data"
    #: the connection drops when the client sends MAIL
    DROP_AT_MAIL = "drop_at_mail"


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message_id: str
    data: bytes


@dataclass
class Recorder:
    """The aiosmtpd handler: records what it accepted, misbehaves as told."""

    fault: Fault = Fault.NONE
    #: probability of a 451 at RCPT or after DATA (chaos runs)
    transient_rate: float = 0.0
    #: the first N messages get a 451 after their data
    fail_data_times: int = 0
    #: transient replies given because of ``transient_rate``
    faults: int = 0
    #: when set, the reply to the final "." waits for it (``arrived`` is set meanwhile)
    gate: asyncio.Event | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    received: list[Received] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.fault is Fault.DROP_AT_MAIL:
            assert server.transport is not None
            server.transport.close()
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.fault is Fault.RCPT_4XX or self._unlucky():
            return "451 4.3.0 try again later"
        if self.fault is Fault.RCPT_5XX:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.fault is Fault.DATA_4XX or self._unlucky() or self._still_failing():
            return "451 4.3.0 queue full, try later"
        if self.fault is Fault.DATA_5XX:
            return "554 5.6.0 message rejected"
        data = envelope.original_content or b""
        if self.gate is not None:
            self.arrived.set()
            await self.gate.wait()
        if self.fault is Fault.DROP_AFTER_DATA:
            # the server keeps the message but the client never hears the 250
            self._keep(envelope, data)
            assert server.transport is not None
            server.transport.close()
            return "250 OK"
        self._keep(envelope, data)
        return "250 OK"

    def _keep(self, envelope: Envelope, data: bytes) -> None:
        message_id = str(message_from_bytes(data).get("Message-ID", "")).strip()
        self.received.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), message_id, data)
        )

    def _still_failing(self) -> bool:
        self.fail_data_times -= 1
        return self.fail_data_times >= 0

    def _unlucky(self) -> bool:
        unlucky = self.transient_rate > 0 and self.rng.random() < self.transient_rate
        self.faults += unlucky
        return unlucky


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def self_signed(folder: Path) -> Certificate:
    """A certificate for localhost and 127.0.0.1, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtpd.pem", folder / "smtpd.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_path, key_path)


@dataclass
class SmtpServer:
    """A running server: where it listens and what it recorded."""

    recorder: Recorder
    server: asyncio.Server
    port: int

    @property
    def received(self) -> list[Received]:
        return self.recorder.received

    @property
    def fault(self) -> Fault:
        return self.recorder.fault

    @fault.setter
    def fault(self, value: Fault) -> None:
        self.recorder.fault = value

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


def _authenticator(credentials: tuple[str, str]) -> Any:
    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and (
                data.login.decode(),
                data.password.decode(),
            )
            == credentials
        )
        return AuthResult(success=ok, handled=False)

    return check


async def start_server(
    *,
    recorder: Recorder | None = None,
    certificate: Certificate | None = None,
    implicit_tls: bool = False,
    credentials: tuple[str, str] | None = None,
    port: int = 0,
) -> SmtpServer:
    """Serve SMTP on 127.0.0.1 in the running loop; STARTTLS when a certificate is given."""
    recorder = recorder or Recorder()
    loop = asyncio.get_running_loop()
    tls = certificate.server_context() if certificate else None

    def protocol() -> SMTP:
        return SMTP(
            recorder,
            hostname="localhost",
            tls_context=None if implicit_tls else tls,
            require_starttls=bool(tls) and not implicit_tls,
            authenticator=_authenticator(credentials) if credentials else None,
            auth_required=credentials is not None,
            auth_require_tls=tls is not None,
            # aiosmtpd's LOGIN waits for a second line after a refused PLAIN; PLAIN is enough
            auth_exclude_mechanism=["LOGIN"],
            loop=loop,
        )

    server = await loop.create_server(
        protocol, "127.0.0.1", port, ssl=tls if implicit_tls else None
    )
    bound = server.sockets[0].getsockname()[1]
    return SmtpServer(recorder, server, int(bound))

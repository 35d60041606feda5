"""How a rendered digest leaves Kindly: one small async Protocol, one per backend.

Every backend is idempotent per Message-ID: a digest whose Message-ID its
ledger already holds is not sent again (``sent=False`` in the result).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Message(Protocol):
    """What a backend needs of a message: its bytes (an ``EmailMessage`` will do)."""

    def as_bytes(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """One manager's digest for one ISO week, ready to send."""

    manager: str
    week: str
    message_id: str
    message: Message


@dataclass(frozen=True, slots=True)
class SendResult:
    message_id: str
    #: False when the ledger shows this digest went out on an earlier run
    sent: bool


class Mailer(Protocol):
    async def send(self, mail: OutgoingMail) -> SendResult:
        """Deliver once; a Message-ID already in the ledger is not sent again."""
        ...

    async def already_sent(self, message_id: str, *, manager: str, week: str) -> bool:
        """Whether the ledger holds this digest (dry runs and the planner ask)."""
        ...

    async def aclose(self) -> None: ...

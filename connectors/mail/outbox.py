"""The file mailer: the embedded default, one ``.eml`` per manager per week.

``<outbox>/<week>/<manager>.eml`` is the delivery and ``<outbox>/<week>/ledger.jsonl``
records it, one JSON line per digest. The ``.eml`` is written atomically and the
ledger only appended to, both under a lock, so overlapping runs never write a
digest twice, a crash never leaves half a file, and a week of 10,000 digests costs
one short append each rather than a rewrite of everything sent before.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from service.errors import DeliveryError
from service.files import locked, write_atomically
from service.ports import Mailer, OutgoingMail, SendResult
from service.settings import Settings

LEDGER = "ledger.jsonl"
#: the ledger's earlier form (one JSON object), still honoured so an upgrade resends nothing
OLD_LEDGER = "ledger.json"


@dataclass
class _WeekLedger:
    """What this process has read of one week's ledger: the Message-IDs and how far."""

    sent: set[str] = field(default_factory=set)
    offset: int = 0
    #: the file ends in a line cut short by a crash: the next append cuts it off first
    torn: bool = False


class OutboxLedger:
    """``<outbox>/<week>/ledger.jsonl``: the Message-IDs delivered, one JSON line each.

    The file mailer keeps it beside its ``.eml`` files; the Graph mailer keeps it too,
    so a re-run knows what it sent before Sent Items show it. Raises DeliveryError for
    a ledger it cannot read or write.
    """

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox
        self._weeks: dict[str, _WeekLedger] = {}

    @contextmanager
    def week(self, week: str) -> Iterator[_Week]:
        """One week's ledger, brought up to date and locked against other processes."""
        folder = self.outbox / week
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with locked(folder / ".lock"):
                yield _Week(folder, self._catch_up(folder, week))
        except OSError as exc:
            raise DeliveryError(
                f"cannot write the digest to {folder} ({exc.strerror or exc}); "
                "check KINDLY_EMAIL__OUTBOX_DIR exists and is writable"
            ) from None

    def holds(self, week: str, message_id: str) -> bool:
        """Whether the week's ledger has this Message-ID (no folder: nothing sent)."""
        folder = self.outbox / week
        if not folder.is_dir():
            return False
        with locked(folder / ".lock"):
            return message_id in self._catch_up(folder, week).sent

    def _catch_up(self, folder: Path, week: str) -> _WeekLedger:
        """This week's ledger, reading only what other runs appended since the last look."""
        ledger = self._weeks.get(week)
        if ledger is None:
            ledger = self._weeks[week] = _WeekLedger(sent=_read_old_ledger(folder))
        path = folder / LEDGER
        try:
            with path.open("rb") as handle:
                handle.seek(ledger.offset)
                fresh = handle.read()
        except FileNotFoundError:
            return ledger
        except OSError as exc:
            raise _unreadable(path, exc) from None
        complete, end, rest = fresh.rpartition(b"\n")
        for raw in complete.splitlines():
            if raw.strip():
                ledger.sent.add(_message_id(raw, path))
        ledger.offset += len(complete) + len(end)
        ledger.torn = bool(rest)
        return ledger


@dataclass(frozen=True, slots=True)
class _Week:
    """One week's ledger while its lock is held."""

    folder: Path
    ledger: _WeekLedger

    def has(self, message_id: str) -> bool:
        return message_id in self.ledger.sent

    def add(self, mail: OutgoingMail, *, file: str | None = None) -> None:
        """Append the digest's line; durable before this returns."""
        record = {"file": file, "manager": mail.manager, "message_id": mail.message_id}
        data = (json.dumps(record, sort_keys=True) + "\n").encode()
        path = self.folder / LEDGER
        if self.ledger.torn:
            # a run crashed mid-line after writing its .eml (which keeps it from resending)
            os.truncate(path, self.ledger.offset)
        with path.open("ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        self.ledger.offset += len(data)
        self.ledger.torn = False
        self.ledger.sent.add(mail.message_id)


class FileMailer(Mailer):
    """Writes digests to a folder instead of sending them (demo, previews, audits)."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox
        self.ledger = OutboxLedger(outbox)

    async def send(self, mail: OutgoingMail) -> SendResult:
        return await asyncio.to_thread(self._send, mail)

    async def already_sent(self, message_id: str, *, manager: str, week: str) -> bool:
        return await asyncio.to_thread(self._already_sent, message_id, manager, week)

    async def aclose(self) -> None:
        """Nothing is held open between sends."""

    def _already_sent(self, message_id: str, manager: str, week: str) -> bool:
        if (self.outbox / week / f"{manager}.eml").exists():
            return True
        return self.ledger.holds(week, message_id)

    def _send(self, mail: OutgoingMail) -> SendResult:
        with self.ledger.week(mail.week) as week:
            eml = week.folder / f"{mail.manager}.eml"
            if week.has(mail.message_id) or eml.exists():
                return SendResult(mail.message_id, sent=False)
            write_atomically(eml, mail.message.as_bytes())
            week.add(mail, file=eml.name)
        return SendResult(mail.message_id, sent=True)


def _message_id(raw: bytes, path: Path) -> str:
    try:
        record = json.loads(raw)
        return str(record["message_id"])
    except (ValueError, TypeError, KeyError) as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: Exception) -> DeliveryError:
    return DeliveryError(
        f"the outbox ledger {path} is unreadable ({exc}); "
        "restore it or remove it together with that week's .eml files"
    )


def _read_old_ledger(folder: Path) -> set[str]:
    path = folder / OLD_LEDGER
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return set()
    except (OSError, ValueError) as exc:
        raise _unreadable(path, exc) from None
    return set(data) if isinstance(data, dict) else set()


def from_settings(settings: Settings) -> FileMailer:
    return FileMailer(settings.email.outbox_dir)

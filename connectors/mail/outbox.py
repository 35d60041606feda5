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


class FileMailer(Mailer):
    """Writes digests to a folder instead of sending them (demo, previews, audits)."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox
        self._weeks: dict[str, _WeekLedger] = {}

    async def send(self, mail: OutgoingMail) -> SendResult:
        return await asyncio.to_thread(self._send, mail)

    async def already_sent(self, message_id: str, *, manager: str, week: str) -> bool:
        return await asyncio.to_thread(self._already_sent, message_id, manager, week)

    async def aclose(self) -> None:
        """Nothing is held open between sends."""

    def _already_sent(self, message_id: str, manager: str, week: str) -> bool:
        folder = self.outbox / week
        if (folder / f"{manager}.eml").exists():
            return True
        if not folder.is_dir():
            return False
        with locked(folder / ".lock"):
            return message_id in self._catch_up(folder, week).sent

    def _send(self, mail: OutgoingMail) -> SendResult:
        folder = self.outbox / mail.week
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with locked(folder / ".lock"):
                ledger = self._catch_up(folder, mail.week)
                eml = folder / f"{mail.manager}.eml"
                if mail.message_id in ledger.sent or eml.exists():
                    return SendResult(mail.message_id, sent=False)
                write_atomically(eml, mail.message.as_bytes())
                record = {"file": eml.name, "manager": mail.manager, "message_id": mail.message_id}
                line = json.dumps(record, sort_keys=True) + "\n"
                self._append(folder / LEDGER, line, ledger)
                ledger.sent.add(mail.message_id)
        except OSError as exc:
            raise DeliveryError(
                f"cannot write the digest to {folder} ({exc.strerror or exc}); "
                "check KINDLY_EMAIL__OUTBOX_DIR exists and is writable"
            ) from None
        return SendResult(mail.message_id, sent=True)

    def _append(self, path: Path, text: str, ledger: _WeekLedger) -> None:
        data = text.encode()
        if ledger.torn:
            # a run crashed mid-line after writing its .eml (which keeps it from resending)
            os.truncate(path, ledger.offset)
        with path.open("ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        ledger.offset += len(data)
        ledger.torn = False

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

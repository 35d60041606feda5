"""The file mailer: the embedded default, one ``.eml`` per manager per week.

``<outbox>/<week>/<manager>.eml`` is the delivery and ``<outbox>/<week>/ledger.json``
records it. Both are written atomically under a lock, so overlapping runs
never write a digest twice and a crash never leaves half a file.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from service.errors import DeliveryError
from service.files import locked, write_atomically
from service.mailer import OutgoingMail, SendResult


class FileMailer:
    """Writes digests to a folder instead of sending them (demo, previews, audits)."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    async def send(self, mail: OutgoingMail) -> SendResult:
        return await asyncio.to_thread(self._send, mail)

    async def already_sent(self, message_id: str, *, manager: str, week: str) -> bool:
        return await asyncio.to_thread(self._already_sent, message_id, manager, week)

    async def aclose(self) -> None:
        """Nothing is held open between sends."""

    def _already_sent(self, message_id: str, manager: str, week: str) -> bool:
        folder = self.outbox / week
        return message_id in _read_ledger(folder) or (folder / f"{manager}.eml").exists()

    def _send(self, mail: OutgoingMail) -> SendResult:
        folder = self.outbox / mail.week
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with locked(folder / ".lock"):
                ledger = _read_ledger(folder)
                eml = folder / f"{mail.manager}.eml"
                if mail.message_id in ledger or eml.exists():
                    return SendResult(mail.message_id, sent=False)
                write_atomically(eml, mail.message.as_bytes())
                ledger[mail.message_id] = {"manager": mail.manager, "file": eml.name}
                write_atomically(
                    folder / "ledger.json",
                    (json.dumps(ledger, indent=2, sort_keys=True) + "\n").encode(),
                )
        except OSError as exc:
            raise DeliveryError(
                f"cannot write the digest to {folder} ({exc.strerror or exc}); "
                "check KINDLY_EMAIL__OUTBOX_DIR exists and is writable"
            ) from None
        return SendResult(mail.message_id, sent=True)


def _read_ledger(folder: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads((folder / "ledger.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise DeliveryError(
            f"the outbox ledger {folder / 'ledger.json'} is unreadable ({exc}); "
            "restore it or remove it together with that week's .eml files"
        ) from None
    return data if isinstance(data, dict) else {}

"""The file mailer delivers each digest once, atomically, even when runs overlap."""

from __future__ import annotations

import asyncio
import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from service.errors import DeliveryError
from service.mailer import Mailer, OutgoingMail
from service.outbox import FileMailer


def mail(manager: str = "maria@example.com", week: str = "2026-W48") -> OutgoingMail:
    message = EmailMessage()
    message["Message-ID"] = f"<kindly.{manager}.{week}@example.com>"
    message["Subject"] = "Your week with your team"
    message.set_content("Hello")
    return OutgoingMail(manager, week, message["Message-ID"], message)


class TestFileMailer:
    """One .eml per manager per week, with a ledger that makes re-runs send nothing."""

    async def test_writes_eml_and_ledger(self, tmp_path: Path) -> None:
        mailer: Mailer = FileMailer(tmp_path)
        result = await mailer.send(mail())
        assert result.sent
        eml = tmp_path / "2026-W48" / "maria@example.com.eml"
        assert b"Subject: Your week with your team" in eml.read_bytes()
        ledger = json.loads((tmp_path / "2026-W48" / "ledger.json").read_text())
        assert ledger == {
            result.message_id: {"manager": "maria@example.com", "file": "maria@example.com.eml"}
        }
        assert await mailer.already_sent(
            result.message_id, manager="maria@example.com", week="2026-W48"
        )

    async def test_second_send_is_a_no_op(self, tmp_path: Path) -> None:
        mailer = FileMailer(tmp_path)
        await mailer.send(mail())
        before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
        again = await mailer.send(mail())
        assert not again.sent
        assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before

    async def test_concurrent_sends_deliver_once(self, tmp_path: Path) -> None:
        mailers = [FileMailer(tmp_path) for _ in range(8)]
        results = await asyncio.gather(*(m.send(mail()) for m in mailers))
        assert sum(r.sent for r in results) == 1

    async def test_weeks_are_separate(self, tmp_path: Path) -> None:
        mailer = FileMailer(tmp_path)
        assert (await mailer.send(mail(week="2026-W48"))).sent
        assert (await mailer.send(mail(week="2026-W49"))).sent

    async def test_unwritable_outbox(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("not a folder")
        with pytest.raises(DeliveryError, match="KINDLY_EMAIL__OUTBOX_DIR"):
            await FileMailer(blocker).send(mail())

    async def test_corrupt_ledger(self, tmp_path: Path) -> None:
        (tmp_path / "2026-W48").mkdir()
        (tmp_path / "2026-W48" / "ledger.json").write_text("{broken")
        with pytest.raises(DeliveryError, match="ledger"):
            await FileMailer(tmp_path).send(mail())

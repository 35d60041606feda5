"""The file mailer delivers each digest once, atomically, even when runs overlap."""

from __future__ import annotations

import asyncio
import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from connectors.mail.outbox import FileMailer
from service.errors import DeliveryError
from service.ports import Mailer, OutgoingMail


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
        lines = (tmp_path / "2026-W48" / "ledger.jsonl").read_text().splitlines()
        assert [json.loads(line) for line in lines] == [
            {
                "file": "maria@example.com.eml",
                "manager": "maria@example.com",
                "message_id": result.message_id,
            }
        ]
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
        (tmp_path / "2026-W48" / "ledger.jsonl").write_text("{broken\n")
        with pytest.raises(DeliveryError, match=r"ledger\.jsonl is unreadable"):
            await FileMailer(tmp_path).send(mail())

    async def test_corrupt_ledger_of_the_earlier_form(self, tmp_path: Path) -> None:
        (tmp_path / "2026-W48").mkdir()
        (tmp_path / "2026-W48" / "ledger.json").write_text("{broken")
        with pytest.raises(DeliveryError, match=r"ledger\.json is unreadable"):
            await FileMailer(tmp_path).send(mail())


class TestLedgerAppends:
    """The ledger grows by one line per digest and is read incrementally."""

    async def test_a_moved_eml_is_not_sent_again(self, tmp_path: Path) -> None:
        """A pickup process may take the .eml away: the ledger still knows it went out."""
        first = await FileMailer(tmp_path).send(mail())
        (tmp_path / "2026-W48" / "maria@example.com.eml").unlink()
        again = await FileMailer(tmp_path).send(mail())
        assert first.sent
        assert not again.sent

    async def test_what_another_run_appended_is_seen(self, tmp_path: Path) -> None:
        ours, theirs = FileMailer(tmp_path), FileMailer(tmp_path)
        await ours.send(mail("ana@example.com"))
        sent_by_them = await theirs.send(mail("bo@example.com"))
        (tmp_path / "2026-W48" / "bo@example.com.eml").unlink()
        assert await ours.already_sent(
            sent_by_them.message_id, manager="bo@example.com", week="2026-W48"
        )
        assert not (await ours.send(mail("bo@example.com"))).sent

    async def test_a_line_cut_short_by_a_crash_is_cut_off(self, tmp_path: Path) -> None:
        mailer = FileMailer(tmp_path)
        await mailer.send(mail("ana@example.com"))
        ledger = tmp_path / "2026-W48" / "ledger.jsonl"
        whole = ledger.read_bytes()
        ledger.write_bytes(whole + b'{"file": "bo@exa')  # the crash
        (tmp_path / "2026-W48" / "bo@example.com.eml").write_bytes(b"written before the crash")
        fresh = FileMailer(tmp_path)
        assert not (await fresh.send(mail("bo@example.com"))).sent  # its .eml is there
        assert (await fresh.send(mail("cy@example.com"))).sent
        lines = ledger.read_text().splitlines()
        assert [json.loads(line)["manager"] for line in lines] == [
            "ana@example.com",
            "cy@example.com",
        ]

    async def test_the_earlier_ledger_form_is_honoured(self, tmp_path: Path) -> None:
        """A week begun before the upgrade: its ledger.json still stops a second send."""
        (tmp_path / "2026-W48").mkdir()
        earlier = mail()
        (tmp_path / "2026-W48" / "ledger.json").write_text(
            json.dumps({earlier.message_id: {"manager": earlier.manager, "file": "x.eml"}})
        )
        assert not (await FileMailer(tmp_path).send(earlier)).sent

    async def test_many_digests_one_line_each(self, tmp_path: Path) -> None:
        mailer = FileMailer(tmp_path)
        managers = [f"m{n}@example.com" for n in range(50)]
        results = await asyncio.gather(*(mailer.send(mail(m)) for m in managers))
        assert all(r.sent for r in results)
        lines = (tmp_path / "2026-W48" / "ledger.jsonl").read_text().splitlines()
        assert sorted(json.loads(line)["manager"] for line in lines) == sorted(managers)

"""Output safety: untrusted names, notes and titles cannot inject markup or mail headers, or leak.

The demo organisation is copied with hostile names and expectations in the
roster (CR/LF header injections, markup, control and bidi characters,
non-ASCII), hostile "agreed expectations" notes in every event and a
distinctive title on every event. The real ``kindly`` command runs it
through every mailer: the file outbox, SMTP (the aiosmtpd sink in
tests/smtpd.py, with the real Redis ledger) and Graph (the emulator).
"""

from __future__ import annotations

import asyncio
import re
import threading
import unicodedata
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import yaml
from redis import Redis

from tests.conftest import EXAMPLES, RunKindly, runner
from tests.emulators.graph import CertificatePair, GraphEmulator
from tests.smtpd import Recorder, SmtpServer, start_server

NOW = "2026-11-23T08:00:00+01:00"
SENDER = "kindly@example.com"
#: a Redis database of its own, so these runs share no ledger with other tests
REDIS_URL = "redis://127.0.0.1:6379/13"
TITLE_CANARY = "CANARY-TITLE"
#: what a hostile admin or calendar puts in names and notes
INJECTIONS = {
    "manager": "Anouk\r\nBcc: attacker@evil.example",
    "report": "Sanne <script>alert(1)</script>\r\nSubject: hijacked\x1b[31m \u202eevil\u202c",
    "report2": "Zoë \u2028Ødegård\nX-Injected: yes \t山田",
    "expectation": '<img src=x onerror=alert(1)> & "quotes" \x07bell',
}
NOTE = "<img src=x onerror=alert(2)> note"
HEADERS = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "auto-submitted",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}
#: headers a mail system adds on the way (Graph keeps what it is given)
TRANSPORT_HEADERS = {"received", "x-peer", "x-mailfrom", "x-rcptto", "return-path"}


def hostile_org(folder: Path) -> Path:
    """A copy of ``examples/`` with hostile roster text, notes and a canary title on every event."""
    roster = yaml.safe_load((EXAMPLES / "roster.yaml").read_text(encoding="utf-8"))
    first = roster["managers"][0]
    first["name"] = INJECTIONS["manager"]
    first["reports"][0]["name"] = INJECTIONS["report"]
    first["reports"][1]["name"] = INJECTIONS["report2"]
    first["reports"][0]["expectations"] = [INJECTIONS["expectation"]]
    (folder / "calendars").mkdir(parents=True)
    (folder / "roster.yaml").write_text(yaml.safe_dump(roster, allow_unicode=True), "utf-8")
    for path in sorted((EXAMPLES / "calendars").glob("*.ics")):
        (folder / "calendars" / path.name).write_text(_hostile_calendar(path), "utf-8")
    return folder


def _hostile_calendar(path: Path) -> str:
    # unfold first: a title or note may continue on the next line
    text = re.sub(r"\r?\n[ \t]", "", path.read_text(encoding="utf-8"))
    lines, count = [], 0
    for line in text.splitlines():
        if re.match(r"SUMMARY[;:]", line):
            count += 1
            line = f"SUMMARY:{TITLE_CANARY}-{path.stem}-{count}"
        elif re.match(r"DESCRIPTION[;:]", line):
            head, _, rest = line.partition(":")
            line = f"{head}:Agreed expectations\\n- {NOTE}\\n\\n{rest}"
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


class SmtpSink:
    """The aiosmtpd sink of tests/smtpd.py in a thread of its own, for a Kindly subprocess."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        started = asyncio.run_coroutine_threadsafe(
            start_server(recorder=Recorder(), credentials=credentials), self.loop
        )
        self.server: SmtpServer = started.result(timeout=10)

    @property
    def port(self) -> int:
        return self.server.port

    def received(self) -> list[bytes]:
        return [mail.data for mail in self.server.received]

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def forget_ledger() -> None:
    """Remove what Kindly's runs left in the test database (its ledger keys only)."""
    client = Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match="kindly:*"))
    if keys:
        client.delete(*keys)
    client.close()


@dataclass(frozen=True)
class Run:
    """One weekly run of the hostile org: what Kindly printed and what it delivered and wrote."""

    stdout: str
    stderr: str
    returncode: int
    mails: list[bytes]
    #: text of every hold Kindly placed (ICS files, or Graph events' subject and body)
    holds: list[str]
    #: every file the run wrote, by path
    files: dict[Path, bytes]


def written(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hostile_org(tmp_path_factory.mktemp("hostile") / "org")


def _run(run_kindly: RunKindly, env: dict[str, str]) -> tuple[str, str, int]:
    done = run_kindly("run", "--once", "--json", "--now", NOW, env=env)
    return done.stdout, done.stderr, done.returncode


def ics_env(org: Path, out: Path) -> dict[str, str]:
    return {
        "KINDLY_ROSTER_FILE": str(org / "roster.yaml"),
        "KINDLY_ICS__DIR": str(org / "calendars"),
        "KINDLY_ICS__HOLDS_DIR": str(out / "holds"),
        "KINDLY_EMAIL__OUTBOX_DIR": str(out / "outbox"),
        "KINDLY_EMAIL__FROM": SENDER,
    }


def run_file(run_kindly: RunKindly, org: Path, out: Path) -> Run:
    stdout, stderr, code = _run(run_kindly, ics_env(org, out))
    files = written(out)
    mails = [data for path, data in files.items() if path.suffix == ".eml"]
    holds = [data.decode() for path, data in files.items() if path.suffix == ".ics"]
    return Run(stdout, stderr, code, mails, holds, files)


def run_smtp(run_kindly: RunKindly, org: Path, out: Path, **extra: str) -> Run:
    sink = SmtpSink()
    forget_ledger()
    try:
        env = ics_env(org, out) | {
            "KINDLY_EMAIL__BACKEND": "smtp",
            "KINDLY_SMTP__HOST": "127.0.0.1",
            "KINDLY_SMTP__PORT": str(sink.port),
            "KINDLY_SMTP__STARTTLS": "false",
            "KINDLY_REDIS_URL": REDIS_URL,
            **extra,
        }
        stdout, stderr, code = _run(run_kindly, env)
        mails = sink.received()
    finally:
        sink.close()
        forget_ledger()
    files = written(out)
    holds = [data.decode() for path, data in files.items() if path.suffix == ".ics"]
    return Run(stdout, stderr, code, mails, holds, files)


def run_graph(run_kindly: RunKindly, org: Path, out: Path, tls: CertificatePair) -> Run:
    with GraphEmulator(org, tls=tls, page_size=50, mailboxes=[SENDER]) as graph:
        env = graph.environment() | {
            "KINDLY_ROSTER_FILE": str(org / "roster.yaml"),
            "KINDLY_EMAIL__BACKEND": "graph",
            "KINDLY_EMAIL__FROM": SENDER,
        }
        stdout, stderr, code = _run(run_kindly, env)
        mails = [mail.mime or b"" for mail in graph.sent]
        managers = [
            m["email"] for m in yaml.safe_load((org / "roster.yaml").read_text())["managers"]
        ]
        holds = [f"{e.subject}\n{e.body}" for m in managers for e in graph.created_events(m)]
    return Run(stdout, stderr, code, mails, holds, written(out) if out.exists() else {})


@pytest.fixture(scope="module")
def runs(
    org: Path, tmp_path_factory: pytest.TempPathFactory, tls: CertificatePair
) -> dict[str, Run]:
    work = tmp_path_factory.mktemp("runs")
    run_kindly = runner(work)
    return {
        "file": run_file(run_kindly, org, work / "file"),
        "smtp": run_smtp(run_kindly, org, work / "smtp"),
        "graph": run_graph(run_kindly, org, work / "graph", tls),
    }


MAILERS = ["file", "smtp", "graph"]


def parsed(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def header_block(raw: bytes) -> list[bytes]:
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    return re.split(rb"\r?\n", head)


def controls(text: str) -> set[str]:
    """Control, format-bidi and line-separator characters, other than a plain line break."""
    return {
        c
        for c in text
        if c not in "\n"
        and (unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in "\u202a\u202b\u202c\u202d\u202e")
    }


class TestRuns:
    """Each mailer's run of the hostile org succeeds for every manager: three digests, holds."""

    @pytest.mark.parametrize("mailer", MAILERS)
    def test_all_delivered(self, runs: dict[str, Run], mailer: str) -> None:
        run = runs[mailer]
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr
        assert len(run.mails) == 3
        assert run.holds


class TestHeaders:
    """Names with CR/LF or non-ASCII cannot add or split mail headers, through any mailer."""

    @pytest.mark.parametrize("mailer", MAILERS)
    def test_only_kindly_headers(self, runs: dict[str, Run], mailer: str) -> None:
        for raw in runs[mailer].mails:
            names = {name.lower() for name in parsed(raw)}
            assert names - TRANSPORT_HEADERS <= HEADERS, names
            for line in header_block(raw):
                assert line[:1] in (b" ", b"\t") or line.split(b":")[0].lower().decode() in (
                    HEADERS | TRANSPORT_HEADERS
                ), line

    @pytest.mark.parametrize("mailer", MAILERS)
    def test_header_values_are_one_clean_line(self, runs: dict[str, Run], mailer: str) -> None:
        for raw in runs[mailer].mails:
            message = parsed(raw)
            for name in ("From", "To", "Subject"):
                value = str(message[name])
                assert not controls(value), (name, value)
                assert "\n" not in value
            assert message["To"].addresses[0].addr_spec.endswith("@example.com")
            assert len(message.get_all("To") or []) == 1
            assert [a.addr_spec for a in message["To"].addresses] == [
                message["To"].addresses[0].addr_spec
            ]

    def test_the_hostile_name_arrives_as_a_display_name(self, runs: dict[str, Run]) -> None:
        to_anouk = [parsed(raw) for raw in runs["file"].mails if b"anouk@example.com" in raw]
        (message,) = to_anouk
        (address,) = message["To"].addresses
        assert address.addr_spec == "anouk@example.com"
        assert address.display_name == "Anouk Bcc: attacker@evil.example"


class TestBodies:
    """Roster and calendar text is HTML-escaped in the HTML part and stripped in the text part."""

    @pytest.mark.parametrize("mailer", MAILERS)
    def test_html_is_escaped(self, runs: dict[str, Run], mailer: str) -> None:
        for raw in runs[mailer].mails:
            html_part = parsed(raw).get_body(("html",))
            assert html_part is not None
            html = html_part.get_content()
            for markup in ("<script", "<img src=x"):
                assert markup not in html
        anouk = next(r for r in runs[mailer].mails if b"anouk@example.com" in r)
        html = parsed(anouk).get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html

    @pytest.mark.parametrize("mailer", MAILERS)
    def test_text_has_no_control_characters(self, runs: dict[str, Run], mailer: str) -> None:
        for raw in runs[mailer].mails:
            text_part = parsed(raw).get_body(("plain",))
            assert text_part is not None
            text = text_part.get_content().replace("\r\n", "\n")
            assert not controls(text), controls(text)
        anouk = next(r for r in runs[mailer].mails if b"anouk@example.com" in r)
        text = parsed(anouk).get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "Sanne <script>alert(1)</script> Subject: hijacked [31m evil" in text


class TestNoTitles:
    """No event's title reaches any output: mails, holds, files written, stdout or stderr."""

    @pytest.mark.parametrize("mailer", MAILERS)
    def test_canary_titles_appear_nowhere(self, runs: dict[str, Run], mailer: str) -> None:
        run = runs[mailer]
        outputs = [run.stdout, run.stderr, *run.holds]
        outputs += [data.decode("utf-8", "replace") for data in run.files.values()]
        for raw in run.mails:
            message = parsed(raw)
            outputs.append(raw.decode("utf-8", "replace"))
            outputs += [part.get_content() for part in message.walk() if not part.is_multipart()]
        assert not [o for o in outputs if TITLE_CANARY in o]

    @pytest.mark.parametrize("mailer", MAILERS)
    def test_hold_text_has_no_markup_or_controls(self, runs: dict[str, Run], mailer: str) -> None:
        for hold in runs[mailer].holds:
            assert "<script" not in hold
            assert "\x1b" not in hold
            assert "\u202e" not in hold

"""Secrets from files: every secret setting also as ``<NAME>_FILE``, as container secrets
are mounted; the delivery test runs the real ``kindly`` against an SMTP server that
requires AUTH and a Redis of the test's own (tests/own_redis.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from service.errors import ConfigError
from service.settings import Settings, load_settings, secret_settings, variable_of
from tests.conftest import EXAMPLES, RunKindly
from tests.own_redis import OwnRedis, own_redis
from tests.test_output_safety import SmtpSink

__all__ = ["own_redis"]  # the fixture, imported so pytest finds it

SECRETS = sorted(secret_settings(Settings))
NOW = "2026-11-23T08:00:00+01:00"


@pytest.fixture(autouse=True)
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No KINDLY_ variable of the developer's shell, no .env but the test's own."""
    for name in list(os.environ):
        if name.startswith("KINDLY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _value(settings: Settings, path: tuple[str, ...]) -> str:
    value: object = settings
    for part in path:
        value = getattr(value, part)
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


class TestFromFile:
    """The file's text is the secret, one trailing newline stripped."""

    def test_the_secrets(self) -> None:
        assert SECRETS == [("outlook", "client_secret"), ("redis_url",), ("smtp", "password")]

    @pytest.mark.parametrize("path", SECRETS, ids=variable_of)
    def test_each(
        self, path: tuple[str, ...], scratch: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        secret = scratch / "secret"
        secret.write_text("redis://:pa ss@db.internal:6379/0\n", encoding="utf-8")
        monkeypatch.setenv(variable_of(path) + "_FILE", str(secret))
        assert _value(load_settings(), path) == "redis://:pa ss@db.internal:6379/0"

    def test_only_one_newline_stripped(
        self, scratch: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (scratch / "pw").write_bytes(b"ends in a blank line\r\n\r\n")
        monkeypatch.setenv("KINDLY_SMTP__PASSWORD_FILE", str(scratch / "pw"))
        password = load_settings().smtp.password
        assert password is not None
        assert password.get_secret_value() == "ends in a blank line\r\n"

    def test_the_rest_of_the_section_stays(
        self, scratch: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (scratch / "pw").write_text("s3cret\n", encoding="utf-8")
        monkeypatch.setenv("KINDLY_SMTP__PASSWORD_FILE", str(scratch / "pw"))
        monkeypatch.setenv("KINDLY_SMTP__HOST", "mail.example.org")
        smtp = load_settings().smtp
        assert (smtp.host, smtp.password) == ("mail.example.org", SecretStr("s3cret"))

    def test_in_dotenv(self, scratch: Path) -> None:
        (scratch / "pw").write_text("s3cret\n", encoding="utf-8")
        (scratch / ".env").write_text(f"KINDLY_SMTP__PASSWORD_FILE={scratch / 'pw'}\n")
        assert load_settings().smtp.password == SecretStr("s3cret")


class TestMistakes:
    """Both forms, or a file that cannot be read: one line naming what to fix, never the secret."""

    @pytest.mark.parametrize("path", SECRETS, ids=variable_of)
    def test_both(
        self, path: tuple[str, ...], scratch: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        variable = variable_of(path)
        (scratch / "secret").write_text("from-the-file", encoding="utf-8")
        monkeypatch.setenv(variable, "from-the-variable")
        monkeypatch.setenv(variable + "_FILE", str(scratch / "secret"))
        with pytest.raises(ConfigError) as raised:
            load_settings()
        assert str(raised.value) == f"{variable} and {variable}_FILE are both set; keep one of them"

    def test_both_across_dotenv(self, scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (scratch / ".env").write_text("KINDLY_REDIS_URL=redis://db:6379\n")
        monkeypatch.setenv("KINDLY_REDIS_URL_FILE", str(scratch / "url"))
        with pytest.raises(ConfigError, match="KINDLY_REDIS_URL and KINDLY_REDIS_URL_FILE"):
            load_settings()

    @pytest.mark.parametrize(
        ("name", "reason"), [("missing", "No such file or directory"), (".", "Is a directory")]
    )
    def test_unreadable(
        self, name: str, reason: str, scratch: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        where = scratch / name
        monkeypatch.setenv("KINDLY_OUTLOOK__CLIENT_SECRET_FILE", str(where))
        with pytest.raises(ConfigError) as raised:
            load_settings()
        assert str(raised.value) == (
            f"KINDLY_OUTLOOK__CLIENT_SECRET_FILE={where}: cannot read the file ({reason}); "
            "point it at a readable file that holds the secret"
        )

    def test_not_text_never_shown(self, scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (scratch / "key").write_bytes(b"\xff\xfeTOP-SECRET-CONTENT")
        monkeypatch.setenv("KINDLY_SMTP__PASSWORD_FILE", str(scratch / "key"))
        with pytest.raises(ConfigError) as raised:
            load_settings()
        assert str(raised.value).startswith(f"KINDLY_SMTP__PASSWORD_FILE={scratch / 'key'}: ")
        assert "TOP-SECRET" not in str(raised.value)

    def test_command_exits_2(self, run_kindly: RunKindly, scratch: Path) -> None:
        (scratch / "pw").write_text("s3cret", encoding="utf-8")
        result = run_kindly(
            "check",
            env={"KINDLY_SMTP__PASSWORD": "s3cret", "KINDLY_SMTP__PASSWORD_FILE": "pw"},
        )
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            "kindly: KINDLY_SMTP__PASSWORD and KINDLY_SMTP__PASSWORD_FILE are both set; "
            "keep one of them"
        ]


class TestDelivery:
    """A password given as a file logs in to an SMTP server that requires AUTH."""

    @pytest.mark.parametrize(
        ("written", "delivered"), [("s3cret\n", True), ("Not-The-Pa55word\n", False)]
    )
    def test_password_file(
        self,
        written: str,
        delivered: bool,
        run_kindly: RunKindly,
        scratch: Path,
        own_redis: OwnRedis,
    ) -> None:
        (scratch / "smtp-password").write_text(written, encoding="utf-8")
        (scratch / "redis-url").write_text(own_redis.url + "\n", encoding="utf-8")
        sink = SmtpSink(credentials=("kindly", "s3cret"))
        try:
            result = run_kindly(
                "run", "--once", "--manager", "anouk@example.com", "--now", NOW,
                env={
                    "KINDLY_ROSTER_FILE": str(EXAMPLES / "roster.yaml"),
                    "KINDLY_ICS__DIR": str(EXAMPLES / "calendars"),
                    "KINDLY_ICS__HOLDS_DIR": str(scratch / "holds"),
                    "KINDLY_EMAIL__BACKEND": "smtp",
                    "KINDLY_EMAIL__FROM": "kindly@example.org",
                    "KINDLY_SMTP__HOST": "127.0.0.1",
                    "KINDLY_SMTP__PORT": str(sink.port),
                    "KINDLY_SMTP__STARTTLS": "false",
                    "KINDLY_SMTP__USERNAME": "kindly",
                    "KINDLY_SMTP__PASSWORD_FILE": str(scratch / "smtp-password"),
                    "KINDLY_REDIS_URL_FILE": str(scratch / "redis-url"),
                },
            )  # fmt: skip
            received = sink.received()
        finally:
            sink.close()
        assert (result.returncode, len(received)) == ((0, 1) if delivered else (1, 0)), (
            result.stderr
        )
        if not delivered:
            assert "anouk@example.com" in result.stderr
            assert "Not-The-Pa55word" not in result.stderr
            assert "refused the login (535)" in result.stderr

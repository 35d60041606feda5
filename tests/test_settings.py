"""Settings come from KINDLY_ variables; a bad value is one line naming the variable."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from service.errors import ConfigError
from service.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No KINDLY_ variable or .env from the developer's shell leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("KINDLY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


class TestDefaults:
    """With nothing set, Kindly runs the embedded default (ICS demo calendars, file outbox)."""

    def test_design_defaults(self) -> None:
        s = load_settings()
        assert (s.calendar, s.roster_source, s.email.backend) == ("ics", "file", "file")
        assert (s.cadence_days, s.lookback_days, s.timezone, s.language) == (14, 56, "UTC", "en")
        assert (s.holds.enabled, s.holds.duration_minutes, s.holds.horizon_days) == (True, 30, 7)
        assert s.holds.invite_report is False
        assert (s.work_start, s.work_end) == (time(9), time(17))
        assert (s.digest_day, s.digest_hour, s.support_url) == ("mon", 8, None)
        assert s.ics.holds_path == Path("calendars/holds")
        assert s.worker.job_timeout == 120

    def test_google_request_rates_are_the_published_quotas(self) -> None:
        google = load_settings().google
        assert (google.requests_per_minute_per_user, google.requests_per_minute) == (600, 10_000)


class TestAnyDomain:
    """The sender may be on any domain with a valid syntax, internal and reserved ones too."""

    @pytest.mark.parametrize(
        "sender",
        [
            "kindly@corp.local",
            "kindly@staging.test",
            "kindly@mail.internal",
            "kindly@hq.corp",
            "kindly@localhost",
        ],
    )
    def test_accepted(self, monkeypatch: pytest.MonkeyPatch, sender: str) -> None:
        monkeypatch.setenv("KINDLY_EMAIL__FROM", sender)
        assert load_settings().email.from_ == sender

    def test_syntax_is_still_checked(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("KINDLY_EMAIL__FROM", "kindly@@corp.local")
        with pytest.raises(ConfigError, match=r"KINDLY_EMAIL__FROM='kindly@@corp\.local': "):
            load_settings()


class TestEnvironment:
    """Nested names use __, and .env is read."""

    def test_nested_and_prefixed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("KINDLY_HOLDS__DURATION_MINUTES", "45")
        monkeypatch.setenv("KINDLY_ICS__DIR", "/srv/cal")
        monkeypatch.setenv("KINDLY_EMAIL__FROM", "coach@example.com")
        monkeypatch.setenv("KINDLY_WORK_START", "08:30")
        monkeypatch.setenv("KINDLY_SMTP__PASSWORD", "s3cret")
        s = load_settings()
        assert s.holds.duration_minutes == 45
        assert s.ics.holds_path == Path("/srv/cal/holds")
        assert s.email.from_ == "coach@example.com"
        assert s.work_start == time(8, 30)
        assert s.smtp.password is not None
        assert "s3cret" not in repr(s)

    def test_google_request_rates(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("KINDLY_GOOGLE__REQUESTS_PER_MINUTE_PER_USER", "300")
        monkeypatch.setenv("KINDLY_GOOGLE__REQUESTS_PER_MINUTE", "5000")
        google = load_settings().google
        assert (google.requests_per_minute_per_user, google.requests_per_minute) == (300, 5000)

    def test_dotenv(self, tmp_path: Path) -> None:
        (tmp_path / ".env").write_text("KINDLY_CADENCE_DAYS=21\nKINDLY_LANGUAGE=nl\n")
        s = load_settings()
        assert (s.cadence_days, s.language) == (21, "nl")


class TestBadValues:
    """Each bad value is one line: the variable, what was given, what is allowed."""

    @pytest.mark.parametrize(
        ("name", "value", "expected"),
        [
            (
                "KINDLY_CALENDAR",
                "gmail",
                "KINDLY_CALENDAR='gmail': Input should be 'ics', 'google' or 'outlook'",
            ),
            ("KINDLY_HOLDS__DURATION_MINUTES", "ten", "KINDLY_HOLDS__DURATION_MINUTES='ten': "),
            ("KINDLY_TIMEZONE", "Mars/Base", "unknown time zone 'Mars/Base'"),
            (
                "KINDLY_EMAIL__FROM",
                "nobody",
                "KINDLY_EMAIL__FROM='nobody': 'nobody' is not a valid email address",
            ),
            ("KINDLY_CADENCE_DAYS", "0", "KINDLY_CADENCE_DAYS='0': Input should be greater"),
            ("KINDLY_DIGEST_DAY", "monday", "Input should be 'mon', 'tue'"),
            ("KINDLY_HOLDS__ENABLED", "perhaps", "KINDLY_HOLDS__ENABLED='perhaps'"),
            ("KINDLY_WORK_END", "08:00", "KINDLY_WORK_END (08:00) must be after KINDLY_WORK_START"),
            ("KINDLY_SUPPORT_URL", "not a url", "KINDLY_SUPPORT_URL='not a url'"),
            (
                "KINDLY_GOOGLE__REQUESTS_PER_MINUTE_PER_USER",
                "0",
                "KINDLY_GOOGLE__REQUESTS_PER_MINUTE_PER_USER='0': Input should be greater than "
                "or equal to 1",
            ),
            (
                "KINDLY_GOOGLE__REQUESTS_PER_MINUTE",
                "-5",
                "KINDLY_GOOGLE__REQUESTS_PER_MINUTE='-5': Input should be greater than or equal",
            ),
            (
                "KINDLY_GOOGLE__REQUESTS_PER_MINUTE",
                "lots",
                "KINDLY_GOOGLE__REQUESTS_PER_MINUTE='lots': Input should be a valid integer",
            ),
        ],
    )
    def test_one_line(
        self, monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
    ) -> None:
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError) as caught:
            load_settings()
        (line,) = str(caught.value).splitlines()
        assert expected in line

    def test_all_problems_at_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("KINDLY_CALENDAR", "x")
        monkeypatch.setenv("KINDLY_LANGUAGE", "fr")
        with pytest.raises(ConfigError) as caught:
            load_settings()
        assert len(str(caught.value).splitlines()) == 2

    def test_secret_not_echoed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("KINDLY_SMTP__PASSWORD", "hunter2-secret")
        monkeypatch.setenv("KINDLY_SMTP__PORT", "99999")
        with pytest.raises(ConfigError) as caught:
            load_settings()
        assert "hunter2-secret" not in str(caught.value)

"""Settings from the environment (``KINDLY_`` prefix, ``__`` nesting, ``.env``).

This is the only module that reads the environment: the CLI and the worker
build :class:`Settings` once at start-up and pass it down.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from service.addresses import checked_address
from service.errors import ConfigError
from service.model import Policy

ENV_PREFIX = "KINDLY_"


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    # OSError: a name longer than a file name may be (tzdata looks it up as a file)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Amsterdam or UTC"
        ) from None
    return name


TimeZoneName = Annotated[str, AfterValidator(_zone)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class IcsSettings(_Section):
    dir: Path = Path("calendars")
    #: where holds are written, one ``<manager>.ics`` each; default ``<dir>/holds``
    holds_dir: Path | None = None
    #: calendars larger than this are refused (bytes)
    max_file_bytes: int = Field(default=10_000_000, ge=1)
    #: occurrences expanded per calendar and window before we refuse it
    max_occurrences: int = Field(default=20_000, ge=1)

    @property
    def holds_path(self) -> Path:
        return self.holds_dir if self.holds_dir is not None else self.dir / "holds"


class GoogleSettings(_Section):
    service_account_file: Path | None = None
    admin_subject: str | None = None
    api_endpoint: HttpUrl = HttpUrl("https://www.googleapis.com/")
    #: concurrent managers in flight against Google
    max_concurrency: int = Field(default=8, ge=1, le=64)
    #: Calendar API requests per minute per impersonated user (Google's published quota),
    #: paced per Kindly process
    requests_per_minute_per_user: int = Field(default=600, ge=1)
    #: Calendar API requests per minute for the whole Cloud project (Google's published quota)
    requests_per_minute: int = Field(default=10_000, ge=1)


class OutlookSettings(_Section):
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    client_certificate_file: Path | None = None
    authority_host: HttpUrl = HttpUrl("https://login.microsoftonline.com")
    graph_endpoint: HttpUrl = HttpUrl("https://graph.microsoft.com/v1.0")


class EmailSettings(_Section):
    backend: Literal["file", "smtp", "graph"] = "file"
    #: any domain with a valid syntax: internal and reserved names (corp.local) included
    from_: Annotated[str, AfterValidator(checked_address)] = Field(
        default="kindly@localhost.localdomain", alias="from"
    )
    outbox_dir: Path = Path("outbox")


class SmtpSettings(_Section):
    host: str = "localhost"
    port: int = Field(default=587, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = True
    #: implicit TLS from the first byte (port 465)
    use_tls: bool = False
    timeout: float = Field(default=30.0, gt=0)


class WorkerConfig(_Section):
    job_timeout: int = Field(default=120, ge=10)
    max_jobs: int = Field(default=10, ge=1)
    max_tries: int = Field(default=5, ge=1)


class Limits(_Section):
    """Worker tuning shared by every worker (``KINDLY_LIMITS__*``)."""

    #: messages per minute per sender mailbox, shared by all workers (Exchange Online: 30)
    send_per_minute: int = Field(default=30, ge=1)
    #: seconds between planner runs
    plan_every_seconds: float = Field(default=900.0, gt=0)
    #: jobs start spread over this many seconds (per manager, deterministic)
    stagger_seconds: float = Field(default=60.0, ge=0)
    #: first retry delay after a transient failure; doubles each try up to the maximum
    retry_base_seconds: float = Field(default=30.0, ge=0)
    retry_max_seconds: float = Field(default=900.0, ge=0)
    #: runs of one digest (crashes included) before it is marked failed; 0 = 3 x max_tries
    max_attempts: int = Field(default=0, ge=0)
    #: on SIGTERM, seconds a running job gets to finish before it is handed back
    shutdown_grace_seconds: int = Field(default=25, ge=0)


class HoldsSettings(_Section):
    enabled: bool = True
    duration_minutes: int = Field(default=30, ge=15, le=240)
    horizon_days: int = Field(default=7, ge=1, le=28)
    invite_report: bool = False


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Settings(BaseSettings):
    """Every setting of DESIGN.md; names map to ``KINDLY_<FIELD>[__<SUB>]``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    calendar: Literal["ics", "google", "outlook"] = "ics"
    roster_file: Path = Path("roster.yaml")
    roster_source: Literal["file", "directory"] = "file"
    ics: IcsSettings = IcsSettings()
    google: GoogleSettings = GoogleSettings()
    outlook: OutlookSettings = OutlookSettings()
    email: EmailSettings = EmailSettings()
    smtp: SmtpSettings = SmtpSettings()
    redis_url: str = "redis://localhost:6379"
    worker: WorkerConfig = WorkerConfig()
    limits: Limits = Limits()
    holds: HoldsSettings = HoldsSettings()
    cadence_days: int = Field(default=14, ge=1, le=365)
    lookback_days: int = Field(default=56, ge=7, le=366)
    work_start: time = time(9, 0)
    work_end: time = time(17, 0)
    timezone: TimeZoneName = "UTC"
    language: Literal["en", "nl"] = "en"
    digest_day: Weekday = "mon"
    digest_hour: int = Field(default=8, ge=0, le=23)
    support_url: HttpUrl | None = None
    #: the standard CA-bundle variables, for HTTP clients that do not read them (httplib2)
    ca_bundle: Path | None = Field(
        default=None, validation_alias=AliasChoices("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
    )
    #: managers run at the same time by ``kindly run --once``
    concurrency: int = Field(default=8, ge=1, le=256)

    @model_validator(mode="after")
    def _working_hours(self) -> Settings:
        if self.work_end <= self.work_start:
            raise ValueError(
                f"KINDLY_WORK_END ({self.work_end:%H:%M}) must be after "
                f"KINDLY_WORK_START ({self.work_start:%H:%M})"
            )
        slot_minutes = (self.work_end.hour * 60 + self.work_end.minute) - (
            self.work_start.hour * 60 + self.work_start.minute
        )
        if self.holds.duration_minutes > slot_minutes:
            raise ValueError(
                f"KINDLY_HOLDS__DURATION_MINUTES ({self.holds.duration_minutes}) does not fit "
                "between KINDLY_WORK_START and KINDLY_WORK_END"
            )
        return self

    def policy(self) -> Policy:
        return Policy(
            cadence_days=self.cadence_days,
            lookback_days=self.lookback_days,
            horizon_days=self.holds.horizon_days,
            hold_minutes=self.holds.duration_minutes,
            work_start=self.work_start,
            work_end=self.work_end,
            holds_enabled=self.holds.enabled,
            invite_report=self.holds.invite_report,
            support_url=str(self.support_url) if self.support_url else None,
        )


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment (and ``.env``), or raise one
    :class:`ConfigError` whose message has one line per bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("\n".join(_describe(exc))) from None
    except SettingsError as exc:
        # raised for values that are not even parseable (e.g. bad JSON in a nested var)
        field = re.search(r'field "(\w+)"', str(exc))
        if field is None:
            raise ConfigError(f"settings: {exc}; check the KINDLY_ variables and .env") from None
        variable = ENV_PREFIX + field.group(1).upper()
        raise ConfigError(
            f"{variable}: not valid JSON; fix it, or set its parts one by one as {variable}__<NAME>"
        ) from None


def _describe(exc: ValidationError) -> Iterator[str]:
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"] if not isinstance(part, int)]
        message = error["msg"].removeprefix("Value error, ")
        if not loc:
            yield f"settings: {message}"
            continue
        variable = ENV_PREFIX + "__".join(part.upper().rstrip("_") for part in loc)
        if error["type"] == "extra_forbidden":
            yield f"{variable}: unknown setting; remove it or check its spelling"
            continue
        given = error.get("input")
        secret = any(word in variable for word in ("PASSWORD", "SECRET", "KEY", "TOKEN"))
        # a section's JSON or a list may hold a secret: only plain values are echoed
        plain = isinstance(given, str | int | float | bool)
        shown = "" if secret or not plain else f"={str(given)!r}"
        yield f"{variable}{shown}: {message}"

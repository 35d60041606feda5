"""Settings from the environment (``KINDLY_`` prefix, ``__`` nesting, ``.env``).

This is the only module that reads the environment: the CLI and the worker
build :class:`Settings` once at start-up and pass it down. Every secret
setting may instead name a file holding it, with ``_FILE`` appended
(``KINDLY_SMTP__PASSWORD_FILE``), as container secrets are mounted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.exceptions import SettingsError

from service.addresses import checked_address
from service.errors import ConfigError
from service.model import Policy
from service.speed import google_in_flight, managers_in_flight
from service.working_time import check_country, parse_days, parse_span

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


def _country(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return check_country(text) if text else None


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
    #: Google requests in flight; unset: what reaches ``requests_per_minute`` (service/speed.py)
    max_concurrency: int | None = Field(default=None, ge=1, le=64)
    #: Calendar API requests per minute per impersonated user (Google's published quota),
    #: counted in Redis for every Kindly process when it answers
    requests_per_minute_per_user: int = Field(default=600, ge=1)
    #: Calendar API requests per minute for the whole Cloud project (Google's published quota)
    requests_per_minute: int = Field(default=10_000, ge=1)

    @property
    def in_flight(self) -> int:
        """``max_concurrency`` if set, else what the project quota needs."""
        return self.max_concurrency or google_in_flight(self.requests_per_minute)


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
    #: messages per minute per sender mailbox (Exchange Online: 30), counted in Redis for
    #: every process, SMTP and Graph alike
    send_per_minute: int = Field(default=30, ge=1)


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
    """The worker's one config root (``KINDLY_WORKER__*``); ``kindly worker`` and
    ``arq service.worker.WorkerSettings`` derive the arq worker from it at start."""

    job_timeout: int = Field(default=120, ge=10)
    #: digests one worker runs at once; unset: as many managers as ``run --once`` runs
    max_jobs: int | None = Field(default=None, ge=1)
    #: arq's tries of one job (a transient failure is retried with a doubling delay)
    max_tries: int = Field(default=5, ge=1)
    #: runs of one digest (crashes included) before it is marked failed; 0 = 3 x max_tries
    max_attempts: int = Field(default=0, ge=0)
    #: seconds between planner runs
    plan_every_seconds: float = Field(default=900.0, gt=0)
    #: jobs start spread over this many seconds (per manager, deterministic)
    stagger_seconds: float = Field(default=60.0, ge=0)
    #: first retry delay after a transient failure; doubles each try up to the maximum
    retry_base_seconds: float = Field(default=30.0, ge=0)
    retry_max_seconds: float = Field(default=900.0, ge=0)
    #: on SIGTERM, seconds a running job gets to finish before it is handed back
    shutdown_grace_seconds: int = Field(default=25, ge=0)

    @property
    def attempts(self) -> int:
        """Runs of one digest before it is failed for good."""
        return self.max_attempts or 3 * self.max_tries


#: settings that lived under KINDLY_LIMITS__ and moved: old name → (section, field)
MOVED_FROM_LIMITS = {
    "send_per_minute": ("email", "send_per_minute"),
    **{
        name: ("worker", name)
        for name in (
            "plan_every_seconds",
            "stagger_seconds",
            "retry_base_seconds",
            "retry_max_seconds",
            "max_attempts",
            "shutdown_grace_seconds",
        )
    },
}


def _span(value: object) -> tuple[time, time] | None:
    return parse_span(value, allow_empty=True)


class HoldsSettings(_Section):
    enabled: bool = True
    duration_minutes: int = Field(default=30, ge=15, le=240)
    horizon_days: int = Field(default=7, ge=1, le=28)
    invite_report: bool = False
    #: a hold starts this many hours after the run at the earliest (never on the digest's
    #: own morning); 0: right away
    min_notice_hours: int = Field(default=24, ge=0, le=168)
    #: Kindly holds per day at most; 0: no cap
    max_per_day: int = Field(default=2, ge=0, le=32)
    #: minutes between two Kindly holds at least; 0: back to back allowed
    gap_minutes: int = Field(default=30, ge=0, le=480)
    #: no hold over this span of each day (``12:00-13:00``); empty: none
    quiet_hours: Annotated[tuple[time, time] | None, BeforeValidator(_span)] = (
        time(12, 0),
        time(13, 0),
    )


class MetricsSettings(_Section):
    """``kindly worker``'s /metrics, /healthz and /readyz (service/probes.py)."""

    #: unset: no endpoint is served
    port: int | None = Field(default=None, ge=1, le=65535)
    host: str = "127.0.0.1"


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Settings(BaseSettings):
    """Every setting the README lists; names map to ``KINDLY_<FIELD>[__<SUB>]``."""

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
    #: the old home of worker tuning, read only to move each value where it lives now
    limits: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)
    holds: HoldsSettings = HoldsSettings()
    cadence_days: int = Field(default=14, ge=1, le=365)
    lookback_days: int = Field(default=56, ge=7, le=366)
    #: how far ahead next 1:1s and "back on" dates are read (Graph's getSchedule: < 42 days)
    lookahead_days: int = Field(default=35, ge=7, le=41)
    work_start: time = time(9, 0)
    work_end: time = time(17, 0)
    #: ``mon,tue,wed,thu,fri``: the days people work unless the roster or Outlook says
    working_days: Annotated[frozenset[int], NoDecode, BeforeValidator(parse_days)] = frozenset(
        {1, 2, 3, 4, 5}
    )
    #: public holidays: ISO 3166-1 alpha-2 with an optional subdivision (NL, US-NY); empty: none
    country: Annotated[str | None, BeforeValidator(_country)] = None
    timezone: TimeZoneName = "UTC"
    language: Literal["en", "nl"] = "en"
    digest_day: Weekday = "mon"
    digest_hour: int = Field(default=8, ge=0, le=23)
    support_url: HttpUrl | None = None
    #: the standard CA-bundle variables, for HTTP clients that do not read them (httplib2)
    ca_bundle: Path | None = Field(
        default=None, validation_alias=AliasChoices("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
    )
    #: managers run at the same time by ``kindly run --once``; unset: from the provider's
    #: limits (:attr:`managers_in_flight`)
    concurrency: int | None = Field(default=None, ge=1, le=256)
    #: processes ``kindly run --once`` spreads the managers over; unset: one per usable core,
    #: each with ``MANAGERS_PER_PROCESS`` managers at least (service/speed.py)
    processes: int | None = Field(default=None, ge=1, le=256)
    metrics: MetricsSettings = MetricsSettings()
    #: pins the clock as ``--now`` does, for commands run where flags cannot be given (Procfile)
    now: datetime | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """As pydantic-settings orders them, with the ``_FILE`` secrets after the arguments
        (a secret given both ways is an error, so their order among the rest does not matter)."""
        secrets = SecretFiles(settings_cls)
        env, dotenv = _WithoutFileNames(env_settings), _WithoutFileNames(dotenv_settings)
        return init_settings, secrets, env, dotenv, file_secret_settings

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: Any) -> Any:
        """``KINDLY_LIMITS__*`` still works: each value moves to the section it lives in now."""
        if not isinstance(data, dict) or not isinstance(data.get("limits"), dict):
            return data
        data = dict(data)
        for name, value in data.pop("limits").items():
            if name not in MOVED_FROM_LIMITS:
                raise ValueError(f"KINDLY_LIMITS__{name.upper()}: unknown setting; remove it")
            section, field = MOVED_FROM_LIMITS[name]
            current = data.get(section)
            merged = dict(current) if isinstance(current, dict) else {}
            if field in merged:
                raise ValueError(
                    f"KINDLY_LIMITS__{name.upper()} and KINDLY_{section.upper()}__"
                    f"{field.upper()} are both set; keep only KINDLY_{section.upper()}__"
                    f"{field.upper()}"
                )
            merged[field] = value
            data[section] = merged
        return data

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

    @property
    def managers_in_flight(self) -> int:
        """``KINDLY_CONCURRENCY`` if set, else what keeps the provider's requests in flight."""
        return self.concurrency or managers_in_flight(self.calendar, self.google.in_flight)

    def policy(self) -> Policy:
        return Policy(
            cadence_days=self.cadence_days,
            lookback_days=self.lookback_days,
            lookahead_days=self.lookahead_days,
            horizon_days=self.holds.horizon_days,
            hold_minutes=self.holds.duration_minutes,
            work_start=self.work_start,
            work_end=self.work_end,
            holds_enabled=self.holds.enabled,
            invite_report=self.holds.invite_report,
            support_url=str(self.support_url) if self.support_url else None,
            work_days=self.working_days,
            country=self.country,
            notice_hours=self.holds.min_notice_hours,
            max_per_day=self.holds.max_per_day,
            gap_minutes=self.holds.gap_minutes,
            quiet_hours=self.holds.quiet_hours,
        )


#: secrets typed as plain strings (a Redis URL carries the password); SecretStr ones are found
PLAIN_SECRETS = (("redis_url",),)


def _mentions_secret(annotation: Any) -> bool:
    args = getattr(annotation, "__args__", ())
    return annotation is SecretStr or any(_mentions_secret(a) for a in args)


def secret_settings(
    model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """The path of every secret setting: ``("smtp", "password")``, ``("redis_url",)``."""
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        if path in PLAIN_SECRETS or _mentions_secret(info.annotation):
            yield path
        elif isinstance(info.annotation, type) and issubclass(info.annotation, _Section):
            yield from secret_settings(info.annotation, path)


def variable_of(path: tuple[str, ...]) -> str:
    return ENV_PREFIX + "__".join(part.upper() for part in path)


class SecretFiles(PydanticBaseSettingsSource):
    """``<NAME>_FILE`` for every secret setting: the file's text, one trailing newline
    stripped. Both forms given is an error naming the two; an unreadable file one naming
    the variable and the path, never the content."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # whole values come from __call__; pydantic-settings asks sources field by field
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        given = self._given()
        found: dict[str, Any] = {}
        for path in secret_settings(Settings):
            variable = variable_of(path)
            file_variable = variable + "_FILE"
            if file_variable not in given:
                continue
            if variable in given:
                raise ConfigError(f"{variable} and {file_variable} are both set; keep one of them")
            where = found
            for part in path[:-1]:
                where = where.setdefault(part, {})
            where[path[-1]] = _read_secret(file_variable, given[file_variable])
        return found

    def _given(self) -> dict[str, str]:
        """The variables set in ``.env`` and the environment (which wins), names upper-cased."""
        env_file = self.config.get("env_file")
        given: dict[str, str] = {}
        if isinstance(env_file, str) and Path(env_file).is_file():
            dotenv = dotenv_values(env_file)
            given.update((k.upper(), v) for k, v in dotenv.items() if v is not None)
        given.update((k.upper(), v) for k, v in os.environ.items())
        return given


class _WithoutFileNames(PydanticBaseSettingsSource):
    """Another source minus the ``<secret>_FILE`` names, which :class:`SecretFiles` reads
    (inside a section they would be unknown settings)."""

    def __init__(self, inner: PydanticBaseSettingsSource) -> None:
        super().__init__(inner.settings_cls)
        self.inner = inner

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        values = self.inner()
        for path in secret_settings(Settings):
            section: Any = values
            for part in path[:-1]:
                section = section.get(part) if isinstance(section, dict) else None
            if isinstance(section, dict):
                section.pop(path[-1] + "_file", None)
        return values


def _read_secret(variable: str, path: str) -> str:
    try:
        text = Path(path).read_bytes().decode("utf-8")  # as written: no newline translation
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"{variable}={path}: cannot read the file ({reason}); "
            "point it at a readable file that holds the secret"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{variable}={path}: the file is not UTF-8 text; it should hold the secret alone"
        ) from None
    return text.removesuffix("\n").removesuffix("\r")


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
        if len(loc) == 2 and MOVED_FROM_LIMITS.get(loc[1]) == (loc[0], loc[1]):
            variable += f" (or KINDLY_LIMITS__{loc[1].upper()})"
        if error["type"] == "extra_forbidden":
            yield f"{variable}: unknown setting; remove it or check its spelling"
            continue
        given = error.get("input")
        secret = any(word in variable for word in ("PASSWORD", "SECRET", "KEY", "TOKEN"))
        # a section's JSON or a list may hold a secret: only plain values are echoed
        plain = isinstance(given, str | int | float | bool)
        shown = "" if secret or not plain else f"={str(given)!r}"
        yield f"{variable}{shown}: {message}"

"""Kindly's one error tree.

Every problem a user can cause or meet is one of these, with a message that
says what is wrong and how to fix it, and fields that carry the data::

    KindlyError
     ├── ConfigError            bad settings (exit status 2)
     ├── RosterError            bad roster file or directory (exit status 2)
     ├── ConnectorError         a calendar provider failed for one manager
     │    ├── RateLimited            .retry_after (seconds) — transient
     │    ├── ProviderUnavailable    5xx, network, timeouts — transient
     │    ├── AuthFailed             credentials, scopes, unknown user
     │    └── CalendarDataError      a calendar we cannot read (malformed, missing, too big)
     ├── LedgerUnavailable      Redis did not answer the worker's ledger — transient
     └── DeliveryError          the digest could not be sent (.transient)

Provider and library exceptions are translated into these once, at the edge
(connectors/, mailers); nothing else escapes to the CLI or the worker.
"""

from __future__ import annotations


class KindlyError(Exception):
    """Root of every error Kindly reports to a user."""

    #: whether retrying the same work later may succeed
    transient: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(KindlyError):
    """Settings are missing or invalid; nothing can run until they are fixed."""


class RosterError(KindlyError):
    """The roster cannot be used as it is."""

    def __init__(self, message: str, *, source: str, line: int | None = None) -> None:
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")
        self.source = source
        self.line = line
        self.problems: tuple[RosterError, ...] = (self,)

    @classmethod
    def combine(cls, problems: list[RosterError]) -> RosterError:
        """One error whose message has one line per problem, so all are fixed in one go."""
        combined = cls(problems[0].message, source=problems[0].source, line=problems[0].line)
        combined.message = "\n".join(str(problem) for problem in problems)
        combined.args = (combined.message,)
        combined.problems = tuple(problems)
        return combined

    def __str__(self) -> str:
        return self.message


class ConnectorError(KindlyError):
    """A calendar provider call failed for one manager; the others still run."""

    def __init__(
        self, message: str, *, manager: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.manager = manager
        self.status = status


class RateLimited(ConnectorError):
    """The provider asked us to slow down."""

    transient = True

    def __init__(
        self,
        message: str,
        *,
        manager: str | None = None,
        status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, manager=manager, status=status)
        self.retry_after = retry_after


class ProviderUnavailable(ConnectorError):
    """The provider or the network failed in a way that may pass."""

    transient = True


class AuthFailed(ConnectorError):
    """Credentials, permissions or the user itself are not accepted."""


class CalendarDataError(ConnectorError):
    """A calendar exists but cannot be read (malformed, missing, over a limit)."""


class LedgerUnavailable(KindlyError):
    """Redis did not answer a ledger call; the work is retried later."""

    transient = True


class DeliveryError(KindlyError):
    """The digest could not be delivered."""

    def __init__(self, message: str, *, transient: bool = False, code: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code

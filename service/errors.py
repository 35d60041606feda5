"""Kindly's one error tree.

Every problem a user can cause or meet is one of these, with a message that
says what is wrong and how to fix it, and fields that carry the data::

    KindlyError
     ├── ConfigError            bad settings (exit status 2)
     ├── RosterError            bad roster file or directory (exit status 2)
     ├── ConnectorError         a calendar provider failed for one manager (.manager, .status)
     │    ├── RateLimited            429 and quota refusals; .retry_after (seconds) — transient
     │    ├── ProviderUnavailable    5xx, network, timeouts — transient
     │    ├── AuthFailed             401/403, refused credentials or scopes, 404 unknown user
     │    ├── CalendarDataError      a calendar or payload we cannot read (malformed, missing,
     │    │                          too big)
     │    └── Rejected               any other 4xx: the request as asked; .reason is the
     │                               provider's own code (a repeated transactionId, say)
     ├── LedgerUnavailable      Redis did not answer the worker's ledger — transient
     ├── DeliveryError          the digest could not be sent (.transient, .status)
     └── ProcessStopped         the process running a share of ``kindly run --once``
                                stopped before the manager's run ended — transient

Provider and library exceptions are translated into these once, at the edge
(connectors/, connectors/mail/); nothing else escapes to the CLI or the worker.
The same failure is the same class on every provider, and ``.status`` is
always the provider's numeric status: HTTP for Google and Graph, the SMTP
reply code for mail.
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


class Rejected(ConnectorError):
    """The provider refused the request as asked (a 4xx other than auth, not found or
    throttling); ``reason`` is the provider's own error code, for the callers that handle
    one code themselves."""

    def __init__(self, message: str, *, manager: str | None, status: int, reason: str) -> None:
        super().__init__(message, manager=manager, status=status)
        self.reason = reason


class LedgerUnavailable(KindlyError):
    """Redis did not answer a ledger call; the work is retried later."""

    transient = True


class DeliveryError(KindlyError):
    """The digest could not be delivered."""

    def __init__(self, message: str, *, transient: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        #: the provider's status: an SMTP reply code, or Graph's HTTP status
        self.status = status


class ProcessStopped(KindlyError):
    """A process of ``kindly run --once`` (KINDLY_PROCESSES) stopped before this manager's
    run ended; running again finishes it, and what was done is not done twice."""

    transient = True

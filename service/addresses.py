"""Email addresses: Kindly checks their syntax, never their deliverability.

Staging tenants and on-premises Exchange live on reserved and internal names
(``corp.local``, ``example.test``, ``mail.internal``), and whether a domain is
reachable from the internet is the mail server's business. email_validator
refuses the special-use names outright, even without its deliverability
check and with no switch for it, so such a domain is checked with one more
label after it (``corp.local.kindly-syntax-check``: the same syntax rules,
no longer a reserved name) and that label is taken off again. A domain without
a dot that is not reserved (``sam@example``) stays refused: in a roster it is a
typo far more often than a mail host.
"""

from __future__ import annotations

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

_LABEL = "kindly-syntax-check"


def checked_address(value: str) -> str:
    """``value`` normalised (Unicode, domain case) when its syntax is valid, whatever its
    domain; else ValueError with one line saying why."""
    _, at, domain = value.rpartition("@")
    reserved = bool(at) and _special_use(domain)
    try:
        found = validate_email(
            f"{value}.{_LABEL}" if reserved else value, check_deliverability=False
        )
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not a valid email address: {exc}") from None
    return found.normalized.removesuffix(f".{_LABEL}") if reserved else found.normalized


def _special_use(domain: str) -> bool:
    name = domain.lower()
    return any(name == d or name.endswith(f".{d}") for d in SPECIAL_USE_DOMAIN_NAMES)

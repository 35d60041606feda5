"""Shared pieces of the fuzz tests: the two run sizes, hostile text, and a scratch environment.

Every fuzz test runs twice: a quick pass in the default suite (a few dozen
cases each, a few hundred in all) and a long pass under ``pytest -m fuzz``
(``FUZZ_EXAMPLES`` cases each, 10,000 unless the variable says otherwise).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: read by the settings too (the CA bundle), so a fuzz case starts without them
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
T = TypeVar("T")
E = TypeVar("E", bound=BaseException)

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10000"))

settings.register_profile(
    "kindly-quick",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "kindly-fuzz",
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: the default suite's size (a decorator)
quick = settings(settings.get_profile("kindly-quick"))
#: the ``-m fuzz`` size (a decorator)
deep = settings(settings.get_profile("kindly-fuzz"))

#: characters a hostile admin, provider or calendar can put in a value (no NUL: no OS allows it
#: in an environment variable, and no surrogates: they cannot be encoded)
HOSTILE_ALPHABET = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")

#: hand-picked nasty pieces, mixed in so the interesting cases come up in short runs too
NASTY = (
    "",
    " ",
    "\r\nBcc: attacker@evil.example",
    "\nSubject: hijacked",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "\u202eevil\u202c",
    "\x1b[31mred\x1b[0m",
    "\u2028\u2029",
    "Zoë Ødegård 山田",
    "{{ 7*7 }}",
    "%(name)s %s %d",
    "${KINDLY_SMTP__PASSWORD}",
    "../../etc/passwd",
    "null",
    "true",
    "-1",
    "1e309",
    "99999999999999999999999",
    "{}",
    "[]",
    '{"a": 1}',
    "\t\v\f",
    "a" * 5000,
)

hostile_text = st.one_of(
    st.sampled_from(NASTY),
    st.text(HOSTILE_ALPHABET, max_size=40),
    st.builds(lambda a, b: a + b, st.sampled_from(NASTY), st.text(HOSTILE_ALPHABET, max_size=10)),
)


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """The environment with every KINDLY_ and CA-bundle variable replaced by ``values``.

    Hypothesis runs many cases per test, so pytest's function-scoped
    ``monkeypatch`` cannot be used here.
    """
    saved = dict(os.environ)
    try:
        for name in [n for n in os.environ if n.startswith("KINDLY_") or n in CA_VARIABLES]:
            del os.environ[name]
        os.environ.update(values)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def outcome(work: Callable[[], T], expected: type[E]) -> tuple[T | None, E | None]:
    """Run ``work``: its result, or the ``expected`` error it raised (anything else propagates)."""
    try:
        return work(), None
    except expected as exc:
        return None, exc

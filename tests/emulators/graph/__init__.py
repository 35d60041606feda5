"""A wire-faithful Microsoft 365 emulator: identity platform and Graph, on a real socket.

Start one in a test with :func:`running` (or ``GraphEmulator(...).start()``), or
from a shell with ``python -m tests.emulators.graph --org examples/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.emulators.graph.certs import CertificatePair, make_certificate
from tests.emulators.graph.graph import SentMail
from tests.emulators.graph.org import Organisation, load_organisation
from tests.emulators.graph.server import GraphEmulator
from tests.emulators.graph.state import ALL_ROLES, AppRegistration, Fault, LoggedRequest, Stall


@contextmanager
def running(
    org: Path | Organisation, *, tls: CertificatePair | None, **options: object
) -> Iterator[GraphEmulator]:
    """A started emulator, stopped on exit."""
    emulator = GraphEmulator(org, tls=tls, **options)  # type: ignore[arg-type]
    with emulator:
        yield emulator


__all__ = [
    "ALL_ROLES",
    "AppRegistration",
    "CertificatePair",
    "Fault",
    "GraphEmulator",
    "LoggedRequest",
    "Organisation",
    "SentMail",
    "Stall",
    "load_organisation",
    "make_certificate",
    "running",
]

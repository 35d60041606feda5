"""A wire-faithful Google Workspace emulator: OAuth service accounts, Calendar v3, Directory.

Use it in tests as a context manager (``with GoogleEmulator.from_folder(org) as google:``)
or standalone: ``python -m tests.emulators.google --org examples/ --port 8085``.
"""

from tests.emulators.google.api import LoggedRequest
from tests.emulators.google.faults import Faults
from tests.emulators.google.org import Org
from tests.emulators.google.server import KINDLY_SCOPES, GoogleEmulator, request_counts

__all__ = ["KINDLY_SCOPES", "Faults", "GoogleEmulator", "LoggedRequest", "Org", "request_counts"]

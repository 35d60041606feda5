"""Run the Google emulator on an organisation folder until interrupted.

    python -m tests.emulators.google --org examples/ --port 8085 \\
        --service-account var/google/service-account.json

It writes a service-account key file it trusts (domain-wide delegation granted
for Kindly's scopes) and prints the variables that point Kindly at it. Request
counts per user and kind: ``curl http://127.0.0.1:8085/_emulator/requests``
(also printed on stderr when it stops, by Ctrl-C or ``kill``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from tests.emulators.google.org import Org
from tests.emulators.google.server import GoogleEmulator, request_counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators.google")
    parser.add_argument(
        "--org", type=Path, required=True, help="folder with roster.yaml and calendars/"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--page-size", type=int, default=250, help="events per events.list page")
    parser.add_argument(
        "--service-account",
        type=Path,
        default=Path("var/google/service-account.json"),
        help="where to write the key file Kindly uses",
    )
    args = parser.parse_args(argv)
    emulator = GoogleEmulator(
        Org.load(args.org), host=args.host, port=args.port, page_size=args.page_size
    )
    args.service_account.parent.mkdir(parents=True, exist_ok=True)
    args.service_account.write_text(json.dumps(emulator.service_account(), indent=2))
    args.service_account.chmod(0o600)
    admin = next(u.email for u in emulator.org.users.values() if u.admin)
    print(f"Google emulator for {args.org} on {emulator.base_url}", flush=True)
    print("  KINDLY_CALENDAR=google", flush=True)
    print(f"  KINDLY_GOOGLE__API_ENDPOINT={emulator.base_url}", flush=True)
    print(f"  KINDLY_GOOGLE__SERVICE_ACCOUNT_FILE={args.service_account.resolve()}", flush=True)
    print(f"  KINDLY_GOOGLE__ADMIN_SUBJECT={admin}", flush=True)
    # `kill` stops it as Ctrl-C does, so the counts are printed either way
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        print(json.dumps(request_counts(emulator.api), indent=2), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m tests.emulators.graph --org examples``: serve until Ctrl-C.

Writes the variables that point ``kindly`` at it (Graph calendars, Graph mail from
``--sender``, the organisation's roster) to ``<cert dir>/kindly.env`` for a shell
to source, prints them, and on exit prints the request counts per mailbox and
kind and the peak concurrency per mailbox.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from pathlib import Path

from tests.emulators.graph import GraphEmulator, make_certificate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators.graph", description=__doc__)
    parser.add_argument(
        "--org", type=Path, required=True, help="folder with roster.yaml and calendars/"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (the default) picks a free port")
    parser.add_argument("--http", action="store_true", help="plain HTTP (msal itself needs HTTPS)")
    parser.add_argument(
        "--cert-dir",
        type=Path,
        default=Path("var/graph-emulator"),
        help="where the self-signed certificate and kindly.env are written",
    )
    parser.add_argument(
        "--sender", default="kindly@example.com", help="the mailbox digests are sent from"
    )
    parser.add_argument("--page-size", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per Graph request")
    args = parser.parse_args(argv)
    tls = None if args.http else make_certificate(args.cert_dir)
    emulator = GraphEmulator(
        args.org,
        tls=tls,
        host=args.host,
        port=args.port,
        page_size=args.page_size,
        mailboxes=[args.sender],
    )
    emulator.latency = args.latency
    emulator.start()
    env_file = args.cert_dir / "kindly.env"
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text(_exports(emulator, args.org, args.sender))
    print(env_file.read_text(), end="")
    print(f"# ready: (. {env_file} && .venv/bin/kindly run --once); Ctrl-C stops", flush=True)
    stopped = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        # explicit handlers: a shell's background job starts with SIGINT ignored
        signal.signal(number, lambda *_: stopped.set())
    stopped.wait()
    env_file.unlink(missing_ok=True)
    emulator.stop()
    print(emulator.recorder.summary_json(), file=sys.stderr)
    return 0


def _exports(emulator: GraphEmulator, org: Path, sender: str) -> str:
    """``export NAME=value`` lines: calendars, holds and digests all through the emulator."""
    env = emulator.environment() | {
        "KINDLY_ROSTER_FILE": str((org / "roster.yaml").resolve()),
        "KINDLY_EMAIL__BACKEND": "graph",
        "KINDLY_EMAIL__FROM": sender,
    }
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())


if __name__ == "__main__":
    raise SystemExit(main())

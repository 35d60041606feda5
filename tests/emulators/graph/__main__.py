"""``python -m tests.emulators.graph --org examples/ --port 8086``: serve until Ctrl-C.

Prints the variables that point Kindly at it (``eval "$(... )"``-friendly), and on
exit the request counts per mailbox and kind and the peak concurrency per mailbox.
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--http", action="store_true", help="plain HTTP (msal itself needs HTTPS)")
    parser.add_argument(
        "--cert-dir",
        type=Path,
        default=Path("var/graph-emulator"),
        help="where the self-signed certificate is written",
    )
    parser.add_argument("--page-size", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per Graph request")
    args = parser.parse_args(argv)
    tls = None if args.http else make_certificate(args.cert_dir)
    emulator = GraphEmulator(
        args.org, tls=tls, host=args.host, port=args.port, page_size=args.page_size
    )
    emulator.latency = args.latency
    emulator.start()
    for name, value in emulator.environment().items():
        print(f"export {name}={value}")
    print(
        f"# summary: curl --cacert {tls.cert if tls else '-'} {emulator.origin}/_emulator/summary",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        print(emulator.recorder.summary_json(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

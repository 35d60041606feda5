"""The fleet: N ``kindly worker`` processes on one Redis against a Google emulator that
enforces a lowered project quota. Reports the requests it refused (goal: none), the
digests delivered (each once) and the wall time against what the quota allows.

    .venv/bin/python -m bench.fleet --size 100 --workers 2 --per-project 300

Every worker plans once and works the queue off (``--burst``); the wall time runs from
the first worker's start to the last one's exit. The workers are told the quota
(``KINDLY_GOOGLE__REQUESTS_PER_MINUTE``) and count it in their Redis, a Redis of the
bench's own, so nothing else on the machine shares its windows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.generate import NOW
from bench.run import AUTH_KINDS, KINDLY, Emulator, org_for
from tests.own_redis import OwnRedis

#: Google counts a request when it arrives; Kindly counts over a second more
QUOTA_MINUTE = 61.0


def fleet_env(
    base: dict[str, str], org: Path, work: Path, redis: str, quota: int
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")}
    return (
        env
        | base
        | {
            "KINDLY_ROSTER_FILE": str(org / "roster.yaml"),
            "KINDLY_EMAIL__OUTBOX_DIR": str(work / "outbox"),
            "KINDLY_REDIS_URL": redis,
            "KINDLY_GOOGLE__REQUESTS_PER_MINUTE": str(quota),
            # every digest due at the pinned now, whatever the manager's zone
            "KINDLY_DIGEST_HOUR": "0",
            "KINDLY_NOW": NOW.isoformat(),
        }
    )


def delivered(outbox: Path) -> tuple[int, int]:
    """(digests recorded in the outbox ledgers, distinct Message-IDs among them)."""
    ids = [
        json.loads(line).get("message_id")
        for ledger in outbox.glob("*/ledger.jsonl")
        for line in ledger.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return len(ids), len(set(ids))


def run_fleet(args: argparse.Namespace) -> dict[str, Any]:
    org = org_for(args.size, args.root, args.seed)
    work = args.root / f"fleet-{args.size}-{args.workers}w-{args.per_project}q"
    work.mkdir(parents=True, exist_ok=True)
    for old in work.glob("outbox/*/*"):
        old.unlink()
    redis_dir = work / "redis"
    redis_dir.mkdir(exist_ok=True)
    redis = OwnRedis(redis_dir)
    redis.start()
    extra = ("--per-project", str(args.per_project))
    served = Emulator(
        "google", org, latency=args.latency, limits="published", state=work / "state", extra=extra
    )
    try:
        env = fleet_env(served.env, org, work, redis.url, args.per_project)
        served.ask("mark")
        start = time.monotonic()
        logs = [(work / f"worker-{i}.log").open("w") for i in range(args.workers)]
        workers = [
            subprocess.Popen([KINDLY, "worker", "--burst"], env=env, stdout=log, stderr=log)
            for log in logs
        ]
        codes = [worker.wait() for worker in workers]
        wall = time.monotonic() - start
        stats = served.ask("stats")
    finally:
        served.close()
        redis.stop()
    requests = sum(n for kind, n in stats["requests"].items() if kind not in AUTH_KINDS)
    records, distinct = delivered(work / "outbox")
    minutes = max(0, math.ceil(requests / args.per_project) - 1)
    bound = minutes * QUOTA_MINUTE
    return {
        "command": " ".join(["python -m bench.fleet", *sys.argv[1:]]),
        "machine": f"{platform.node()}: {platform.platform()}, {os.cpu_count()} cores",
        "taken": datetime.now(UTC).isoformat(timespec="seconds"),
        "size": args.size,
        "workers": args.workers,
        "per_project_per_minute": args.per_project,
        "latency": args.latency,
        "exit_codes": codes,
        "requests": requests,
        "requests_by_kind": stats["requests"],
        "refused": stats["violations"],
        "refused_share": round(stats["violations"] / max(1, requests), 4),
        "digests_recorded": records,
        "digests_distinct": distinct,
        "wall_s": round(wall, 1),
        "wall_bound_s": round(bound, 1),
        "ratio": round(wall / bound, 2) if bound else None,
        "emulator_cpu_s": stats.get("emulator_cpu"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__)
    parser.add_argument("--size", type=int, default=100, help="managers")
    parser.add_argument("--workers", type=int, default=2, help="kindly worker processes")
    parser.add_argument("--per-project", type=int, default=300, help="quota a minute")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--root", type=Path, default=Path("var/bench"))
    parser.add_argument("--out", type=Path, default=None, help="write the result here (JSON)")
    args = parser.parse_args(argv)
    result = run_fleet(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

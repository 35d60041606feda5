"""The benchmark: Kindly against the emulators at organisation scale, one table, one JSON.

    python -m bench.run                                   # the issue's sizes: 200, 2,000, 10,000
    python -m bench.run --sizes 200 --providers google     # smaller

For each size it generates the organisation (once, kept under ``var/bench/``),
times the pure core, and for each provider and limits mode starts the emulator
in a subprocess (``bench.serve``: injected latency, requests counted by kind,
published limits or none), then runs ``kindly run --once --dry-run`` and the
real run as subprocesses (wall time, peak RSS, requests by kind) and, with
limits lifted and for the smaller sizes, the sequential baseline on a fresh
emulator. Each figure is printed beside its goal; everything goes to
``var/bench/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import IO, Any

from bench import core
from bench.generate import NOW, generate
from service.model import Policy

PYTHON = sys.executable
KINDLY = str(Path(sys.executable).with_name("kindly"))
AUTH_KINDS = frozenset({"token", "openid", "discovery"})
#: Google Calendar: requests per minute per project; Exchange Online: sends per minute per sender
GOOGLE_PROJECT_PER_MINUTE = 10_000
SENDS_PER_MINUTE = 30
#: sequential round trips a perfect client still needs per manager besides the listing pages:
#: free/busy, the inserts (all at once), the send
CHAIN_AFTER_LISTING = 3
#: Kindly's own pacing settings (defaults: the published limits), lifted with the emulator's
PACING = (
    "KINDLY_EMAIL__SEND_PER_MINUTE",
    "KINDLY_GOOGLE__REQUESTS_PER_MINUTE",
    "KINDLY_GOOGLE__REQUESTS_PER_MINUTE_PER_USER",
)
UNPACED = 1_000_000
#: with published limits the real run starts this long after the dry run: Kindly paces
#: its own requests, so it starts on a quota minute of its own (seconds)
QUOTA_MINUTE = 61.0
RSS_GOAL_MB = 300
GOALS = {
    "requests": "<= 1.05 x bound",
    "wall_published": "<= 1.2 x bound, 0 violations",
    "speedup": ">= 20 x baseline at 2,000",
    "core": ">= 1,000 digests/s/core",
    "rss": "< 300 MB at 10,000, flat",
}


@dataclass
class Run:
    """One ``kindly run --once`` (or baseline) against one emulator."""

    what: str
    wall: float
    exit: int
    peak_rss_mb: float
    requests: dict[str, int]
    round_trips: int
    violations: int
    errors: int
    peak_per_mailbox: int | None
    bound: dict[str, int] = field(default_factory=dict)
    managers_failed: int = 0
    sampled: int | None = None
    #: user + system CPU seconds of the process: near ``wall`` x cores means CPU-bound
    cpu: float | None = None
    #: event-listing pages a perfect client needs for this org (counted by the emulator)
    pages: int | None = None
    #: CPU seconds of the emulator's process during the run (it shares the cores)
    emulator_cpu: float | None = None

    @property
    def api_requests(self) -> int:
        return sum(n for kind, n in self.requests.items() if kind not in AUTH_KINDS)

    @property
    def auth_requests(self) -> int:
        return sum(n for kind, n in self.requests.items() if kind in AUTH_KINDS)

    @property
    def bound_total(self) -> int:
        return sum(self.bound.values())


@dataclass
class Case:
    size: int
    provider: str
    limits: str
    pages: int
    runs: list[Run] = field(default_factory=list)
    wall_bound: float | None = None


class Emulator:
    """``python -m bench.serve`` in a subprocess, steered over its stdin/stdout."""

    def __init__(
        self,
        provider: str,
        org: Path,
        *,
        latency: float,
        limits: str,
        state: Path,
        extra: Sequence[str] = (),
    ):
        self.process = subprocess.Popen(
            [
                *(PYTHON, "-m", "bench.serve", "--provider", provider, "--org", str(org)),
                *("--latency", str(latency), "--limits", limits, "--state", str(state)),
                *extra,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello = json.loads(self._line())
        self.env: dict[str, str] = hello["env"]

    def _line(self) -> str:
        out: IO[str] | None = self.process.stdout
        assert out is not None
        line = out.readline()
        if not line:
            raise RuntimeError("the emulator exited; see its stderr above")
        return line

    def ask(self, command: str) -> dict[str, Any]:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(command + "\n")
        stdin.flush()
        answer: dict[str, Any] = json.loads(self._line())
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


@contextmanager
def emulator(
    provider: str, org: Path, *, latency: float, limits: str, state: Path
) -> Iterator[Emulator]:
    served = Emulator(provider, org, latency=latency, limits=limits, state=state)
    try:
        yield served
    finally:
        served.close()


def timed(
    command: Sequence[str], env: dict[str, str], out: Path
) -> tuple[float, int, float, float]:
    """Wall seconds, exit status, peak RSS (MB), CPU seconds of one child; its stdout goes to
    ``out``, its stderr (one line per problem) next to it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as stdout, out.with_suffix(".stderr").open("wb") as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    return wall, child.returncode, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def kindly_env(
    base: dict[str, str], roster: Path, work: Path, concurrency: int | None, *, lifted: bool
) -> dict[str, str]:
    """Kindly pointed at the emulator; with limits lifted, its own pacing is lifted too
    (its defaults are the published limits, which is what the published mode measures).
    ``concurrency`` None: Kindly's defaults, which follow from the limits."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")}
    pacing = {name: str(UNPACED) for name in PACING} if lifted else {}
    tuned = (
        {}
        if concurrency is None
        else {
            "KINDLY_CONCURRENCY": str(concurrency),
            "KINDLY_GOOGLE__MAX_CONCURRENCY": str(min(concurrency, 64)),
        }
    )
    return (
        env
        | base
        | {"KINDLY_ROSTER_FILE": str(roster), "KINDLY_EMAIL__OUTBOX_DIR": str(work / "outbox")}
        | tuned
        | pacing
    )


def kindly_run(
    served: Emulator,
    org: Path,
    work: Path,
    *,
    dry_run: bool,
    concurrency: int | None,
    provider: str,
    lifted: bool,
) -> Run:
    served.ask("mark")
    env = kindly_env(served.env, org / "roster.yaml", work, concurrency, lifted=lifted)
    command = [KINDLY, "run", "--once", "--json", "--now", NOW.isoformat()]
    what = "kindly dry-run" if dry_run else "kindly run"
    out = work / f"{'dry' if dry_run else 'real'}.jsonl"
    wall, status, rss, cpu = timed([*command, "--dry-run"] if dry_run else command, env, out)
    stats = served.ask("stats")
    run = Run(what, wall, status, rss, **stats, cpu=cpu)
    run.managers_failed = sum(1 for o in outcomes_in(out) if o.get("errors"))
    return run


def outcomes_in(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def lower_bound(
    plan: list[dict[str, Any]], pages: int, *, dry_run: bool, provider: str
) -> dict[str, int]:
    """What a perfect client asks for the dry run's plan (what the real run has to do on a
    fresh emulator, failed managers included): one listing per manager-page, one free/busy
    per manager with reports (their absences are in every digest); for the real run also
    one insert per hold and, for Outlook, one send per digest (Google's digests go to the
    file outbox, not to Google)."""
    bound = {
        "listing": pages,
        "free/busy": sum(1 for o in plan if o.get("held")),
        "insert": 0,
        "send": 0,
    }
    if not dry_run:
        bound["insert"] = sum(1 for o in plan for h in o.get("holds", []) if h.get("created"))
        if provider == "outlook":
            bound["send"] = len(plan)
    return bound


def baseline_run(
    provider: str, org: Path, work: Path, *, latency: float, sample: int | None
) -> Run:
    with emulator(provider, org, latency=latency, limits="lifted", state=work / "state") as served:
        # warmed as Kindly's real run is, by a dry run first: the emulator has read and kept
        # the calendars both then ask for (the same calls), so neither pays for its start
        kindly_run(
            served,
            org,
            work / "warm",
            dry_run=True,
            concurrency=None,
            provider=provider,
            lifted=True,
        )
        served.ask("mark")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")} | served.env
        command = [PYTHON, "-m", "bench.baseline_sequential", "--provider", provider]
        command += ["--roster", str(org / "roster.yaml"), "--outbox", str(work / "outbox")]
        if sample:
            command += ["--limit", str(sample)]
        out = work / "baseline.json"
        wall, status, rss, cpu = timed(command, env, out)
        stats = served.ask("stats")
    return Run("baseline (sequential)", wall, status, rss, **stats, sampled=sample, cpu=cpu)


def wall_bound(case: Case, run: Run, latency: float) -> float:
    """The least wall time the published limits and the latency allow for this run.

    The quotas are sliding one-minute windows: the first ``quota`` requests may go at
    once, each further ``quota`` a minute later. Per-user (Google) and per-mailbox
    (Graph) request quotas are far above one manager's handful of requests.
    """
    managers = case.size
    chain = (max(1, round(case.pages / managers)) + CHAIN_AFTER_LISTING) * latency
    if case.provider == "google":
        return max(chain, windows(run.bound_total, GOOGLE_PROJECT_PER_MINUTE) * 60 + latency)
    sends = run.bound.get("send", 0)
    return max(chain, windows(sends, SENDS_PER_MINUTE) * 60 + latency)


def windows(count: int, quota: int) -> int:
    """Whole minutes that must pass before the last of ``count`` requests may go."""
    return max(0, count - 1) // quota


def org_for(size: int, root: Path, seed: int) -> Path:
    folder = root / f"org-{size}"
    if not (folder / "roster.yaml").exists():
        print(f"generating {size} managers into {folder}", file=sys.stderr, flush=True)
        generate(folder, size, seed=seed)
    return folder


def core_figure(org: Path, seconds: float) -> core.CoreResult:
    policy = Policy()
    cases = core.load_cases(org, 100, now=NOW, policy=policy)
    return core.time_core(cases, now=NOW, policy=policy, seconds=seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--sizes", default="200,2000,10000", help="managers, comma-separated")
    parser.add_argument("--providers", default="google,outlook")
    parser.add_argument("--limits", default="lifted,published", help="modes to run")
    parser.add_argument(
        "--published-sizes", default=None, help="sizes to run with published limits (default all)"
    )
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="KINDLY_CONCURRENCY (default: Kindly's own)"
    )
    parser.add_argument("--baseline-max", type=int, default=2000, help="largest size for baseline")
    parser.add_argument(
        "--baseline-sample", type=int, default=0, help="baseline on the first N managers only"
    )
    parser.add_argument("--core-seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--root", type=Path, default=Path("var/bench"))
    parser.add_argument("--out", type=Path, default=Path("var/bench/results.json"))
    parser.add_argument(
        "--show", type=Path, nargs="+", help="print the table of earlier results files and exit"
    )
    args = parser.parse_args(argv)
    if args.show:
        print(table(*load_results(args.show)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    published = (
        {int(s) for s in args.published_sizes.split(",")} if args.published_sizes else set(sizes)
    )
    results: dict[str, Any] = {
        "command": " ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])]),
        "machine": f"{platform.node()}: {platform.platform()}, {os.cpu_count()} cores",
        "settings": vars(args) | {"root": str(args.root)},
        "cases": [],
    }
    results["settings"]["out"] = str(args.out)
    results["goals"] = GOALS
    cores = {}
    cases: list[Case] = []
    for size in sizes:
        org = org_for(size, args.root, args.seed)
        cores[size] = core_figure(org, args.core_seconds)
        log(f"core at {size}: {cores[size].per_second:.0f} digests/s/core")
        for provider in args.providers.split(","):
            for limits in args.limits.split(","):
                if limits == "published" and size not in published:
                    continue
                case = run_case(size, provider, limits, org, args)
                cases.append(case)
                results["cases"].append(case_json(case))
                results["core"] = {str(s): c.to_json() for s, c in cores.items()}
                write(args.out, results)
    print(table(cases, cores))
    write(args.out, results)
    return 0


def run_case(size: int, provider: str, limits: str, org: Path, args: argparse.Namespace) -> Case:
    work = args.root / "runs" / f"{size}-{provider}-{limits}"
    # a fresh outbox and state: an earlier run's ledger would have this week's digests
    # recorded as sent, and a real run that rightly sends nothing measures nothing
    shutil.rmtree(work, ignore_errors=True)
    log(f"{size} managers, {provider}, limits {limits}: starting the emulator")
    with emulator(
        provider, org, latency=args.latency, limits=limits, state=work / "state"
    ) as served:
        case = Case(size, provider, limits, 0)
        for dry_run in (True, False):
            folder = work / ("dry" if dry_run else "real")
            if limits == "published" and not dry_run:
                time.sleep(QUOTA_MINUTE)
            run = kindly_run(
                served,
                org,
                folder,
                dry_run=dry_run,
                concurrency=args.concurrency,
                provider=provider,
                lifted=limits == "lifted",
            )
            plan = outcomes_in(work / "dry" / "dry.jsonl")
            case.pages = case.pages or run.pages or 0
            run.bound = lower_bound(plan, case.pages, dry_run=dry_run, provider=provider)
            log(f"  {run.what}: {run.wall:.1f}s, {run.api_requests} requests")
            case.runs.append(run)
    if limits == "published":
        case.wall_bound = wall_bound(case, case.runs[-1], args.latency)
    if limits == "lifted" and size <= args.baseline_max:
        sample = args.baseline_sample if 0 < args.baseline_sample < size else None
        run = baseline_run(provider, org, work / "baseline", latency=args.latency, sample=sample)
        run.bound = case.runs[-1].bound if not sample else {}
        log(f"  baseline: {run.wall:.1f}s for {sample or size} managers")
        case.runs.append(run)
    return case


def case_json(case: Case) -> dict[str, Any]:
    data = asdict(case)
    for run, raw in zip(case.runs, data["runs"], strict=True):
        raw["api_requests"] = run.api_requests
        raw["auth_requests"] = run.auth_requests
        raw["bound_total"] = run.bound_total
    return data


def write(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str))


def load_results(paths: Sequence[Path]) -> tuple[list[Case], dict[int, core.CoreResult]]:
    """Cases and core figures from results files, in the order given."""
    cases: list[Case] = []
    cores: dict[int, core.CoreResult] = {}
    for path in paths:
        data = json.loads(path.read_text())
        for raw in data["cases"]:
            runs = [
                Run(**{k: v for k, v in r.items() if k in Run.__dataclass_fields__})
                for r in raw.pop("runs")
            ]
            cases.append(Case(**raw, runs=runs))
        for size, figure in data.get("core", {}).items():
            cores[int(size)] = core.CoreResult(
                figure["digests"], figure["cpu_seconds"], figure["wall_seconds"]
            )
    return cases, cores


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def table(cases: list[Case], cores: dict[int, core.CoreResult]) -> str:
    """One plain-text table, each figure beside its goal."""
    head = (
        f"{'size':>6} {'provider':<8} {'limits':<9} {'run':<22} {'wall s':>8} "
        f"{'requests':>9} {'bound':>7} {'ratio':>6} {'auth':>5} {'viol':>5} "
        f"{'peak RSS':>9} {'cpu s':>6} {'emu s':>6} {'vs goal':<40}"
    )
    lines = [head, "-" * len(head)]
    for case in cases:
        baseline = next((r for r in case.runs if r.what.startswith("baseline")), None)
        real = next((r for r in case.runs if r.what == "kindly run"), None)
        for run in case.runs:
            ratio = run.api_requests / run.bound_total if run.bound_total else float("nan")
            lines.append(
                f"{case.size:>6} {case.provider:<8} {case.limits:<9} {run.what:<22} "
                f"{run.wall:>8.1f} {run.api_requests:>9} {run.bound_total:>7} {ratio:>6.2f} "
                f"{run.auth_requests:>5} {run.violations:>5} {run.peak_rss_mb:>7.0f}MB "
                f"{_seconds(run.cpu):>6.1f} {_seconds(run.emulator_cpu):>6.1f} "
                f"{verdict(case, run, baseline, real):<40}"
            )
    lines.extend(rss_lines(cases))
    for size, result in cores.items():
        ok = "ok" if result.per_second >= core.GOAL_PER_SECOND else "MISSED"
        lines.append(
            f"pure core (org {size}): {result.per_second:.0f} digests/s/core "
            f"(goal >= {core.GOAL_PER_SECOND}: {ok})"
        )
    return "\n".join(lines)


def _seconds(value: float | None) -> float:
    return float("nan") if value is None else value


def rss_lines(cases: list[Case]) -> list[str]:
    """Peak RSS of the real run across sizes, per provider, with what each step up in size
    added per 1,000 managers: flat means the organisation is streamed, not held. A size
    run in both modes shows the larger peak (pacing changes when, not what, is held)."""
    lines = []
    for provider in sorted({c.provider for c in cases}):
        peaks: dict[int, float] = {}
        for case in cases:
            if case.provider != provider:
                continue
            for run in case.runs:
                if run.what == "kindly run":
                    peaks[case.size] = max(peaks.get(case.size, 0.0), run.peak_rss_mb)
        seen = sorted(peaks.items())
        if len(seen) < 2:
            continue
        steps = [
            f"{small}->{large}: {(high - low) / (large - small) * 1000:+.1f} MB per 1,000 managers"
            for (small, low), (large, high) in pairwise(seen)
        ]
        largest, peak = seen[-1]
        goal = "not measured" if largest < 10_000 else "ok" if peak < RSS_GOAL_MB else "MISSED"
        shown = ", ".join(f"{size}: {rss:.0f} MB" for size, rss in seen)
        lines.append(
            f"peak RSS {provider} ({shown}); {'; '.join(steps)} "
            f"(goal < {RSS_GOAL_MB} MB at 10,000: {goal})"
        )
    return lines


def verdict(case: Case, run: Run, baseline: Run | None, real: Run | None) -> str:
    notes = []
    if run.bound_total and not run.what.startswith("baseline"):
        ratio = run.api_requests / run.bound_total
        notes.append(f"req {'ok' if ratio <= 1.05 else 'MISSED'}")
    if run is real and case.wall_bound is not None:
        ok = run.wall <= 1.2 * case.wall_bound and run.violations == 0
        why = f" ({run.violations} violations)" if run.violations else ""
        notes.append(f"bound {case.wall_bound:.1f}s {'ok' if ok else 'MISSED'}{why}")
    if run is real and baseline is not None:
        per_manager = baseline.wall / (baseline.sampled or case.size)
        speedup = per_manager * case.size / run.wall
        shown = "(sampled)" if baseline.sampled else ""
        goal = " ok" if speedup >= 20 else " MISSED" if case.size >= 2000 else ""
        notes.append(f"{speedup:.1f}x baseline{shown}{goal}")
    if run.what.startswith("kindly") and case.size >= 10_000:
        notes.append(f"RSS {'ok' if run.peak_rss_mb < RSS_GOAL_MB else 'MISSED'}")
    if run.managers_failed:
        notes.append(f"{run.managers_failed} managers failed")
    return ", ".join(notes)


if __name__ == "__main__":
    raise SystemExit(main())

"""Pure-core throughput: analysis + agenda + render, in digests per second on one core.

    python -m bench.core --org var/bench/org-200 [--managers 200] [--seconds 5] [--profile]

Calendars are read once up front with the ICS connector, so only the pure core
is timed: ``team_time`` (the manager's own busy time; reports' free/busy is not
read), ``analyse``, ``team_agendas``, ``plan_holds`` (so the digest has the holds
block a real run shows), ``agreed_for_team``, ``goals_for_team``, ``build_digest``
and ``render_digest`` (Jinja, both languages the roster asks for, CSS inlined).
One process, one thread: the figure is per core.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.generate import NOW
from connectors.ics import IcsConnector
from service.agenda import team_agendas
from service.cadence import analyse
from service.digest import build_digest, render_digest
from service.hold_plan import existing_holds, plan_holds
from service.meetings import MeetingIndex
from service.model import Event, Manager, PlacedHold, Policy
from service.recap import agreed_for_team, goals_for_team
from service.roster import load_roster_file
from service.team_time import team_time
from service.week import ManagerWeek

GOAL_PER_SECOND = 1_000


@dataclass(frozen=True, slots=True)
class Case:
    """One manager with their calendar already parsed."""

    manager: Manager
    tz: ZoneInfo
    events: tuple[Event, ...]


def load_cases(org: Path, limit: int, *, now: datetime, policy: Policy) -> list[Case]:
    """The first ``limit`` managers of the organisation, calendars expanded once."""
    roster = load_roster_file(org / "roster.yaml")
    connector = IcsConnector(org / "calendars", org / "holds")
    # the span a run reads (service/week.py): the lookback, and the lookahead after now
    start = now - timedelta(days=policy.lookback_days)
    end = now + timedelta(days=policy.reach_days)

    async def read(manager: Manager) -> Case:
        tz = ZoneInfo(manager.timezone or "UTC")
        events = await connector.events(manager.email, start, end, tz=tz)
        return Case(manager, tz, tuple(events))

    async def read_all() -> list[Case]:
        return [await read(m) for m in roster.managers[:limit]]

    return asyncio.run(read_all())


def digest_one(case: Case, *, now: datetime, policy: Policy) -> int:
    """The core of one manager's run; returns the rendered size so nothing is optimised away."""
    manager, tz, events = case.manager, case.tz, case.events
    week = ManagerWeek.of(manager, now=now, tz=tz, policy=policy, default_language="en")
    team = team_time(week, events, {}, {})
    index = MeetingIndex(events)
    analysis = analyse(
        manager,
        events,
        now=now,
        policy=policy,
        tz=tz,
        index=index,
        away=team.away,
        manager_away=team.manager_away,
    )
    agendas = team_agendas(analysis, week=week.week, language=week.language, policy=policy)
    plans = plan_holds(
        week, analysis.overdue, team=team, existing=existing_holds(week, index), removed=()
    )
    holds = {
        plan.key.report: PlacedHold(plan.key, plan.slot.start, plan.slot.end, created=True)
        for plan in plans
        if plan.slot is not None
    }
    digest = build_digest(
        analysis,
        holds=holds,
        agreed=agreed_for_team(events, manager, now=now, index=index),
        goals=goals_for_team(events, manager, now=now, index=index),
        policy=policy,
        language=week.language,
        agendas=agendas,
    )
    rendered = render_digest(digest)
    return len(rendered.html) + len(rendered.text)


@dataclass(frozen=True, slots=True)
class CoreResult:
    digests: int
    #: CPU seconds of this process: the per-core figure holds on a shared, loaded machine
    cpu_seconds: float
    wall_seconds: float

    @property
    def per_second(self) -> float:
        return self.digests / self.cpu_seconds if self.cpu_seconds else 0.0

    def to_json(self) -> dict[str, float | int]:
        return {
            "digests": self.digests,
            "cpu_seconds": round(self.cpu_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "per_second_per_core": round(self.per_second, 1),
            "goal": GOAL_PER_SECOND,
        }


def time_core(cases: list[Case], *, now: datetime, policy: Policy, seconds: float) -> CoreResult:
    """Digests rendered in about ``seconds`` of CPU time, cycling through the cases."""
    for case in cases[:5]:  # warm the template and translation caches
        digest_one(case, now=now, policy=policy)
    done, cpu, wall = 0, time.process_time(), time.perf_counter()
    while done == 0 or time.process_time() - cpu < seconds:
        for case in cases:
            digest_one(case, now=now, policy=policy)
            done += 1
            if time.process_time() - cpu >= seconds:
                break
    return CoreResult(done, time.process_time() - cpu, time.perf_counter() - wall)


def profile(cases: list[Case], *, now: datetime, policy: Policy, top: int = 25) -> str:
    """cProfile of one pass over the cases, heaviest cumulative entries first."""
    profiler = cProfile.Profile()
    profiler.enable()
    for case in cases:
        digest_one(case, now=now, policy=policy)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.core", description=__doc__)
    parser.add_argument("--org", type=Path, required=True)
    parser.add_argument("--managers", type=int, default=200, help="managers to cycle through")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one pass")
    args = parser.parse_args(argv)
    policy = Policy()
    cases = load_cases(args.org, args.managers, now=NOW, policy=policy)
    result = time_core(cases, now=NOW, policy=policy, seconds=args.seconds)
    print(json.dumps(result.to_json()))
    if args.profile:
        print(profile(cases, now=NOW, policy=policy), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

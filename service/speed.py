"""How many requests and managers to keep in flight, from the limits that matter.

Nothing here is a knob: a request slot is worth its round trip, so to reach a
rate of R requests a second over a round trip of L seconds takes R x L
requests in flight (Little's law). Google's binding limit is the project's
quota, so its pool follows ``KINDLY_GOOGLE__REQUESTS_PER_MINUTE``; Graph's are
per mailbox (four in flight each, kept by the client), and a run touches many
mailboxes, so its pool is the client's. Explicit settings win, for admins who
want Kindly slower.
"""

from __future__ import annotations

import math

#: the round trip a request slot is sized for: Google and Graph answer most calls well
#: within it, so a pool of rate x this keeps the quota's pace when they are slow too
ROUND_TRIP_SECONDS = 0.4
#: Google's pool at most (threads, each with its own connection)
GOOGLE_MOST = 64
#: Graph's pool: its limits are per mailbox, four each, which the client keeps
GRAPH_IN_FLIGHT = 32
#: managers per Graph request slot: a manager's calls are batched, and while some wait
#: for Graph the others are in the CPU's hands (bench: 64 managers keep 32 slots busy)
MANAGERS_PER_GRAPH_SLOT = 2
#: ICS calendars are local files: CPU-bound, more at once does not help
ICS_MANAGERS = 8
#: managers each process of ``kindly run --once`` gets at least, unless KINDLY_PROCESSES
#: asks for more processes. A spawned process costs about 0.6 s of CPU before its first
#: manager (it imports Kindly again) and a manager about 0.04 s (ICS demo calendars, on the
#: 2-core dev box), so a share of 50 is some 2 s of work: two processes already end about a
#: third sooner than one. Below 100 managers (the demo, nearly every test) the run stays in
#: one process and pays no start-up at all
MANAGERS_PER_PROCESS = 50


def google_in_flight(requests_per_minute: int) -> int:
    """Requests in flight that reach Google's project quota at ``ROUND_TRIP_SECONDS``."""
    wanted = math.ceil(requests_per_minute / 60 * ROUND_TRIP_SECONDS)
    return max(1, min(GOOGLE_MOST, wanted))


def managers_in_flight(calendar: str, google_pool: int) -> int:
    """Managers run at once by ``kindly run --once``: enough to keep the provider's pool
    busy (a manager has one Google request in flight at a time)."""
    if calendar == "google":
        return google_pool
    if calendar == "outlook":
        return GRAPH_IN_FLIGHT * MANAGERS_PER_GRAPH_SLOT
    return ICS_MANAGERS


def processes_for(managers: int, cores: int, asked: int | None = None) -> int:
    """Processes ``kindly run --once`` spreads ``managers`` over: ``asked``
    (KINDLY_PROCESSES) up to one per manager; unset, one per usable core as long as each
    gets ``MANAGERS_PER_PROCESS``. Always at least one."""
    wanted = asked if asked is not None else min(cores, managers // MANAGERS_PER_PROCESS)
    return max(1, min(wanted, managers))


def share_of(limit: int, processes: int) -> int:
    """One of ``processes``' part of a per-minute ``limit``: together they stay inside it
    (callers keep ``processes`` at most ``limit``, so each part is at least 1)."""
    return max(1, limit // processes)

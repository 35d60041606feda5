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

"""Which holds this week needs, and where (pure).

:func:`plan_holds` decides, for each overdue report in roster order, what to do
about this week's hold; the pipeline only carries the decisions out. Kept
here so every rule can be tested by tables, without a connector:

- this week's hold is on the calendar already (an earlier run placed it): keep it;
- an earlier run placed it and it is gone: the manager removed it, so leave it be;
- otherwise the first free slot for both people (docs/design.md "Holds"): after
  the notice, inside both people's working hours on a working day of both (each
  in their own zone, holidays left out), free for both, clear of the quiet
  hours, at least the gap away from this week's other holds, on a day that has
  fewer than the day's cap of them; each slot is booked before the next
  report's is looked for, and holds of earlier runs of the week count;
- no such slot: the report is *unplaced*, with the reason.

A manager away this week gets no hold at all: nothing is planned.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, time, timedelta
from enum import StrEnum

from service.cadence import ReportStatus
from service.meetings import MeetingIndex
from service.model import HoldKey, Interval, PlacedHold
from service.slots import blocked_after, daily, first_free, local_instant, with_span
from service.team_time import TeamTime
from service.values import quick_init
from service.week import ManagerWeek


class HoldAction(StrEnum):
    KEEP = "keep"  # this week's hold is on the calendar already
    PLACE = "place"  # a free slot was found: place the hold there
    RESPECT_REMOVAL = "respect_removal"  # placed earlier this week, removed by the manager
    UNPLACED = "unplaced"  # no free slot in the horizon


class Unplaced(StrEnum):
    """Why no slot was found, for the digest's one-line explanation."""

    NO_SHARED_TIME = "no_shared_time"  # no working hours both share before the horizon ends
    FULLY_BOOKED = "fully_booked"  # shared working hours, but none free


@quick_init
@dataclass(frozen=True, slots=True)
class HoldPlan:
    status: ReportStatus
    key: HoldKey
    action: HoldAction
    #: where to place it (``PLACE``), in the manager's zone
    slot: Interval | None = None
    #: the hold already there (``KEEP``), in the manager's zone
    existing: PlacedHold | None = None
    #: why there is no slot (``UNPLACED``)
    unplaced: Unplaced | None = None


def existing_holds(week: ManagerWeek, index: MeetingIndex) -> dict[str, PlacedHold]:
    """This week's live holds on the calendar, by report email, in the manager's zone."""
    found: dict[str, PlacedHold] = {}
    for report in week.manager.reports:
        key = week.hold_key(report.email)
        holds = index.holds_for(key.manager, key.report)  # live holds, any week
        event = next((e for e in holds if e.hold_key == key), None)
        if event is not None:
            found[key.report] = PlacedHold(
                key,
                event.start.astimezone(week.tz),
                event.end.astimezone(week.tz),
                created=False,
                link=event.link,
            )
    return found


def plan_holds(
    week: ManagerWeek,
    overdue: Sequence[ReportStatus],
    *,
    team: TeamTime,
    existing: Mapping[str, PlacedHold],
    removed: Collection[str],
) -> tuple[HoldPlan, ...]:
    """One decision per overdue report, in the order given (roster order).

    ``team``: each person's working time, busy time and absence
    (``service.team_time``); ``existing``: :func:`existing_holds`; ``removed``:
    reports whose hold an earlier run of this week placed (the ledger).
    """
    if team.manager_away is not None:
        return ()
    manager = team.manager
    policy = week.policy
    opens = week.now + timedelta(hours=policy.notice_hours)
    ours = [Interval(h.start, h.end) for h in existing.values()]
    quiet = (
        daily(policy.quiet_hours, start=opens, end=week.horizon_end, tz=week.tz)
        if policy.quiet_hours
        else []
    )
    mine = manager.windows(opens, week.horizon_end)
    # the manager's busy time and quiet hours, merged once; each placed hold is joined in
    booked = blocked_after([*team.busy, *quiet], after=opens)
    plans: list[HoldPlan] = []
    # reports of one zone, hours and country get the very same windows (cached in
    # service.working_time): their overlap with the manager's is worked out once. Keyed by
    # the windows' id; the entry keeps them alive, so no id is reused within this plan.
    overlaps: dict[int, tuple[tuple[Interval, ...], list[Interval]]] = {}
    for status in overdue:
        email = status.report.email
        key = week.hold_key(email)
        if email in existing:
            plans.append(HoldPlan(status, key, HoldAction.KEEP, existing=existing[email]))
            continue
        if email in removed:
            plans.append(HoldPlan(status, key, HoldAction.RESPECT_REMOVAL))
            continue
        person = team.reports[email]  # the team is built from the same roster entry
        theirs = person.windows(opens, week.horizon_end)
        if id(theirs) not in overlaps:
            overlaps[id(theirs)] = (theirs, _shared(mine, theirs))
        shared = overlaps[id(theirs)][1]
        if not shared:
            plans.append(_unplaced(status, key, Unplaced.NO_SHARED_TIME))
            continue
        more = [
            *(team.report_busy.get(email) or ()),
            *_apart(ours, timedelta(minutes=policy.gap_minutes)),
            *_full_days(ours, policy.max_per_day, week),
        ]
        blocked = blocked_after([*booked, *more], after=opens) if more else booked
        slot = first_free(shared, blocked, minutes=policy.hold_minutes, tz=week.tz)
        if slot is None:
            plans.append(_unplaced(status, key, Unplaced.FULLY_BOOKED))
            continue
        booked = with_span(booked, Interval(slot.start.astimezone(UTC), slot.end.astimezone(UTC)))
        ours.append(slot)
        plans.append(HoldPlan(status, key, HoldAction.PLACE, slot=slot))
    return tuple(plans)


def _unplaced(status: ReportStatus, key: HoldKey, why: Unplaced) -> HoldPlan:
    return HoldPlan(status, key, HoldAction.UNPLACED, unplaced=why)


def _shared(ours: Sequence[Interval], theirs: Sequence[Interval]) -> list[Interval]:
    """Where two sorted lists of working windows overlap, sorted."""
    found, i, j = [], 0, 0
    while i < len(ours) and j < len(theirs):
        start = max(ours[i].start, theirs[j].start)
        end = min(ours[i].end, theirs[j].end)
        if start < end:
            found.append(Interval(start.astimezone(UTC), end.astimezone(UTC)))
        if ours[i].end <= theirs[j].end:
            i += 1
        else:
            j += 1
    return found


def _apart(holds: Sequence[Interval], gap: timedelta) -> list[Interval]:
    """Around each hold, the time another one may not use: no back-to-back holds."""
    if not gap:
        return []
    return [Interval(h.start - gap, h.end + gap) for h in holds]


def _full_days(holds: Sequence[Interval], cap: int, week: ManagerWeek) -> list[Interval]:
    """The whole of each day (manager's zone) that already has ``cap`` holds."""
    if cap <= 0:
        return []
    per_day: Counter[date] = Counter(h.start.astimezone(week.tz).date() for h in holds)
    return [
        Interval(
            local_instant(day, time(0), week.tz),
            local_instant(day + timedelta(days=1), time(0), week.tz),
        )
        for day, count in per_day.items()
        if count >= cap
    ]

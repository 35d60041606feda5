"""Which holds this week needs, and where (pure).

:func:`plan_holds` decides, for each overdue report in roster order, what to do
about this week's hold; the pipeline only carries the decisions out. Kept
here so every rule can be tested by tables, without a connector:

- this week's hold is on the calendar already (an earlier run placed it): keep it;
- an earlier run placed it and it is gone: the manager removed it, so leave it be;
- otherwise the first free slot (``service.slots.find_slot``) for both people,
  each slot booked before the next report's is looked for;
- no slot in the horizon: the report is *unplaced*.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from service.cadence import ReportStatus
from service.meetings import MeetingIndex
from service.model import HoldKey, Interval, PlacedHold
from service.slots import find_slot
from service.week import ManagerWeek


class HoldAction(StrEnum):
    KEEP = "keep"  # this week's hold is on the calendar already
    PLACE = "place"  # a free slot was found: place the hold there
    RESPECT_REMOVAL = "respect_removal"  # placed earlier this week, removed by the manager
    UNPLACED = "unplaced"  # no free slot in the horizon


@dataclass(frozen=True, slots=True)
class HoldPlan:
    status: ReportStatus
    key: HoldKey
    action: HoldAction
    #: where to place it (``PLACE``), in the manager's zone
    slot: Interval | None = None
    #: the hold already there (``KEEP``), in the manager's zone
    existing: PlacedHold | None = None


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
    busy: Sequence[Interval],
    report_busy: Mapping[str, Sequence[Interval] | None],
    existing: Mapping[str, PlacedHold],
    removed: Collection[str],
) -> tuple[HoldPlan, ...]:
    """One decision per overdue report, in the order given (roster order).

    ``busy``: the manager's busy time; ``report_busy``: each report's, ``None`` or
    absent where it cannot be read; ``existing``: :func:`existing_holds`;
    ``removed``: reports whose hold an earlier run of this week placed (the ledger).
    """
    booked: list[Interval] = list(busy)
    plans: list[HoldPlan] = []
    for status in overdue:
        email = status.report.email
        key = week.hold_key(email)
        if email in existing:
            plans.append(HoldPlan(status, key, HoldAction.KEEP, existing=existing[email]))
            continue
        if email in removed:
            plans.append(HoldPlan(status, key, HoldAction.RESPECT_REMOVAL))
            continue
        theirs = report_busy.get(email) or ()
        slot = find_slot([*booked, *theirs], now=week.now, policy=week.policy, tz=week.tz)
        if slot is None:
            plans.append(HoldPlan(status, key, HoldAction.UNPLACED))
            continue
        booked.append(slot)
        plans.append(HoldPlan(status, key, HoldAction.PLACE, slot=slot))
    return tuple(plans)


def needs_slot(
    overdue: Sequence[ReportStatus], existing: Mapping[str, PlacedHold], removed: Collection[str]
) -> list[str]:
    """The reports whose free/busy the plan will read: no hold yet, none removed."""
    return [
        s.report.email
        for s in overdue
        if s.report.email not in existing and s.report.email not in removed
    ]

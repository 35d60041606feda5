"""What counts as a one-on-one (DESIGN.md), as plain predicates over events."""

from __future__ import annotations

from service.model import Event, Response


def between(event: Event, manager: str, report: str) -> bool:
    """Its people (rooms and resources left out) are exactly manager and report,
    whatever its status and answers: a 1:1 as scheduled, perhaps called off."""
    if event.all_day:
        return False
    return event.people() == frozenset({manager.lower(), report.lower()})


def is_one_on_one(event: Event, manager: str, report: str) -> bool:
    """A 1:1 that stands: scheduled between the two, not cancelled, not declined by either."""
    return (
        between(event, manager, report)
        and not event.cancelled
        and event.response_of(manager) is not Response.DECLINED
        and event.response_of(report) is not Response.DECLINED
    )


def is_hold_for(event: Event, manager: str, report: str) -> bool:
    """One of Kindly's own holds placed for this report (any week)."""
    key = event.hold_key
    return (
        key is not None
        and key.manager == manager.lower()
        and key.report == report.lower()
        and not event.cancelled
    )

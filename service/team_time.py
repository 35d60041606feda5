"""One manager's team as this week's time sees it: who works when, who is busy, who is away
(pure; docs/design.md "Respecting people's time")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from service.away import Away, away_this_week, back_from_leave
from service.busy import busy_intervals
from service.model import Event, Interval, ProviderWorkingTime
from service.week import ManagerWeek
from service.working_time import Person, manager_person, report_person


@dataclass(frozen=True, slots=True)
class TeamTime:
    manager: Person
    #: by report email, in roster order
    reports: Mapping[str, Person]
    #: the manager's busy time, Kindly's holds included (a hold is busy for the next one), from
    #: the events that end after this week's window opens (now + notice): no hold goes earlier
    busy: Sequence[Interval]
    #: each report's busy time; None where their free/busy cannot be read
    report_busy: Mapping[str, Sequence[Interval] | None]
    manager_away: Away | None = None
    #: the reports away this week, by email
    away: Mapping[str, Away] = field(default_factory=dict)
    #: the reports back from leave, by email: the day they came back
    returning: Mapping[str, date] = field(default_factory=dict)

    def manager_holidays(
        self, start: datetime, end: datetime, language: str
    ) -> tuple[tuple[date, str], ...]:
        """The manager's public holidays on their working weekdays in [start, end), named in
        ``language``: the days no hold can go to."""
        me = self.manager
        return tuple(
            (day, name)
            for day in me.days(start, end - timedelta(microseconds=1))
            if day.isoweekday() in me.working.days
            and (name := me.holiday(day, language)) is not None
        )

    def away_by_email(self) -> dict[str, str | None]:
        """``away`` of ``--json``: everyone away this week → ISO date back, or None."""
        gone = dict(self.away)
        if self.manager_away is not None:
            gone[self.manager.email] = self.manager_away
        return {email: a.back_on.isoformat() if a.back_on else None for email, a in gone.items()}


def team_time(
    week: ManagerWeek,
    events: Sequence[Event],
    report_busy: Mapping[str, Sequence[Interval] | None],
    provider: Mapping[str, ProviderWorkingTime],
) -> TeamTime:
    """``events``: the manager's calendar up to the lookahead; ``report_busy`` the same span
    of each report's free/busy; ``provider``: working hours the provider keeps, by email."""
    manager, policy = week.manager, week.policy
    me = manager_person(manager, tz=week.tz, policy=policy, provider=provider.get(manager.email))
    people = {
        r.email: report_person(
            r, manager, manager_tz=week.tz, policy=policy, provider=provider.get(r.email)
        )
        for r in manager.reports
    }
    start = week.now + timedelta(hours=policy.notice_hours)
    window = {"start": start, "end": week.horizon_end, "lookahead_end": week.lookahead_end}
    # Kindly's own holds are busy for the next hold, but never make anyone "away"; most
    # calendars hold none, and then the busy time is worked out once, not twice
    not_holds = [e for e in events if e.hold_key is None]
    own_time = busy_intervals(not_holds, manager.email, since=start)
    busy = (
        own_time
        if len(not_holds) == len(events)
        else busy_intervals(events, manager.email, since=start)
    )
    away, returning = {}, {}
    for email, person in people.items():
        theirs = report_busy.get(email)
        if theirs is None:
            continue  # free/busy unknown: never guess someone away
        gone = away_this_week(person, theirs, **window)
        if gone is not None:
            away[email] = gone
            continue
        back = back_from_leave(
            person, theirs, since=week.free_busy_start, now=week.now, until=week.horizon_end
        )
        if back is not None:
            returning[email] = back
    return TeamTime(
        manager=me,
        reports=people,
        busy=busy,
        report_busy=report_busy,
        manager_away=away_this_week(me, own_time, **window),
        away=away,
        returning=returning,
    )

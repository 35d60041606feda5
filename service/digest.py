"""The weekly digest: a frozen view model, its HTML and text renderings (pure).

:func:`build_digest` computes everything the templates show (translated,
formatted in the manager's locale and zone, untrusted text made safe);
:func:`render_digest` only lays it out. The same inputs give the same bytes,
and ``service.digest_email`` makes the same email of them, down to the MIME boundary,
so a re-run is byte-identical.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType

from service.agenda import Agenda, first_name, rotation_index, shows_agenda
from service.cadence import Change, ChangeKind, ReportStatus, TeamAnalysis, WeekCoverage
from service.i18n import N_, Translator, environment, translator
from service.model import PlacedHold, Policy, iso_week
from service.recap import Recap, recap, untrusted, web_link
from service.template_inlining import NotInlinable, inline_css, inlined_template
from service.values import quick_init

__all__ = [
    "CoverageColumn",
    "Digest",
    "GlanceRow",
    "RenderedDigest",
    "ReportSection",
    "State",
    "WeekNotes",
    "build_digest",
    "render_digest",
    "state_of",
]

#: share of the cadence after which a report's bar turns amber
DUE_SOON = 0.75

#: the manager's own weekly question ("reflect and adjust"): one practice of the manager's
#: side of the coaching model each week, in turn
REFLECTIONS: tuple[str, ...] = (
    N_(
        "Which values do you want to show in your 1:1s this week? Decide them now, before a "
        "busy day decides for you."
    ),
    N_("What could you share about yourself this week, so the conversation goes both ways?"),
    N_("Which mistake of yours could you own out loud this week?"),
    N_("Where could you offer someone more flexibility: a time, a place, a deadline?"),
    N_(
        "If a conversation turns to something heavier than you should handle alone, how will "
        "you end or reschedule it kindly, and where will you point them?"
    ),
    N_("Could you name one personal goal of each person on your team? Whom would you need to ask?"),
    N_("Whose work did you notice and recognise this week? Who might feel unseen?"),
    N_("When did you last ask for feedback on yourself, and what did you do with it?"),
    N_("Which expectation did you leave vague this week? How could you make it clear?"),
    N_("Which 1:1 did you cancel or move recently, and what might that have signalled?"),
    N_("Where did you talk more than you listened this week?"),
    N_("How are you looking after yourself, so you can be there for your team?"),
)


class State(StrEnum):
    """The one status a report has in a digest, the same in the list and in their section."""

    AWAY = "away"
    NEW_HIRE = "new_hire"
    OVERDUE = "overdue"
    PLANNED = "planned"
    DUE = "due"
    ON_TRACK = "on_track"


#: the colour of each state's label and bar: "ok", "soon" or "due"
_TONES = MappingProxyType(
    {
        State.AWAY: "ok",
        State.NEW_HIRE: "ok",
        State.OVERDUE: "due",
        State.PLANNED: "ok",
        State.DUE: "soon",
        State.ON_TRACK: "ok",
    }
)


#: the states, read once (``State.AWAY`` goes through ``EnumType.__getattr__``'s slot on 3.11)
_AWAY, _NEW_HIRE, _OVERDUE, _PLANNED, _DUE, _ON_TRACK = State


def state_of(status: ReportStatus, *, cadence_percent: int) -> State:
    """Away first (nothing is asked of someone on leave), then a new hire, then the cadence."""
    if status.away:
        return _AWAY
    if status.new_hire:
        return _NEW_HIRE
    if status.overdue:
        return _OVERDUE
    if status.next_upcoming is not None:
        return _PLANNED
    if cadence_percent >= DUE_SOON * 100:
        return _DUE
    return _ON_TRACK


@quick_init
@dataclass(frozen=True, slots=True)
class GlanceRow:
    """One report in the "at a glance" list."""

    name: str
    #: the one status line, the same as in the report's section
    state: str
    #: empty for someone away with nothing planned
    next_one: str
    cadence: str
    #: share of the cadence gone by since the last 1:1, 0-100
    bar_percent: int
    #: "ok", "soon" or "due": the bar's colour
    tone: str
    kind: State = State.ON_TRACK
    #: ``next_one`` as the digest words it ("Next: …"); empty when ``next_one`` is
    next_line: str = ""


@quick_init
@dataclass(frozen=True, slots=True)
class CoverageColumn:
    """One week of the team coverage chart, labelled by its Monday."""

    label: str
    percent: int
    caption: str

    @property
    def height(self) -> int:
        """Pixels of the column in a 64-pixel chart; at least 2, so an empty week shows."""
        return max(self.percent * 64 // 100, 2)


@quick_init
@dataclass(frozen=True, slots=True)
class ReportSection:
    """What the digest says about one report: those with an agenda, and those with
    agreements or goals to follow up (brief: no agenda)."""

    name: str
    #: the same status line as the report's row at a glance
    state: str
    agenda: Agenda | None
    recap: Recap
    #: the link of this week's hold, when there is one and the provider gives it
    hold_link: str | None = None
    #: last time's agreements as the digest asks about them ("Done? …"), the report's first,
    #: then the manager's own
    follow_ups: tuple[str, ...] = ()


@quick_init
@dataclass(frozen=True, slots=True)
class Digest:
    """Everything a digest shows, computed: the templates only lay it out."""

    language: str
    manager: str
    week: str
    subject: str
    greeting: str
    intro: str
    glance: tuple[GlanceRow, ...]
    coverage: tuple[CoverageColumn, ...]
    trend: str
    #: this week's time, where it explains a hold that is not there: a holiday, a report
    #: without a free slot, an event Kindly could not read
    time_notes: tuple[str, ...]
    #: cancelled, declined and moved 1:1s of the team, oldest first
    changes: tuple[str, ...]
    #: a gentle word for each report whose 1:1s keep being cancelled
    change_notes: tuple[str, ...]
    sections: tuple[ReportSection, ...]
    #: the coaching behind the agendas, once per digest rather than under every question
    how_to: str
    reflection: str
    #: why a hold never surprises a report (psychological safety), in the footer
    safety_note: str
    #: "know your role and its limits", with the organisation's resources when configured
    support_note: str
    support_url: str | None = None


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    subject: str
    html: str
    text: str


def build_digest(
    analysis: TeamAnalysis,
    *,
    holds: Mapping[str, PlacedHold],
    agreed: Mapping[str, tuple[str, ...]],
    policy: Policy,
    language: str,
    agendas: Mapping[str, Agenda],
    goals: Mapping[str, tuple[str, ...]] | None = None,
    week_notes: WeekNotes | None = None,
) -> Digest:
    """The view model of one manager's digest; ``holds``, ``agreed``, ``goals`` and
    ``agendas`` (``service.agenda.team_agendas``, shared with the holds) keyed by report
    email; ``week_notes``: what explains a hold that is not there."""
    t = translator(language)
    week = iso_week(analysis.now.astimezone(analysis.tz))
    manager = analysis.manager
    view = _View(analysis, t, policy, holds, agendas)
    goals = goals or {}
    glance = tuple(view.glance(s) for s in analysis.reports)
    return Digest(
        language=language,
        manager=manager.email,
        week=week,
        subject=_subject(analysis, t),
        greeting=t.gettext("Hi %(name)s,") % {"name": first_name(manager.name)},
        intro=_intro(analysis, t),
        time_notes=_time_notes(analysis, week_notes or WeekNotes(), view, t),
        glance=glance,
        coverage=tuple(_column(c, t) for c in analysis.coverage),
        trend=_trend(analysis.coverage, t),
        changes=tuple(view.change(c) for c in _changes_in_order(analysis.reports)),
        change_notes=tuple(
            note for note in (view.cancellations(s) for s in analysis.reports) if note
        ),
        sections=_sections(view, analysis.reports, glance, agreed, goals),
        how_to=t.gettext(
            "How to use this: the person first, then let them lead; agree what good looks "
            "like, praise something specific, ask what you could do better, and own any 1:1 "
            "you moved. Note agreements, yours too, and their goals in the 1:1; Kindly asks "
            "how they went."
        ),
        reflection=t.gettext(
            REFLECTIONS[rotation_index(manager.email, "reflection", week, len(REFLECTIONS))]
        ),
        safety_note=(
            t.gettext(
                "Kindly invites people in your working hours, never someone who is away, with a "
                "warm, neutral title and message: a 1:1 should never read as “you’re in trouble”."
            )
            if policy.invite_report
            else t.gettext(
                "Holds are tentative, in working hours, never for anyone away, and only on "
                "your calendar, like your notes: a surprise invite can feel like trouble. Each "
                "one’s description is an invitation to forward."
            )
        ),
        support_note=_support_note(policy, t),
        support_url=web_link(policy.support_url),
    )


def _changes_in_order(statuses: tuple[ReportStatus, ...]) -> list[Change]:
    """Every report's changed 1:1s, oldest first (roster order breaks ties)."""
    found = [(c.when.astimezone(UTC), i, c) for i, s in enumerate(statuses) for c in s.changes]
    return [change for _, _, change in sorted(found, key=lambda item: item[:2])]


def _support_note(policy: Policy, t: Translator) -> str:
    if web_link(policy.support_url):
        return t.gettext(
            "Know your role and its limits: when something heavier comes up, listen, then "
            "point to your organisation’s support:"
        )
    return t.gettext(
        "Know your role and its limits: when something heavier comes up, listen, then point "
        "to HR or your employee assistance programme."
    )


def _sections(
    view: _View,
    statuses: tuple[ReportStatus, ...],
    glance: tuple[GlanceRow, ...],
    agreed: Mapping[str, tuple[str, ...]],
    goals: Mapping[str, tuple[str, ...]],
) -> tuple[ReportSection, ...]:
    """The sections of those with an agenda or something to follow up, in digest order; each
    says the status line of its row at a glance (``glance``, in roster order)."""
    found = []
    for position in _in_digest_order(statuses):
        status = statuses[position]
        if status.away:
            continue  # nobody on leave is asked about: their status says it all
        email = status.report.email
        section = view.section(
            status, glance[position].state, agreed.get(email, ()), goals.get(email, ())
        )
        if section.agenda is not None or section.recap.to_follow_up:
            found.append(section)
    return tuple(found)


def _in_digest_order(statuses: tuple[ReportStatus, ...]) -> list[int]:
    """Positions (roster order) of the reports as the digest lists them: time for a 1:1 first
    (roster order), then upcoming ones by date, then the rest."""
    due = [index for index, s in enumerate(statuses) if s.overdue]
    upcoming = sorted(
        (s.next_upcoming.astimezone(UTC), index)
        for index, s in enumerate(statuses)
        if not s.overdue and s.next_upcoming is not None
    )
    rest = [index for index, s in enumerate(statuses) if not s.overdue and s.next_upcoming is None]
    return [*due, *(index for _, index in upcoming), *rest]


class _View:
    """Formats one team's statuses in the manager's language, zone and policy."""

    def __init__(
        self,
        analysis: TeamAnalysis,
        t: Translator,
        policy: Policy,
        holds: Mapping[str, PlacedHold],
        agendas: Mapping[str, Agenda],
    ) -> None:
        self.now = analysis.now
        self.utc_now = analysis.now.astimezone(UTC)
        self.tz = analysis.tz
        self.t = t
        self.policy = policy
        self.holds = holds
        self.agendas = agendas
        self.manager = first_name(analysis.manager.name)
        self.people = {s.report.email: first_name(s.report.name) for s in analysis.reports}

    def glance(self, status: ReportStatus) -> GlanceRow:
        t = self.t
        percent = self._cadence_percent(status)
        state = state_of(status, cadence_percent=percent)
        next_one = self._next_one(status)
        return GlanceRow(
            name=untrusted(status.report.name),
            state=self.status_line(status, state),
            next_one=next_one,
            cadence=_cadence(status.cadence_days, t.language),
            bar_percent=percent,
            tone=_TONES[state],
            kind=state,
            next_line=t.gettext("Next: %(when)s") % {"when": next_one} if next_one else "",
        )

    def status_line(self, status: ReportStatus, state: State) -> str:
        """The one status of a report, worded for the manager."""
        t = self.t
        if state is _AWAY:
            if status.back_on is None:
                return t.gettext("away for now; a warm welcome back when they return")
            return t.gettext("away, back on %(when)s: plan a warm welcome back") % {
                "when": t.day(status.back_on)
            }
        if state is _NEW_HIRE:
            start = status.report.start_date
            joined = t.day(start) if start is not None else ""
            if start is not None and start > self.now.astimezone(self.tz).date():
                return t.gettext("starts on %(when)s") % {"when": joined}
            if status.last_held is None:
                return t.gettext("joined %(when)s, first 1:1 not yet held") % {"when": joined}
            return t.gettext("joined %(when)s") % {"when": joined}
        return t.gettext(_STATE_TEXTS[state])

    def _cadence_percent(self, status: ReportStatus) -> int:
        if status.last_held is None:
            return 100
        gone = (self.utc_now - status.last_held.astimezone(UTC)) / timedelta(
            days=status.cadence_days
        )
        return max(0, min(100, round(gone * 100)))

    def _next_one(self, status: ReportStatus) -> str:
        """The next 1:1 within the lookahead, or this week's hold when that comes first."""
        t, tz = self.t, self.tz
        hold = self.holds.get(status.report.email)
        coming = status.next_one or status.next_upcoming
        if hold is not None and (coming is None or hold.start < coming):
            return t.gettext("%(when)s (Kindly’s hold)") % {"when": t.day_time(hold.start, tz)}
        if coming is not None:
            return t.day_time(coming, tz)
        # someone away is not waiting for a 1:1: their status says when they are back
        return "" if status.away else t.gettext("not planned yet")

    def section(
        self, status: ReportStatus, state: str, agreed: tuple[str, ...], goals: tuple[str, ...]
    ) -> ReportSection:
        """``state``: the report's status line, as their row at a glance says it."""
        t = self.t
        followed = recap(status.report, agreed, goals=goals, manager=self.manager)
        theirs, yours = t.gettext("Done? %(item)s"), t.gettext("Your part, done? %(item)s")
        return ReportSection(
            name=untrusted(status.report.name),
            state=state,
            agenda=self.agendas.get(status.report.email) if shows_agenda(status) else None,
            recap=followed,
            hold_link=(
                web_link(self.holds[status.report.email].link)
                if status.report.email in self.holds
                else None
            ),
            follow_ups=(
                *(theirs % {"item": item} for item in followed.agreed),
                *(yours % {"item": item} for item in followed.yours),
            ),
        )

    def change(self, change: Change) -> str:
        t, tz = self.t, self.tz
        values = {"name": self.people.get(change.report, ""), "when": t.day_time(change.when, tz)}
        yours = change.by is not None and change.by != change.report
        if change.kind is ChangeKind.CANCELLED:
            if yours:
                text = t.gettext("You cancelled the 1:1 with %(name)s on %(when)s.")
            elif change.by == change.report:
                text = t.gettext("%(name)s cancelled the 1:1 of %(when)s.")
            else:
                text = t.gettext("The 1:1 with %(name)s on %(when)s was cancelled.")
        elif change.kind is ChangeKind.DECLINED:
            text = (
                t.gettext("You declined the 1:1 with %(name)s on %(when)s.")
                if yours
                else t.gettext("%(name)s declined the 1:1 of %(when)s.")
            )
        else:
            values["before"] = t.day_time(change.original or change.when, tz)
            text = (
                t.gettext("You moved the 1:1 with %(name)s from %(before)s to %(when)s.")
                if yours
                else t.gettext("The 1:1 with %(name)s moved from %(before)s to %(when)s.")
            )
        said = text % values
        if not yours:
            return said
        own = t.gettext("That was your call: say so when you meet.")
        return f"{said} {own}"

    def cancellations(self, status: ReportStatus) -> str | None:
        count = status.cancelled_in_lookback
        if count < 2:
            return None
        return self.t.ngettext(
            "A 1:1 with %(name)s was cancelled once in the last %(days)d days. Life happens; "
            "if the time no longer works, ask %(name)s what would suit them better.",
            "1:1s with %(name)s were cancelled %(num)d times in the last %(days)d days. Life "
            "happens; if the time no longer works, ask %(name)s what would suit them better.",
            count,
            name=first_name(status.report.name),
            days=self.policy.lookback_days,
        )


#: the status lines that say only the state
_STATE_TEXTS = MappingProxyType(
    {
        State.OVERDUE: N_("time for a 1:1"),
        State.PLANNED: N_("1:1 planned"),
        State.DUE: N_("due soon"),
        State.ON_TRACK: N_("on track"),
    }
)


def _subject(analysis: TeamAnalysis, t: Translator) -> str:
    count = len(analysis.overdue) + len(analysis.upcoming)
    if count == 0:
        return t.gettext("Your week with your team: everyone is on track")
    return t.ngettext(
        "Your week with your team: %(num)d one-on-one to plan",
        "Your week with your team: %(num)d one-on-ones to plan",
        count,
    )


@dataclass(frozen=True, slots=True)
class WeekNotes:
    """What the run learnt about this week's time that the analysis does not carry."""

    #: overdue reports without a hold, and why (``service.hold_plan.Unplaced`` values)
    unplaced: Mapping[str, str] = field(default_factory=dict)
    #: public holidays on working days of this week's window: (day, name), in order
    holidays: tuple[tuple[date, str], ...] = ()
    #: events Kindly could not read and skipped
    skipped: int = 0


def _time_notes(
    analysis: TeamAnalysis, notes: WeekNotes, view: _View, t: Translator
) -> tuple[str, ...]:
    """One short line each, kindest first: only what explains this week's holds."""
    found = []  # the manager's own absence opens the digest instead (``_intro``)
    for day, name in notes.holidays:
        found.append(
            t.gettext("%(day)s is %(holiday)s: no holds that day.")
            % {"day": t.day(day), "holiday": name}
        )
    for status in analysis.reports:
        why = notes.unplaced.get(status.report.email)
        if why is not None:
            found.append(_unplaced_note(view.people[status.report.email], why, t))
    if notes.skipped:
        found.append(
            t.ngettext(
                "%(num)d event in your calendar could not be read; Kindly skipped it.",
                "%(num)d events in your calendar could not be read; Kindly skipped them.",
                notes.skipped,
            )
        )
    return tuple(found)


def _unplaced_note(name: str, why: str, t: Translator) -> str:
    if why == "no_shared_time":
        text = t.gettext(
            "No hold for %(name)s: your working times don’t overlap this week. Ask %(name)s "
            "which day suits them."
        )
    else:
        text = t.gettext(
            "No hold for %(name)s: your shared working hours are full this week. Ask "
            "%(name)s for a time, or keep it short and walk and talk."
        )
    return text % {"name": name}


def _intro(analysis: TeamAnalysis, t: Translator) -> str:
    if analysis.manager_away:  # no holds were attempted: say so, and who is due on return
        if analysis.manager_back_on is None:
            return t.gettext(
                "You’re away this week: Kindly placed no holds. Below is who to see when "
                "you’re back."
            )
        return t.gettext(
            "You’re away this week, back %(when)s: Kindly placed no holds. Below is who to "
            "see when you’re back."
        ) % {"when": t.day(analysis.manager_back_on)}
    if not analysis.overdue and not analysis.upcoming:
        return t.gettext("Everyone on your team has had a 1:1 within their cadence. Lovely work.")
    return ""


@lru_cache(maxsize=256)
def _cadence(days: int, language: str) -> str:
    """Cached: every report of a digest has one of a few cadences."""
    t = translator(language)
    if days % 7 == 0:
        return t.ngettext("every week", "every %(num)d weeks", days // 7)
    return t.ngettext("every day", "every %(num)d days", days)


def _column(week: WeekCoverage, t: Translator) -> CoverageColumn:
    """Labelled by the week's Monday: an ISO week number means nothing to most readers."""
    year, _, number = week.week.partition("-W")
    return CoverageColumn(
        label=t.short_date(date.fromisocalendar(int(year), int(number), 1)),
        percent=round(week.share * 100),
        caption=f"{week.met}/{week.total}",
    )


#: percentage points within which coverage counts as steady
STEADY_POINTS = 5


def _trend(coverage: tuple[WeekCoverage, ...], t: Translator) -> str:
    """One line comparing coverage now with the average of the weeks before it."""
    if not coverage:
        return ""
    *before, last = coverage
    share = round(last.share * 100)
    if not before:
        return t.gettext("%(share)d%% now.") % {"share": share}
    average = round(sum(w.share for w in before) / len(before) * 100)
    values = {"share": share, "before": average}
    if share - average >= STEADY_POINTS:
        return t.ngettext(
            "%(share)d%% now, up from %(before)d%% the week before.",
            "%(share)d%% now, up from %(before)d%% over the previous %(num)d weeks.",
            len(before),
            **values,
        )
    if average - share >= STEADY_POINTS:
        return t.ngettext(
            "%(share)d%% now, down from %(before)d%% the week before: a good week to reconnect.",
            "%(share)d%% now, down from %(before)d%% over the previous %(num)d weeks: a good "
            "week to reconnect.",
            len(before),
            **values,
        )
    return t.ngettext(
        "%(share)d%% now, as the week before.",
        "%(share)d%% now, as over the previous %(num)d weeks.",
        len(before),
        **values,
    )


#: the digest's HTML template; its stylesheet is applied to the template once, not per digest
HTML_TEMPLATE = "digest.html.j2"


def render_digest(digest: Digest) -> RenderedDigest:
    """The digest's HTML (inline CSS) and its plain-text twin."""
    env = environment(digest.language)
    text = env.get_template("digest.txt.j2").render(d=digest)
    return RenderedDigest(subject=digest.subject, html=_html(digest), text=text)


def _html(digest: Digest) -> str:
    """From the pre-inlined template when it gives the same bytes; otherwise inlined after."""
    template = inlined_template(digest.language, HTML_TEMPLATE)
    if template is not None:
        try:
            return template.render(d=digest)
        except NotInlinable:
            pass
    env = environment(digest.language)
    return inline_css(env.get_template(HTML_TEMPLATE).render(d=digest))

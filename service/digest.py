"""The weekly digest: a frozen view model, its HTML and text renderings (pure).

:func:`build_digest` computes everything the templates show (translated,
formatted in the manager's locale and zone, untrusted text made safe);
:func:`render_digest` only lays it out. The same inputs give the same bytes,
and ``service.digest_email`` makes the same email of them, down to the MIME boundary,
so a re-run is byte-identical.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, timedelta

from service.agenda import Agenda, first_name, rotation_index, shows_agenda
from service.cadence import Change, ChangeKind, ReportStatus, TeamAnalysis, WeekCoverage
from service.i18n import N_, Translator, environment, translator
from service.model import PlacedHold, Policy, iso_week
from service.recap import Recap, recap, untrusted, web_link
from service.template_inlining import NotInlinable, inline_css, inlined_template

__all__ = [
    "CoverageColumn",
    "Digest",
    "GlanceRow",
    "HoldLine",
    "RenderedDigest",
    "ReportSection",
    "build_digest",
    "render_digest",
]

#: share of the cadence after which a report's bar turns amber
DUE_SOON = 0.75

#: the manager's own weekly question ("reflect and adjust"); rotates like the agenda
REFLECTIONS: tuple[str, ...] = (
    N_("Could you name one personal goal of each person on your team? Whom would you need to ask?"),
    N_("Whose work did you notice and recognise this week? Who might feel unseen?"),
    N_("When did you last ask for feedback on yourself, and what did you do with it?"),
    N_("Which expectation did you leave vague this week? How could you make it clear?"),
    N_("Who on your team have you heard least from? What might they not be saying?"),
    N_("Which 1:1 did you cancel or move recently, and what might that have signalled?"),
    N_("Where did you talk more than you listened this week?"),
    N_("What’s one thing you’ll do differently in your next one-on-ones?"),
    N_("Which support resource could someone on your team use that you haven’t mentioned?"),
    N_("What did your team teach you this week?"),
    N_("Whose growth are you actively investing in, and whose could you invest in next?"),
    N_("How are you looking after yourself, so you can be there for your team?"),
)


@dataclass(frozen=True, slots=True)
class GlanceRow:
    """One report in the "at a glance" table."""

    name: str
    last_held: str
    next_one: str
    cadence: str
    state: str
    #: share of the cadence gone by since the last 1:1, 0-100
    bar_percent: int
    #: "ok", "soon" or "due": the bar's colour
    tone: str


@dataclass(frozen=True, slots=True)
class CoverageColumn:
    """One ISO week of the team coverage chart."""

    label: str
    percent: int
    caption: str

    @property
    def height(self) -> int:
        """Pixels of the column in a 64-pixel chart; at least 2, so an empty week shows."""
        return max(self.percent * 64 // 100, 2)


@dataclass(frozen=True, slots=True)
class HoldLine:
    name: str
    when: str
    note: str
    #: one click to the event, when the provider gives a link
    link: str | None = None


@dataclass(frozen=True, slots=True)
class ReportSection:
    """What the digest says about one report; brief ones carry no agenda."""

    name: str
    headline: str
    agenda: Agenda | None
    recap: Recap
    #: the link of this week's hold, when there is one and the provider gives it
    hold_link: str | None = None


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
    holds: tuple[HoldLine, ...]
    holds_note: str
    #: cancelled, declined and moved 1:1s of the team, oldest first
    changes: tuple[str, ...]
    #: a gentle word for each report whose 1:1s keep being cancelled
    change_notes: tuple[str, ...]
    sections: tuple[ReportSection, ...]
    reflection: str
    #: "know your role and its limits", with the organisation's resources when configured
    support_note: str
    #: why a hold never surprises a report (psychological safety), in the footer
    safety_note: str
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
) -> Digest:
    """The view model of one manager's digest; ``holds``, ``agreed`` and ``agendas``
    (``service.agenda.team_agendas``, shared with the holds) keyed by report email."""
    t = translator(language)
    week = iso_week(analysis.now.astimezone(analysis.tz))
    manager = analysis.manager
    view = _View(analysis, t, policy, holds, agendas)
    return Digest(
        language=language,
        manager=manager.email,
        week=week,
        subject=_subject(analysis, t),
        greeting=t.gettext("Hi %(name)s,") % {"name": first_name(manager.name)},
        intro=_intro(analysis, t),
        glance=tuple(view.glance(s) for s in analysis.reports),
        coverage=tuple(_column(c) for c in analysis.coverage),
        trend=_trend(analysis.coverage, t),
        holds=tuple(view.hold(s) for s in analysis.reports if s.report.email in holds),
        holds_note=(
            t.gettext("Each hold invites the person; its description has the agenda.")
            if policy.invite_report
            else t.gettext(
                "Holds are tentative and on your calendar only. Each description has an "
                "invitation you can send, and the agenda."
            )
        ),
        changes=tuple(view.change(c) for c in _changes_in_order(analysis.reports)),
        change_notes=tuple(
            note for note in (view.cancellations(s) for s in analysis.reports) if note
        ),
        sections=tuple(
            view.section(s, agreed.get(s.report.email, ()))
            for s in _in_digest_order(analysis.reports)
        ),
        reflection=t.gettext(
            REFLECTIONS[rotation_index(manager.email, "reflection", week, len(REFLECTIONS))]
        ),
        support_note=_support_note(policy, t),
        safety_note=(
            t.gettext(
                "Kindly invites people with a warm, neutral title and message, so a 1:1 never "
                "reads as “you’re in trouble”."
            )
            if policy.invite_report
            else t.gettext(
                "Kindly never invites anyone by itself: a surprise invitation can read as "
                "“you’re in trouble”, so you choose how and when to ask."
            )
        ),
        support_url=web_link(policy.support_url),
    )


def _changes_in_order(statuses: tuple[ReportStatus, ...]) -> list[Change]:
    """Every report's changed 1:1s, oldest first (roster order breaks ties)."""
    found = [(c.when.astimezone(UTC), i, c) for i, s in enumerate(statuses) for c in s.changes]
    return [change for _, _, change in sorted(found, key=lambda item: item[:2])]


def _support_note(policy: Policy, t: Translator) -> str:
    if web_link(policy.support_url):
        return t.gettext(
            "Know your role and its limits: you are not expected to solve everything yourself. "
            "When something heavier comes up, such as health, grief or exhaustion, listen, then "
            "point to your organisation’s support resources:"
        )
    return t.gettext(
        "Know your role and its limits: you are not expected to solve everything yourself. "
        "When something heavier comes up, such as health, grief or exhaustion, listen, then "
        "point to HR or your organisation’s employee assistance programme."
    )


def _in_digest_order(statuses: tuple[ReportStatus, ...]) -> list[ReportStatus]:
    """Time for a 1:1 first (roster order), then upcoming ones by date, then the rest."""
    due = [s for s in statuses if s.overdue]
    upcoming = sorted(
        (s.next_upcoming.astimezone(UTC), index, s)
        for index, s in enumerate(statuses)
        if not s.overdue and s.next_upcoming is not None
    )
    rest = [s for s in statuses if not s.overdue and s.next_upcoming is None]
    return [*due, *(s for _, _, s in upcoming), *rest]


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
        self.tz = analysis.tz
        self.t = t
        self.policy = policy
        self.holds = holds
        self.agendas = agendas
        self.people = {s.report.email: first_name(s.report.name) for s in analysis.reports}

    def glance(self, status: ReportStatus) -> GlanceRow:
        t = self.t
        percent = self._cadence_percent(status)
        if status.overdue:
            tone, state = "due", t.gettext("time for a 1:1")
        elif status.next_upcoming is not None:
            tone, state = "ok", t.gettext("1:1 planned")
        elif percent >= DUE_SOON * 100:
            tone, state = "soon", t.gettext("due soon")
        else:
            tone, state = "ok", t.gettext("on track")
        return GlanceRow(
            name=untrusted(status.report.name),
            last_held=(
                t.day(status.last_held, self.tz)
                if status.last_held
                else t.ngettext(
                    "none in the last day",
                    "none in the last %(num)d days",
                    self.policy.lookback_days,
                )
            ),
            next_one=self._next_one(status),
            cadence=_cadence(status.cadence_days, t),
            state=state,
            bar_percent=percent,
            tone=tone,
        )

    def _cadence_percent(self, status: ReportStatus) -> int:
        if status.last_held is None:
            return 100
        gone = (self.now.astimezone(UTC) - status.last_held.astimezone(UTC)) / timedelta(
            days=status.cadence_days
        )
        return max(0, min(100, round(gone * 100)))

    def _next_one(self, status: ReportStatus) -> str:
        hold = self.holds.get(status.report.email)
        if status.next_upcoming is not None:
            return self.t.day_time(status.next_upcoming, self.tz)
        if hold is not None:
            return self.t.gettext("%(when)s (held by Kindly)") % {
                "when": self.t.day_time(hold.start, self.tz)
            }
        return self.t.gettext("not planned yet")

    def hold(self, status: ReportStatus) -> HoldLine:
        placed = self.holds[status.report.email]
        return HoldLine(
            name=untrusted(status.report.name),
            when=self._span(placed),
            note=(
                self.t.gettext("new on your calendar")
                if placed.created
                else self.t.gettext("already on your calendar")
            ),
            link=web_link(placed.link),
        )

    def _span(self, placed: PlacedHold) -> str:
        t, tz = self.t, self.tz
        return f"{t.day(placed.start, tz)}, {t.time(placed.start, tz)}–{t.time(placed.end, tz)}"

    def section(self, status: ReportStatus, agreed: tuple[str, ...]) -> ReportSection:
        return ReportSection(
            name=untrusted(status.report.name),
            headline=self._headline(status),
            agenda=self.agendas[status.report.email] if shows_agenda(status) else None,
            recap=recap(status.report, agreed),
            hold_link=(
                web_link(self.holds[status.report.email].link)
                if status.report.email in self.holds
                else None
            ),
        )

    def _headline(self, status: ReportStatus) -> str:
        t = self.t
        hold = self.holds.get(status.report.email)
        if status.overdue and hold is not None:
            return t.gettext("Time for a 1:1. Kindly held %(when)s for it.") % {
                "when": self._span(hold)
            }
        if status.overdue:
            return t.gettext("Time for a 1:1. Pick a moment that suits you both this week.")
        if status.next_upcoming is not None:
            return t.gettext("Your next 1:1: %(when)s.") % {
                "when": t.day_time(status.next_upcoming, self.tz)
            }
        if status.last_held is not None:
            return t.gettext("On track. Your last 1:1 was on %(when)s.") % {
                "when": t.day(status.last_held, self.tz)
            }
        return t.gettext("On track.")

    def change(self, change: Change) -> str:
        t, tz = self.t, self.tz
        values = {"name": self.people.get(change.report, ""), "when": t.day_time(change.when, tz)}
        if change.kind is ChangeKind.CANCELLED:
            return t.gettext("The 1:1 with %(name)s on %(when)s was cancelled.") % values
        if change.kind is ChangeKind.DECLINED:
            if change.by == change.report:
                return t.gettext("%(name)s declined the 1:1 of %(when)s.") % values
            return t.gettext("You declined the 1:1 with %(name)s on %(when)s.") % values
        before = change.original or change.when
        return t.gettext("The 1:1 with %(name)s moved from %(before)s to %(when)s.") % {
            **values,
            "before": t.day_time(before, tz),
        }

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


def _subject(analysis: TeamAnalysis, t: Translator) -> str:
    count = len(analysis.overdue) + len(analysis.upcoming)
    if count == 0:
        return t.gettext("Your week with your team: everyone is on track")
    return t.ngettext(
        "Your week with your team: %(num)d one-on-one to plan",
        "Your week with your team: %(num)d one-on-ones to plan",
        count,
    )


def _intro(analysis: TeamAnalysis, t: Translator) -> str:
    if not analysis.overdue and not analysis.upcoming:
        return t.gettext(
            "Everyone on your team has had a 1:1 within their cadence. Lovely work: here is "
            "your week at a glance."
        )
    return t.gettext(
        "Here is your week with your team: who you have met, who is due for a 1:1, and a "
        "kindness-first agenda for each conversation coming up."
    )


def _cadence(days: int, t: Translator) -> str:
    if days % 7 == 0:
        return t.ngettext("every week", "every %(num)d weeks", days // 7)
    return t.ngettext("every day", "every %(num)d days", days)


def _column(week: WeekCoverage) -> CoverageColumn:
    return CoverageColumn(
        label=f"W{week.week.rpartition('-W')[2]}",
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
        return t.gettext("%(share)d%% of your team is within their cadence now.") % {"share": share}
    average = round(sum(w.share for w in before) / len(before) * 100)
    values = {"share": share, "before": average}
    if share - average >= STEADY_POINTS:
        return t.ngettext(
            "Coverage is rising: %(share)d%% of your team is within their cadence now, up from "
            "%(before)d%% the week before.",
            "Coverage is rising: %(share)d%% of your team is within their cadence now, up from "
            "an average of %(before)d%% over the previous %(num)d weeks.",
            len(before),
            **values,
        )
    if average - share >= STEADY_POINTS:
        return t.ngettext(
            "Coverage dipped: %(share)d%% of your team is within their cadence now, down from "
            "%(before)d%% the week before. A good week to reconnect.",
            "Coverage dipped: %(share)d%% of your team is within their cadence now, down from "
            "an average of %(before)d%% over the previous %(num)d weeks. A good week to reconnect.",
            len(before),
            **values,
        )
    return t.ngettext(
        "Coverage is steady: %(share)d%% of your team is within their cadence now, in line with "
        "the week before.",
        "Coverage is steady: %(share)d%% of your team is within their cadence now, in line with "
        "the previous %(num)d weeks.",
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

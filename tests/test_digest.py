"""The digest (view model, HTML, text, email) and the hold texts, in English and Dutch."""

from __future__ import annotations

import binascii
import re
import unicodedata
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP, default
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.agenda import team_agendas
from service.cadence import Change, ChangeKind, ReportStatus, TeamAnalysis, WeekCoverage
from service.digest import (
    REFLECTIONS,
    Digest,
    RenderedDigest,
    State,
    build_digest,
    render_digest,
)
from service.digest_email import DigestEmail, compose_email, message_id_for
from service.errors import DeliveryError
from service.i18n import SUPPORTED_LANGUAGES
from service.model import HoldKey, Manager, PlacedHold, Policy, Report, iso_week
from tests.texts import digest_of, hold_text_of

AMS = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 11, 23, 8, tzinfo=AMS)
WEEK = "2026-W48"
SENDER = "kindly@example.org"
HELP = "https://intranet.example.com/support"
POLICY = Policy(support_url=HELP)
SCRIPT = "<script>alert(1)</script>"
NNBSP = "\u202f"  # Babel's narrow no-break space before AM/PM

SAM = Report(
    "sam@example.com",
    f"Sam {SCRIPT} Lee",
    cadence_days=7,
    expectations=(f"Ship the billing migration {SCRIPT}",),
)
ANA = Report("ana@example.com", "Ana Silva", start_date=date(2026, 11, 16))
BO = Report("bo@example.com", "Bo Berg")
CY = Report("cy@example.com", "Cy Young", cadence_days=21)
DEE = Report("dee@example.com", "Dee Okafor")
MARIA = Manager("maria@example.com", "Maria Jansen", reports=(SAM, ANA, BO, CY, DEE))


def ams(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=AMS)


def statuses() -> tuple[ReportStatus, ...]:
    """One of each: due with a hold, new hire without one, two upcoming, one on track."""
    return (
        ReportStatus(
            SAM,
            7,
            ams(9, 10),
            None,
            overdue=True,
            long_unmet=False,
            new_hire=False,
            changes=(Change(ChangeKind.CANCELLED, SAM.email, ams(16, 10)),),
            cancelled_in_lookback=2,
        ),
        ReportStatus(ANA, 14, None, None, overdue=True, long_unmet=True, new_hire=True),
        ReportStatus(
            BO,
            14,
            ams(12, 14),
            ams(26, 14),
            overdue=False,
            long_unmet=False,
            new_hire=False,
            changes=(
                Change(ChangeKind.RESCHEDULED, BO.email, ams(26, 14), original=ams(24, 11)),
                Change(ChangeKind.DECLINED, BO.email, ams(19, 11), by=BO.email),
                Change(ChangeKind.DECLINED, BO.email, ams(20, 11), by=MARIA.email),
            ),
            cancelled_in_lookback=1,
        ),
        ReportStatus(CY, 21, ams(16, 9), None, False, False, False),
        ReportStatus(DEE, 14, ams(10, 9), ams(24, 15), False, False, False),
    )


def coverage(*met: int, total: int = 5) -> tuple[WeekCoverage, ...]:
    return tuple(WeekCoverage(f"2026-W{41 + i}", m, total) for i, m in enumerate(met))


def analysis(
    reports: tuple[ReportStatus, ...] | None = None,
    *,
    trend: tuple[WeekCoverage, ...] = coverage(1, 2, 2, 3, 2, 2, 3, 3),
    manager: Manager = MARIA,
) -> TeamAnalysis:
    return TeamAnalysis(manager, NOW, AMS, statuses() if reports is None else reports, trend)


def sam_hold(link: str | None = "https://calendar.example.com/event?eid=1") -> PlacedHold:
    start = datetime(2026, 11, 23, 8, tzinfo=UTC)  # 09:00 in Amsterdam
    return PlacedHold(
        HoldKey(MARIA.email, SAM.email, WEEK), start, start + timedelta(minutes=30), True, link
    )


def digest(language: str = "en", *, team: TeamAnalysis | None = None) -> Digest:
    return digest_of(
        team or analysis(),
        holds={SAM.email: sam_hold()},
        agreed={SAM.email: (f"Sam drafts the rota {SCRIPT}",)},
        policy=POLICY,
        language=language,
    )


def rendered(language: str = "en") -> RenderedDigest:
    return render_digest(digest(language))


def email_of(
    rendered_digest: RenderedDigest | None = None, *, manager: Manager = MARIA
) -> DigestEmail:
    return compose_email(
        rendered_digest or rendered(),
        sender=SENDER,
        manager=manager,
        message_id=message_id_for(manager.email, WEEK, SENDER),
        now=NOW,
    )


def positions(text: str, *needles: str) -> list[int]:
    found = [text.find(n) for n in needles]
    assert -1 not in found, dict(zip(needles, found, strict=True))
    return found


class TestViewModel:
    """build_digest computes every line the templates show, in the manager's zone and locale."""

    def test_reports_needing_a_one_on_one_come_first(self) -> None:
        d = digest()
        # Cy has no agenda and nothing to follow up: the list at a glance is enough
        assert [s.name.split()[0] for s in d.sections] == ["Sam", "Ana", "Dee", "Bo"]
        assert all(s.agenda is not None for s in d.sections)

    def test_a_brief_section_for_something_to_follow_up(self) -> None:
        d = digest_of(
            analysis(),
            holds={},
            agreed={CY.email: ("Cy writes the plan",)},
            policy=POLICY,
            language="en",
        )
        (cy,) = [s for s in d.sections if s.name.startswith("Cy")]
        assert cy.agenda is None
        assert cy.recap.agreed == ("Cy writes the plan",)
        assert cy.follow_ups == ("Done? Cy writes the plan",)

    def test_at_a_glance_in_roster_order(self) -> None:
        rows = digest().glance
        assert [r.name.split()[0] for r in rows] == ["Sam", "Ana", "Bo", "Cy", "Dee"]
        sam, ana, bo, cy, _ = rows
        assert (sam.tone, sam.bar_percent, sam.cadence) == ("due", 100, "every week")
        assert sam.next_one == f"Mon, Nov 23, 9:00{NNBSP}AM (Kindly’s hold)"
        assert (ana.state, ana.next_one) == (
            "joined Mon, Nov 16, first 1:1 not yet held",
            "not planned yet",
        )
        assert (bo.tone, bo.state, bo.next_one) == (
            "ok",
            "1:1 planned",
            f"Thu, Nov 26, 2:00{NNBSP}PM",
        )
        assert bo.next_line == f"Next: Thu, Nov 26, 2:00{NNBSP}PM"
        assert (cy.tone, cy.bar_percent, cy.cadence) == ("ok", 33, "every 3 weeks")

    def test_due_soon_turns_amber(self) -> None:
        soon = ReportStatus(CY, 14, ams(12, 9), None, False, False, False)
        (row,) = digest(team=analysis((soon,))).glance
        assert (row.tone, row.state, row.bar_percent) == ("soon", "due soon", 78)

    def test_hold_in_the_managers_zone_stated_once(self) -> None:
        out = render_digest(digest())
        when = f"Mon, Nov 23, 9:00{NNBSP}AM"
        assert digest().glance[0].next_one.startswith(when)
        assert out.text.count(when) == 1

    def test_hold_links_must_be_web_links(self) -> None:
        d = digest_of(
            analysis(),
            holds={SAM.email: sam_hold("javascript:alert(1)")},
            agreed={},
            policy=POLICY,
            language="en",
        )
        assert d.sections[0].hold_link is None

    def test_next_beyond_the_horizon(self) -> None:
        later = replace(statuses()[3], next_one=ams(2, 15).replace(month=12))
        (row,) = digest(team=analysis((later,))).glance
        assert row.next_one == f"Wed, Dec 2, 3:00{NNBSP}PM"
        assert row.state == "on track"

    @pytest.mark.parametrize(
        ("language", "back_on", "expected"),
        [
            ("en", date(2026, 12, 7), "away, back on Mon, Dec 7: plan a warm welcome back"),
            ("en", None, "away for now; a warm welcome back when they return"),
            ("nl", date(2026, 12, 7), "afwezig, ma 7 dec weer terug: plan een warm welkom"),
            ("nl", None, "voorlopig afwezig; straks een warm welkom terug"),
        ],
    )
    def test_away_reads_warmly_and_asks_nothing(
        self, language: str, back_on: date | None, expected: str
    ) -> None:
        """The time-off rules fill ``away`` and ``back_on``; the digest only says them."""
        away = replace(statuses()[0], overdue=False, away=True, back_on=back_on, changes=())
        d = digest_of(
            analysis((away, statuses()[3])),
            holds={},
            agreed={SAM.email: ("Sam drafts the rota",)},
            policy=POLICY,
            language=language,
        )
        row = d.glance[0]
        assert (row.kind, row.state, row.tone, row.next_one) == (State.AWAY, expected, "ok", "")
        assert row.next_line == ""
        text = render_digest(d).text
        assert f"* {row.name}: {expected}\n* " in text  # no "Next: not planned yet" for them
        assert all(s.name != row.name for s in d.sections)  # no agenda, no questions

    @pytest.mark.parametrize(
        ("status", "state"),
        [
            (replace(statuses()[0], away=True, new_hire=True), State.AWAY),
            (replace(statuses()[0], new_hire=True), State.NEW_HIRE),
            (statuses()[0], State.OVERDUE),
            (statuses()[2], State.PLANNED),
            (ReportStatus(CY, 14, ams(12, 9), None, False, False, False), State.DUE),
            (statuses()[3], State.ON_TRACK),
        ],
        ids=["away", "new hire", "overdue", "planned", "due", "on track"],
    )
    def test_one_state_each(self, status: ReportStatus, state: State) -> None:
        (row,) = digest(team=analysis((status,))).glance
        assert row.kind is state

    def test_new_hire_who_has_met_or_not_started(self) -> None:
        met = replace(statuses()[1], last_held=ams(18, 10), long_unmet=False)
        ahead = replace(statuses()[1], report=replace(ANA, start_date=date(2026, 12, 1)))
        rows = digest(team=analysis((met, ahead))).glance
        assert [r.state for r in rows] == ["joined Mon, Nov 16", "starts on Tue, Dec 1"]

    def test_one_status_in_the_list_and_the_section(self) -> None:
        d = digest()
        states = {r.name: r.state for r in d.glance}
        assert {s.name: s.state for s in d.sections} == {s.name: states[s.name] for s in d.sections}
        assert states[ANA.name] == "joined Mon, Nov 16, first 1:1 not yet held"

    def test_what_changed_for_the_whole_team_oldest_first(self) -> None:
        assert digest().changes == (
            f"The 1:1 with Sam on Mon, Nov 16, 10:00{NNBSP}AM was cancelled.",
            f"Bo declined the 1:1 of Thu, Nov 19, 11:00{NNBSP}AM.",
            f"You declined the 1:1 with Bo on Fri, Nov 20, 11:00{NNBSP}AM. "
            "That was your call: say so when you meet.",
            f"The 1:1 with Bo moved from Tue, Nov 24, 11:00{NNBSP}AM "
            f"to Thu, Nov 26, 2:00{NNBSP}PM.",
        )

    @pytest.mark.parametrize(
        ("kind", "by", "said"),
        [
            (ChangeKind.CANCELLED, MARIA.email, "You cancelled the 1:1 with Sam on"),
            (ChangeKind.CANCELLED, SAM.email, "Sam cancelled the 1:1 of"),
            (ChangeKind.RESCHEDULED, MARIA.email, "You moved the 1:1 with Sam from"),
            (ChangeKind.RESCHEDULED, SAM.email, "The 1:1 with Sam moved from"),
        ],
    )
    def test_the_manager_owns_their_own_changes(self, kind: ChangeKind, by: str, said: str) -> None:
        change = Change(kind, SAM.email, ams(19, 10), original=ams(18, 10), by=by)
        team = analysis((replace(statuses()[0], changes=(change,)),))
        (line,) = digest(team=team).changes
        assert line.startswith(said)
        assert line.endswith("say so when you meet.") is (by == MARIA.email)

    def test_nothing_changed_is_said_too(self) -> None:
        calm = ReportStatus(CY, 21, ams(16, 9), None, False, False, False)
        d = digest(team=analysis((calm,)))
        assert d.changes == ()
        out = render_digest(d)
        for text in (out.html, out.text):
            assert "No 1:1 was cancelled, declined or moved." in text

    def test_a_gentle_note_after_two_cancellations(self) -> None:
        (note,) = digest().change_notes  # Bo's one cancellation is just life
        assert note.startswith("1:1s with Sam were cancelled 2 times")
        assert "Life happens" in note

    def test_hold_link_in_the_section(self) -> None:
        sam, ana, *_ = digest().sections
        assert sam.hold_link == "https://calendar.example.com/event?eid=1"
        assert ana.hold_link is None

    def test_recap_combines_standing_and_agreed(self) -> None:
        sam = digest().sections[0]
        assert sam.recap.standing == (f"Ship the billing migration {SCRIPT}",)
        assert sam.recap.agreed == (f"Sam drafts the rota {SCRIPT}",)
        assert not digest().sections[1].recap.to_follow_up

    def test_agreed_items_are_asked_about_and_the_managers_own_marked(self) -> None:
        d = digest_of(
            analysis(),
            holds={},
            agreed={SAM.email: ("Sam drafts the rota", "Maria asks finance for budget")},
            goals={SAM.email: ("Speak at a conference",)},
            policy=POLICY,
            language="en",
        )
        sam = d.sections[0].recap
        assert (sam.agreed, sam.yours, sam.goals) == (
            ("Sam drafts the rota",),
            ("Maria asks finance for budget",),
            ("Speak at a conference",),
        )
        text = render_digest(d).text
        assert "- Done? Sam drafts the rota" in text
        assert "- Your part, done? Maria asks finance for budget" in text
        assert (
            "Their goals (how can their work bring them closer?):\n- Speak at a conference" in text
        )
        html = render_digest(d).html
        assert "Your part, done? Maria asks finance for budget" in html
        assert "Speak at a conference" in html

    @pytest.mark.parametrize(
        ("met", "trend"),
        [
            (
                (1, 2, 2, 3, 2, 2, 3, 4),
                "80% now, up from 43% over the previous 7 weeks.",
            ),
            (
                (4, 2, 2, 3, 2, 2, 3, 2),
                "40% now, down from 51% over the previous 7 weeks: a good week to reconnect.",
            ),
            (
                (2, 3, 2, 1, 2, 2, 2, 2),
                "40% now, as over the previous 7 weeks.",
            ),
        ],
    )
    def test_coverage_trend(self, met: tuple[int, ...], trend: str) -> None:
        d = digest(team=analysis(trend=coverage(*met)))
        assert d.trend == trend
        assert [c.label for c in d.coverage] == [
            "Oct 5",
            "Oct 12",
            "Oct 19",
            "Oct 26",
            "Nov 2",
            "Nov 9",
            "Nov 16",
            "Nov 23",
        ]
        assert d.coverage[-1].percent == met[-1] * 20

    @pytest.mark.parametrize(
        ("met", "trend"),
        [
            ((3,), "60% now."),
            ((1, 3), "60% now, up from 20% the week before."),
        ],
    )
    def test_short_coverage_history(self, met: tuple[int, ...], trend: str) -> None:
        assert digest(team=analysis(trend=coverage(*met))).trend == trend

    @settings(max_examples=60, deadline=None)
    @given(met=st.lists(st.integers(0, 5), min_size=1, max_size=8))
    def test_trend_names_this_weeks_share(self, met: list[int]) -> None:
        trend = digest(team=analysis(trend=coverage(*met))).trend
        assert trend.split("%")[0] == str(met[-1] * 20)

    def test_reflection_rotates_weekly(self) -> None:
        this = digest().reflection
        later = digest(team=replace(analysis(), now=NOW + timedelta(weeks=1))).reflection
        assert this in REFLECTIONS
        assert later in REFLECTIONS
        assert this != later


class TestSubject:
    """The subject is warm, specific and correctly pluralised in both languages."""

    @pytest.mark.parametrize(
        ("language", "count", "subject"),
        [
            ("en", 0, "Your week with your team: everyone is on track"),
            ("en", 1, "Your week with your team: 1 one-on-one to plan"),
            ("en", 3, "Your week with your team: 3 one-on-ones to plan"),
            ("nl", 0, "Je week met je team: iedereen is op koers"),
            ("nl", 1, "Je week met je team: 1 1-op-1 om te plannen"),
            ("nl", 3, "Je week met je team: 3 1-op-1’s om te plannen"),
        ],
    )
    def test_subject(self, language: str, count: int, subject: str) -> None:
        due = tuple(
            ReportStatus(Report(f"r{i}@example.com", f"R {i}"), 14, None, None, True, True, False)
            for i in range(count)
        )
        calm = ReportStatus(CY, 21, ams(16, 9), None, False, False, False)
        d = digest(language, team=analysis((*due, calm)))
        assert d.subject == subject
        assert render_digest(d).subject == subject


class TestSubjectTone:
    """Subjects are warm in both languages: none of the words that read as "you're in trouble"."""

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    @pytest.mark.parametrize("count", range(6))
    def test_no_forbidden_word(self, language: str, count: int) -> None:
        due = tuple(
            ReportStatus(Report(f"r{i}@example.com", f"R {i}"), 14, None, None, True, True, False)
            for i in range(count)
        )
        calm = ReportStatus(CY, 21, ams(16, 9), None, False, False, False)
        subject = digest(language, team=analysis((*due, calm))).subject
        assert forbidden_in(subject) == []
        assert forbidden_in("An overdue review") == ["overdue", "review"]  # the check bites
        assert forbidden_in("te laat, laten") == ["te laat", "laat"]


class TestHtml:
    """The HTML is table-based, inline-styled, dark-mode safe, escaped and in the agreed order."""

    def test_content_order(self) -> None:
        html = rendered().html
        sam = digest().sections[0].agenda
        assert sam is not None
        found = positions(
            html,
            "Hi Maria,",
            "At a glance",
            "Team coverage",
            "% now",
            "Changes",
            "1:1s with Sam were cancelled 2 times",
            "How to use this",
            "Lee</h3>",
            "Open in your calendar",
            *(f"{b.title}</strong>" for b in sam.blocks),
            "Agreed last time",
            "Standing expectations",
            "A question for you",
            "Holds are tentative",
            "Know your role and its limits",
        )
        assert found == sorted(found)

    def test_markup_in_names_and_notes_is_escaped(self) -> None:
        html = rendered().html
        assert "<script" not in html
        assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4

    def test_design_constraints(self) -> None:
        html = rendered().html
        assert "<img" not in html
        assert "<link" not in html
        assert "max-width: 600px" in html
        assert 'name="color-scheme" content="light dark"' in html
        assert "@media (prefers-color-scheme: dark)" in html
        assert 'name="viewport"' in html
        # styles are inlined: every classed element also carries its style
        for tag in re.findall(r"<[a-z0-9]+ [^>]*class=\"[^\"]+\"[^>]*>", html):
            assert "style=" in tag, tag

    def test_cadence_and_coverage_bars_are_css(self) -> None:
        html = rendered().html
        assert re.search(r'class="bar-due"[^>]*style="[^"]*width: 100%', html)
        assert re.search(r'class="bar-ok"[^>]*style="[^"]*width: 33%', html)
        assert html.count('class="column"') == 8

    def test_links(self) -> None:
        html = rendered().html
        assert 'href="https://calendar.example.com/event?eid=1"' in html
        assert f'href="{HELP}"' in html

    def test_no_coverage_no_chart(self) -> None:
        html = render_digest(digest(team=analysis(trend=()))).html
        assert "Team coverage" not in html

    def test_coaching_hints_once(self) -> None:
        html = rendered().html
        assert html.count("How to use this") == 1
        assert html.count("Know your role and its limits") == 1

    def test_footer_promises_safety(self) -> None:
        html = rendered().html
        assert (
            "only on your calendar, like your notes: a surprise invite can feel like trouble"
            in (html)
        )


class TestText:
    """The plain-text twin says the same things, without control characters."""

    def test_same_content_as_the_html(self) -> None:
        d = digest()
        text = render_digest(d).text
        html = render_digest(d).html
        for section in d.sections:
            assert f"== {section.name}: {section.state}" in text
            for block in section.agenda.blocks if section.agenda else ():
                for shown in (text, html):
                    assert block.title in shown
                    assert block.question.replace("’", "&#39;") in shown or block.question in shown
        for row in d.glance:
            assert f"* {row.name}: {row.state}\n  Next: {row.next_one}" in text
        positions(
            text,
            "Hi Maria,",
            "AT A GLANCE",
            "TEAM COVERAGE",
            "CHANGES",
            "How to use this",
            "A QUESTION FOR YOU",
            "Holds are tentative",
        )

    def test_control_characters_are_stripped(self) -> None:
        sneaky = replace(SAM, name="Sam\x1b[2J\r\nBcc: x\u202e Lee", expectations=("a\x07b",))
        team = analysis((replace(statuses()[0], report=sneaky),))
        text = render_digest(digest(team=team)).text
        assert all(c == "\n" or unicodedata.category(c) != "Cc" for c in text)
        assert "\u202e" not in text
        assert "Sam [2J Bcc: x Lee" in text


class TestAgendasBuiltOnce:
    """The digest shows exactly the agendas it is handed, the ones the holds carry too."""

    def test_each_detailed_report_shows_the_agenda_it_was_given(self) -> None:
        team = analysis()
        agendas = team_agendas(team, week=WEEK, language="en", policy=POLICY)
        built = build_digest(
            team,
            holds={SAM.email: sam_hold()},
            agreed={},
            policy=POLICY,
            language="en",
            agendas=agendas,
        )
        shown = {x.agenda.report.email: x.agenda for x in built.sections if x.agenda}
        assert shown.keys() == agendas.keys()
        assert all(shown[email] is agendas[email] for email in agendas)

    def test_only_reports_due_or_with_a_one_on_one_coming_get_an_agenda(self) -> None:
        team = analysis()
        agendas = team_agendas(team, week=WEEK, language="en", policy=POLICY)
        expected = {
            s.report.email for s in team.reports if s.overdue or s.next_upcoming is not None
        }
        assert set(agendas) == expected


class TestEmail:
    """One multipart/alternative message whose bytes depend only on its inputs."""

    def test_structure_and_headers(self) -> None:
        message = email_of()
        parsed = message_from_bytes(message.as_bytes(), policy=default)
        assert isinstance(parsed, EmailMessage)
        assert parsed.get_content_type() == "multipart/alternative"
        assert parsed.get_boundary() == message.get_boundary()
        plain, html = parsed.iter_parts()
        assert (plain.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
        assert plain.get_content_charset() == html.get_content_charset() == "utf-8"
        assert message["From"] == f"Kindly <{SENDER}>"
        assert message["To"] == "Maria Jansen <maria@example.com>"
        assert message["Subject"] == "Your week with your team: 4 one-on-ones to plan"
        assert message["Date"] == "Mon, 23 Nov 2026 08:00:00 +0100"
        assert message["Message-ID"] == message_id_for(MARIA.email, WEEK, SENDER)

    def test_bytes_are_deterministic(self) -> None:
        first, second = email_of().as_bytes(), email_of().as_bytes()
        assert first == second
        boundary = email_of().get_boundary()
        assert boundary is not None
        assert boundary.startswith("==kindly-")

    def test_boundary_follows_the_message_id(self) -> None:
        other = compose_email(rendered(), sender=SENDER, manager=MARIA, message_id="<x@y>", now=NOW)
        assert other.get_boundary() != email_of().get_boundary()

    def test_round_trips_through_a_parser(self) -> None:
        parsed = message_from_bytes(email_of().as_bytes(), policy=default)
        assert isinstance(parsed, EmailMessage)
        body = parsed.get_body(("plain",))
        assert body is not None
        assert "Sam <script>alert(1)</script> Lee" in body.get_content()
        html = parsed.get_body(("html",))
        assert html is not None
        assert "&lt;script&gt;" in html.get_content()

    def test_header_injection_in_a_manager_name(self) -> None:
        evil = replace(MARIA, name="Eve\r\nBcc: attacker@evil.example\r\nSubject: hi")
        raw = email_of(manager=evil).as_bytes()
        parsed = message_from_bytes(raw, policy=default)
        assert parsed["Bcc"] is None
        assert len(parsed.get_all("Subject") or []) == 1
        assert [a.addr_spec for a in parsed["To"].addresses] == ["maria@example.com"]
        assert b"\r\nBcc:" not in raw

    def test_non_ascii_names_are_encoded(self) -> None:
        zoe = replace(MARIA, name='Zoë "Ünal", <boss>')
        raw = email_of(manager=zoe).as_bytes()
        assert raw.isascii()
        (address,) = message_from_bytes(raw, policy=default)["To"].addresses
        assert (address.display_name, address.addr_spec) == ('Zoë "Ünal", <boss>', MARIA.email)

    @settings(max_examples=60, deadline=None)
    @given(
        text=st.text(st.characters(exclude_categories=["Cs"]), max_size=400),
        html=st.text(st.characters(exclude_categories=["Cs"]), max_size=400),
    )
    def test_any_body_arrives_as_written(self, text: str, html: str) -> None:
        """Long lines, '=', trailing blanks, tabs, any script: each part decodes to its text
        (line ends are the wire's CRLF, as with any text part; one is added at the end)."""
        raw = compose_email(
            RenderedDigest(subject="s", html=html, text=text),
            sender=SENDER,
            manager=MARIA,
            message_id="<a@b>",
            now=NOW,
        ).as_bytes()
        assert raw.isascii()
        assert all(len(line) <= 78 for line in raw.split(b"\r\n"))
        parsed = message_from_bytes(raw, policy=default)
        assert isinstance(parsed, EmailMessage)
        plain, page = parsed.iter_parts()
        for part, written in ((plain, text), (page, html)):
            lines = written.replace("\r\n", "\n").replace("\r", "\n")
            got = part.get_content().replace("\r\n", "\n")
            assert got == (lines if lines.endswith("\n") else lines + "\n")

    @settings(max_examples=60, deadline=None)
    @given(
        text=st.text(st.characters(exclude_categories=["Cs"]), max_size=300),
        html=st.text(st.characters(exclude_categories=["Cs"]), max_size=300),
        subject=st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=120),
        name=st.text(st.characters(exclude_categories=["Cs"]), max_size=60),
    )
    def test_bytes_are_what_the_email_package_writes(
        self, text: str, html: str, subject: str, name: str
    ) -> None:
        """The parts are framed by hand; the bytes are the generator's for the same message."""
        rendered_digest = RenderedDigest(subject=subject, html=html, text=text)
        manager = replace(MARIA, name=name)
        ours = compose_email(
            rendered_digest, sender=SENDER, manager=manager, message_id="<a@b>", now=NOW
        )
        assert ours.as_bytes() == generator_bytes(ours, rendered_digest)

    def test_bad_address_is_a_delivery_error(self) -> None:
        with pytest.raises(DeliveryError, match="KINDLY_EMAIL__FROM"):
            compose_email(
                rendered(), sender="not an address", manager=MARIA, message_id="<a@b>", now=NOW
            )


def generator_bytes(ours: DigestEmail, rendered_digest: RenderedDigest) -> bytes:
    """The same message built as a tree of parts and flattened by the email package."""
    message = EmailMessage(policy=SMTP)
    for name, value in ours.headers.raw_items():
        message[name] = value
    for body, subtype in ((rendered_digest.text, "plain"), (rendered_digest.html, "html")):
        part = EmailMessage(policy=SMTP)
        part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
        part["Content-Transfer-Encoding"] = "quoted-printable"
        lines = body.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
        encoded = binascii.b2a_qp(lines, istext=True).decode("ascii")
        part.set_payload(encoded if encoded.endswith("\n") else encoded + "\n")
        message.attach(part)
    return message.as_bytes()


class TestMessageId:
    """The Message-ID is derived from (manager, week) and the sender's domain."""

    def test_shape(self) -> None:
        assert re.fullmatch(
            r"<kindly\.[0-9a-f]{32}@example\.org>", message_id_for(MARIA.email, WEEK, SENDER)
        )

    def test_stable_per_manager_and_week(self) -> None:
        same = message_id_for("Maria@Example.com", WEEK, SENDER)
        assert same == message_id_for(MARIA.email, WEEK, SENDER)
        assert message_id_for(MARIA.email, "2026-W49", SENDER) != same
        assert message_id_for("ana@example.com", WEEK, SENDER) != same


FORBIDDEN = (
    "overdue",
    "urgent",
    "late",
    "performance",
    "review",
    "achterstallig",
    "dringend",
    "te laat",
    "laat",
    "prestatie",
    "beoordeling",
)


#: longer words that hold a forbidden one but mean something else: Dutch "laten" is "to let"
HARMLESS = re.compile(r"\blaten\b")


def forbidden_in(text: str) -> list[str]:
    """Forbidden words, even inside longer words ("latest", "plaats"), in either language."""
    lowered = HARMLESS.sub("", text.lower())
    return [word for word in FORBIDDEN if word in lowered]


class TestHoldTexts:
    """Hold titles and descriptions are warm, neutral, and carry the agenda and an empty recap."""

    @pytest.mark.parametrize(
        ("language", "new_hire", "title"),
        [
            ("en", False, "Sam & Maria: catch-up"),
            ("en", True, "Sam & Maria: getting to know each other"),
            ("nl", False, "Sam & Maria: bijpraten"),
            ("nl", True, "Sam & Maria: kennismaken"),
        ],
    )
    def test_titles_read_the_same_from_both_sides(
        self, language: str, new_hire: bool, title: str
    ) -> None:
        status = replace(statuses()[0], new_hire=new_hire)
        got, _ = hold_text_of(MARIA, status, week=WEEK, language=language, policy=POLICY)
        assert got == title

    def test_description(self) -> None:
        _, text = hold_text_of(MARIA, statuses()[0], week=WEEK, language="en", policy=POLICY)
        found = positions(
            text,
            "Hi Sam, shall we catch up? I’ve kept 30 minutes free",
            "\nMaria\n",
            "A few questions to start with:\n1. ",
            "\n3. ",
            "Agreed expectations\n- \n- \n",
            "Their goals\n- \n",
        )
        assert found == sorted(found)
        assert "<script" not in text
        assert "\n4. " not in text
        assert HELP not in text  # support resources are the manager's to offer, in the digest

    def test_hold_and_digest_share_the_agenda(self) -> None:
        _, text = hold_text_of(MARIA, statuses()[0], week=WEEK, language="nl", policy=POLICY)
        agenda = digest("nl").sections[0].agenda
        assert agenda is not None
        for number, block in enumerate(agenda.blocks, start=1):
            assert f"{number}. {block.question}\n" in text

    def test_welcome_description_invites_warmly(self) -> None:
        _, text = hold_text_of(MARIA, statuses()[1], week=WEEK, language="nl", policy=POLICY)
        assert text.startswith("Hoi Ana, zullen we kennismaken?")
        assert "Afgesproken verwachtingen\n- \n- \n" in text
        assert "Persoonlijke doelen\n- \n" in text

    @pytest.mark.parametrize("new_hire", [False, True])
    def test_invited_report_reads_an_invitation(self, new_hire: bool) -> None:
        policy = replace(POLICY, invite_report=True)
        status = replace(statuses()[1], new_hire=new_hire)
        _, text = hold_text_of(MARIA, status, week=WEEK, language="en", policy=policy)
        assert text.startswith("Hi Ana, ")
        assert "Bring whatever’s on your mind" in text
        assert "Agreed expectations" in text

    @settings(max_examples=80, deadline=None)
    @given(
        email=st.emails().map(str.lower),
        monday=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
        language=st.sampled_from(SUPPORTED_LANGUAGES),
        long_unmet=st.booleans(),
        new_hire=st.booleans(),
        invite=st.booleans(),
        support=st.sampled_from([None, HELP]),
    )
    def test_tone_rule(
        self,
        email: str,
        monday: date,
        language: str,
        long_unmet: bool,
        new_hire: bool,
        invite: bool,
        support: str | None,
    ) -> None:
        report = Report(email, "Noor Bakker", start_date=date(2026, 11, 16) if new_hire else None)
        status = ReportStatus(report, 14, None, None, True, long_unmet, new_hire)
        policy = Policy(support_url=support, invite_report=invite)
        title, text = hold_text_of(
            MARIA, status, week=iso_week(monday), language=language, policy=policy
        )
        assert forbidden_in(title) == []
        assert forbidden_in(text) == []

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    def test_tone_rule_over_every_question(self, language: str) -> None:
        """Rotation reaches every question within a bank's length of weeks."""
        report = Report("noor@example.com", "Noor")
        for long_unmet in (False, True):
            status = ReportStatus(report, 14, None, None, True, long_unmet, False)
            for n in range(15):
                week = iso_week(date(2026, 1, 5) + timedelta(weeks=n))
                title, text = hold_text_of(
                    MARIA, status, week=week, language=language, policy=POLICY
                )
                assert forbidden_in(title + text) == [], week


class TestBothLanguages:
    """Every digest renders in both languages."""

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    def test_renders(self, language: str) -> None:
        out = rendered(language)
        assert f'<html lang="{language}">' in out.html
        assert out.text.strip()
        assert out.subject

    def test_dutch_digest(self) -> None:
        out = rendered("nl")
        assert out.subject == "Je week met je team: 4 1-op-1’s om te plannen"
        assert "Hoi Maria," in out.text
        assert "In één oogopslag" in out.html
        assert "ma 23 nov, 09:00 (voorlopig geblokt)" in out.text

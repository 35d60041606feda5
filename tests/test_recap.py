"""The expectation recap: "agreed expectations" read back from the last 1:1's notes."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.cadence import ReportStatus
from service.model import Attendee, Event, HoldKey, Manager, Policy, Report, Response, Status
from service.recap import (
    Recap,
    agreed_expectations,
    goals_for_team,
    parse_agreed,
    parse_goals,
    recap,
    untrusted,
)
from tests.texts import hold_text_of

AMS = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 11, 23, 8, tzinfo=AMS)
MARIA = "maria@example.com"
SAM = "sam@example.com"
SAM_REPORT = Report(SAM, "Sam Lee", expectations=("Ship the billing migration by 15 December",))
MANAGER = Manager(MARIA, "Maria Jansen", reports=(SAM_REPORT,))

# as the Google Calendar export of the demo organisation has it
DANIEL_NOTES = (
    "Notes\n- Aisha loved mentoring at the hackathon and wants to do more of it\n"
    "- She is worried about the on-call load over the holidays\n\n"
    "Agreed expectations\n- Aisha drafts the December on-call rota by 27 November\n"
    "- Daniel asks finance about budget for one conference in the spring\n"
)
ANOUK_NOTES = (
    "Notities\n- Sanne is buddy van Femke in haar eerste maand\n\n"
    "Afgesproken verwachtingen\n- Sanne schrijft het on-call handboek voor 4 december\n"
    "- Anouk regelt budget voor de Kubernetes-training van Sanne\n"
)


def one_on_one(
    start: datetime,
    description: str,
    *,
    with_: str = SAM,
    status: Status = Status.CONFIRMED,
    declined: bool = False,
    uid: str = "e",
) -> Event:
    answer = Response.DECLINED if declined else Response.ACCEPTED
    return Event(
        id=uid,
        start=start,
        end=start + timedelta(minutes=30),
        status=status,
        organizer=MARIA,
        attendees=(Attendee(MARIA, Response.ACCEPTED), Attendee(with_, answer)),
        description=description,
    )


def hold(start: datetime, description: str, *, report: str = SAM, week: str = "2026-W47") -> Event:
    """One of Kindly's holds: on the manager's calendar only."""
    return Event(
        id=f"hold-{report}-{week}",
        start=start,
        end=start + timedelta(minutes=30),
        status=Status.TENTATIVE,
        organizer=MARIA,
        attendees=(Attendee(MARIA, Response.ACCEPTED),),
        description=description,
        hold_key=HoldKey(MARIA, report, week),
    )


def fill_in(description: str, items: list[str], *, section: int = 0) -> str:
    """What a manager does after the 1:1: type after the empty bullets of one section (the
    agreed expectations, or with ``section=1`` their goals), and add more."""
    lines = description.split("\n")
    blank = [i for i, line in enumerate(lines) if line.strip() == "-"]
    groups: list[list[int]] = []
    for i in blank:
        if groups and groups[-1][-1] == i - 1:
            groups[-1].append(i)
        else:
            groups.append([i])
    empty = groups[section]
    for index, item in zip(empty, items, strict=False):
        lines[index] = f"- {item}"
    extra = [f"- {item}" for item in items[len(empty) :]]
    if extra:
        lines[empty[-1] + 1 : empty[-1] + 1] = extra
    return "\n".join(lines)


def overdue_status(report: Report = SAM_REPORT) -> ReportStatus:
    return ReportStatus(report, 14, None, None, True, True, False)


class TestParsing:
    """The section is found under an English or Dutch heading, in text or HTML."""

    def test_english_heading(self) -> None:
        assert parse_agreed(DANIEL_NOTES) == (
            "Aisha drafts the December on-call rota by 27 November",
            "Daniel asks finance about budget for one conference in the spring",
        )

    def test_dutch_heading(self) -> None:
        assert parse_agreed(ANOUK_NOTES) == (
            "Sanne schrijft het on-call handboek voor 4 december",
            "Anouk regelt budget voor de Kubernetes-training van Sanne",
        )

    @pytest.mark.parametrize(
        "heading",
        [
            "agreed expectations",
            "AGREED EXPECTATIONS:",
            "## Agreed expectations",
            "**Afgesproken verwachtingen:**",
            "  Afgesproken Verwachtingen :",
        ],
    )
    def test_heading_variants(self, heading: str) -> None:
        assert parse_agreed(f"{heading}\n* one\n• two\n- three") == ("one", "two", "three")

    def test_section_ends_at_the_next_heading(self) -> None:
        text = "Agreed expectations\n\n- ship it\nNext time\n- not this"
        assert parse_agreed(text) == ("ship it",)

    def test_a_heading_inside_a_sentence_is_not_a_heading(self) -> None:
        assert parse_agreed("We wrote agreed expectations down\n- nope") == ()

    def test_no_heading(self) -> None:
        assert parse_agreed("Notes\n- talked about the roadmap") == ()

    def test_google_html(self) -> None:
        html = (
            "Notes<br>- talked about the roadmap<br><br><b>Agreed expectations</b><br>"
            "- Sam sends the RFC &amp; the plan by Friday<br>-&nbsp;Maria books the room"
        )
        assert parse_agreed(html) == (
            "Sam sends the RFC & the plan by Friday",
            "Maria books the room",
        )

    def test_outlook_html(self) -> None:
        html = (
            "<html><head><style>p { color: red }</style><title>Agreed expectations</title></head>"
            "<body><div><h3>Afgesproken verwachtingen:</h3><ul>\n<li>Sam schrijft\n het plan</li>"
            "<li><span>Maria</span> regelt budget</li></ul><p>Volgende keer</p>"
            "<ul><li>niet dit</li></ul><script>alert('- x')</script></div></body></html>"
        )
        assert parse_agreed(html) == ("Sam schrijft het plan", "Maria regelt budget")

    def test_plain_text_with_angle_brackets_is_not_html(self) -> None:
        assert parse_agreed("Agreed expectations\n- keep p99 < 200 ms and > 0 errors") == (
            "keep p99 < 200 ms and > 0 errors",
        )

    @pytest.mark.parametrize("placeholder", ["-", "- ", "-   ", "- …", "* ...", "- ___"])
    def test_placeholders_do_not_count(self, placeholder: str) -> None:
        assert parse_agreed(f"Agreed expectations\n{placeholder}\n{placeholder}\n") == ()

    def test_control_characters_are_removed(self) -> None:
        text = "Agreed expectations\r\n- ship\x1b[31m it\u202e\r\n"
        assert parse_agreed(text) == ("ship [31m it",)

    def test_a_runaway_section_is_capped(self) -> None:
        text = "Agreed expectations\n" + "\n".join(f"- item {i} " + "x" * 500 for i in range(40))
        items = parse_agreed(text)
        assert len(items) == 10
        assert all(len(item) <= 300 for item in items)


class TestLatestEvent:
    """The recap comes from the latest past 1:1 or Kindly hold that recorded an agreement."""

    def test_latest_past_one_on_one_wins(self) -> None:
        events = [
            one_on_one(NOW - timedelta(days=14), "Agreed expectations\n- older", uid="a"),
            one_on_one(NOW - timedelta(days=7), "Agreed expectations\n- newer", uid="b"),
            one_on_one(NOW + timedelta(days=1), "Agreed expectations\n- future", uid="c"),
        ]
        assert agreed_expectations(events, MARIA, SAM, now=NOW) == ("newer",)

    def test_a_later_meeting_without_notes_does_not_hide_them(self) -> None:
        events = [
            one_on_one(NOW - timedelta(days=14), "Agreed expectations\n- kept", uid="a"),
            one_on_one(NOW - timedelta(days=7), "Notes\n- just chatted", uid="b"),
            hold(NOW - timedelta(days=3), "Agreed expectations\n- \n- "),
        ]
        assert agreed_expectations(events, MARIA, SAM, now=NOW) == ("kept",)

    @pytest.mark.parametrize(
        "event",
        [
            one_on_one(
                NOW - timedelta(days=2), "Agreed expectations\n- x", with_="lee@example.com"
            ),
            one_on_one(
                NOW - timedelta(days=2), "Agreed expectations\n- x", status=Status.CANCELLED
            ),
            one_on_one(NOW - timedelta(days=2), "Agreed expectations\n- x", declined=True),
            hold(NOW - timedelta(days=2), "Agreed expectations\n- x", report="lee@example.com"),
        ],
        ids=["other-report", "cancelled", "declined", "hold-for-someone-else"],
    )
    def test_other_events_are_ignored(self, event: Event) -> None:
        assert agreed_expectations([event], MARIA, SAM, now=NOW) == ()

    def test_a_kindly_hold_counts(self) -> None:
        events = [
            one_on_one(NOW - timedelta(days=14), "Agreed expectations\n- older"),
            hold(NOW - timedelta(days=6), "Agreed expectations\n- from the hold"),
        ]
        assert agreed_expectations(events, MARIA, SAM, now=NOW) == ("from the hold",)

    def test_emails_compare_case_insensitively(self) -> None:
        events = [one_on_one(NOW - timedelta(days=1), "Agreed expectations\n- yes")]
        assert agreed_expectations(events, "Maria@Example.com", "SAM@example.com", now=NOW) == (
            "yes",
        )


class TestHoldRoundTrip:
    """What the manager types under the hold's empty bullets comes back next week."""

    @pytest.mark.parametrize("language", ["en", "nl"])
    def test_empty_hold_has_no_agreement(self, language: str) -> None:
        _, description = hold_text_of(
            MANAGER,
            overdue_status(),
            week="2026-W47",
            language=language,
            policy=Policy(),
        )
        assert parse_agreed(description) == ()
        assert parse_goals(description) == ()

    @pytest.mark.parametrize("language", ["en", "nl"])
    def test_both_sections_are_read_back(self, language: str) -> None:
        _, description = hold_text_of(
            MANAGER, overdue_status(), week="2026-W47", language=language, policy=Policy()
        )
        filled = fill_in(
            fill_in(description, ["Sam drafts the rota"]), ["Run a half marathon"], section=1
        )
        events = [hold(NOW - timedelta(days=5), filled)]
        assert agreed_expectations(events, MARIA, SAM, now=NOW) == ("Sam drafts the rota",)
        assert goals_for_team(events, MANAGER, now=NOW) == {SAM: ("Run a half marathon",)}

    def test_goals_outlive_a_later_note_without_them(self) -> None:
        older = hold(NOW - timedelta(days=12), "Their goals\n- Learn Rust\n", week="2026-W46")
        newer = hold(NOW - timedelta(days=5), "Agreed expectations\n- ship it\n")
        assert goals_for_team([older, newer], MANAGER, now=NOW) == {SAM: ("Learn Rust",)}
        assert agreed_expectations([older, newer], MARIA, SAM, now=NOW) == ("ship it",)

    @pytest.mark.parametrize(
        "heading", ["Their goals", "Personal goals:", "## Persoonlijke doelen"]
    )
    def test_goal_headings(self, heading: str) -> None:
        assert parse_goals(f"Agreed expectations\n- a\n\n{heading}\n- b\n- c") == ("b", "c")
        assert parse_agreed(f"Agreed expectations\n- a\n\n{heading}\n- b\n- c") == ("a",)

    @pytest.mark.parametrize("language", ["en", "nl"])
    def test_filled_hold_is_read_back(self, language: str) -> None:
        _, description = hold_text_of(
            MANAGER,
            overdue_status(),
            week="2026-W47",
            language=language,
            policy=Policy(support_url="https://intranet.example.com/support"),
        )
        filled = fill_in(description, ["Sam drafts the rota by Friday", "Maria asks finance"])
        events = [hold(NOW - timedelta(days=5), filled)]
        assert agreed_expectations(events, MARIA, SAM, now=NOW) == (
            "Sam drafts the rota by Friday",
            "Maria asks finance",
        )

    def test_html_rendering_of_the_hold_still_reads_back(self) -> None:
        _, description = hold_text_of(
            MANAGER, overdue_status(), week="2026-W47", language="en", policy=Policy()
        )
        filled = fill_in(description, ["one thing"])
        as_html = "<div>" + "<br>".join(filled.split("\n")) + "</div>"
        assert parse_agreed(as_html) == ("one thing",)

    @settings(max_examples=60, deadline=None)
    @given(
        items=st.lists(
            st.text(st.characters(codec="utf-8"), max_size=60)
            .map(untrusted)
            .filter(lambda s: any(c.isalnum() for c in s)),
            min_size=1,
            max_size=4,
        ),
        language=st.sampled_from(["en", "nl"]),
    )
    def test_any_text_round_trips(self, items: list[str], language: str) -> None:
        _, description = hold_text_of(
            MANAGER,
            overdue_status(),
            week="2026-W47",
            language=language,
            policy=Policy(),
        )
        expected = tuple(item.strip() for item in items)
        assert parse_agreed(fill_in(description, items)) == expected


class TestRecap:
    """The recap combines the roster's standing expectations with last time's agreement."""

    def test_standing_and_agreed(self) -> None:
        result = recap(SAM_REPORT, ("Sam drafts the rota",))
        assert result == Recap(
            standing=("Ship the billing migration by 15 December",),
            agreed=("Sam drafts the rota",),
        )
        assert result.to_follow_up

    def test_nothing_recorded(self) -> None:
        assert not recap(Report(SAM, "Sam"), ()).to_follow_up

    @pytest.mark.parametrize(
        ("item", "yours"),
        [
            ("Maria asks finance about budget", True),
            ("maria: book the offsite", True),
            ("I send Sam the course list", True),
            ("Ik regel budget voor de training", True),
            ("Sam drafts the rota", False),
            ("Marianne takes over on-call", False),
            ("Ask Maria for budget", False),
        ],
    )
    def test_the_managers_own_commitments_are_marked(self, item: str, yours: bool) -> None:
        result = recap(Report(SAM, "Sam"), (item,), manager="Maria")
        assert (result.yours, result.agreed) == (((item,), ()) if yours else ((), (item,)))

    def test_goals_are_kept_once(self) -> None:
        result = recap(
            Report(SAM, "Sam"), (), goals=("Speak at a conference", "Speak at a conference")
        )
        assert result.goals == ("Speak at a conference",)
        assert result.to_follow_up

    def test_agreed_repeats_of_standing_ones_are_dropped(self) -> None:
        result = recap(SAM_REPORT, ("ship the billing migration by 15 december", "new", "new"))
        assert result.agreed == ("new",)

    def test_untrusted_text_is_made_one_safe_line(self) -> None:
        report = Report(SAM, "Sam", expectations=("Ship\r\nBcc: x\x00 \u202eit", "  "))
        assert recap(report, ()).standing == ("Ship Bcc: x it",)

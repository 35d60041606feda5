"""The kindness-first agenda: block order, rotation, welcome variants and support."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.agenda import (
    GETTING_TO_KNOW_YOU,
    ORDER,
    QUESTIONS,
    BlockKind,
    build_agenda,
    first_name,
    rotation_index,
    week_ordinal,
)
from service.cadence import ReportStatus
from service.i18n import SUPPORTED_LANGUAGES, translator
from service.model import Policy, Report, iso_week

AMS = ZoneInfo("Europe/Amsterdam")
WEEK = "2026-W48"
SAM = Report("sam@example.com", "Sam Lee", cadence_days=7)
POLICY = Policy()
HELP = "https://intranet.example.com/support"


def status(
    report: Report = SAM, *, long_unmet: bool = False, new_hire: bool = False
) -> ReportStatus:
    """An overdue report last met two weeks ago (unless long unmet)."""
    return ReportStatus(
        report=report,
        cadence_days=7,
        last_held=None if long_unmet else datetime(2026, 11, 9, 10, tzinfo=AMS),
        next_upcoming=None,
        overdue=True,
        long_unmet=long_unmet,
        new_hire=new_hire,
    )


def next_week(week: str) -> str:
    year, _, number = week.partition("-W")
    return iso_week(date.fromisocalendar(int(year), int(number), 1) + timedelta(weeks=1))


emails = st.emails().map(str.lower)
mondays = st.dates(min_value=date(2000, 1, 3), max_value=date(2099, 12, 21)).map(
    lambda d: d - timedelta(days=d.weekday())
)


class TestOrder:
    """Every agenda opens with the person and follows the kindness-first order of docs/design.md."""

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    def test_blocks_in_kindness_first_order(self, language: str) -> None:
        agenda = build_agenda(status(), week=WEEK, language=language, policy=POLICY)
        assert [b.kind for b in agenda.blocks] == [
            BlockKind.CHECK_IN,
            BlockKind.TOPICS,
            BlockKind.SUCCESS,
            BlockKind.RECOGNITION,
            BlockKind.FEEDBACK,
            BlockKind.SUPPORT,
        ]
        assert all(b.title and b.question and b.hint for b in agenda.blocks)

    def test_english_titles_name_each_principle(self) -> None:
        agenda = build_agenda(status(), week=WEEK, language="en", policy=POLICY)
        titles = [b.title for b in agenda.blocks]
        assert titles == [
            "Personal check-in",
            "Their topics first",
            "What success looks like",
            "A recent win",
            "Feedback both ways",
            "Support",
        ]
        feedback = agenda.blocks[4]
        assert "What should I do differently?" in feedback.hint

    def test_dutch_agenda_is_translated(self) -> None:
        agenda = build_agenda(status(), week=WEEK, language="nl", policy=POLICY)
        english = build_agenda(status(), week=WEEK, language="en", policy=POLICY)
        assert agenda.blocks[0].title == "Persoonlijke check-in"
        for dutch, source in zip(agenda.blocks, english.blocks, strict=True):
            assert dutch.question != source.question
            assert dutch.question == translator("nl").gettext(source.question)


class TestQuestionBank:
    """Each block draws from at least 15 distinct, translated questions."""

    @pytest.mark.parametrize("kind", ORDER)
    def test_bank_size_and_uniqueness(self, kind: BlockKind) -> None:
        bank = QUESTIONS[kind]
        assert len(bank) >= 15
        assert len(set(bank)) == len(bank)
        dutch = [translator("nl").gettext(q) for q in bank]
        assert len(set(dutch)) == len(bank)
        assert not set(dutch) & set(bank)

    def test_getting_to_know_you_bank(self) -> None:
        assert len(set(GETTING_TO_KNOW_YOU)) == len(GETTING_TO_KNOW_YOU) >= 15
        assert any("personal goal" in q for q in GETTING_TO_KNOW_YOU)


class TestRotation:
    """Questions rotate per (report, ISO week): deterministic, never the same two weeks running."""

    def test_same_inputs_same_agenda(self) -> None:
        first = build_agenda(status(), week=WEEK, language="en", policy=POLICY)
        again = build_agenda(status(), week=WEEK, language="en", policy=POLICY)
        assert first == again

    def test_index_is_pinned_across_processes(self) -> None:
        # built from SHA-256, not the salted hash(): this value never changes
        assert rotation_index("sam@example.com", "check_in", WEEK, 15) == 3
        assert rotation_index("SAM@example.com ", "check_in", WEEK, 15) == 3

    def test_weeks_are_consecutive_across_years(self) -> None:
        assert week_ordinal("2027-W01") == week_ordinal("2026-W53") + 1
        assert week_ordinal("2026-W01") == week_ordinal("2025-W52") + 1

    def test_reports_get_different_questions(self) -> None:
        others = [Report(f"person{i}@example.com", f"Person {i}") for i in range(12)]
        questions = {
            build_agenda(status(r), week=WEEK, language="en", policy=POLICY).blocks[0].question
            for r in others
        }
        assert len(questions) > 1

    @settings(max_examples=200, deadline=None)
    @given(email=emails, monday=mondays)
    def test_no_repeat_in_consecutive_weeks(self, email: str, monday: date) -> None:
        report = Report(email, "Someone")
        week = iso_week(monday)
        this = build_agenda(status(report), week=week, language="en", policy=POLICY)
        then = build_agenda(status(report), week=next_week(week), language="en", policy=POLICY)
        for a, b in zip(this.blocks, then.blocks, strict=True):
            assert a.question != b.question, (email, week, a.kind)

    @settings(max_examples=50, deadline=None)
    @given(email=emails, monday=mondays)
    def test_a_bank_is_used_up_before_any_question_returns(self, email: str, monday: date) -> None:
        size = len(QUESTIONS[BlockKind.SUCCESS])
        weeks = [iso_week(monday + timedelta(weeks=n)) for n in range(size)]
        seen = {rotation_index(email, BlockKind.SUCCESS.value, w, size) for w in weeks}
        assert seen == set(range(size))


class TestWelcomeVariants:
    """New and long-unmet reports get a getting-to-know-you agenda and a reassurance line."""

    def test_regular_report_has_no_variant(self) -> None:
        agenda = build_agenda(status(), week=WEEK, language="en", policy=POLICY)
        assert not agenda.getting_to_know_you
        assert agenda.reassurance is None
        assert agenda.first_week is None
        assert agenda.blocks[0].question in QUESTIONS[BlockKind.CHECK_IN]

    def test_long_unmet_report_is_reassured(self) -> None:
        agenda = build_agenda(status(long_unmet=True), week=WEEK, language="en", policy=POLICY)
        assert agenda.getting_to_know_you
        assert agenda.blocks[0].title == "Getting to know you"
        assert agenda.blocks[0].question in GETTING_TO_KNOW_YOU
        assert agenda.reassurance is not None
        assert "Sam" in agenda.reassurance
        assert "no special reason" in agenda.reassurance
        assert agenda.first_week is None

    def test_new_hire_gets_a_first_week_suggestion(self) -> None:
        ana = Report("ana@example.com", "Ana Silva", start_date=date(2026, 11, 16))
        agenda = build_agenda(
            status(ana, long_unmet=True, new_hire=True), week=WEEK, language="en", policy=POLICY
        )
        assert agenda.getting_to_know_you
        assert agenda.reassurance is not None
        assert "get to know each other" in agenda.reassurance
        assert agenda.first_week is not None
        assert "Ana is new on the team" in agenda.first_week
        assert "Mon, Nov 16" in agenda.first_week
        assert "first week" in agenda.first_week

    def test_new_hire_in_dutch(self) -> None:
        ana = Report("ana@example.com", "Ana Silva", start_date=date(2026, 11, 16))
        agenda = build_agenda(status(ana, new_hire=True), week=WEEK, language="nl", policy=POLICY)
        assert agenda.blocks[0].title == "Kennismaken"
        assert agenda.first_week is not None
        assert "ma 16 nov" in agenda.first_week
        assert agenda.reassurance is not None
        assert agenda.reassurance.startswith("Vertel Ana")

    def test_only_a_met_report_switches_back_to_the_regular_check_in(self) -> None:
        met = build_agenda(status(), week=WEEK, language="en", policy=POLICY)
        unmet = build_agenda(status(long_unmet=True), week=WEEK, language="en", policy=POLICY)
        assert met.blocks[1:] == unmet.blocks[1:]
        assert met.blocks[0] != unmet.blocks[0]


class TestSupportBlock:
    """The support question is always asked; the organisation's resources join it when relevant."""

    @pytest.mark.parametrize(
        "relevant",
        [
            replace(status(), new_hire=True),
            status(long_unmet=True),
            replace(status(), cancelled_in_lookback=2),
        ],
        ids=["new hire", "long unmet", "cancelled twice"],
    )
    def test_resources_when_relevant(self, relevant: ReportStatus) -> None:
        policy = replace(POLICY, support_url=HELP)
        support = build_agenda(relevant, week=WEEK, language="en", policy=policy).blocks[-1]
        assert support.link == HELP
        assert "support resources" in support.hint

    def test_no_resources_in_an_ordinary_week(self) -> None:
        policy = replace(POLICY, support_url=HELP)
        ordinary = replace(status(), cancelled_in_lookback=1)
        support = build_agenda(ordinary, week=WEEK, language="en", policy=policy).blocks[-1]
        assert support.kind is BlockKind.SUPPORT
        assert support.question in QUESTIONS[BlockKind.SUPPORT]
        assert support.link is None
        assert "Know your role and its limits" in support.hint

    def test_without_support_url(self) -> None:
        support = build_agenda(
            status(long_unmet=True), week=WEEK, language="en", policy=POLICY
        ).blocks[-1]
        assert support.link is None
        assert "HR and professional support" in support.hint

    def test_only_web_links_are_kept(self) -> None:
        policy = replace(POLICY, support_url="javascript:alert(1)")
        support = build_agenda(
            status(long_unmet=True), week=WEEK, language="en", policy=policy
        ).blocks[-1]
        assert support.link is None

    def test_no_other_block_carries_a_link(self) -> None:
        policy = replace(POLICY, support_url=HELP)
        agenda = build_agenda(status(long_unmet=True), week=WEEK, language="nl", policy=policy)
        assert [b.link for b in agenda.blocks[:-1]] == [None] * 5
        assert agenda.blocks[-1].link == HELP


class TestFirstName:
    """People are addressed by the first word of their roster name, made safe."""

    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("Sam Lee", "Sam"),
            ("  Anouk de Vries", "Anouk"),
            ("Zoë\r\nBcc: x", "Zoë"),
            ("\u202eevil", "evil"),
            ("", ""),
        ],
    )
    def test_first_name(self, name: str, expected: str) -> None:
        assert first_name(name) == expected

"""The kindness-first agenda: three questions, rotation, no repeats, welcome variants, support."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.agenda import (
    GETTING_TO_KNOW_YOU,
    MAX_QUESTIONS,
    ORDER,
    QUESTIONS,
    BlockKind,
    block_kinds,
    build_agenda,
    first_name,
    pick_question,
    rotation_index,
    shows_agenda,
    support_matters,
    team_agendas,
    week_ordinal,
)
from service.cadence import ReportStatus, TeamAnalysis
from service.i18n import SUPPORTED_LANGUAGES, translator
from service.model import Manager, Policy, Report, iso_week

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
    """At most three questions: the person first, then two blocks in kindness-first order."""

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    @pytest.mark.parametrize(
        "week", [iso_week(date(2026, 11, 2) + timedelta(weeks=n)) for n in range(6)]
    )
    def test_check_in_first_then_two_in_order(self, language: str, week: str) -> None:
        agenda = build_agenda(status(), week=week, language=language, policy=POLICY)
        kinds = [b.kind for b in agenda.blocks]
        assert len(kinds) == MAX_QUESTIONS == 3
        assert kinds[0] is BlockKind.CHECK_IN
        assert kinds == sorted(kinds, key=ORDER.index)
        assert len(set(kinds)) == 3
        assert all(b.title and b.question for b in agenda.blocks)

    def test_english_titles_name_each_principle(self) -> None:
        titles = {
            b.kind: b.title
            for n in range(4)
            for b in build_agenda(
                status(),
                week=iso_week(date(2026, 11, 2) + timedelta(weeks=n)),
                language="en",
                policy=POLICY,
            ).blocks
        }
        assert titles == {
            BlockKind.CHECK_IN: "Check-in",
            BlockKind.TOPICS: "Their topics",
            BlockKind.SUCCESS: "Clarity",
            BlockKind.RECOGNITION: "Recognition",
            BlockKind.FEEDBACK: "Feedback both ways",
            BlockKind.SUPPORT: "Support",
        }

    def test_dutch_agenda_is_translated(self) -> None:
        agenda = build_agenda(status(), week=WEEK, language="nl", policy=POLICY)
        english = build_agenda(status(), week=WEEK, language="en", policy=POLICY)
        assert agenda.blocks[0].title == "Persoonlijk"
        for dutch, source in zip(agenda.blocks, english.blocks, strict=True):
            assert dutch.source == source.source == source.question
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


def weeks_from(monday: date, count: int) -> list[str]:
    return [iso_week(monday + timedelta(weeks=n)) for n in range(count)]


statuses_any = st.builds(
    lambda email, long_unmet, new_hire, cancelled: replace(
        status(Report(email, "Someone"), long_unmet=long_unmet, new_hire=new_hire),
        cancelled_in_lookback=cancelled,
    ),
    emails,
    st.booleans(),
    st.booleans(),
    st.integers(0, 3),
)


class TestRotation:
    """Blocks and questions rotate per (report, ISO week): deterministic, every block within
    four weeks, never the same question two weeks running."""

    def test_same_inputs_same_agenda(self) -> None:
        first = build_agenda(status(), week=WEEK, language="en", policy=POLICY)
        again = build_agenda(status(), week=WEEK, language="en", policy=POLICY)
        assert first == again

    def test_index_is_pinned_across_processes(self) -> None:
        # one SHA-256 of the seed, not the salted hash(): this value never changes
        assert rotation_index("sam@example.com", "check_in", WEEK, 15) == 12
        assert rotation_index("SAM@example.com ", "check_in", WEEK, 15) == 12

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
    @given(email=emails, monday=mondays, support=st.booleans())
    def test_every_block_within_four_weeks(self, email: str, monday: date, support: bool) -> None:
        seen = {k for w in weeks_from(monday, 4) for k in block_kinds(email, w, support=support)}
        assert seen == set(ORDER)

    @settings(max_examples=200, deadline=None)
    @given(email=emails, monday=mondays, support=st.booleans())
    def test_two_blocks_after_the_check_in(self, email: str, monday: date, support: bool) -> None:
        kinds = block_kinds(email, iso_week(monday), support=support)
        assert kinds[0] is BlockKind.CHECK_IN
        assert len(set(kinds)) == len(kinds) == MAX_QUESTIONS
        assert (BlockKind.SUPPORT in kinds) or not support

    @settings(max_examples=200, deadline=None)
    @given(report=statuses_any, monday=mondays)
    def test_no_question_two_weeks_running(self, report: ReportStatus, monday: date) -> None:
        this, then = (
            build_agenda(report, week=w, language="en", policy=POLICY)
            for w in weeks_from(monday, 2)
        )
        assert not {b.question for b in this.blocks} & {b.question for b in then.blocks}

    @settings(max_examples=50, deadline=None)
    @given(email=emails, monday=mondays)
    def test_a_bank_is_used_up_before_any_question_returns(self, email: str, monday: date) -> None:
        bank = QUESTIONS[BlockKind.CHECK_IN]
        weeks = weeks_from(monday, 2 * ((len(bank) + 1) // 2))
        seen = {pick_question(email, "check_in", w, bank, frozenset()) for w in weeks}
        assert seen == set(bank)


def team_of(size: int, *, long_unmet: bool = False) -> TeamAnalysis:
    reports = tuple(
        status(Report(f"p{i}@example.com", f"P{i} Person"), long_unmet=long_unmet)
        for i in range(size)
    )
    manager = Manager("boss@example.com", "Boss", reports=tuple(r.report for r in reports))
    return TeamAnalysis(manager, datetime(2026, 11, 23, 8, tzinfo=AMS), AMS, reports)


class TestOneDigest:
    """The agendas of one digest never ask the same question twice, and still never repeat
    a question for a person two weeks running."""

    @settings(max_examples=80, deadline=None)
    @given(size=st.integers(1, 7), monday=mondays, long_unmet=st.booleans())
    def test_no_question_twice_in_a_digest(self, size: int, monday: date, long_unmet: bool) -> None:
        agendas = team_agendas(
            team_of(size, long_unmet=long_unmet),
            week=iso_week(monday),
            language="en",
            policy=POLICY,
        )
        asked = [b.source for a in agendas.values() for b in a.blocks]
        assert len(asked) == len(set(asked))

    @settings(max_examples=80, deadline=None)
    @given(size=st.integers(1, 7), monday=mondays)
    def test_no_repeat_for_anyone_across_weeks(self, size: int, monday: date) -> None:
        this, then = (
            team_agendas(team_of(size), week=w, language="en", policy=POLICY)
            for w in weeks_from(monday, 2)
        )
        for email, agenda in this.items():
            assert not {b.source for b in agenda.blocks} & {b.source for b in then[email].blocks}

    def test_a_shared_question_moves_to_the_next(self) -> None:
        bank = QUESTIONS[BlockKind.CHECK_IN]
        first = pick_question("a@example.com", "check_in", WEEK, bank, frozenset())
        other = pick_question("a@example.com", "check_in", WEEK, bank, frozenset({first}))
        assert other != first
        assert other in bank[week_ordinal(WEEK) % 2 :: 2]


class TestWelcomeVariants:
    """New and long-unmet reports get a getting-to-know-you check-in; coaching notes for the
    manager are on the agenda but marked for the digest alone."""

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
        assert "special reason" not in agenda.reassurance  # it causes the worry it denies
        assert agenda.first_week is None

    def test_new_hire_gets_a_first_week_suggestion(self) -> None:
        ana = Report("ana@example.com", "Ana Silva", start_date=date(2026, 11, 16))
        agenda = build_agenda(
            status(ana, long_unmet=True, new_hire=True), week=WEEK, language="en", policy=POLICY
        )
        assert agenda.getting_to_know_you
        assert agenda.reassurance is None
        assert (
            agenda.first_week == "Ask Ana what would make the start easier, and whom to meet first."
        )

    def test_new_hire_in_dutch(self) -> None:
        ana = Report("ana@example.com", "Ana Silva", start_date=date(2026, 11, 16))
        agenda = build_agenda(status(ana, new_hire=True), week=WEEK, language="nl", policy=POLICY)
        assert agenda.blocks[0].title == "Kennismaken"
        assert agenda.first_week is not None
        assert agenda.first_week.startswith("Vraag Ana")

    def test_only_a_met_report_switches_back_to_the_regular_check_in(self) -> None:
        met = build_agenda(status(), week=WEEK, language="en", policy=POLICY)
        unmet = build_agenda(status(long_unmet=True), week=WEEK, language="en", policy=POLICY)
        assert met.blocks[0] != unmet.blocks[0]
        assert met.blocks[0].kind is unmet.blocks[0].kind is BlockKind.CHECK_IN


class TestSupportBlock:
    """Support and limits come up whenever they matter, with the organisation's resources,
    and otherwise in rotation."""

    @pytest.mark.parametrize(
        "relevant",
        [
            replace(status(), new_hire=True),
            status(long_unmet=True),
            replace(status(), cancelled_in_lookback=2),
            replace(status(), back_on=date(2026, 11, 23)),
        ],
        ids=["new hire", "long unmet", "cancelled twice", "back from leave"],
    )
    @pytest.mark.parametrize("week", weeks_from(date(2026, 11, 2), 4))
    def test_asked_whenever_it_matters(self, relevant: ReportStatus, week: str) -> None:
        assert support_matters(relevant)
        policy = replace(POLICY, support_url=HELP)
        support = build_agenda(relevant, week=week, language="en", policy=policy).blocks[-1]
        assert support.kind is BlockKind.SUPPORT
        assert support.link == HELP

    def test_otherwise_in_rotation(self) -> None:
        ordinary = replace(status(), cancelled_in_lookback=1)
        assert not support_matters(ordinary)
        policy = replace(POLICY, support_url=HELP)
        agendas = [
            build_agenda(ordinary, week=w, language="en", policy=policy)
            for w in weeks_from(date(2026, 11, 2), 4)
        ]
        supports = [b for a in agendas for b in a.blocks if b.kind is BlockKind.SUPPORT]
        assert 0 < len(supports) < len(agendas)
        assert all(b.link is None and b.question in QUESTIONS[BlockKind.SUPPORT] for b in supports)

    def test_only_web_links_are_kept(self) -> None:
        policy = replace(POLICY, support_url="javascript:alert(1)")
        support = build_agenda(
            status(long_unmet=True), week=WEEK, language="en", policy=policy
        ).blocks[-1]
        assert support.link is None

    def test_no_other_block_carries_a_link(self) -> None:
        policy = replace(POLICY, support_url=HELP)
        agenda = build_agenda(status(long_unmet=True), week=WEEK, language="nl", policy=policy)
        assert [b.link for b in agenda.blocks[:-1]] == [None] * 2
        assert agenda.blocks[-1].link == HELP

    def test_nobody_away_gets_an_agenda(self) -> None:
        away = replace(status(), away=True, back_on=date(2026, 12, 7))
        assert not shows_agenda(away)
        assert shows_agenda(status())


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

"""Coaching fidelity: every principle of docs/design.md's coaching table shows in every digest.

Each demo manager's digest is rendered through the pipeline (dry run: no holds
written, nothing sent) in English and in Dutch, and each principle is looked
for in its plain-text part, in that language: in the agendas, the recap, the
"how to use this" strip or the footer. The same digests are held to the
length budget, the three-question cap, no question twice (in a digest, or for
a person two weeks running) and one status per person; the demo's holds to
being safe for the report to read.

Golden digests: ``tests/golden/<manager>-<language>.txt`` are the plain-text
parts of two demo digests, reviewed by eye. After a deliberate change to the
digest, regenerate them and review the diff before committing::

    KINDLY_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_coaching.py -k golden
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from connectors.ics import from_settings
from connectors.mail.outbox import FileMailer
from service.agenda import GETTING_TO_KNOW_YOU, QUESTIONS, team_agendas
from service.cadence import analyse
from service.digest import REFLECTIONS
from service.hold_text import hold_texts
from service.i18n import SUPPORTED_LANGUAGES, translator
from service.pipeline import RunContext, run_manager, zone_of
from service.roster import load_roster_file
from service.settings import Settings
from service.week import ManagerWeek
from tests.conftest import EXAMPLES

GOLDEN = Path(__file__).resolve().parent / "golden"
DEMO_NOW = datetime.fromisoformat("2026-11-23T08:00:00+01:00")
SUPPORT_URL = "https://intranet.example.com/wellbeing"
ROSTER = load_roster_file(EXAMPLES / "roster.yaml")
MANAGERS = tuple(m.email for m in ROSTER.managers)
DIGESTS = [(m, lang) for m in MANAGERS for lang in SUPPORTED_LANGUAGES]
IDS = [f"{m.partition('@')[0]}-{lang}" for m, lang in DIGESTS]
#: the length budget of a digest's text part, in words (wc -w)
BASE_WORDS = 150
WORDS_PER_AGENDA = 90
#: reports with no 1:1 in the lookback window, or new (examples/README.md)
WELCOME = {"anouk@example.com": ("Femke Smit",), "daniel@example.com": ("Tom Becker",)}
#: the digests kept as golden files: each manager reads their own language
GOLDEN_DIGESTS = (("anouk@example.com", "nl"), ("daniel@example.com", "en"))
#: what the demo's notes agreed last time: (report, theirs, the manager's own)
AGREED = {
    "daniel@example.com": (
        "Aisha Khan",
        "Aisha drafts the December on-call rota by 27 November",
        "Daniel asks finance about budget for one conference in the spring",
    ),
    "anouk@example.com": (
        "Sanne Bakker",
        "Sanne schrijft het on-call handboek voor 4 december",
        "Anouk regelt budget voor de Kubernetes-training van Sanne",
    ),
}
#: a personal goal from the demo's notes: (report, goal)
GOALS = {
    "daniel@example.com": ("Aisha Khan", "Aisha wants to grow into a tech lead role within a year"),
    "anouk@example.com": (
        "Sanne Bakker",
        "Sanne wil in het voorjaar haar Kubernetes-certificaat halen",
    ),
}
#: the footer's line on holds: safety, boundaries, privacy and time off
SAFETY = (
    "Holds are tentative, in working hours, never for anyone away, and only on your calendar, "
    "like your notes: a surprise invite can feel like trouble. Each one’s description is an "
    "invitation to forward."
)


async def _render(
    manager: str, language: str, tmp: Path, support_url: str | None, now: datetime = DEMO_NOW
) -> str:
    settings = Settings(
        _env_file=None,  # a developer's .env must not change the digests
        roster_file=EXAMPLES / "roster.yaml",
        ics={"dir": EXAMPLES / "calendars", "holds_dir": tmp / "holds"},
        email={"outbox_dir": tmp / "outbox"},
        support_url=support_url,
    )
    chosen = ROSTER.manager(manager)
    assert chosen is not None
    ctx = RunContext(settings, from_settings(settings), FileMailer(tmp / "outbox"))
    try:
        outcome = await run_manager(replace(chosen, language=language), ctx, now=now, dry_run=True)
    finally:
        await ctx.connector.aclose()
        await ctx.mailer.aclose()
    assert outcome.rendered is not None, outcome.errors
    return outcome.rendered.text


def _all_digests(tmp: Path, now: datetime) -> dict[tuple[str, str], str]:
    async def all_of_them() -> list[str]:
        return list(await asyncio.gather(*(_render(m, lg, tmp, None, now) for m, lg in DIGESTS)))

    with pytest.MonkeyPatch.context() as env:
        # a developer's own KINDLY_ variables must not change the digests either
        for name in [n for n in os.environ if n.startswith("KINDLY_")]:
            env.delenv(name)
        return dict(zip(DIGESTS, asyncio.run(all_of_them()), strict=True))


@pytest.fixture(scope="module")
def digests(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], str]:
    """The plain-text digest of every demo manager in both languages (no support URL set)."""
    return _all_digests(tmp_path_factory.mktemp("coaching"), DEMO_NOW)


@pytest.fixture(scope="module")
def next_weeks(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], str]:
    """The same digests a week later."""
    return _all_digests(tmp_path_factory.mktemp("coaching-next"), DEMO_NOW + timedelta(weeks=1))


def sections(text: str) -> dict[str, str]:
    """Each report's section of a text digest, by name: from its heading to the next one."""
    found = {}
    for part in text.split("\n== ")[1:]:
        heading, _, body = part.partition("\n")
        name, _, _ = heading.partition(": ")
        found[name] = body.split("\n\n\n")[0]
    return found


def questions(section: str) -> list[str]:
    """The agenda's questions of one section."""
    return re.findall(r"^\d\. [^:“]+: “(.*)”$", section, flags=re.MULTILINE)


def numbered(text: str, number: int, *titles: str) -> int:
    """How many agenda items number ``number`` carry one of these block titles."""
    pattern = rf"^{number}\. (?:{'|'.join(re.escape(t) for t in titles)}): “"
    return len(re.findall(pattern, text, flags=re.MULTILINE))


def agendas(text: str) -> int:
    return len(re.findall(r"^1\. ", text, flags=re.MULTILINE))


class TestEveryPrinciple:
    """Each principle of the coaching table (docs/design.md) shows in every demo digest, in
    en and nl; the how-to strip carries the coaching once, not under every question."""

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_regular_one_on_ones(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        assert t.gettext("At a glance").upper() in text
        manager = ROSTER.manager(key[0])
        assert manager is not None
        assert all(f"* {r.name}: " in text for r in manager.reports)
        held = t.gettext("%(when)s (Kindly’s hold)") % {"when": ""}
        assert held.strip() in text
        for name in WELCOME.get(key[0], ()):
            assert f"1. {t.gettext('Getting to know you')}: “" in sections(text)[name]

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_lead_with_the_person(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        count = agendas(text)
        assert count >= 3
        titles = (t.gettext("Check-in"), t.gettext("Getting to know you"))
        assert numbered(text, 1, *titles) == count
        assert how_to(key[1]) in text

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_listen_first_clarity_recognition_feedback_in_one_strip(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        """Listen first, clarity, small wins, feedback both ways: once, in the strip; each
        block also takes its turn in the agendas (tests/test_agenda.py)."""
        text = digests[key]
        assert text.count(how_to(key[1])) == 1
        english = how_to("en")
        for practice in (
            "let them lead",
            "agree what good looks like",
            "praise something specific",
            "ask what you could do better",
        ):
            assert practice in english

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_clarity_recaps_standing_expectations(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        manager = ROSTER.manager(key[0])
        assert manager is not None
        shown = sections(text)
        for report in manager.reports:
            if report.expectations and report.name in shown:
                assert f"{t.gettext('Standing expectations')}:" in shown[report.name]
                assert all(f"- {e}" in shown[report.name] for e in report.expectations)

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_psychological_safety(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        assert t.gettext(SAFETY) in text
        if key[0] == "daniel@example.com":  # Tom: no 1:1 in the lookback window
            reassure = t.gettext(
                "It’s been a while since you and %(name)s met: say you’d simply like to hear "
                "how they’re doing."
            ) % {"name": "Tom"}
            assert reassure in sections(text)["Tom Becker"]

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_know_your_role_and_limits(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        limits = t.gettext(
            "Know your role and its limits: when something heavier comes up, listen, then "
            "point to HR or your employee assistance programme."
        )
        assert text.count(limits) == 1
        for name in WELCOME.get(key[0], ()):  # a new start or a long silence: support matters
            assert f"3. {t.gettext('Support')}: “" in sections(text)[name]

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    def test_support_resources_from_settings(self, language: str, tmp_path: Path) -> None:
        text = asyncio.run(_render("anouk@example.com", language, tmp_path, SUPPORT_URL))
        assert f": {SUPPORT_URL}" in sections(text)["Femke Smit"]  # a new hire's agenda
        assert text.rstrip().endswith(SUPPORT_URL)  # and the footer always does

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_boundaries_privacy_and_time_off(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        """Holds in working hours, never for anyone away, notes stay in the calendar (the away
        status itself: tests/test_digest.py)."""
        assert translator(key[1]).gettext(SAFETY) in digests[key]

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_reflect_and_adjust(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        assert t.gettext("A question for you").upper() in text
        assert any(t.gettext(q) in text for q in REFLECTIONS)
        assert re.search(rf"^{re.escape(t.gettext('Team coverage').upper())}: .*\d+%", text, re.M)

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_transparency(self, digests: dict[tuple[str, str], str], key: tuple[str, str]) -> None:
        text, t = digests[key], translator(key[1])
        block = text.split(t.gettext("Changes").upper())[1].split("\n== ")[0]
        nothing = t.gettext("No 1:1 was cancelled, declined or moved.")
        assert nothing in block or block.lstrip().startswith("* ")

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_ownership_in_transparency(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        assert "own any 1:1 you moved" in how_to("en")
        assert how_to(key[1]) in text
        owned = t.gettext("That was your call: say so when you meet.")
        # Priya declined Divya's 1:1 (examples/README.md); Ruben cancelled his own
        assert (owned in text) is (key[0] == "priya@example.com")

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_shortfalls_addressed_both_ways(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        assert "yours too" in how_to("en")
        assert "asks how they went" in how_to("en")
        if key[0] in AGREED:
            report, theirs, yours = AGREED[key[0]]
            section = sections(text)[report]
            assert t.gettext("Done? %(item)s") % {"item": theirs} in section
            assert t.gettext("Your part, done? %(item)s") % {"item": yours} in section

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_personal_goals_connected_to_work(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        assert "their goals" in how_to("en")
        if key[0] in GOALS:
            report, goal = GOALS[key[0]]
            heading = t.gettext("Their goals (how can their work bring them closer?):")
            assert f"{heading}\n- {goal}" in sections(text)[report]


def how_to(language: str) -> str:
    return translator(language).gettext(
        "How to use this: the person first, then let them lead; agree what good looks like, "
        "praise something specific, ask what you could do better, and own any 1:1 you moved. "
        "Note agreements, yours too, and their goals in the 1:1; Kindly asks how they went."
    )


class TestLengthBudget:
    """A digest's text part stays within 150 words plus 90 per report with an agenda."""

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_every_demo_digest(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text = digests[key]
        budget = BASE_WORDS + WORDS_PER_AGENDA * agendas(text)
        assert len(text.split()) <= budget, (len(text.split()), budget)

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_each_hold_time_once(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        marker = t.gettext("%(when)s (Kindly’s hold)") % {"when": ""}
        held = [line for line in text.splitlines() if line.endswith(marker.strip())]
        assert held
        for line in held:
            when = line.split(": ", 1)[1].removesuffix(marker.strip()).strip()
            assert text.count(when) == 1, when


class TestQuestions:
    """At most three questions per person, none twice in a digest or two weeks running."""

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_at_most_three_per_person(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        found = {name: questions(body) for name, body in sections(digests[key]).items()}
        assert any(found.values())
        assert all(len(asked) <= 3 for asked in found.values()), found

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_none_twice_in_a_digest(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        asked = [q for body in sections(digests[key]).values() for q in questions(body)]
        assert len(asked) == len(set(asked)) >= 9

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_none_two_weeks_running(
        self,
        digests: dict[tuple[str, str], str],
        next_weeks: dict[tuple[str, str], str],
        key: tuple[str, str],
    ) -> None:
        this, then = sections(digests[key]), sections(next_weeks[key])
        both = [name for name in this if questions(this[name]) and questions(then.get(name, ""))]
        assert both
        for name in both:
            assert not set(questions(this[name])) & set(questions(then[name])), name


class TestOneStatus:
    """Every report has one status, the same at a glance and in their section."""

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_glance_and_section_agree(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text = digests[key]
        glance = dict(re.findall(r"^\* ([^:\n]+): (.+)$", text, flags=re.MULTILINE))
        headings = dict(re.findall(r"^== ([^:\n]+): (.+)$", text, flags=re.MULTILINE))
        manager = ROSTER.manager(key[0])
        assert manager is not None
        assert set(glance) == {r.name for r in manager.reports}
        assert headings
        assert {name: glance[name] for name in headings} == headings

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    def test_new_hire_reads_joined(
        self, digests: dict[tuple[str, str], str], language: str
    ) -> None:
        t = translator(language)
        joined = t.gettext("joined %(when)s, first 1:1 not yet held") % {
            "when": t.day(date(2026, 11, 16))
        }
        assert f"* Femke Smit: {joined}\n" in digests[("anouk@example.com", language)]


async def _hold_texts(manager: str, language: str, invite: bool, tmp: Path) -> list[str]:
    """Title and description of the hold every demo report with an agenda would get."""
    settings = Settings(
        _env_file=None,
        roster_file=EXAMPLES / "roster.yaml",
        ics={"dir": EXAMPLES / "calendars", "holds_dir": tmp / "holds"},
        email={"outbox_dir": tmp / "outbox"},
        holds={"invite_report": invite},
        support_url=SUPPORT_URL,
    )
    chosen = ROSTER.manager(manager)
    assert chosen is not None
    chosen = replace(chosen, language=language)
    connector = from_settings(settings)
    try:
        week = ManagerWeek.of(
            chosen,
            now=DEMO_NOW,
            tz=await zone_of(chosen, connector, settings),
            policy=settings.policy(),
            default_language=language,
        )
        events = await connector.events(
            manager, week.lookback_start, week.lookahead_end, tz=week.tz, warn=lambda _: None
        )
    finally:
        await connector.aclose()
    analysis = analyse(chosen, events, now=week.now, policy=week.policy, tz=week.tz)
    agendas = team_agendas(analysis, week=week.week, language=language, policy=week.policy)
    texts = []
    for status in analysis.reports:
        if status.report.email in agendas:
            agenda = agendas[status.report.email]
            title, description = hold_texts(chosen, status, agenda=agenda, policy=week.policy)
            assert all(b.question in description for b in agenda.blocks)
            texts += [title, description]
            # the agenda's notes for the manager stay in the digest
            texts += [f"MANAGER ONLY: {n}" for n in (agenda.reassurance, agenda.first_week) if n]
    return texts


#: words that only the manager should read: monitoring, cadence, coaching about the report
MANAGER_WORDS = (
    "kindly",
    "cadence",
    "ritme",
    "overdue",
    "digest",
    "overzicht",
    "coach",
    "monitor",
    "special reason",
    "bijzondere reden",
    "tell ",
    "vertel ",
    "in trouble",
    "op het matje",
    "know your role",
    "ken je rol",
    SUPPORT_URL,
)
#: the digest's own texts for the manager (English msgids)
MANAGER_TEXTS = (
    SAFETY,
    "Kindly invites people in your working hours, never someone who is away, with a warm, "
    "neutral title and message: a 1:1 should never read as “you’re in trouble”.",
    "Know your role and its limits: when something heavier comes up, listen, then point to "
    "HR or your employee assistance programme.",
    *REFLECTIONS,
)


class TestHoldsSafeToShare:
    """A hold's title and description are fine for the report to read, in both modes: an
    invitation and the questions, no coaching notes, nothing about monitoring or cadence."""

    @pytest.mark.parametrize("invite", [False, True], ids=["hold", "invitation"])
    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_no_manager_only_hint(self, key: tuple[str, str], invite: bool, tmp_path: Path) -> None:
        manager, language = key
        texts = asyncio.run(_hold_texts(manager, language, invite, tmp_path))
        held = [t for t in texts if not t.startswith("MANAGER ONLY: ")]
        notes = [t.removeprefix("MANAGER ONLY: ") for t in texts if t.startswith("MANAGER ONLY: ")]
        assert held
        t = translator(language)
        how = how_to(language)
        # the bank's questions are written for the report ("Tell me about it."): the words
        # of coaching hints are looked for in everything else
        questions = [
            t.gettext(q) for bank in (*QUESTIONS.values(), GETTING_TO_KNOW_YOU) for q in bank
        ]
        for text in held:
            lowered = text
            for question in questions:
                lowered = lowered.replace(question, "")
            lowered = lowered.lower()
            assert [w for w in MANAGER_WORDS if w.lower() in lowered] == []
            assert how not in text
            assert [m for m in MANAGER_TEXTS if t.gettext(m) in text] == []
            assert [n for n in notes if n in text] == []

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    def test_the_check_bites(self, language: str, tmp_path: Path) -> None:
        """The demo has notes for the manager (Femke is new, Tom long unmet) to keep out."""
        texts = asyncio.run(_hold_texts("anouk@example.com", language, False, tmp_path))
        assert any(t.startswith("MANAGER ONLY: ") for t in texts)

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    def test_invitation_mode_invites(self, language: str, tmp_path: Path) -> None:
        texts = asyncio.run(_hold_texts("daniel@example.com", language, True, tmp_path))
        bring = translator(language).gettext(
            "Hi %(name)s, I’ve set aside %(minutes)d minutes for the two of us. Bring "
            "whatever’s on your mind; the questions below are only a start. If the time doesn’t "
            "suit you, suggest another."
        ) % {"name": "Carlos", "minutes": 30}
        assert any(t.startswith(bring) for t in texts)
        assert "Carlos & Daniel" in " ".join(texts)


class TestGolden:
    """Two demo digests, reviewed by eye, stay exactly as reviewed until deliberately updated."""

    @pytest.mark.parametrize(
        "key", GOLDEN_DIGESTS, ids=[f"{m.partition('@')[0]}-{lg}" for m, lg in GOLDEN_DIGESTS]
    )
    def test_golden_text_digest(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        manager, language = key
        golden = GOLDEN / f"{manager.partition('@')[0]}-{language}.txt"
        if os.environ.get("KINDLY_UPDATE_GOLDEN") == "1":
            golden.write_text(digests[key], encoding="utf-8")
        assert golden.exists(), f"{golden} is missing; create it with KINDLY_UPDATE_GOLDEN=1"
        assert digests[key] == golden.read_text(encoding="utf-8"), (
            f"{golden.name} differs; if the change is intended, regenerate with "
            "KINDLY_UPDATE_GOLDEN=1 and review the diff"
        )

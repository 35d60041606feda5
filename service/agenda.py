"""The kindness-first agenda for one report's 1:1 (pure).

At most three questions, as many as a 30-minute conversation holds: the
person first (a personal check-in), then two of the other blocks of the
coaching model of docs/design.md (their topics, clarity on success,
recognition, feedback both ways, support), always in that order. Which blocks
and which questions rotate with the ISO week, deterministically per report:
every block comes up within four weeks, no question twice in one digest, and
never the same question two weeks running for a person.
"""

from __future__ import annotations

import hashlib
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType

from service.cadence import ReportStatus, TeamAnalysis
from service.i18n import N_, Translator, translator
from service.model import Policy, Report
from service.recap import untrusted, web_link
from service.values import quick_init

try:
    # CPython's own SHA-256: for 30-byte inputs, hashlib's OpenSSL constructor costs
    # more than the hash itself
    from _sha256 import sha256 as _sha256  # type: ignore[import-not-found]
except ImportError:  # other interpreters, or builds without it: the same hash, slower
    _sha256 = hashlib.sha256


class BlockKind(StrEnum):
    CHECK_IN = "check_in"
    TOPICS = "topics"
    SUCCESS = "success"
    RECOGNITION = "recognition"
    FEEDBACK = "feedback"
    SUPPORT = "support"


#: the kindness-first order of docs/design.md
ORDER = tuple(BlockKind)
#: read once: ``BlockKind.CHECK_IN`` goes through ``EnumType.__getattr__``'s slot on 3.11, and
#: ``kind.value`` through a Python property
CHECK_IN, SUPPORT = BlockKind.CHECK_IN, BlockKind.SUPPORT
_ROTATION_NAMES = MappingProxyType({kind: kind.value for kind in BlockKind})
#: the blocks that take turns after the check-in, two a week
ROTATING = ORDER[1:]
#: at most this many questions per person: more than a 30-minute conversation holds
MAX_QUESTIONS = 3


@quick_init
@dataclass(frozen=True, slots=True)
class AgendaBlock:
    kind: BlockKind
    title: str
    #: this week's rotating question
    question: str
    #: the question in English (its msgid): what "asked twice" is judged by, in any language
    source: str
    #: the organisation's support resources, on the support block when they matter
    link: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class Agenda:
    """At most three questions: the person first, then two blocks in rotation.

    Everything here is fine for the report to read (the hold's description
    shows the questions); coaching for the manager only (``reassurance``,
    ``first_week``) is shown in the digest alone.
    """

    report: Report
    week: str
    language: str
    blocks: tuple[AgendaBlock, ...]
    #: new or long-unmet report: the check-in gets to know the person
    getting_to_know_you: bool = False
    #: said up front so the meeting does not feel like "you're in trouble" (digest only)
    reassurance: str | None = None
    #: for a new hire: why a 1:1 in their first week matters (digest only)
    first_week: str | None = None


_TITLES = MappingProxyType(
    {
        BlockKind.CHECK_IN: N_("Check-in"),
        BlockKind.TOPICS: N_("Their topics"),
        BlockKind.SUCCESS: N_("Clarity"),
        BlockKind.RECOGNITION: N_("Recognition"),
        BlockKind.FEEDBACK: N_("Feedback both ways"),
        BlockKind.SUPPORT: N_("Support"),
    }
)

_GETTING_TO_KNOW_YOU_TITLE = N_("Getting to know you")

#: one bank per block; questions are the English msgids, Dutch in the catalog
QUESTIONS: MappingProxyType[BlockKind, tuple[str, ...]] = MappingProxyType(
    {
        BlockKind.CHECK_IN: (
            N_("What’s been the best part of your week so far?"),
            N_("How are you doing, really? What’s taking up most of your energy at the moment?"),
            N_("What did you do this weekend that you enjoyed?"),
            N_("How is your energy this week, from one to ten, and what would raise it by one?"),
            N_("What’s something outside work you’re looking forward to?"),
            N_("What has made you smile recently?"),
            N_("How are things outside work? Anything you’d like me to know?"),
            N_("What are you reading, watching or listening to these days?"),
            N_("What’s one thing that would make this week feel good for you?"),
            N_("How well are you managing to switch off after work?"),
            N_("What kept you busy outside work since we last spoke?"),
            N_("What’s a small thing that made your week better?"),
            N_("How are you feeling about the weeks ahead?"),
            N_("What’s the highlight of your month so far, at work or outside it?"),
            N_("Is anything on your mind you’d like to share before we start?"),
        ),
        BlockKind.TOPICS: (
            N_("What would you like to talk about today?"),
            N_("What’s on your mind that we should make time for first?"),
            N_("Is anything blocking you that I could help clear?"),
            N_("What’s one thing you’d like my help or input on this week?"),
            N_("What’s slowing you down at the moment?"),
            N_("Which decision are you waiting on, from me or from anyone else?"),
            N_("What is going better than expected, and what is harder than expected?"),
            N_("Is there something you’ve wanted to bring up but haven’t found the moment for?"),
            N_("What are you most excited about in your work right now?"),
            N_("Where do you feel stuck, even a little?"),
            N_("What’s one question you’d like answered before we finish today?"),
            N_("What’s taking more of your time than it should?"),
            N_("Is there a conversation with a colleague you’d like to think through together?"),
            N_("What would make the coming week easier for you?"),
            N_("Which of your topics matters most to you today? We’ll start there."),
        ),
        BlockKind.SUCCESS: (
            N_("What would a great month look like for you?"),
            N_("What does “done well” look like for your main piece of work right now?"),
            N_("Which result would you be proudest of by the end of this quarter?"),
            N_("Are we clear on what’s expected of you this month? Where is it fuzzy?"),
            N_("What’s the one outcome that matters most in the coming two weeks?"),
            N_("How will we both know this project went well?"),
            N_("Is there anything on your list where the goal feels unclear?"),
            N_("What are you aiming for in the next few weeks, in your own words?"),
            N_("Which priority could we drop or postpone to make room for what matters?"),
            N_("If you had to pick one thing to get right this week, what would it be?"),
            N_("What would success look like for you personally, beyond the project goals?"),
            N_("Where do my expectations and yours not quite line up yet?"),
            N_("What does a good day at work look like for you?"),
            N_("What would you like to be known for on this team a year from now?"),
            N_("Which goal are you working towards that I may not know about?"),
        ),
        BlockKind.RECOGNITION: (
            N_("What went well since we last spoke? Tell me about it."),
            N_("What are you proud of from the past two weeks?"),
            N_("Which small win deserves more credit than it got?"),
            N_("Who helped you recently, and would you like them thanked?"),
            N_("What did you figure out recently that was harder than it looked?"),
            N_("What did you do recently that made someone else’s work easier?"),
            N_("What’s something you’ve got better at this month?"),
            N_("Which piece of work are you quietly pleased with?"),
            N_("What kind words from a colleague or customer made your week?"),
            N_("What worked so well that we should do it again?"),
            N_("What did you finish recently that you’d like the team to hear about?"),
            N_("Which risk did you take that paid off?"),
            N_("What did you learn from something that went well?"),
            N_("Which moment this month felt like real progress?"),
            N_("What’s a win, however small, that we haven’t celebrated yet?"),
        ),
        BlockKind.FEEDBACK: (
            N_("What’s one thing I could do to make your work easier?"),
            N_("Did I do anything recently that didn’t help?"),
            N_("What should I keep doing, start doing, or stop doing?"),
            N_("How useful are our one-on-ones for you, and what would make them better?"),
            N_("Where would you like more, or less, involvement from me?"),
            N_("Is there feedback for me you’ve been holding back? I’d rather hear it now."),
            N_("Which of my habits makes your work harder?"),
            N_("How clear have I been about priorities? Where did I confuse things?"),
            N_("What’s one piece of feedback you’d like from me right now?"),
            N_("How do you like to receive feedback: in the moment, or saved for our 1:1?"),
            N_("What could I explain better to the team?"),
            N_("When did you feel most supported by me, and when least?"),
            N_("Did something I said in a meeting land the wrong way?"),
            N_("What would you do differently in my place?"),
            N_("What’s one thing you’d like me to notice more?"),
        ),
        BlockKind.SUPPORT: (
            N_("What would make your workload feel manageable?"),
            N_("Is there training, a course or a book that would help you grow?"),
            N_("Who else in the organisation would be good for you to meet?"),
            N_("Are you getting enough rest? Is time off coming up that we should plan around?"),
            N_("Which tools or resources are you missing?"),
            N_(
                "Is something outside work making things harder, where some flexibility would help?"
            ),
            N_("How can I support you with the things you’re finding hard?"),
            N_("Would a mentor or a buddy help with what you’re working on?"),
            N_("Which of your skills would you like to use more?"),
            N_("What’s one thing I could take off your hands?"),
            N_("Is the way we work (hours, meetings, location) working for you?"),
            N_("Where would you like to be in a year, and how can I help you get there?"),
            N_("Do you know where to go if you need support beyond what I can offer?"),
            N_("Is there anyone on the team you’d like more help from?"),
            N_("What would help you feel more confident in your role?"),
        ),
    }
)

#: the check-in for a new or long-unmet report
GETTING_TO_KNOW_YOU: tuple[str, ...] = (
    N_("What’s one personal goal you’re working towards this year, in or outside work?"),
    N_("What got you into this line of work?"),
    N_("How do you like to receive feedback and recognition?"),
    N_("What does a great manager do for you? And what should I never do?"),
    N_("What kind of work gives you energy, and what drains it?"),
    N_("How do you prefer to communicate: chat, email, calls, or face to face?"),
    N_("What are you hoping to learn in the next six months?"),
    N_("What’s something about you that most colleagues don’t know?"),
    N_("What does a good work week look like for you, hours and rhythm included?"),
    N_("What matters to you outside work that I should keep in mind?"),
    N_("What was the best team you’ve ever been part of, and why?"),
    N_("How will I know when you’re stressed, and what helps then?"),
    N_("Where would you like your career to go in the next few years?"),
    N_("What would you like to get out of our one-on-ones?"),
    N_("What are you proudest of in your work so far?"),
)


def build_agenda(
    status: ReportStatus,
    *,
    week: str,
    language: str,
    policy: Policy,
    taken: frozenset[str] = frozenset(),
) -> Agenda:
    """This week's agenda for one report, in the manager's language.

    ``taken``: questions (English msgids) other agendas of the same digest already ask;
    another one of the bank is chosen where the bank allows (:func:`pick_question`).
    """
    t = translator(language)
    report = status.report
    welcome = status.long_unmet or status.new_hire
    support = support_matters(status)
    resources = web_link(policy.support_url) if support else None
    used = set(taken)
    blocks = []
    for kind in block_kinds(report.email, week, support=support):
        bank = GETTING_TO_KNOW_YOU if kind is CHECK_IN and welcome else QUESTIONS[kind]
        rotation = "getting_to_know_you" if bank is GETTING_TO_KNOW_YOU else _ROTATION_NAMES[kind]
        question = pick_question(report.email, rotation, week, bank, used)
        used.add(question)
        title = _GETTING_TO_KNOW_YOU_TITLE if bank is GETTING_TO_KNOW_YOU else _TITLES[kind]
        link = resources if kind is SUPPORT else None
        blocks.append(AgendaBlock(kind, t.gettext(title), t.gettext(question), question, link))
    return Agenda(
        report=report,
        week=week,
        language=language,
        blocks=tuple(blocks),
        getting_to_know_you=welcome,
        reassurance=_reassurance(status, t) if status.long_unmet and not status.new_hire else None,
        first_week=(
            _first_week(report, report.start_date, t)
            if status.new_hire and report.start_date is not None
            else None
        ),
    )


def team_agendas(
    analysis: TeamAnalysis, *, week: str, language: str, policy: Policy
) -> dict[str, Agenda]:
    """This week's agenda for every report the digest details (due or with a 1:1 coming),
    by email: built once, here, for both the hold's description and the digest.

    Built in roster order, each avoiding the questions of the ones before it, so
    no question is asked twice in one digest.
    """
    agendas: dict[str, Agenda] = {}
    taken: frozenset[str] = frozenset()
    for status in analysis.reports:
        if not shows_agenda(status):
            continue
        agenda = build_agenda(status, week=week, language=language, policy=policy, taken=taken)
        agendas[status.report.email] = agenda
        taken |= {block.source for block in agenda.blocks}
    return agendas


def shows_agenda(status: ReportStatus) -> bool:
    """A report who is due or has a 1:1 coming gets an agenda; the others a status line."""
    return not status.away and (status.overdue or status.next_upcoming is not None)


def support_matters(status: ReportStatus) -> bool:
    """When support and limits belong in this week's agenda, not just in rotation.

    A new start, a long silence, a 1:1 that keeps being called off or a return
    from leave are the moments something heavier may be going on; then the
    support question is asked, with the organisation's resources beside it.
    A return from leave is a status with ``back_on`` and not ``away``: the
    time-off rules give ``back_on`` only while someone is away, so this applies
    once they also mark the first week back.
    """
    return (
        status.new_hire
        or status.long_unmet
        or status.cancelled_in_lookback >= 2
        or (not status.away and status.back_on is not None)
    )


def block_kinds(email: str, week: str, *, support: bool) -> tuple[BlockKind, ...]:
    """The check-in, then two blocks in kindness-first order.

    The five other blocks take turns two a week, from an offset of the
    report's own: week n asks blocks 2n and 2n+1 (mod 5), so any four
    consecutive weeks cover all five and two consecutive weeks share none.
    When support matters it takes one place and the other four take turns
    in the other, one a week (four weeks cover them too).
    """
    turn = week_ordinal(week) + _offset(email, "blocks", len(ROTATING))
    if support:
        others = ROTATING[:-1]
        chosen = {others[turn % len(others)], SUPPORT}
    else:
        chosen = {ROTATING[(2 * turn) % len(ROTATING)], ROTATING[(2 * turn + 1) % len(ROTATING)]}
    return (CHECK_IN, *(kind for kind in ROTATING if kind in chosen))


def pick_question(
    email: str, rotation: str, week: str, bank: tuple[str, ...], taken: AbstractSet[str]
) -> str:
    """This week's question of a bank for one report, avoiding ``taken`` where it can.

    Even weeks ask from the bank's even positions, odd weeks from its odd ones,
    so a person never gets the same question two weeks running, however the
    digest's other agendas pushed the choice. Within a half, each (report, bank)
    walks its own fixed permutation, one step a week (one SHA-256 per report, bank
    and half: stable across runs and machines); a question another agenda of the
    digest already asks is skipped for the next one. Only a team larger than half a
    bank can repeat one.
    """
    ordinal = week_ordinal(week)
    half = bank[ordinal % 2 :: 2]
    size = len(half)
    order = _permutation(f"{email.strip().lower()}\n{rotation}\n{ordinal % 2}", size)
    start = (ordinal // 2) % size
    # the walk stops at its first free question: mostly the first one
    for step in range(size):
        question = half[order[(start + step) % size]]
        if question not in taken:
            return question
    return half[order[start]]


def rotation_index(email: str, bank: str, week: str, size: int) -> int:
    """Which entry of a list of ``size`` a person gets in a week (the reflection prompt).

    Each (person, bank) has its own fixed permutation of the list;
    consecutive ISO weeks take consecutive entries of it, so nobody gets the
    same entry two weeks in a row, and ``size`` weeks show every entry once.
    """
    order = _permutation(f"{email.strip().lower()}\n{bank}", size)
    return order[week_ordinal(week) % size]


def _offset(email: str, purpose: str, size: int) -> int:
    return _permutation(f"{email.strip().lower()}\n{purpose}", size)[0]


@lru_cache(maxsize=1024)
def _permutation(seed: str, size: int) -> tuple[int, ...]:
    """Positions 0..size-1 shuffled by the SHA-256 of ``seed``: stable, unlike ``hash()``.

    One hash per seed, not one per position: a Fisher–Yates shuffle draws each swap from
    the 256-bit digest read as an integer (``divmod`` by the positions left), so every
    order of up to 57 positions can come out (57! < 2**256) and each equally likely but
    for a bias below 2**-200. A longer list still gets a permutation: past the digest's
    bits the draws are 0. Within one digest each seed is asked about once: the cache
    helps only where one process digests the same managers again (tests, the bench).
    """
    draws = int.from_bytes(_sha256(seed.encode()).digest(), "big")
    order = list(range(size))
    for last in range(size - 1, 0, -1):
        draws, pick = divmod(draws, last + 1)
        order[last], order[pick] = order[pick], order[last]
    return tuple(order)


@lru_cache(maxsize=64)
def week_ordinal(week: str) -> int:
    """Consecutive integers for consecutive ISO weeks ("2026-W48"), across years.

    Cached: a run asks it some 50 times per digest, always about the same week.
    """
    year, _, number = week.partition("-W")
    monday = date.fromisocalendar(int(year), int(number), 1)
    return monday.toordinal() // 7


def first_name(name: str) -> str:
    """How the digest and holds address someone: the first word of their roster name."""
    words = untrusted(name).split()
    return words[0] if words else ""


def _reassurance(status: ReportStatus, t: Translator) -> str:
    return t.gettext(
        "It’s been a while since you and %(name)s met: say you’d simply like to hear how "
        "they’re doing."
    ) % {"name": first_name(status.report.name)}


def _first_week(report: Report, start: date, t: Translator) -> str:
    return t.gettext("Ask %(name)s what would make the start easier, and whom to meet first.") % {
        "name": first_name(report.name)
    }

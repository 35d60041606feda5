"""The fast paths of the pure core answer exactly what the plain definitions answer.

Issue 7 (digests at organisation scale) replaced scans, per-digest Babel and
Jinja work and per-digest CSS inlining with an index, caches and a template
that has its stylesheet applied once. Each is checked here, on generated
inputs, against the plain definition it stands in for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
import yaml
from babel.dates import format_skeleton, format_time
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jinja2 import DictLoader, Environment, PackageLoader, StrictUndefined, select_autoescape

from service.agenda import rotation_index
from service.away import away_this_week
from service.busy import blocks_time, busy_intervals, merge
from service.cadence import ReportStatus, analyse
from service.digest import (
    HTML_TEMPLATE,
    CoverageColumn,
    Digest,
    GlanceRow,
    ReportSection,
    render_digest,
)
from service.errors import RosterError
from service.hold_plan import plan_holds
from service.i18n import SUPPORTED_LANGUAGES, environment, translations, translator
from service.meetings import MeetingIndex, between, is_hold_for, is_one_on_one, two_at_most
from service.model import (
    Attendee,
    Event,
    HoldKey,
    Interval,
    Manager,
    Policy,
    Report,
    Response,
    ShowAs,
    Status,
)
from service.recap import (
    Recap,
    agreed_expectations,
    agreed_for_team,
    goals_for_team,
    parse_agreed,
    parse_goals,
)
from service.roster import libyaml_agrees, parse_roster
from service.slots import local_instant
from service.team_time import team_time
from service.template_inlining import inline_css, inlined_template
from service.week import ManagerWeek
from tests.fuzzing import quick
from tests.test_digest import digest as sample_digest
from tests.test_fuzz_roster import roster_texts

AMS = ZoneInfo("Europe/Amsterdam")
ZONES = tuple(ZoneInfo(z) for z in ("UTC", "Europe/Amsterdam", "America/Los_Angeles"))
NOW = datetime(2026, 11, 23, 8, tzinfo=AMS)
MARIA, SAM, ANA = "maria@example.com", "sam@example.com", "ana@example.com"
ROOM = "room-3@example.com"
#: as callers may spell them: the index must compare case-insensitively like the predicates
SPELLINGS = (MARIA, "Maria@Example.com", SAM, "SAM@example.com", ANA)
NOTES = (
    "",
    "Agreed expectations\n- Sam drafts the rota\n- Ana reviews it",
    "<p>Afgesproken verwachtingen</p><ul><li>Demo on Friday</li></ul>",
    "Agreed expectations:\n- …\n- ___",
    "Just notes",
    "Their goals\n- Speak at a meetup\n\nAgreed expectations\n- Ana books the room",
    "Persoonlijke doelen\n- ___",
)

people = st.sampled_from((MARIA, SAM, ANA, ROOM))
attendees = st.builds(
    Attendee, people, st.sampled_from(tuple(Response)), resource=st.booleans()
).map(lambda a: replace(a, resource=a.resource or a.email == ROOM))
starts = st.builds(
    lambda minutes, zone: (NOW + timedelta(minutes=minutes)).astimezone(zone),
    st.integers(min_value=-80 * 24 * 60, max_value=10 * 24 * 60).map(lambda m: m - m % 15),
    st.sampled_from(ZONES),
)
events = st.builds(
    lambda start, minutes, **fields: Event(start=start, end=start + minutes, **fields),
    start=starts,
    minutes=st.sampled_from((timedelta(0), timedelta(minutes=30), timedelta(days=1))),
    id=st.sampled_from(("a", "b", "c")),
    all_day=st.booleans(),
    status=st.sampled_from(tuple(Status)),
    organizer=st.one_of(st.none(), people),
    attendees=st.lists(attendees, max_size=3).map(tuple),
    description=st.sampled_from(NOTES),
    hold_key=st.one_of(
        st.none(),
        st.builds(
            HoldKey, st.sampled_from((MARIA, SAM)), st.sampled_from((SAM, ANA)), st.just("W")
        ),
    ),
)
calendars = st.lists(events, max_size=25)
#: busy and free time of the manager close to now and across this week's window
events_around_now = st.builds(
    lambda minutes, length, zone, **fields: Event(
        start=(NOW + timedelta(minutes=minutes)).astimezone(zone),
        end=(NOW + timedelta(minutes=minutes + length)).astimezone(zone),
        **fields,
    ),
    minutes=st.integers(-2 * 24 * 60, 8 * 24 * 60).map(lambda m: m - m % 15),
    length=st.sampled_from((0, 15, 30, 60, 90, 24 * 60)),
    zone=st.sampled_from(ZONES),
    id=st.just("e"),
    show_as=st.sampled_from(tuple(ShowAs)),
    organizer=st.just(MARIA),
    attendees=st.lists(attendees, max_size=2).map(tuple),
    hold_key=st.one_of(st.none(), st.just(HoldKey(MARIA, SAM, "W"))),
)
TEAM = Manager(MARIA, "Maria", reports=(Report(SAM, "Sam"), Report(ANA, "Ana")))
#: the largest jumps of a zone's offset: Samoa skipped 30 December 2011 (UTC-10 to UTC+14),
#: Kwajalein lived 30 September 1969 twice (UTC+11 to UTC-12)
DAY_LONG_CHANGES = (
    ("Pacific/Apia", datetime(2011, 12, 30, 10, tzinfo=UTC)),
    ("Pacific/Kwajalein", datetime(1969, 9, 30, 13, tzinfo=UTC)),
)


def scan_agreed(
    events: Sequence[Event],
    manager: str,
    report: str,
    *,
    now: datetime,
    parse: Callable[[str], tuple[str, ...]] = parse_agreed,
) -> tuple[str, ...]:
    """The recap as first written: every event tested with the plain predicates."""
    candidates = [
        e
        for e in events
        if e.start.astimezone(UTC) < now.astimezone(UTC)
        and e.description
        and (is_one_on_one(e, manager, report) or is_hold_for(e, manager, report))
    ]
    candidates.sort(key=lambda e: (e.start.astimezone(UTC), e.id), reverse=True)
    for event in candidates:
        found = parse(event.description)
        if found:
            return found
    return ()


class TestMeetingIndex:
    """The per-calendar index lists exactly the events the plain predicates accept, in order."""

    @quick
    @given(calendars, st.sampled_from(SPELLINGS), st.sampled_from(SPELLINGS))
    def test_same_events_as_the_predicates(
        self, events: list[Event], manager: str, report: str
    ) -> None:
        index = MeetingIndex(events)
        assert list(index.scheduled(manager, report)) == [
            e for e in events if between(e, manager, report)
        ]
        assert index.one_on_ones(manager, report) == [
            e for e in events if is_one_on_one(e, manager, report)
        ]
        assert list(index.holds_for(manager, report)) == [
            e for e in events if is_hold_for(e, manager, report)
        ]

    @quick
    @given(events)
    def test_two_at_most(self, event: Event) -> None:
        people = event.people()
        assert two_at_most(event) == (people if len(people) <= 2 else None)

    def test_given_order_across_answers(self) -> None:
        first, second = (
            Event("x", NOW + timedelta(hours=h), NOW + timedelta(hours=h + 1)) for h in (2, 1)
        )
        index = MeetingIndex([first, second])
        assert index.in_given_order([second], [first, second]) == [first, second]


class TestAgreedExpectations:
    """The recap reads the same notes with or without the index, per report or for the team."""

    @quick
    @given(calendars, st.sampled_from(SPELLINGS), st.sampled_from(SPELLINGS))
    def test_same_as_the_plain_scan(self, events: list[Event], manager: str, report: str) -> None:
        expected = scan_agreed(events, manager, report, now=NOW)
        assert agreed_expectations(events, manager, report, now=NOW) == expected
        index = MeetingIndex(events)
        assert agreed_expectations(events, manager, report, now=NOW, index=index) == expected

    @quick
    @given(calendars)
    def test_team_at_once(self, events: list[Event]) -> None:
        team = Manager(MARIA, "Maria", reports=(Report(SAM, "Sam"), Report(ANA, "Ana")))
        assert agreed_for_team(events, team, now=NOW) == {
            r.email: scan_agreed(events, MARIA, r.email, now=NOW) for r in team.reports
        }

    @quick
    @given(calendars, st.sampled_from((NOW, NOW - timedelta(days=9))))
    def test_agreed_then_goals_on_one_index(self, events: list[Event], now: datetime) -> None:
        # the index keeps each report's notes for the second reading: both read what a
        # plain scan reads, at either instant
        team = Manager(MARIA, "Maria", reports=(Report(SAM, "Sam"), Report(ANA, "Ana")))
        index = MeetingIndex(events)
        for _ in range(2):
            assert agreed_for_team(events, team, now=now, index=index) == {
                r.email: scan_agreed(events, MARIA, r.email, now=now) for r in team.reports
            }
            goals = {
                r.email: scan_agreed(events, MARIA, r.email, now=now, parse=parse_goals)
                for r in team.reports
            }
            assert goals_for_team(events, team, now=now, index=index) == {
                email: found for email, found in goals.items() if found
            }

    @quick
    @given(calendars)
    def test_analysis_with_a_shared_index(self, events: list[Event]) -> None:
        team = Manager(MARIA, "Maria", reports=(Report(SAM, "Sam"), Report(ANA, "Ana")))
        plain = analyse(team, events, now=NOW, policy=Policy(), tz=AMS)
        shared = analyse(team, events, now=NOW, policy=Policy(), tz=AMS, index=MeetingIndex(events))
        assert shared == plain


def first_rotation(email: str, bank: str, week: str, size: int) -> int:
    """``rotation_index`` as plainly as it can be said: the positions shuffled by
    the Fisher–Yates walk ``random.shuffle`` takes, each swap drawn from the seed's SHA-256
    read as one integer."""
    seed = f"{email.strip().lower()}\n{bank}".encode()
    draws = int(hashlib.sha256(seed).hexdigest(), 16)
    permutation = list(range(size))
    for i in reversed(range(1, size)):
        j = draws % (i + 1)
        draws //= i + 1
        permutation[i], permutation[j] = permutation[j], permutation[i]
    ordinal = date.fromisocalendar(int(week[:4]), int(week[6:]), 1).toordinal() // 7
    return permutation[ordinal % size]


class TestRotation:
    """The agenda's question rotation picks the same question as its plain definition, and
    each list's rotation visits every entry once before any returns."""

    @quick
    @given(
        st.emails() | st.sampled_from(SPELLINGS),
        st.sampled_from(("check_in", "topics", "reflection", "getting_to_know_you")),
        st.builds("{}-W{:02d}".format, st.integers(2020, 2035), st.integers(1, 52)),
        st.integers(1, 70),
    )
    def test_same_question(self, email: str, bank: str, week: str, size: int) -> None:
        assert rotation_index(email, bank, week, size) == first_rotation(email, bank, week, size)

    @quick
    @given(st.emails(), st.text(max_size=20), st.integers(1, 70))
    def test_a_permutation(self, email: str, bank: str, size: int) -> None:
        monday = date(2026, 11, 23)
        weeks = [(monday + timedelta(weeks=n)).isocalendar() for n in range(size)]
        seen = {rotation_index(email, bank, f"{y}-W{w:02d}", size) for y, w, _ in weeks}
        assert seen == set(range(size))


class TestDates:
    """Cached date and time formats read exactly as Babel formats them."""

    @quick
    @given(
        st.datetimes(
            min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
        ),
        st.sampled_from((*ZONES, ZoneInfo("Asia/Kolkata"), ZoneInfo("Australia/Sydney"))),
        st.sampled_from(SUPPORTED_LANGUAGES),
    )
    def test_same_as_babel(self, moment: datetime, zone: ZoneInfo, language: str) -> None:
        t = translator(language)
        local = moment.astimezone(zone)
        assert t.day(moment, zone) == format_skeleton("MMMEd", local, locale=language)
        assert t.day(local.date()) == format_skeleton("MMMEd", local.date(), locale=language)
        assert t.time(moment, zone) == format_time(local, "short", locale=language)


def plain_blocks(event: Event, person: str) -> bool:
    """``blocks_time`` as first written, on the event's own ``response_of``."""
    return (
        not event.cancelled
        and event.show_as is not ShowAs.FREE
        and event.response_of(person) is not Response.DECLINED
    )


class TestBusy:
    """Busy time merges as the interval-by-interval definition does."""

    @staticmethod
    def joined(intervals: list[Interval]) -> list[Interval]:
        merged: list[Interval] = []
        for interval in sorted(intervals):
            if merged and interval.start <= merged[-1].end:
                if interval.end > merged[-1].end:
                    merged[-1] = Interval(merged[-1].start, interval.end)
            else:
                merged.append(interval)
        return merged

    @quick
    @given(calendars)
    def test_busy_intervals(self, events: list[Event]) -> None:
        expected = self.joined(
            [
                Interval(e.start.astimezone(UTC), e.end.astimezone(UTC))
                for e in events
                if plain_blocks(e, MARIA)
            ]
        )
        assert busy_intervals(events, MARIA) == expected

    @quick
    @given(calendars, starts)
    def test_busy_since(self, events: list[Event], since: datetime) -> None:
        """Only the events that end after ``since`` count."""
        expected = busy_intervals([e for e in events if e.end > since], MARIA)
        assert busy_intervals(events, MARIA, since=since) == expected

    @quick
    @given(
        st.sampled_from(DAY_LONG_CHANGES),
        st.lists(st.integers(-2 * 24 * 4, 2 * 24 * 4), max_size=25),
        st.integers(-24 * 4, 24 * 4),
    )
    # ends an hour after ``since``, but 22 hours before it by the wall clock
    @example(DAY_LONG_CHANGES[1], [2], -4)
    def test_busy_since_across_a_day_long_offset_change(
        self, change_in: tuple[str, datetime], quarters: list[int], since_quarters: int
    ) -> None:
        """Events passed over on their own wall clock end before ``since`` however far the
        zone's offset jumps, forwards or back."""
        zone, change = ZoneInfo(change_in[0]), change_in[1]
        calendar = [
            Event("e", start.astimezone(zone), (start + timedelta(minutes=30)).astimezone(zone))
            for start in (change + timedelta(minutes=15 * q) for q in quarters)
        ]
        since = change + timedelta(minutes=15 * since_quarters)
        expected = busy_intervals([e for e in calendar if e.end > since], MARIA)
        assert busy_intervals(calendar, MARIA, since=since) == expected

    @quick
    @given(
        st.lists(events_around_now, max_size=25),
        st.builds(
            Policy,
            notice_hours=st.sampled_from((0, 1, 24)),
            gap_minutes=st.sampled_from((0, 30)),
            max_per_day=st.sampled_from((0, 2)),
            quiet_hours=st.sampled_from((None, (time(12), time(13)))),
            hold_minutes=st.sampled_from((30, 60)),
        ),
    )
    def test_busy_since_the_window_opens_decides_the_same(
        self, calendar: list[Event], policy: Policy
    ) -> None:
        """The team's busy time from the week's window on plans the same holds, and finds the
        manager away the same, as all of their busy time did."""
        week = ManagerWeek.of(TEAM, now=NOW, tz=AMS, policy=policy, default_language="en")
        team = team_time(week, calendar, {}, {})
        opens = week.now + timedelta(hours=policy.notice_hours)
        own = busy_intervals([e for e in calendar if e.hold_key is None], MARIA)
        away = away_this_week(
            team.manager, own, start=opens, end=week.horizon_end, lookahead_end=week.lookahead_end
        )
        assert team.manager_away == away
        whole = replace(team, busy=busy_intervals(calendar, MARIA))
        overdue = tuple(
            ReportStatus(r, 14, None, None, overdue=True, long_unmet=True, new_hire=False)
            for r in TEAM.reports
        )
        assert plan_holds(week, overdue, team=team, existing={}, removed=()) == plan_holds(
            week, overdue, team=whole, existing={}, removed=()
        )

    @quick
    @given(events, st.sampled_from(tuple(ShowAs)), st.sampled_from(SPELLINGS))
    def test_blocks_time(self, event: Event, show_as: ShowAs, person: str) -> None:
        event = replace(event, show_as=show_as)
        assert blocks_time(event, person) == plain_blocks(event, person)

    @quick
    @given(st.lists(st.tuples(starts, st.integers(0, 600)), max_size=20))
    def test_merge(self, spans: list[tuple[datetime, int]]) -> None:
        intervals = [Interval(s, s + timedelta(minutes=m)) for s, m in spans]
        merged = merge(intervals)
        assert merged == self.joined(intervals)
        assert [(i.start.tzinfo, i.end.tzinfo) for i in merged] == [
            (i.start.tzinfo, i.end.tzinfo) for i in self.joined(intervals)
        ]

    @quick
    @given(st.lists(st.tuples(starts, st.integers(-60, 600)), max_size=20))
    def test_merge_again(self, spans: list[tuple[datetime, int]]) -> None:
        """Merged busy time, merged again (the fast path), and from an iterator."""
        intervals = [Interval(s, s + timedelta(minutes=m)) for s, m in spans]
        once = merge(intervals)
        for again in (merge(once), merge(iter(once)), merge(tuple(once))):
            assert again == self.joined(once) == once
        assert merge(iter(intervals)) == self.joined(intervals)


class TestLocalInstant:
    """Cached working-day boundaries still tell the two readings of a repeated hour apart."""

    @pytest.mark.parametrize("first_fold", [0, 1])
    def test_fold_is_part_of_the_answer(self, first_fold: int) -> None:
        day = date(2026, 10, 25)  # Amsterdam repeats 02:00-03:00
        answers = {
            fold: local_instant(day, time(2, 30, fold=fold), AMS)
            for fold in (first_fold, 1 - first_fold)
        }
        assert answers[0] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
        assert answers[1] == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


@cache
def plain_environment(language: str) -> Environment:
    """Kindly's environment as first configured: the i18n extension alone, newstyle gettext."""
    env = Environment(
        loader=PackageLoader("templates", "."),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


#: text that the HTML parser and serialiser treat specially, mixed into generated values
TRICKY = ("&", "<b>", ">", '"', "'", "\xa0", "\x00", "\x0c", "&amp;", "\u202e", "{{ x }}", "%s")
texts = st.one_of(
    st.sampled_from(TRICKY),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r"), max_size=12),
    st.builds("".join, st.lists(st.sampled_from(TRICKY), max_size=4)),
)
links = st.one_of(st.none(), texts, st.builds("https://x.example/?a={}".format, texts))


@st.composite
def digests(draw: st.DrawFn) -> Digest:
    """A sample digest with generated values in every field the HTML shows."""
    base = sample_digest(draw(st.sampled_from(SUPPORTED_LANGUAGES)))
    rows = tuple(
        replace(
            row,
            name=draw(texts),
            next_one=draw(texts),
            next_line=draw(texts),
            state=draw(texts),
            tone=draw(st.sampled_from(("ok", "soon", "due"))),
            bar_percent=draw(st.integers(0, 100)),
        )
        for row in base.glance
    )
    sections = tuple(
        replace(
            s,
            name=draw(texts),
            state=draw(texts),
            hold_link=draw(links),
            recap=Recap(
                tuple(draw(st.lists(texts, max_size=2))),
                tuple(draw(st.lists(texts, max_size=2))),
                tuple(draw(st.lists(texts, max_size=2))),
                tuple(draw(st.lists(texts, max_size=2))),
            ),
            follow_ups=tuple(draw(st.lists(texts, max_size=3))),
        )
        for s in base.sections
    )
    return replace(
        base,
        subject=draw(texts),
        greeting=draw(texts),
        intro=draw(texts),
        glance=rows,
        coverage=tuple(
            CoverageColumn(draw(texts), draw(st.integers(0, 100)), draw(texts)) for _ in range(3)
        ),
        trend=draw(texts),
        how_to=draw(texts),
        changes=tuple(draw(st.lists(texts, max_size=2))),
        change_notes=tuple(draw(st.lists(texts, max_size=2))),
        sections=sections,
        reflection=draw(texts),
        support_note=draw(texts),
        safety_note=draw(texts),
        support_url=draw(links),
    )


def inlined_after_rendering(digest: Digest) -> str:
    """The HTML as first produced: the page rendered with autoescape, then CSS-inlined."""
    return inline_css(
        plain_environment(digest.language).get_template(HTML_TEMPLATE).render(d=digest)
    )


class TestInlinedTemplate:
    """The template with its stylesheet applied once gives the bytes inlining each page gave."""

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    def test_available_in_every_language(self, language: str) -> None:
        assert inlined_template(language, HTML_TEMPLATE) is not None

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    def test_sample_digest(self, language: str) -> None:
        digest = sample_digest(language)
        template = inlined_template(language, HTML_TEMPLATE)
        assert template is not None
        assert template.render(d=digest) == inlined_after_rendering(digest)
        assert render_digest(digest).html == inlined_after_rendering(digest)

    @settings(max_examples=150, deadline=None)
    @given(digests())
    def test_generated_values(self, digest: Digest) -> None:
        template = inlined_template(digest.language, HTML_TEMPLATE)
        assert template is not None
        assert template.render(d=digest) == inlined_after_rendering(digest)

    @pytest.mark.parametrize("value", ["line\r\nbreak", "cr\ronly"])
    def test_carriage_return_falls_back(self, value: str) -> None:
        """A CR may join a LF of the template: such a digest is inlined after rendering."""
        digest = replace(sample_digest("en"), intro=value)
        assert render_digest(digest).html == inlined_after_rendering(digest)

    def test_empty_digest(self) -> None:
        digest = replace(
            sample_digest("nl"),
            glance=(GlanceRow("A", "", "", "", 0, "ok"),),
            coverage=(),
            changes=(),
            change_notes=(),
            sections=(ReportSection("A", "", None, Recap((), ())),),
            support_url=None,
        )
        assert render_digest(digest).html == inlined_after_rendering(digest)


class TestConstantTranslations:
    """Texts translated when templates compile render as translating them on every render did."""

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    def test_digest_text(self, language: str) -> None:
        digest = sample_digest(language)
        expected = plain_environment(language).get_template("digest.txt.j2").render(d=digest)
        assert environment(language).get_template("digest.txt.j2").render(d=digest) == expected

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    @pytest.mark.parametrize("invited", [True, False])
    def test_hold_text(self, language: str, invited: bool) -> None:
        agenda = sample_digest(language).sections[0].agenda
        values = {
            "name": "Sam <b>",
            "manager": "Maria & co",
            "agenda": agenda,
            "minutes": 30,
            "invited": invited,
            "welcome": invited,
            "placeholders": 2,
        }
        expected = plain_environment(language).get_template("hold.txt.j2").render(**values)
        assert environment(language).get_template("hold.txt.j2").render(**values) == expected

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    @pytest.mark.parametrize("name", ["t.html.j2", "t.txt.j2"])
    def test_literals_with_filters_and_percent(self, language: str, name: str) -> None:
        source = (
            '{{ _("At a glance") | upper }}|{{ _("100%% sure") }}|{{ _("Agreed expectations") }}|'
            '{{ _("Next: %(when)s", when="<x>") }}|{{ gettext("Expectations") }}'
        )
        loader = DictLoader({name: source})
        expected = plain_environment(language).overlay(loader=loader).get_template(name).render()
        assert environment(language).overlay(loader=loader).get_template(name).render() == expected


class TestRosterComposer:
    """libyaml composes every roster into the same nodes and lines as the pure-Python composer."""

    @staticmethod
    def tree(node: yaml.Node | None, seen: dict[int, int] | None = None) -> object:
        seen = {} if seen is None else seen
        if node is None:
            return None
        if id(node) in seen:  # aliases may make the graph cyclic
            return ("alias", seen[id(node)])
        seen[id(node)] = len(seen)
        if isinstance(node, yaml.ScalarNode):
            return (node.tag, node.value, node.start_mark.line)
        if isinstance(node, yaml.SequenceNode):
            return (
                node.tag,
                node.start_mark.line,
                [TestRosterComposer.tree(v, seen) for v in node.value],
            )
        assert isinstance(node, yaml.MappingNode)
        return (
            node.tag,
            node.start_mark.line,
            [
                (TestRosterComposer.tree(k, seen), TestRosterComposer.tree(v, seen))
                for k, v in node.value
            ],
        )

    @pytest.mark.skipif(not hasattr(yaml, "CSafeLoader"), reason="PyYAML built without libyaml")
    @settings(max_examples=300, deadline=None)
    @given(roster_texts())
    def test_same_nodes(self, text: str) -> None:
        if not libyaml_agrees(text):
            return  # parse_roster composes it with the pure-Python composer
        try:
            fast = yaml.compose(text, Loader=yaml.CSafeLoader)
        except (yaml.YAMLError, UnicodeError):
            return  # parse_roster then composes with the pure-Python composer
        assert self.tree(fast) == self.tree(yaml.compose(text, Loader=yaml.SafeLoader))

    @pytest.mark.parametrize("text", ["?", "a:\tb", "managers:\n- ? ''\n  : x\n"])
    def test_texts_they_read_differently_go_the_slow_way(self, text: str) -> None:
        assert not libyaml_agrees(text)

    def test_unencodable_text_is_a_roster_error(self) -> None:
        with pytest.raises(RosterError, match=r"^roster\.yaml"):
            parse_roster("managers: [{email: \ud800@example.com}]", source="roster.yaml")

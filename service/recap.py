"""The recap: what was agreed in the last 1:1 and the report's goals, read back from notes (pure).

Managers write notes in the event description under a heading "Agreed
expectations" (or Dutch "Afgesproken verwachtingen") and "Their goals"
("Persoonlijke doelen"), one bullet per item; the hold's description carries
both headings. Google and Outlook may hand the description over as HTML, so
it is first reduced to text lines with the standard library's HTML parser.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import urlsplit

from service.meetings import MeetingIndex, is_hold_for, is_one_on_one, stands
from service.model import Event, Manager, Report
from service.values import quick_init

#: the section heading Kindly writes and reads, in every supported language
HEADINGS = ("Agreed expectations", "Afgesproken verwachtingen")
#: the heading of the report's personal goals (accountability for what matters to them)
GOAL_HEADINGS = ("Their goals", "Personal goals", "Persoonlijke doelen")
#: a runaway description should not become a runaway digest
MAX_ITEMS = 10
MAX_ITEM_CHARS = 300


def _heading(names: Sequence[str]) -> re.Pattern[str]:
    return re.compile(
        r"^[#\s*_]*(?:" + "|".join(re.escape(h) for h in names) + r")[\s*_]*:?[\s*_]*$",
        re.IGNORECASE,
    )


_HEADING = _heading(HEADINGS)
_GOAL_HEADING = _heading(GOAL_HEADINGS)
#: how a manager writes their own commitment in shared notes: their name, or "I"
_SELF_WORDS = frozenset({"i", "ik"})
_FIRST_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_BULLET = re.compile(r"^\s*[-*•–]\s*(.*)$")
_LOOKS_HTML = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*|/[a-zA-Z][a-zA-Z0-9]*|!--)[^>]*>")
#: directional overrides can make a name read differently from what it is
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@quick_init
@dataclass(frozen=True, slots=True)
class Recap:
    """What to follow up with one report: standing expectations, last time's agreements
    (theirs, and the manager's own commitments apart), and their personal goals."""

    standing: tuple[str, ...]
    #: agreed last time, for the report to do
    agreed: tuple[str, ...]
    #: agreed last time, for the manager to do: accountability goes both ways
    yours: tuple[str, ...] = ()
    goals: tuple[str, ...] = ()

    @property
    def to_follow_up(self) -> bool:
        """Something to ask about: last time's agreements or their goals."""
        return bool(self.agreed or self.yours or self.goals)


def recap(
    report: Report,
    agreed: tuple[str, ...],
    *,
    goals: tuple[str, ...] = (),
    manager: str = "",
) -> Recap:
    """The roster's standing expectations plus those agreed last time (no duplicates), the
    ones ``manager`` (a first name) took on apart, and the report's goals."""
    standing = tuple(t for t in (untrusted(e) for e in report.expectations) if t)
    seen = {s.casefold() for s in standing}
    theirs: list[str] = []
    yours: list[str] = []
    for item in agreed:
        text = untrusted(item)
        if text and text.casefold() not in seen:
            seen.add(text.casefold())
            (yours if is_yours(text, manager) else theirs).append(text)
    kept_goals = tuple(dict.fromkeys(t for t in (untrusted(g) for g in goals) if t))
    return Recap(standing=standing, agreed=tuple(theirs), yours=tuple(yours), goals=kept_goals)


def is_yours(item: str, manager: str) -> bool:
    """An agreed item the manager took on: it opens with their first name, or "I"/"Ik"."""
    first = _FIRST_WORD.match(item.lstrip())
    word = first.group(0).casefold() if first else ""
    return word in _SELF_WORDS or (bool(manager) and word == manager.casefold())


def agreed_expectations(
    events: Sequence[Event],
    manager: str,
    report: str,
    *,
    now: datetime,
    index: MeetingIndex | None = None,
) -> tuple[str, ...]:
    """The agreed expectations of the latest past 1:1 or Kindly hold that recorded any.

    With ``index`` (``MeetingIndex(events)``) only that report's meetings are read;
    :func:`agreed_for_team` builds one for the whole team.
    """
    return _first_filled(_notes(events, manager, report, now=now, index=index), parse_agreed)


def _described(
    events: Sequence[Event], manager: str, report: str, index: MeetingIndex | None
) -> Sequence[Event]:
    """The 1:1s and holds between the two that carry a description, in the calendar's order."""
    if index is None:
        # notes are rare: the cheap test first, the people of the event only for those
        pool: Sequence[Event] = [
            e
            for e in events
            if e.description
            and (is_one_on_one(e, manager, report) or is_hold_for(e, manager, report))
        ]
    else:
        ones = [
            e
            for e in index.scheduled(manager, report)
            if e.description and stands(e, manager, report)
        ]
        held = [e for e in index.holds_for(manager, report) if e.description]
        pool = index.in_given_order(ones, held) if ones and held else ones or held
    return pool


def agreed_for_team(
    events: Sequence[Event], manager: Manager, *, now: datetime, index: MeetingIndex | None = None
) -> dict[str, tuple[str, ...]]:
    """:func:`agreed_expectations` of every report, keyed by email, the calendar read once."""
    meetings = MeetingIndex(events) if index is None else index
    return {
        r.email: agreed_expectations(events, manager.email, r.email, now=now, index=meetings)
        for r in manager.reports
    }


def goals_for_team(
    events: Sequence[Event], manager: Manager, *, now: datetime, index: MeetingIndex | None = None
) -> dict[str, tuple[str, ...]]:
    """Each report's goals, from the latest past 1:1 or Kindly hold that recorded any (it
    may be older than the latest agreement: goals last), keyed by email; none: left out."""
    meetings = MeetingIndex(events) if index is None else index
    found = {
        r.email: _first_filled(
            _notes(events, manager.email, r.email, now=now, index=meetings), parse_goals
        )
        for r in manager.reports
    }
    return {email: goals for email, goals in found.items() if goals}


def _notes(
    events: Sequence[Event],
    manager: str,
    report: str,
    *,
    now: datetime,
    index: MeetingIndex | None,
) -> list[Event]:
    """The described 1:1s and holds between the two that started before ``now``, latest
    first: where agreed items and goals are read from.

    With ``index`` the answer is kept on it: the agreed items and the goals of a team
    are read from the same notes, so they are found and sorted once.
    """
    key = (manager, report, now)
    if index is not None and key in index.notes:
        return index.notes[key]
    utc_now = now.astimezone(UTC)
    dated = [(e.start.astimezone(UTC), e) for e in _described(events, manager, report, index)]
    dated = [(start, e) for start, e in dated if start < utc_now]
    dated.sort(key=lambda pair: (pair[0], pair[1].id), reverse=True)
    found = [e for _, e in dated]
    if index is not None:
        index.notes[key] = found
    return found


def _first_filled(
    notes: Sequence[Event], parse: Callable[[str], tuple[str, ...]]
) -> tuple[str, ...]:
    """The first filled section of ``notes`` (latest first)."""
    for event in notes:
        found = parse(event.description)
        if found:
            return found
    return ()


def parse_agreed(description: str) -> tuple[str, ...]:
    """The filled bullets under the first "agreed expectations" heading that has any."""
    return _section(description, _HEADING)


def parse_goals(description: str) -> tuple[str, ...]:
    """The filled bullets under the first "their goals" heading that has any."""
    return _section(description, _GOAL_HEADING)


def _section(description: str, heading: re.Pattern[str]) -> tuple[str, ...]:
    lines = description_lines(description)
    for index, line in enumerate(lines):
        if heading.match(line):
            items = _bullets(lines[index + 1 :])
            if items:
                return items
    return ()


def _bullets(lines: Sequence[str]) -> tuple[str, ...]:
    """Filled bullet lines up to the next heading (any other non-blank line)."""
    items: list[str] = []
    for line in lines:
        if not line.strip():
            continue
        bullet = _BULLET.match(line)
        if bullet is None:
            break
        text = untrusted(bullet.group(1))[:MAX_ITEM_CHARS].strip()
        if _filled(text):
            items.append(text)
    return tuple(items[:MAX_ITEMS])


def _filled(text: str) -> bool:
    """A placeholder ("", "…", "___") is not an agreement."""
    return any(unicodedata.category(c)[0] in "LN" for c in text)


def description_lines(description: str) -> list[str]:
    """The description as text lines, HTML reduced to its visible text."""
    text = description.replace("\r\n", "\n").replace("\r", "\n")
    if _LOOKS_HTML.search(text):
        text = _html_text(text)
    return text.split("\n")


def untrusted(text: str) -> str:
    """Untrusted text (rosters, calendars) as one safe line: no control or bidi characters."""
    if text.isprintable():
        # no control, format (bidi) or line/paragraph separator characters: nothing to drop
        return " ".join(text.split())
    kept = (
        " " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text if c not in _BIDI
    )
    return " ".join("".join(kept).split())


def web_link(url: str | None) -> str | None:
    """Only http(s) links reach an href: a provider or setting cannot inject a script URL."""
    if url and urlsplit(url.strip()).scheme.lower() in ("http", "https"):
        return url.strip()
    return None


class _TextOfHtml(HTMLParser):
    """Visible text of an HTML description, one line per block, list items as bullets."""

    _BLOCKS = frozenset(
        {"blockquote", "dd", "div", "dl", "dt", "hr", "li", "ol", "p", "pre", "table", "tr", "ul"}
        | {f"h{level}" for level in range(1, 7)}
    )
    _HIDDEN = frozenset({"script", "style", "head", "title", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self.hidden += 1
        elif tag == "br" or tag in self._BLOCKS:
            self.parts.append("\n- " if tag == "li" else "\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br" or tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            # inside HTML, source line breaks are just spaces
            self.parts.append(data.replace("\n", " "))


def _html_text(markup: str) -> str:
    parser = _TextOfHtml()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)

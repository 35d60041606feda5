"""The expectation recap: what was agreed in the last 1:1, read back from its notes (pure).

Managers write notes in the event description under a heading "Agreed
expectations" (or Dutch "Afgesproken verwachtingen"), one bullet per item.
Google and Outlook may hand the description over as HTML, so it is first
reduced to text lines with the standard library's HTML parser.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import urlsplit

from service.meetings import MeetingIndex, is_hold_for, is_one_on_one, stands
from service.model import Event, Manager, Report

#: the section heading Kindly writes and reads, in every supported language
HEADINGS = ("Agreed expectations", "Afgesproken verwachtingen")
#: a runaway description should not become a runaway digest
MAX_ITEMS = 10
MAX_ITEM_CHARS = 300

_HEADING = re.compile(
    r"^[#\s*_]*(?:" + "|".join(re.escape(h) for h in HEADINGS) + r")[\s*_]*:?[\s*_]*$",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^\s*[-*•–]\s*(.*)$")
_LOOKS_HTML = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*|/[a-zA-Z][a-zA-Z0-9]*|!--)[^>]*>")
#: directional overrides can make a name read differently from what it is
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True, slots=True)
class Recap:
    """The expectations to recap for one report: standing ones and last time's."""

    standing: tuple[str, ...]
    agreed: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.standing and not self.agreed


def recap(report: Report, agreed: tuple[str, ...]) -> Recap:
    """The roster's standing expectations plus those agreed last time (no duplicates)."""
    standing = tuple(t for t in (untrusted(e) for e in report.expectations) if t)
    seen = {s.casefold() for s in standing}
    extra: list[str] = []
    for item in agreed:
        text = untrusted(item)
        if text and text.casefold() not in seen:
            seen.add(text.casefold())
            extra.append(text)
    return Recap(standing=standing, agreed=tuple(extra))


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
    return _latest_agreed(pool, now=now)


def agreed_for_team(
    events: Sequence[Event], manager: Manager, *, now: datetime, index: MeetingIndex | None = None
) -> dict[str, tuple[str, ...]]:
    """:func:`agreed_expectations` of every report, keyed by email, the calendar read once."""
    meetings = MeetingIndex(events) if index is None else index
    return {
        r.email: agreed_expectations(events, manager.email, r.email, now=now, index=meetings)
        for r in manager.reports
    }


def _latest_agreed(pool: Sequence[Event], *, now: datetime) -> tuple[str, ...]:
    """The first filled recap of the latest described events started before ``now``."""
    utc_now = now.astimezone(UTC)
    candidates = [e for e in pool if e.start.astimezone(UTC) < utc_now]
    candidates.sort(key=lambda e: (e.start.astimezone(UTC), e.id), reverse=True)
    for event in candidates:
        found = parse_agreed(event.description)
        if found:
            return found
    return ()


def parse_agreed(description: str) -> tuple[str, ...]:
    """The filled bullets under the first "agreed expectations" heading that has any."""
    lines = description_lines(description)
    for index, line in enumerate(lines):
        if _HEADING.match(line):
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

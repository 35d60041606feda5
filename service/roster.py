"""The roster file (its format is in the README), checked node by node.

Parsing keeps YAML's node marks so that every problem is reported with the
file and line to fix, all of them at once, instead of the first traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from yaml.constructor import SafeConstructor

from service.addresses import checked_address
from service.errors import RosterError
from service.model import Manager, Report, Roster
from service.roster_events import Entry, NotStreamable, stream_mapping
from service.working_time import check_country, parse_days, parse_span

LANGUAGES = ("en", "nl")
#: where someone works when: for managers and reports alike
TIME_KEYS = ("working_days", "working_hours", "country")
MANAGER_KEYS = ("email", "name", "timezone", "language", "reports", *TIME_KEYS)
REPORT_KEYS = (
    "email",
    "name",
    "cadence_days",
    "start_date",
    "expectations",
    "timezone",
    *TIME_KEYS,
)

T = TypeVar("T")


def load_roster_file(path: Path) -> Roster:
    """Read and check a roster file; raise one :class:`RosterError` listing every problem."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RosterError(
            "roster file not found; create it or point KINDLY_ROSTER_FILE at it", source=source
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"cannot read the roster ({exc})", source=source) from None
    return parse_roster(text, source=source)


#: libyaml's composer when PyYAML was built with it: the pure-Python one takes ~5 ms a manager
_FAST_LOADER: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)


def parse_roster(text: str, *, source: str) -> Roster:
    loader = _FAST_LOADER if _FAST_LOADER is not None and libyaml_agrees(text) else yaml.SafeLoader
    checker = _Checker(source)
    try:
        streamed = checker.streamed_roster(stream_mapping(text, loader, "managers"))
    except (NotStreamable, yaml.YAMLError, UnicodeError):
        streamed = None  # read whole below, which words any problem as always
    if streamed is not None:
        if checker.problems:
            raise RosterError.combine(checker.problems)
        return streamed
    return _parse_whole(text, source=source)


def _parse_whole(text: str, *, source: str) -> Roster:
    try:
        root = _compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise RosterError(
            f"{problem}; fix the YAML syntax", source=source, line=mark.line + 1 if mark else None
        ) from None
    checker = _Checker(source)
    roster = checker.roster(root)
    if checker.problems:
        raise RosterError.combine(checker.problems)
    assert roster is not None
    return roster


def _compose(text: str) -> yaml.Node | None:
    """The node tree, with the marks (lines) the problems point at.

    libyaml composes it when it is known to agree with the pure-Python composer;
    a text it refuses is composed again by the pure-Python one, so a broken
    roster is reported in the same words as always.
    """
    if _FAST_LOADER is not None and libyaml_agrees(text):
        try:
            return yaml.compose(text, Loader=_FAST_LOADER)
        except (yaml.YAMLError, UnicodeError):
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def libyaml_agrees(text: str) -> bool:
    """Whether libyaml composes ``text`` into the same nodes and lines as PyYAML's own composer.

    They differ on tabs (PyYAML refuses some that libyaml takes) and on the marks
    of empty values after a ``?`` (explicit keys); a roster with either is read
    the slow way (tests/test_core_index.py compares the two on generated rosters).
    """
    return "\t" not in text and "?" not in text


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


@dataclass
class _Checker:
    source: str
    problems: list[RosterError] = field(default_factory=list)
    #: email → line of the manager entry, and report email → (manager, line)
    managers_seen: dict[str, int] = field(default_factory=dict)
    reports_seen: dict[str, tuple[str, int]] = field(default_factory=dict)

    def problem(self, node: yaml.Node | None, message: str) -> None:
        line = _line(node) if node is not None else None
        self.problems.append(RosterError(message, source=self.source, line=line))

    def roster(self, root: yaml.Node | None) -> Roster | None:
        if not isinstance(root, yaml.MappingNode):
            self.problem(root, "the roster must be a mapping with a 'managers' list")
            return None
        entries = dict(self.fields(root, ("managers",), "roster"))
        managers_node = entries.get("managers")
        if not isinstance(managers_node, yaml.SequenceNode) or not managers_node.value:
            self.problem(managers_node or root, "'managers' must be a non-empty list")
            return None
        managers = [self.manager(node) for node in managers_node.value]
        return Roster(tuple(m for m in managers if m is not None), source=self.source)

    def streamed_roster(self, entries: Iterator[Entry]) -> Roster | None:
        """The roster from its entries, one manager's nodes at a time; None when the roster
        is not a mapping with a non-empty 'managers' list (then it is read whole)."""
        managers: list[Manager | None] = []
        listed = False
        root_problems, self.problems = self.problems, []
        for entry in entries:
            key = str(entry.key.value)
            if key != "managers":
                root_problems.append(self._unknown(entry.key, key, ("managers",), "roster"))
            elif listed or entry.items is None:
                return None  # twice, or not a list: worded by the whole-document reader
            else:
                listed = True
                managers = [self.manager(node) for node in entry.items]
        if not managers:
            return None
        self.problems = root_problems + self.problems
        return Roster(tuple(m for m in managers if m is not None), source=self.source)

    def _unknown(
        self, node: yaml.Node, key: str, allowed: tuple[str, ...], what: str
    ) -> RosterError:
        return RosterError(
            f"unknown key {key!r} in {what}; allowed: {', '.join(allowed)}",
            source=self.source,
            line=_line(node),
        )

    def fields(
        self, node: yaml.MappingNode, allowed: tuple[str, ...], what: str
    ) -> Iterator[tuple[str, yaml.Node]]:
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key not in allowed:
                self.problems.append(self._unknown(key_node, key, allowed, what))
            elif key in seen:
                self.problem(key_node, f"{key!r} appears twice in one {what}; keep one")
            else:
                seen.add(key)
                yield key, value_node

    def manager(self, node: yaml.Node) -> Manager | None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, "each manager must be a mapping with at least 'email' and 'reports'")
            return None
        values = dict(self.fields(node, MANAGER_KEYS, "manager"))
        email = self.email(values.get("email"), node, "manager")
        if email is not None:
            if email in self.managers_seen:
                self.problem(
                    values["email"],
                    f"manager {email} is listed twice (first at line {self.managers_seen[email]}); "
                    "merge the two entries",
                )
            self.managers_seen.setdefault(email, _line(node))
        timezone = self.optional(values, "timezone", _zone)
        language = self.optional(values, "language", _language)
        reports_node = values.get("reports")
        reports: list[Report] = []
        if reports_node is None:
            self.problem(node, "manager has no 'reports'; list their direct reports")
        elif not isinstance(reports_node, yaml.SequenceNode):
            self.problem(reports_node, "'reports' must be a list")
        else:
            for report_node in reports_node.value:
                report = self.report(report_node, manager=email)
                if report is not None:
                    reports.append(report)
        if email is None:
            return None
        return Manager(
            email=email,
            name=self.optional(values, "name", _text) or email.split("@")[0],
            timezone=timezone,
            language=language,
            reports=tuple(reports),
            working_days=self.optional(values, "working_days", parse_days),
            working_hours=self.optional(values, "working_hours", parse_span),
            country=self.optional(values, "country", _country),
        )

    def report(self, node: yaml.Node, *, manager: str | None) -> Report | None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, "each report must be a mapping with at least 'email'")
            return None
        values = dict(self.fields(node, REPORT_KEYS, "report"))
        email = self.email(values.get("email"), node, "report")
        if email is None:
            return None
        if email == manager:
            self.problem(values["email"], f"{email} is listed as their own report; remove it")
        elif email in self.reports_seen:
            other, line = self.reports_seen[email]
            self.problem(
                values["email"],
                f"report {email} is already listed under {other} (line {line}); "
                "a report has one manager: keep one entry",
            )
        else:
            self.reports_seen[email] = (manager or "another manager", _line(node))
        return Report(
            email=email,
            name=self.optional(values, "name", _text) or email.split("@")[0],
            cadence_days=self.optional(values, "cadence_days", _cadence),
            start_date=self.optional(values, "start_date", _start_date),
            expectations=self.optional(values, "expectations", _expectations) or (),
            working_days=self.optional(values, "working_days", parse_days),
            working_hours=self.optional(values, "working_hours", parse_span),
            country=self.optional(values, "country", _country),
            timezone=self.optional(values, "timezone", _zone),
        )

    def email(self, node: yaml.Node | None, parent: yaml.Node, what: str) -> str | None:
        if node is None:
            self.problem(parent, f"{what} has no 'email'; add their email address")
            return None
        try:
            return _email(_scalar(node))
        except ValueError as exc:
            self.problem(node, str(exc))
            return None

    def optional(
        self, values: dict[str, yaml.Node], key: str, convert: Callable[[Any], T]
    ) -> T | None:
        node = values.get(key)
        if node is None:
            return None
        try:
            return convert(_value(node))
        except ValueError as exc:
            self.problem(node, f"{key}: {exc}")
            return None


def _value(node: yaml.Node) -> Any:
    """The plain Python value of a node, typed as YAML's safe loader types it."""
    try:
        # the safe loader's constructor alone: a whole loader (reader, scanner...) per value
        # took longer than composing the roster
        return SafeConstructor().construct_object(node, deep=True)
    except Exception as exc:  # PyYAML's constructors raise assorted builtins on odd tags
        raise ValueError(f"unreadable value ({getattr(exc, 'problem', None) or exc})") from None


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise ValueError("expected a single value, not a list or mapping")
    return _value(node)


def _email(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an email address")
    return checked_address(value).lower()


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be non-empty text")
    return value.strip()


def _zone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    # OSError: a name longer than a file name may be (tzdata looks it up as a file)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as Europe/Amsterdam"
        ) from None
    return str(value)


def _country(value: Any) -> str:
    if isinstance(value, bool):
        raise ValueError('quote the country code, as in "NO": YAML reads a bare NO as false')
    return check_country(str(value))


def _language(value: Any) -> str:
    if value not in LANGUAGES:
        raise ValueError(f"{value!r} is not supported; use one of: {', '.join(LANGUAGES)}")
    return str(value)


def _cadence(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 365:
        raise ValueError(f"{value!r} is not a whole number of days from 1 to 365")
    return value


def _start_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    raise ValueError(f"{value!r} is not a date; write it as YYYY-MM-DD")


def _expectations(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError("must be a list of non-empty texts")
    return tuple(v.strip() for v in value)

"""The roster file: every problem one line with file and line, all reported at once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import RosterError
from service.roster import load_roster_file, parse_roster

GOOD = """\
managers:
  - email: Maria@Example.com
    name: Maria Jansen
    timezone: Europe/Amsterdam
    language: nl
    reports:
      - email: sam@example.com
        name: Sam Lee
        cadence_days: 7
        start_date: 2026-11-16
        expectations:
          - Ship the billing migration by 15 December
      - email: ana@example.com
  - email: raj@example.com
    reports:
      - email: maria@example.com
"""


def problems(text: str) -> list[str]:
    with pytest.raises(RosterError) as caught:
        parse_roster(text, source="roster.yaml")
    return str(caught.value).splitlines()


class TestGoodRoster:
    """A roster in the README's format loads into the domain model."""

    def test_fields(self) -> None:
        roster = parse_roster(GOOD, source="roster.yaml")
        maria, raj = roster.managers
        assert maria.email == "maria@example.com"
        assert (maria.name, maria.timezone, maria.language) == (
            "Maria Jansen",
            "Europe/Amsterdam",
            "nl",
        )
        sam, ana = maria.reports
        assert (sam.cadence_days, sam.start_date) == (7, date(2026, 11, 16))
        assert sam.expectations == ("Ship the billing migration by 15 December",)
        assert (ana.name, ana.cadence_days, ana.expectations) == ("ana", None, ())
        assert raj.timezone is None
        assert raj.language is None

    def test_a_manager_may_report_to_another(self) -> None:
        roster = parse_roster(GOOD, source="roster.yaml")
        assert roster.managers[1].reports[0].email == "maria@example.com"

    def test_lookup_is_case_insensitive(self) -> None:
        roster = parse_roster(GOOD, source="roster.yaml")
        assert roster.manager("MARIA@example.com") is roster.managers[0]


class TestAnyDomain:
    """Reserved and internal domains are addresses like any other: syntax only is checked."""

    @pytest.mark.parametrize(
        "domain", ["corp.local", "example.test", "mail.internal", "hq.corp", "localhost"]
    )
    def test_accepted(self, domain: str) -> None:
        text = f"managers:\n  - email: Maria@{domain}\n    reports:\n      - email: sam@{domain}\n"
        roster = parse_roster(text, source="roster.yaml")
        assert [(m.email, [r.email for r in m.reports]) for m in roster.managers] == [
            (f"maria@{domain}", [f"sam@{domain}"])
        ]

    def test_a_bad_address_on_a_reserved_domain_is_still_refused(self) -> None:
        text = "managers:\n  - email: maria@corp..local\n    reports: []\n"
        assert "'maria@corp..local' is not a valid email address" in problems(text)[0]


class TestProblems:
    """Each kind of mistake is named with its file and line and how to fix it."""

    @pytest.mark.parametrize(
        ("snippet", "line", "expected"),
        [
            (
                "    reports:\n      - email: sam@example.com\n        cadense_days: 7\n",
                5,
                "unknown key 'cadense_days' in report; allowed: email, name, cadence_days",
            ),
            ("    reports:\n      - email: sam@example\n", 4, "is not a valid email address"),
            ("    timezone: Mars/Base\n    reports: []\n", 3, "unknown time zone 'Mars/Base'"),
            ("    language: de\n    reports: []\n", 3, "use one of: en, nl"),
            (
                "    reports:\n      - email: s@example.com\n        cadence_days: 0\n",
                5,
                "cadence_days: 0 is not a whole number of days from 1 to 365",
            ),
            (
                "    reports:\n      - email: s@example.com\n        cadence_days: weekly\n",
                5,
                "cadence_days: 'weekly' is not a whole number",
            ),
            (
                "    reports:\n      - email: s@example.com\n        start_date: soon\n",
                5,
                "write it as YYYY-MM-DD",
            ),
            (
                "    reports:\n      - email: s@example.com\n        expectations: do well\n",
                5,
                "must be a list of non-empty texts",
            ),
            ("    reports:\n      - email: m@example.com\n", 4, "listed as their own report"),
            ("    reports: sam\n", 3, "'reports' must be a list"),
        ],
    )
    def test_one_line_each(self, snippet: str, line: int, expected: str) -> None:
        text = "managers:\n  - email: m@example.com\n" + snippet
        (message,) = problems(text)
        assert message.startswith(f"roster.yaml:{line}: ")
        assert expected in message

    def test_duplicates_and_two_managers(self) -> None:
        text = """\
managers:
  - email: a@example.com
    reports:
      - email: sam@example.com
      - email: SAM@example.com
  - email: b@example.com
    reports:
      - email: sam@example.com
  - email: a@example.com
    reports: []
"""
        lines = problems(text)
        assert lines == [
            "roster.yaml:5: report sam@example.com is already listed under a@example.com "
            "(line 4); a report has one manager: keep one entry",
            "roster.yaml:8: report sam@example.com is already listed under a@example.com "
            "(line 4); a report has one manager: keep one entry",
            "roster.yaml:9: manager a@example.com is listed twice (first at line 2); "
            "merge the two entries",
        ]

    def test_yaml_syntax(self) -> None:
        (message,) = problems("managers:\n  - email: a@example.com\n    reports: [\n")
        assert message.startswith("roster.yaml:4: ")
        assert "fix the YAML syntax" in message

    @pytest.mark.parametrize("text", ["", "- a\n", "managers: []\n", "people: []\n"])
    def test_wrong_shape(self, text: str) -> None:
        assert problems(text)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(RosterError, match="KINDLY_ROSTER_FILE"):
            load_roster_file(tmp_path / "nope.yaml")


class TestNeverATraceback:
    """Whatever text a roster holds, loading it returns a roster or raises RosterError."""

    @settings(max_examples=200, deadline=None)
    @given(st.text(max_size=300))
    def test_arbitrary_text(self, text: str) -> None:
        message = ""
        try:
            parse_roster(text, source="r.yaml")
        except RosterError as exc:
            message = str(exc)
        assert all(line.startswith("r.yaml") for line in message.splitlines())

    @pytest.mark.parametrize(
        "value", ["!!python/name:os.system x", "!!binary '###'", "!!timestamp nope"]
    )
    def test_unsafe_or_broken_tags(self, value: str) -> None:
        text = f"managers:\n  - email: m@example.com\n    name: {value}\n    reports: []\n"
        (message,) = problems(text)
        assert message.startswith("roster.yaml:3: name: ")

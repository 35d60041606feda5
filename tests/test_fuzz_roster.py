"""Fuzzing the roster: hostile YAML never escapes as anything but RosterError lines naming the file.

Rosters are generated structure-first (managers, reports and their fields with
values of every YAML type, unknown keys, anchors and odd tags), then dumped
and sometimes cut or spliced, so most cases get deep into the checker.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from service.errors import RosterError
from service.model import Roster
from service.roster import parse_roster
from tests.fuzzing import deep, hostile_text, outcome, quick

SOURCE = "team/roster.yaml"

emails = st.one_of(
    st.sampled_from(["sam@example.com", "maria@example.com", "SAM@Example.COM", "ava@example.com"]),
    st.builds("{}@example.com".format, st.from_regex(r"[a-z]{1,8}", fullmatch=True)),
    hostile_text,
)
#: values of every type YAML's safe loader can produce
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.dates(min_value=dt.date(1, 1, 1)),
    st.datetimes(),
    hostile_text,
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(hostile_text, scalars, max_size=2),
)


def _entry(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A mapping with some of ``fields`` (good or hostile values) and maybe an unknown key."""
    optional = {key: st.one_of(strategy, values) for key, strategy in fields.items()}
    return st.fixed_dictionaries({}, optional=optional | {"extra": values})


reports = _entry(
    {
        "email": emails,
        "name": hostile_text,
        "cadence_days": st.integers(min_value=-5, max_value=400),
        "start_date": st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 1, 1)),
        "expectations": st.lists(hostile_text, max_size=3),
    }
)
managers = _entry(
    {
        "email": emails,
        "name": hostile_text,
        "timezone": st.sampled_from(["Europe/Amsterdam", "UTC", "Mars/Olympus", "../etc", ""]),
        "language": st.sampled_from(["en", "nl", "fr", ""]),
        "reports": st.one_of(st.lists(st.one_of(reports, values), max_size=4), values),
    }
)
structures = st.one_of(
    st.fixed_dictionaries({"managers": st.lists(st.one_of(managers, values), max_size=4)}),
    st.fixed_dictionaries(
        {"managers": st.lists(managers, min_size=1, max_size=3)},
        optional={"extra": values},
    ),
    values,
)

#: hand-written YAML that a dump never produces: aliases, tags, merge keys, flow styles
ODD_YAML = (
    "managers: &m [*m]",
    "managers:\n  - &a {email: a@example.com, reports: [*a]}",
    "managers: !!python/object:os.system {}",
    "managers: [{email: !!binary 'aGk=', reports: []}]",
    "managers: [{email: a@example.com, reports: [{email: b@example.com, "
    "start_date: !!timestamp x}]}]",
    "managers: [{<<: {email: a@example.com}, reports: []}]",
    "a: &x [1,2]\nb: &y [*x,*x,*x,*x,*x,*x,*x,*x]\nc: [*y,*y,*y,*y,*y,*y,*y,*y]\nmanagers: [*y]",
    "%YAML 1.1\n---\nmanagers: []\n...\n---\nmanagers: []",
    "managers:\n\t- email: tab@example.com",
    "\ufeffmanagers: [{email: bom@example.com, reports: []}]",
    "managers: [{email: a@example.com, reports: [{email: b@example.com, cadence_days: .inf}]}]",
    "? [a, b]\n: managers",
)


@st.composite
def roster_texts(draw: st.DrawFn) -> str:
    """A dumped structure, maybe cut or spliced with hostile text; or odd hand-written YAML."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(ODD_YAML))
    text = yaml.safe_dump(draw(structures), allow_unicode=draw(st.booleans()), sort_keys=False)
    cut = draw(st.integers(0, 3))
    if cut == 1:
        text = text[: draw(st.integers(0, len(text)))]
    elif cut == 2:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(hostile_text) + text[at:]
    return text


def assert_roster_or_clear_error(text: str) -> None:
    """The one behaviour every roster must show: a Roster, or one RosterError line per problem,
    each naming the file, none empty, no traceback text."""
    roster, error = outcome(lambda: parse_roster(text, source=SOURCE), RosterError)
    if error is not None:
        lines = str(error).splitlines()
        assert lines
        assert all(line.startswith(SOURCE) for line in lines), lines
        assert len(lines) == len(error.problems)
        assert "Traceback" not in str(error)
        return
    assert isinstance(roster, Roster)
    assert roster.managers
    for manager in roster.managers:
        assert manager.email == manager.email.lower()
        assert all(report.email != manager.email for report in manager.reports)


class TestRosterFuzz:
    """Any roster text yields a Roster or RosterError lines naming the file, nothing else."""

    @quick
    @given(roster_texts())
    def test_generated_rosters(self, text: str) -> None:
        assert_roster_or_clear_error(text)

    @pytest.mark.fuzz
    @deep
    @given(roster_texts())
    def test_generated_rosters_long_run(self, text: str) -> None:
        assert_roster_or_clear_error(text)

    @pytest.mark.parametrize("text", ODD_YAML)
    def test_odd_yaml(self, text: str) -> None:
        assert_roster_or_clear_error(text)


class TestRosterLimits:
    """A roster built to explode (aliases of aliases) is read quickly, not expanded."""

    def test_billion_laughs(self) -> None:
        levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
        text = "\n".join(levels) + "\nmanagers: [{email: m@example.com, reports: *a8}]\n"
        with pytest.raises(RosterError) as caught:
            parse_roster(text, source=SOURCE)
        assert str(caught.value).startswith(SOURCE)


class TestRosterRegressions:
    """Rosters the fuzzing found that once escaped as a traceback."""

    def test_time_zone_longer_than_a_file_name(self) -> None:
        text = "managers:\n- email: m@example.com\n  timezone: " + "a" * 5000 + "\n  reports: []\n"
        with pytest.raises(RosterError) as caught:
            parse_roster(text, source=SOURCE)
        assert "unknown time zone" in str(caught.value)

"""Streaming a roster's managers one at a time gives the nodes the whole composer gives."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import RosterError
from service.roster import _parse_whole, parse_roster
from service.roster_events import NotStreamable, stream_mapping
from tests.conftest import EXAMPLES

LOADERS = [yaml.SafeLoader, *([yaml.CSafeLoader] if hasattr(yaml, "CSafeLoader") else [])]


def shape(node: yaml.Node) -> Any:
    """A node as plain data, marks (line and column) included."""
    where = (node.start_mark.line, node.start_mark.column)
    if isinstance(node, yaml.ScalarNode):
        return (node.tag, node.value, where)
    if isinstance(node, yaml.SequenceNode):
        return (node.tag, [shape(item) for item in node.value], where)
    assert isinstance(node, yaml.MappingNode)
    return (node.tag, [(shape(k), shape(v)) for k, v in node.value], where)


def streamed(text: str, loader: type[Any]) -> Any:
    entries = []
    for entry in stream_mapping(text, loader, "managers"):
        value = shape(entry.value)
        if entry.items is not None:
            value = (value[0], [shape(item) for item in entry.items], value[2])
        entries.append((shape(entry.key), value))
    return ("tag:yaml.org,2002:map", entries)


def whole(text: str, loader: type[Any]) -> Any:
    root = yaml.compose(text, Loader=loader)
    assert isinstance(root, yaml.MappingNode)
    tag, entries, _ = shape(root)
    return (tag, entries)


SCALARS = st.one_of(
    st.text(max_size=12),
    st.integers(-5, 400),
    st.booleans(),
    st.none(),
    st.dates(),
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner)
)
REPORT = st.fixed_dictionaries(
    {"email": st.emails()}, optional={"name": st.text(max_size=10), "cadence_days": VALUES}
)
MANAGER = st.fixed_dictionaries(
    {"email": st.emails(), "reports": st.lists(REPORT, max_size=3) | VALUES},
    optional={"timezone": st.sampled_from(["Europe/Amsterdam", "Mars/Base"]), "x": VALUES},
)
ROSTERS = st.dictionaries(
    st.sampled_from(["managers", "teams", "version"]),
    st.lists(MANAGER, max_size=4) | VALUES,
    min_size=1,
)


class TestSameNodes:
    @settings(max_examples=60, deadline=None)
    @given(roster=ROSTERS, flow=st.booleans(), loader=st.sampled_from(LOADERS))
    def test_generated_rosters(self, roster: dict[str, Any], flow: bool, loader: type[Any]) -> None:
        text = yaml.safe_dump(roster, default_flow_style=flow, allow_unicode=True)
        assert streamed(text, loader) == whole(text, loader)

    @pytest.mark.parametrize("loader", LOADERS)
    def test_the_demo_roster(self, loader: type[Any]) -> None:
        text = (EXAMPLES / "roster.yaml").read_text(encoding="utf-8")
        assert streamed(text, loader) == whole(text, loader)

    def test_only_the_first_managers_key_is_streamed(self) -> None:
        text = "managers: [a, b]\nmanagers: [c]\n"
        entries = list(stream_mapping(text, yaml.SafeLoader, "managers"))
        assert entries[0].items is not None
        assert list(entries[0].items) == []  # left unread by the consumer: skipped, not lost
        assert entries[1].items is None
        assert shape(entries[1].value)[1][0][1] == "c"

    def test_unread_items_are_skipped(self) -> None:
        text = "managers:\n  - {email: a}\n  - {email: b}\nversion: 2\n"
        entries = [e.key.value for e in stream_mapping(text, yaml.SafeLoader, "managers")]
        assert entries == ["managers", "version"]


class TestNotStreamable:
    @pytest.mark.parametrize(
        "text",
        [
            "managers:\n  - &m {email: a}\n  - *m\n",
            "defaults: &d {cadence_days: 7}\nmanagers: [{email: a, <<: *d}]\n",
            "- just\n- a list\n",
            "",
            "managers: []\n---\nmanagers: []\n",
        ],
        ids=["alias", "merge-key", "list", "empty", "two-documents"],
    )
    def test_whole_document_composer_needed(self, text: str) -> None:
        with pytest.raises(NotStreamable):
            list(stream_mapping(text, yaml.SafeLoader, "managers"))

    def test_bad_syntax_is_a_yaml_error(self) -> None:
        with pytest.raises(yaml.YAMLError):
            list(stream_mapping("managers:\n  - {email: a\n", yaml.SafeLoader, "managers"))


def outcome(parse: Any, text: str) -> Any:
    try:
        return parse(text, source="roster.yaml")
    except RosterError as exc:
        return str(exc)


class TestSameRoster:
    """Read streamed or whole, a roster gives the same managers and the same problems."""

    @settings(max_examples=80, deadline=None)
    @given(roster=ROSTERS, flow=st.booleans())
    def test_generated_rosters(self, roster: dict[str, Any], flow: bool) -> None:
        text = yaml.safe_dump(roster, default_flow_style=flow, allow_unicode=True)
        assert outcome(parse_roster, text) == outcome(_parse_whole, text)

    def test_the_demo_roster(self) -> None:
        text = (EXAMPLES / "roster.yaml").read_text(encoding="utf-8")
        assert outcome(parse_roster, text) == outcome(_parse_whole, text)

    def test_problems_before_and_after_the_list_keep_their_order(self) -> None:
        text = (
            "teams: 1\nmanagers:\n  - email: not-an-email\n    reports: []\n"
            "  - email: b@example.com\n    reports: [{email: b@example.com}]\nversion: 2\n"
        )
        streamed = outcome(parse_roster, text)
        assert streamed == outcome(_parse_whole, text)
        assert [line.split(":")[1] for line in streamed.splitlines()] == ["1", "7", "3", "6"]

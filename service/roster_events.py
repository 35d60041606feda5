"""A YAML mapping read entry by entry, one list's items composed one at a time.

Composing a whole roster builds a node (with two marks) for every scalar of every
manager before the first is checked: at 10,000 managers that is hundreds of MB held
at once. Here the parser's events are read as they come and only one item of the
streamed list is a node tree at any time, with the same marks, so the checker
sees exactly the nodes the whole-document composer would have given it.

Anchors and aliases may point across items; a document with any of them (or one
that is not a mapping) raises :class:`NotStreamable`, and the caller composes it
whole instead.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    NodeEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.resolver import Resolver


class NotStreamable(Exception):
    """The document needs the whole-document composer (anchors, aliases, not a mapping)."""


@dataclass
class Entry:
    """One key of the top-level mapping and its value.

    For the streamed key, ``value`` is an empty :class:`yaml.SequenceNode` carrying the
    list's marks and ``items`` yields its items' nodes; read them all before the next
    entry (what is left unread is skipped)."""

    key: yaml.Node
    value: yaml.Node
    items: Iterator[yaml.Node] | None = None


class _Replay(Composer, Resolver):
    """PyYAML's composer fed from a list of events instead of a parser."""

    def __init__(self, events: list[Event]) -> None:
        Composer.__init__(self)
        Resolver.__init__(self)
        self._events = deque(events)

    def check_event(self, *choices: type[Event]) -> bool:
        return bool(self._events) and (not choices or isinstance(self._events[0], choices))

    def peek_event(self) -> Event:
        return self._events[0]

    def get_event(self) -> Event:
        return self._events.popleft()


def _compose(events: list[Event]) -> yaml.Node:
    node = _Replay(events).compose_node(None, None)  # type: ignore[arg-type]
    assert node is not None  # a node's events always compose to a node
    return node


class _Events:
    """The parser's events, refusing anchors and aliases as they pass."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def peek(self) -> Event:
        event: Event = self.loader.peek_event()
        return event

    def next(self) -> Event:
        event: Event = self.loader.get_event()
        if isinstance(event, AliasEvent) or (
            isinstance(event, NodeEvent) and event.anchor is not None
        ):
            raise NotStreamable("anchors or aliases")
        return event

    def node(self) -> list[Event]:
        """The events of the next node, nested collections and all."""
        first = self.next()
        events = [first]
        depth = 1 if isinstance(first, CollectionStartEvent) else 0
        while depth:
            event = self.next()
            events.append(event)
            if isinstance(event, CollectionStartEvent):
                depth += 1
            elif isinstance(event, (MappingEndEvent, SequenceEndEvent)):
                depth -= 1
        return events


def stream_mapping(text: str, loader: type[Any], streamed_key: str) -> Iterator[Entry]:
    """The top-level mapping's entries in order; the first ``streamed_key`` whose value is
    a list comes with its items composed one by one. Raises :class:`yaml.YAMLError` for
    bad syntax (possibly after some entries) and :class:`NotStreamable`."""
    events = _Events(loader(text))
    for expected in (StreamStartEvent, DocumentStartEvent):
        if not isinstance(events.next(), expected):
            raise NotStreamable("no document")
    if not isinstance(events.peek(), MappingStartEvent):
        raise NotStreamable("not a mapping")
    events.next()
    streamed = False
    while not isinstance(events.peek(), MappingEndEvent):
        key = _compose(events.node())
        value_start = events.peek()
        if (
            not streamed
            and isinstance(key, yaml.ScalarNode)
            and key.value == streamed_key
            and isinstance(value_start, SequenceStartEvent)
        ):
            streamed = True
            events.next()
            marks: tuple[Any, Any] = (value_start.start_mark, value_start.end_mark)  # either kind
            shell = yaml.SequenceNode("tag:yaml.org,2002:seq", [], *marks)
            items = _items(events)
            yield Entry(key, shell, items)
            for _ in items:  # whatever the reader left
                pass
        else:
            yield Entry(key, _compose(events.node()))
    events.next()  # the mapping's end
    for end in (DocumentEndEvent, StreamEndEvent):
        if not isinstance(events.next(), end):
            raise NotStreamable("more than one document")


def _items(events: _Events) -> Iterator[yaml.Node]:
    while not isinstance(events.peek(), SequenceEndEvent):
        yield _compose(events.node())
    events.next()

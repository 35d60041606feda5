"""Partial responses: the ``fields`` system parameter as Google documents it.

Google's "Working with partial resources" (Calendar's performance guide) gives the
syntax: a comma-separated list of selections; ``a/b`` selects ``b`` inside ``a``;
``a(b,c)`` selects ``b`` and ``c`` inside ``a`` (in each element when ``a`` is an
array); ``*`` is every field at its level. A selection the resource's schema has no
field for is refused with 400 "Invalid field selection NAME". The schemas are the
discovery documents the client library ships, as for scopes (:mod:`.auth`).
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

#: a selection: each field named, with what is selected inside it (None: all of it)
Selection = dict[str, "Selection | None"]
TOKEN = re.compile(r"\s*(?:([A-Za-z0-9_]+|\*)|([/,()]))\s*")
ALL = "*"


class FieldsError(ValueError):
    """A ``fields`` value Google would refuse; the message is Google's."""


def parse(text: str) -> Selection:
    """``items(id,start/dateTime),nextPageToken`` as a selection tree."""
    tokens = _tokens(text)
    tree, at = _selections(tokens, 0)
    if at != len(tokens):
        raise FieldsError(f"Invalid field selection {text}")
    return tree


def _tokens(text: str) -> list[str]:
    found, at = [], 0
    while at < len(text):
        match = TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise FieldsError(f"Invalid field selection {text}")
        found.append(match.group(1) or match.group(2))
        at = match.end()
    if not found:
        raise FieldsError("Invalid field selection (empty)")
    return found


def _selections(tokens: list[str], at: int) -> tuple[Selection, int]:
    tree: Selection = {}
    while True:
        at = _selection(tokens, at, tree)
        if at < len(tokens) and tokens[at] == ",":
            at += 1
            continue
        return tree, at


def _selection(tokens: list[str], at: int, tree: Selection) -> int:
    path = []
    while True:
        if at >= len(tokens) or tokens[at] in "/,()":
            raise FieldsError(f"Invalid field selection {''.join(tokens)}")
        path.append(tokens[at])
        at += 1
        if at < len(tokens) and tokens[at] == "/":
            at += 1
            continue
        break
    inner: Selection | None = None
    if at < len(tokens) and tokens[at] == "(":
        inner, at = _selections(tokens, at + 1)
        if at >= len(tokens) or tokens[at] != ")":
            raise FieldsError(f"Invalid field selection {''.join(tokens)}")
        at += 1
    _merge(tree, path, inner)
    return at


def _merge(tree: Selection, path: list[str], inner: Selection | None) -> None:
    """Add one selection: ``a`` and ``a/b`` together select all of ``a``."""
    node = tree
    for name in path[:-1]:
        if name in node and node[name] is None:
            return  # all of it is selected already
        child = node.setdefault(name, {})
        assert child is not None
        node = child
    leaf = path[-1]
    if inner is None or (leaf in node and node[leaf] is None):
        node[leaf] = None
        return
    child = node.setdefault(leaf, {})
    assert child is not None
    for name, deeper in inner.items():
        _merge(child, [name], deeper)


def check(tree: Selection, document: str, method_id: str) -> None:
    """Refuse, as Google does, a selection of a field the method's response has not."""
    root = _document(document)
    _check(tree, _response_schema(root, method_id), root)


def _check(tree: Selection, schema: dict[str, Any], root: dict[str, Any]) -> None:
    schema = _resolved(schema, root)
    while schema.get("type") == "array":
        schema = _resolved(schema["items"], root)
    for name, inner in tree.items():
        if name == ALL:
            continue  # every field: nothing to check by name
        if name in schema.get("properties", {}):
            field = schema["properties"][name]
        elif "additionalProperties" in schema:  # a map: any key names an entry
            field = schema["additionalProperties"]
        else:
            raise FieldsError(f"Invalid field selection {name}")
        if inner is not None:
            _check(inner, field, root)


def select(value: Any, tree: Selection | None) -> Any:
    """What a partial response holds of ``value``: the selected fields, in its order."""
    if tree is None:
        return value
    if isinstance(value, list):
        return [select(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    every = tree.get(ALL)
    chosen = {}
    for name, inner in value.items():
        if name in tree:
            chosen[name] = select(inner, tree[name])
        elif ALL in tree:
            chosen[name] = select(inner, every)
    return chosen


@cache
def _document(document: str) -> dict[str, Any]:
    source = resources.files("googleapiclient") / "discovery_cache" / "documents" / document
    loaded: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    return loaded


def _response_schema(root: dict[str, Any], method_id: str) -> dict[str, Any]:
    stack = [root]
    while stack:
        node = stack.pop()
        for method in node.get("methods", {}).values():
            if method["id"] == method_id:
                response: dict[str, Any] = method.get("response", {})
                return response
        stack.extend(node.get("resources", {}).values())
    raise KeyError(method_id)


def _resolved(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = root["schemas"][schema["$ref"]]
    return schema

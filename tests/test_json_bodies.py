"""Provider responses are decoded with orjson; what comes out is what the libraries made of them."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from googleapiclient.model import JsonModel
from hypothesis import given
from hypothesis import strategies as st
from requests.utils import guess_json_utf

from connectors.google_transport import OrjsonModel
from connectors.graph_http import _json

#: any JSON the APIs can send: their integers are int32 or int64 (Google sends int64 as strings)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
#: bodies that are not JSON orjson accepts: text, NaN, huge numbers, lone surrogates, a BOM
ODD_BODIES = st.binary(max_size=64) | st.sampled_from(
    [b"", b"NaN", b"[Infinity]", b"1e400", b'"\\ud800"', b"\xef\xbb\xbf{}", b"<html>502</html>"]
)


def response(content: bytes) -> requests.Response:
    answer = requests.Response()
    answer.status_code = 200
    answer._content = content
    answer.encoding = None  # as from a server that named no charset: requests guesses
    return answer


def requests_json(content: bytes) -> Any:
    """What the Graph client made of a body before orjson: ``response.json()`` or None."""
    try:
        return response(content).json() if content else None
    except ValueError:
        return None


@given(JSON_VALUES)
def test_google_model_decodes_json_as_the_library_does(value: Any) -> None:
    body = json.dumps(value).encode()
    assert OrjsonModel().deserialize(body) == JsonModel().deserialize(body)


@given(ODD_BODIES)
def test_google_model_falls_back_to_the_library(content: bytes) -> None:
    try:
        expected = JsonModel().deserialize(content)
    except UnicodeDecodeError:
        expected = None  # the library itself fails on these; so may we
    if expected is not None:
        assert _same(OrjsonModel().deserialize(content), expected)


@given(JSON_VALUES)
def test_graph_bodies_decode_as_requests_did(value: Any) -> None:
    body = json.dumps(value, ensure_ascii=False).encode()
    assert _json(body) == requests_json(body)


@given(ODD_BODIES)
def test_graph_odd_bodies_decode_as_requests_did(content: bytes) -> None:
    """Bodies in any UTF decode as requests decoded them; bytes in no UTF at all (requests
    guessed a legacy charset for those) are not JSON to Kindly."""
    encoding = guess_json_utf(content) or "utf-8"
    try:
        content.decode(encoding)
    except UnicodeDecodeError:
        assert _json(content) is None
    else:
        assert _same(_json(content), requests_json(content))


@pytest.mark.parametrize(
    ("content", "charset", "expected"),
    [
        ('{"name": "Zoë"}'.encode("utf-16"), None, {"name": "Zoë"}),
        ('{"name": "Zoë"}'.encode("latin-1"), "latin-1", {"name": "Zoë"}),
        (b'{"name": "Zo\xeb"}', None, None),
        (b"{}", "no-such-charset", {}),
        (b"\xff\xfe{", "no-such-charset", None),
    ],
)
def test_graph_bodies_in_the_charset_named(
    content: bytes, charset: str | None, expected: Any
) -> None:
    assert _json(content, charset) == expected


def _same(left: Any, right: Any) -> bool:
    """Equal, counting NaN equal to NaN (``[NaN] != [NaN]`` in Python)."""
    return json.dumps(left) == json.dumps(right)


def test_integers_beyond_64_bits_come_back_as_floats() -> None:
    """The one difference from the libraries, for numbers neither API sends."""
    assert OrjsonModel().deserialize(b"[100000000000000000000]") == [1e20]
    assert _json(b"[100000000000000000000]") == [1e20]

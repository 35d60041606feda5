"""One error tree, one classification: the same failure is the same class on every provider.

Each provider's answer is built as its client library would hand it over (Google's
``HttpError`` around an ``httplib2.Response``; a Graph status and JSON body) and
translated by the connector's own edge function.
"""

from __future__ import annotations

import json

import httplib2
import pytest
from googleapiclient.errors import HttpError

from connectors.google_transport import translate
from connectors.graph_http import _Answer, _graph_error
from service.errors import (
    AuthFailed,
    ConnectorError,
    DeliveryError,
    KindlyError,
    ProviderUnavailable,
    RateLimited,
    Rejected,
)

WHO = "maria@example.com"


def google(status: int, reason: str = "") -> ConnectorError:
    body = {"error": {"code": status, "message": "said", "errors": [{"reason": reason}]}}
    response = httplib2.Response({"status": status})
    error = HttpError(response, json.dumps(body).encode(), uri="https://example.test/")
    return translate(error, subject=WHO, what="list calendar events")


def graph(status: int, code: str = "") -> ConnectorError:
    answer = _Answer(status, {}, {"error": {"code": code, "message": "said"}})
    return _graph_error(
        answer, mailbox=WHO, what="reading the calendar", permission="Calendars.Read"
    )


@pytest.mark.parametrize(
    ("status", "google_reason", "graph_code", "expected"),
    [
        (429, "rateLimitExceeded", "TooManyRequests", RateLimited),
        (503, "backendError", "ServiceUnavailable", ProviderUnavailable),
        (500, "backendError", "InternalServerError", ProviderUnavailable),
        (401, "authError", "InvalidAuthenticationToken", AuthFailed),
        (403, "forbidden", "ErrorAccessDenied", AuthFailed),
        (404, "notFound", "ErrorItemNotFound", AuthFailed),
        (400, "invalid", "ErrorInvalidRequest", Rejected),
        (409, "duplicate", "ErrorDuplicateTransactionId", Rejected),
    ],
)
def test_same_failure_same_class(
    status: int, google_reason: str, graph_code: str, expected: type[ConnectorError]
) -> None:
    from_google, from_graph = google(status, google_reason), graph(status, graph_code)
    assert type(from_google) is expected
    assert type(from_graph) is expected
    assert from_google.manager == from_graph.manager == WHO
    assert "\n" not in str(from_google)
    assert "\n" not in str(from_graph)


def test_status_is_the_same_attribute_everywhere() -> None:
    assert google(404, "notFound").status == graph(404, "ErrorItemNotFound").status == 404
    assert DeliveryError("refused", status=550).status == 550


def test_rejected_carries_the_providers_own_code() -> None:
    from_graph = graph(409, "ErrorDuplicateTransactionId")
    from_google = google(409, "duplicate")
    assert isinstance(from_graph, Rejected)
    assert isinstance(from_google, Rejected)
    assert (from_graph.reason, from_google.reason) == ("ErrorDuplicateTransactionId", "duplicate")


def test_every_class_of_the_tree_is_drawn_in_its_docstring() -> None:
    import service.errors as errors

    drawn = errors.__doc__ or ""
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, KindlyError)
    ]
    assert {c.__name__ for c in classes} >= {"Rejected", "CalendarDataError"}
    assert all(c.__name__ in drawn for c in classes)

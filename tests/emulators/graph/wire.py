"""Graph's wire formats: date-times with seven fractional digits, zone names, error bodies."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

#: samples over a year: two zones with the same offsets at all of them are taken as one
_SAMPLES = tuple(datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(days=7 * i) for i in range(53))


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """An IANA zone for an IANA or Windows name (Graph accepts both); KeyError if neither."""
    for candidate in (name, WINDOWS_TO_OLSON.get(name)):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    raise KeyError(name)


#: CLDR maps these per territory; icalendar's table keeps only each Windows zone's main city
_TERRITORY = {
    "Europe/Amsterdam": "W. Europe Standard Time",
    "Europe/Brussels": "Romance Standard Time",
    "Europe/London": "GMT Standard Time",
    "Asia/Kolkata": "India Standard Time",
}


def windows_name(iana: str) -> str:
    """The Windows name Exchange would show for an IANA zone (mailboxSettings.timeZone)."""
    if iana in _TERRITORY:
        return _TERRITORY[iana]
    for windows, olson in WINDOWS_TO_OLSON.items():
        if olson == iana:
            return windows
    target = ZoneInfo(iana)
    offsets = [moment.astimezone(target).utcoffset() for moment in _SAMPLES]
    for windows, olson in sorted(WINDOWS_TO_OLSON.items()):
        try:
            other = ZoneInfo(olson)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        if [moment.astimezone(other).utcoffset() for moment in _SAMPLES] == offsets:
            return windows
    return "UTC"


def format_local(moment: datetime, tz: ZoneInfo) -> str:
    """``2026-11-16T09:00:00.0000000``: wall time in ``tz``, seven fractional digits."""
    return moment.astimezone(tz).replace(tzinfo=None).isoformat(timespec="microseconds") + "0"


def date_time_time_zone(moment: datetime, tz_name: str) -> dict[str, str]:
    """A Graph dateTimeTimeZone in the zone the client asked for."""
    return {"dateTime": format_local(moment, zone(tz_name)), "timeZone": tz_name}


def format_offset(moment: datetime) -> str:
    """A Graph DateTimeOffset in UTC, as ``originalStart`` carries it."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def parse_local(value: dict[str, Any]) -> datetime:
    """A dateTimeTimeZone sent by a client, as a tz-aware instant (KeyError/ValueError if bad)."""
    text = str(value["dateTime"])
    head, _, fraction = text.partition(".")
    moment = datetime.fromisoformat(head)
    if fraction:
        moment += timedelta(microseconds=round(int(fraction.ljust(7, "0")[:7]) / 10))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(str(value.get("timeZone") or "UTC")))
    return moment


def error_body(code: str, message: str) -> bytes:
    """Graph's error shape, with the innerError Microsoft adds to every failure."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    request_id = str(uuid.uuid4())
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": now, "request-id": request_id, "client-request-id": request_id},
        }
    }
    return json.dumps(body).encode()

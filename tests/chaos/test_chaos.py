"""The chaos run (tests/chaos/chaos.py): a small one by default, the full one with -m chaos.

Both need the redis-server binary (Debian package redis-server).
"""

from __future__ import annotations

import pytest

from tests.chaos.chaos import Config, run


def _report(figures: object) -> str:
    return "\n".join(f"{k}: {v}" for k, v in vars(figures).items())


class TestQuickChaos:
    """Kills, a Redis restart, 20 % faults and 25 h of downtime still give one digest each."""

    def test_exactly_once(self) -> None:
        figures = run(Config(managers=12, kills=3, crash_times=0, deadline_seconds=120))
        print(_report(figures))
        assert figures.kills == 3
        assert figures.redis_restarts == 1
        assert figures.provider_faults > 0
        assert figures.deliveries == figures.distinct_message_ids == 12
        assert figures.unservable_failed == 2  # a broken calendar, a 404: failed, alone
        assert figures.exactly_once, _report(figures)


@pytest.mark.chaos
class TestFullChaos:
    """200 managers, 20 SIGKILLs, one job crashing six times: each manager exactly one digest."""

    def test_exactly_once(self) -> None:
        figures = run(Config())
        print(_report(figures))
        assert figures.kills >= 20
        assert figures.crashes == 6
        assert figures.managers_with_one_digest == 200
        assert figures.exactly_once, _report(figures)

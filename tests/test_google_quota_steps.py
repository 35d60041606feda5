"""Google's quotas shared in Redis are counted a few slots at a time and spent in the
process (``connectors.quota.Steps``): a manager's handful of requests cost one Redis
round trip for each quota, not one a request, and a slot is spent soon after it was
counted or not at all."""

from __future__ import annotations

import asyncio
from pathlib import Path

from connectors.google_transport import PROJECT_STEP_SPEND, USER_STEP_SPEND, Rates
from connectors.quota import QUOTA_STEP, Quota, SharedQuotas, Steps, quota_step
from tests.emulators.google import GoogleEmulator
from tests.google_fixtures import NO_RETRIES, connector_for, running, write_org
from tests.own_redis import OwnRedis, own_redis

__all__ = ["own_redis"]  # the fixture, imported for its name

MARIA = "maria@example.com"
SPAN = Rates().window + Rates().slack


def counted(quotas: SharedQuotas, quota: Quota, *key: str) -> int:
    """Slots of ``quota`` counted in Redis for ``key`` in its current window."""
    stats = quotas._sync.get_window_stats(quota.item(), *key)
    return quota.limit - stats.remaining


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_steps_follow_the_published_quotas() -> None:
    assert quota_step(Quota(Rates().per_project, SPAN)) == QUOTA_STEP
    assert quota_step(Quota(Rates().per_user, SPAN)) == 6
    assert quota_step(Quota(99, SPAN)) == 1


def test_a_managers_requests_count_one_step(tmp_path: Path, own_redis: OwnRedis) -> None:
    """Seven requests of one user against the emulator: two steps of the user's quota
    (six each) and one of the project's (sixteen) are counted, not seven of each."""
    quotas = SharedQuotas(own_redis.url)

    async def run(emulator: GoogleEmulator) -> None:
        connector = connector_for(emulator, backoff=NO_RETRIES, quotas=quotas)
        try:
            for _ in range(7):
                await connector.timezone(MARIA)
        finally:
            await connector.aclose()

    with running(write_org(tmp_path / "org", {})) as emulator:
        asyncio.run(run(emulator))
        project = emulator.service_account()["project_id"]
        assert emulator.counts(MARIA)["settings.get"] == 7
    # each window is counted a step's spending time longer
    user = Quota(Rates().per_user, SPAN + USER_STEP_SPEND)
    assert counted(quotas, user, "google", project, MARIA) == 2 * 6
    whole = Quota(Rates().per_project, SPAN + PROJECT_STEP_SPEND)
    assert counted(quotas, whole, "google", project) == QUOTA_STEP


def test_slots_not_spent_in_time_are_not_spent(own_redis: OwnRedis) -> None:
    quotas, clock = SharedQuotas(own_redis.url), Clock()
    steps = Steps(quotas, Quota(1_000, SPAN), reason="test", clock=clock)
    steps.acquire("t", "a")  # counts a step of ten
    clock.now += steps.spend / 2
    steps.acquire("t", "a")  # spends one of them
    assert counted(quotas, steps.quota, "t", "a") == 10
    clock.now += steps.spend  # the rest are too old to send now
    steps.acquire("t", "a")
    assert counted(quotas, steps.quota, "t", "a") == 20


def test_keys_too_old_are_forgotten(own_redis: OwnRedis) -> None:
    quotas, clock = SharedQuotas(own_redis.url), Clock()
    steps = Steps(quotas, Quota(1_000, SPAN), reason="test", clock=clock)
    for name in ("a", "b", "c"):
        steps.acquire("t", name)
    clock.now += 2 * steps.spend
    steps.acquire("t", "d")
    assert list(steps._left) == [("t", "d")]


def test_a_small_quota_is_counted_one_at_a_time(own_redis: OwnRedis) -> None:
    quotas = SharedQuotas(own_redis.url)
    steps = Steps(quotas, Quota(8, SPAN), reason="test")
    steps.acquire("t", "a")
    assert (steps.step, steps.quota, steps._left) == (1, Quota(8, SPAN), {})
    assert counted(quotas, steps.quota, "t", "a") == 1

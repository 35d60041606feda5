"""The demo organisations through the real ``kindly`` command: ICS and Microsoft 365 agree.

The Graph emulator serves an ``examples/`` folder over HTTPS (``tests/scenarios.py``: the
November demo and the holiday week); ``kindly run --once --json`` runs as a subprocess
with a clean environment, as an admin would run it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunKindly
from tests.emulators.graph import CertificatePair, GraphEmulator
from tests.scenarios import DEMO, SCENARIOS, Scenario

SENDER = "kindly@example.com"
MANAGERS = DEMO.managers


@pytest.fixture
def scenario() -> Scenario:
    """The November demo, unless a test parametrizes ``scenario``."""
    return DEMO


@pytest.fixture
def graph(scenario: Scenario, tls: CertificatePair) -> Iterator[GraphEmulator]:
    with GraphEmulator(scenario.folder, tls=tls, page_size=5, mailboxes=[SENDER]) as running:
        yield running


def outlook_env(
    graph: GraphEmulator, tmp_path: Path, scenario: Scenario = DEMO, **extra: str
) -> dict[str, str]:
    return graph.environment() | {
        "KINDLY_ROSTER_FILE": str(scenario.roster),
        "KINDLY_EMAIL__OUTBOX_DIR": str(tmp_path / "outbox"),
        **extra,
    }


def run_json(
    run_kindly: RunKindly, env: dict[str, str], scenario: Scenario = DEMO
) -> dict[str, dict[str, Any]]:
    done = run_kindly("run", "--once", "--json", "--now", scenario.now, env=env)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return {line["manager"]: line for line in lines}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
class TestParity:
    """ICS files and the same calendars served by Graph give the same decisions."""

    def test_ics_and_outlook_agree(
        self, run_kindly: RunKindly, graph: GraphEmulator, tmp_path: Path, scenario: Scenario
    ) -> None:
        ics = run_json(
            run_kindly,
            {
                "KINDLY_CALENDAR": "ics",
                "KINDLY_ROSTER_FILE": str(scenario.roster),
                "KINDLY_ICS__DIR": str(scenario.calendars),
                "KINDLY_ICS__HOLDS_DIR": str(tmp_path / "holds"),
                "KINDLY_EMAIL__OUTBOX_DIR": str(tmp_path / "ics-outbox"),
            },
            scenario,
        )
        outlook = run_json(run_kindly, outlook_env(graph, tmp_path, scenario), scenario)
        assert sorted(ics) == sorted(outlook) == scenario.managers
        assert scenario.contracts(outlook) == scenario.contracts(ics) == scenario.expected
        for manager in scenario.managers:
            assert outlook[manager]["errors"] == []
            assert all(hold["created"] for hold in outlook[manager]["holds"])

    def test_second_run_changes_nothing(
        self, run_kindly: RunKindly, graph: GraphEmulator, tmp_path: Path, scenario: Scenario
    ) -> None:
        env = outlook_env(graph, tmp_path, scenario)
        first = run_json(run_kindly, env, scenario)
        managers = scenario.managers
        created = {m: len(graph.created_events(m)) for m in managers}
        again = run_json(run_kindly, env, scenario)
        assert {m: len(graph.created_events(m)) for m in managers} == created
        assert created == {m: scenario.holds(m) for m in managers}
        assert scenario.contracts(again) == scenario.contracts(first) == scenario.expected
        for manager in managers:
            assert not any(hold["created"] for hold in again[manager]["holds"])
            assert first[manager]["email"]["sent"]
            assert not again[manager]["email"]["sent"]
        assert graph.count("events.create", None) == sum(created.values())
        assert graph.count("events.list", None) == 0


class TestGraphDelivery:
    """With KINDLY_EMAIL__BACKEND=graph, two runs send one digest per manager."""

    def test_one_send_mail_per_manager(
        self, run_kindly: RunKindly, graph: GraphEmulator, tmp_path: Path
    ) -> None:
        env = outlook_env(graph, tmp_path, KINDLY_EMAIL__BACKEND="graph", KINDLY_EMAIL__FROM=SENDER)
        first = run_json(run_kindly, env)
        again = run_json(run_kindly, env)
        assert graph.count("sendMail", SENDER) == len(MANAGERS)
        assert graph.count("sentItems", SENDER) == 2  # one read per run
        assert sorted(to for mail in graph.sent for to in mail.to) == MANAGERS
        assert {m.sender for m in graph.sent} == {SENDER}
        for manager in MANAGERS:
            assert first[manager]["email"]["sent"]
            assert not again[manager]["email"]["sent"]
            assert first[manager]["email"]["message_id"] == again[manager]["email"]["message_id"]
        # no .eml: the outbox holds only the ledger of what Graph was asked to send
        assert not list((tmp_path / "outbox").rglob("*.eml"))
        [ledger] = (tmp_path / "outbox").glob("*/ledger.jsonl")
        assert len(ledger.read_text().splitlines()) == len(MANAGERS)


class TestRequestBudget:
    """What one run of the demo costs Graph, per manager and kind (``pytest -s`` prints it)."""

    def test_counts_and_peak(
        self, run_kindly: RunKindly, graph: GraphEmulator, tmp_path: Path
    ) -> None:
        graph.latency = 0.005  # requests in flight long enough for concurrency to show
        env = outlook_env(graph, tmp_path, KINDLY_EMAIL__BACKEND="graph", KINDLY_EMAIL__FROM=SENDER)
        run_json(run_kindly, env)
        counts, peak = graph.counts(), graph.peak
        print("\nGraph requests for one run of the demo org (page size 5):")
        for mailbox, kinds in counts.items():
            listed = ", ".join(f"{kind} {n}" for kind, n in kinds.items())
            print(f"  {mailbox:<20} {listed}  (peak concurrency {peak.get(mailbox, 0)})")
        print(f"  round trips in all: {graph.round_trips()}")
        assert max(peak.values()) <= 4
        assert all(entry.status < 400 for entry in graph.log)
        for manager in MANAGERS:
            kinds = counts[manager]
            holds = DEMO.holds(manager)
            assert kinds["getSchedule"] == 1
            # one POST per hold: no look-up first (the calendarView shows earlier holds)
            assert kinds["events.create"] == holds
            assert "events.list" not in kinds
            assert kinds.get("mailboxSettings", 0) <= 1
            assert kinds["calendarView"] <= 40  # 5 events a page over 56 days back, 35 ahead
        # Sent Items are read once for the run, not once per digest
        assert counts[SENDER] == {"sendMail": 3, "sentItems": 1}

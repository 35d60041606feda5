"""The demo organisations the parity tests run on every calendar, with their hand-worked weeks.

Each lives in a folder of ``examples/`` (``roster.yaml`` and ``calendars/*.ics``), is
pinned at one instant, and has its expected ``--json`` decisions in ``tests/expected/``,
worked out by hand in the folder's README.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from tests.conftest import EXAMPLES, REPO


@dataclass(frozen=True)
class Scenario:
    name: str
    folder: Path
    #: the pinned clock, as ``kindly run --now`` takes it
    now: str
    expected_file: str

    @property
    def roster(self) -> Path:
        return self.folder / "roster.yaml"

    @property
    def calendars(self) -> Path:
        return self.folder / "calendars"

    @cached_property
    def expected(self) -> dict[str, dict[str, Any]]:
        """Each manager's hand-worked decisions: the ``--json`` fields the file names."""
        path = REPO / "tests" / "expected" / self.expected_file
        loaded: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
        return loaded

    @property
    def managers(self) -> list[str]:
        return sorted(self.expected)

    def holds(self, manager: str) -> int:
        return len(self.expected[manager]["holds"])

    def contract(self, line: Mapping[str, Any]) -> dict[str, Any]:
        """The part of a ``--json`` line the expected file pins down (a hold's time and
        report, not its link or whether this run created it)."""
        fields = next(iter(self.expected.values())).keys()
        found = {field: line[field] for field in fields}
        found["holds"] = [
            {k: hold[k] for k in ("report", "start", "end")} for hold in line["holds"]
        ]
        return found

    def contracts(self, lines: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        return {manager: self.contract(line) for manager, line in lines.items()}

    def __str__(self) -> str:
        return self.name


#: three managers, fourteen reports, Monday 23 November 2026 (examples/README.md)
DEMO = Scenario("demo", EXAMPLES, "2026-11-23T08:00:00+01:00", "demo_2026-11-23.json")
#: Christmas week: leave, holidays, part-time, a manager away (examples/holiday-week/README.md)
HOLIDAY = Scenario(
    "holiday-week",
    EXAMPLES / "holiday-week",
    "2026-12-21T08:00:00+01:00",
    "holiday_2026-12-21.json",
)
SCENARIOS = [DEMO, HOLIDAY]

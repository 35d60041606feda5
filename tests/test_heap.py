"""The collector is set once the roster is loaded, by the run and by the worker.

Each case runs in a child Python so this test process keeps CPython's defaults.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from service import heap

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

#: runs ``kindly run --once --dry-run`` on the demo, then prints what the collector is set to
_RUN_THEN_SHOW = """
import atexit, gc, json, sys
atexit.register(lambda: print(json.dumps(
    {"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()}), file=sys.stderr))
sys.argv = ["kindly", "run", "--once", "--dry-run", "--json", "--now", "2026-11-23T08:00:00+01:00"]
from service.cli import main
main()
"""


def _child(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KINDLY_")}
    env |= {
        "KINDLY_ROSTER_FILE": str(EXAMPLES / "roster.yaml"),
        "KINDLY_ICS__DIR": str(EXAMPLES / "calendars"),
        "KINDLY_ICS__HOLDS_DIR": str(tmp_path / "holds"),
        "KINDLY_EMAIL__OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_settle_freezes_once_and_sets_the_thresholds(tmp_path: Path) -> None:
    done = _child(
        "import gc, json; from service import heap\n"
        "defaults = gc.get_threshold()\n"
        "heap.settle(); first = gc.get_freeze_count()\n"
        "[object() for _ in range(10)]; keep = [[] for _ in range(100)]\n"
        "heap.settle(); second = gc.get_freeze_count()\n"
        "print(json.dumps([defaults, gc.get_threshold(), first, second]))",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    defaults, threshold, first, second = json.loads(done.stdout)
    assert defaults == [700, 10, 10]
    assert threshold == [heap.YOUNG, heap.MIDDLE, heap.FULL]
    assert first > 0
    assert second == first  # a second call freezes nothing more


def test_a_run_settles_the_heap_after_reading_the_roster(tmp_path: Path) -> None:
    done = _child(_RUN_THEN_SHOW, tmp_path)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stderr.strip().splitlines()[-1])
    assert shown["threshold"] == [heap.YOUNG, heap.MIDDLE, heap.FULL]
    # the roster's managers and reports are among the frozen objects
    assert shown["frozen"] > 10_000
    assert len(done.stdout.splitlines()) == 3  # the demo's three managers, all run

"""The README's "Try it" section, every command as written, on a fresh copy of the repository.

The copy holds the files git tracks or would track (so uncommitted work is tried too)
and no ``.venv``: the first ``make demo`` builds the virtual environment for real,
with the interpreter running this test (``PYTHON=``), as a newcomer's would be. pip
takes the pinned wheels from its cache or the package index; with a warm cache the
whole test takes about half a minute. Nothing is shared with this checkout's ``.venv``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, clean_environ
from tests.scenarios import HOLIDAY

#: the commands of the section, in order; a README edit that changes them updates this list
EXPECTED = [
    "make demo",
    "make demo",
    "make preview",
    "make demo-reset",
    "KINDLY_ROSTER_FILE=examples/roster.yaml KINDLY_ICS__DIR=examples/calendars "
    "KINDLY_ICS__HOLDS_DIR=var/demo/holds KINDLY_EMAIL__OUTBOX_DIR=var/demo/outbox "
    ".venv/bin/kindly run --once --now 2026-11-23T08:00:00+01:00 --json --dry-run",
    "make demo-holiday",
]
#: pip's complaint about this machine's pip.conf (index folders that do not exist), not Kindly's
MACHINE_PIP_CONFIG = re.compile(r"^WARNING: Location 'file:///\S+' is ignored")


def try_it_commands(readme: str) -> list[str]:
    """The shell commands of the "Try it" section: continuation lines joined, comments cut."""
    section = readme.split("\n## Try it\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL):
        for command in block.replace("\\\n", " ").splitlines():
            command = " ".join(command.split("#", 1)[0].split())
            if command:
                commands.append(command)
    return commands


def fresh_copy(into: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a file deleted in the working tree is not copied
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    return into


def warnings_in(output: str) -> list[str]:
    return [
        line
        for line in output.splitlines()
        # a --json line carries a "warnings" field: data, not a warning
        if re.search(r"warn|deprecat", line, re.IGNORECASE)
        and not MACHINE_PIP_CONFIG.match(line)
        and not line.startswith("{")
    ]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, Path]]:
    """Each command with its output (stdout and stderr together) and the copy it ran in."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    copy = fresh_copy(tmp_path_factory.mktemp("fresh-clone"))
    commands = try_it_commands((copy / "README.md").read_text(encoding="utf-8"))
    assert commands == EXPECTED
    env = clean_environ({"PYTHON": getattr(sys, "_base_executable", sys.executable)})
    env.pop("VIRTUAL_ENV", None)
    results = []
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=copy,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}"
        results.append((command, done.stdout, copy))
    return results


class TestTryIt:
    """A newcomer's first commands work, quietly, and do what the README says."""

    def test_no_warning_wall(self, ran: list[tuple[str, str, Path]]) -> None:
        for command, output, _ in ran:
            assert warnings_in(output) == [], command

    def test_demo(self, ran: list[tuple[str, str, Path]]) -> None:
        (_, first, _), (_, second, _) = ran[0], ran[1]
        assert "Kindly — weekly run" in first
        for manager in ("anouk@example.com", "daniel@example.com", "priya@example.com"):
            assert f"var/demo/outbox/2026-W48/{manager}.eml" in first
        assert second.count("already sent") == 3

    def test_preview(self, ran: list[tuple[str, str, Path]]) -> None:
        _, output, copy = ran[2]
        assert "Wrote digest.html" in output
        assert "Anouk" in (copy / "digest.html").read_text(encoding="utf-8")

    def test_reset_then_json(self, ran: list[tuple[str, str, Path]]) -> None:
        _, output, copy = ran[4]
        lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        assert [line["manager"] for line in lines] == [
            "anouk@example.com",
            "daniel@example.com",
            "priya@example.com",
        ]
        assert not (copy / "var" / "demo" / "outbox").exists()  # reset, and a dry run sends nothing

    def test_holiday_week_shows_the_hand_worked_week(
        self, ran: list[tuple[str, str, Path]]
    ) -> None:
        _, output, copy = ran[5]
        lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        assert HOLIDAY.contracts({line["manager"]: line for line in lines}) == HOLIDAY.expected
        outbox = copy / "var" / "demo" / "holiday-week" / "outbox"
        assert sorted(p.name for p in outbox.rglob("*.eml")) == [
            "eva@example.com.eml",
            "pieter@example.com.eml",
        ]

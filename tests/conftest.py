"""Shared fixtures: running the installed `kindly` command as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

#: registered here, in the root conftest, so pytest rewrites its asserts before any test imports it
pytest_plugins = ["tests.graph_fixtures"]

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
KINDLY = Path(sys.executable).with_name("kindly")

RunKindly = Callable[..., subprocess.CompletedProcess[str]]


def clean_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment without any KINDLY_ variable from the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")}
    env.update(extra or {})
    return env


def runner(cwd: Path) -> RunKindly:
    """Run `kindly ARGS...` in ``cwd`` (so no .env is read), no stdin, clean environment."""

    def run(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KINDLY), *args],
            cwd=cwd,
            env=clean_environ(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


@pytest.fixture
def run_kindly(tmp_path: Path) -> RunKindly:
    """`kindly` in a scratch folder, as a user would run it."""
    return runner(tmp_path)

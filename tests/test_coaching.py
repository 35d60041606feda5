"""Coaching fidelity: every principle of docs/design.md's coaching table shows in every digest.

Each demo manager's digest is rendered through the pipeline (dry run: no holds
written, nothing sent) in English and in Dutch, and each principle's block is
looked for in its plain-text part, in that language.

Golden digests: ``tests/golden/<manager>-<language>.txt`` are the plain-text
parts of two demo digests, reviewed by eye. After a deliberate change to the
digest, regenerate them and review the diff before committing::

    KINDLY_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_coaching.py -k golden
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from connectors.ics import from_settings
from connectors.mail.outbox import FileMailer
from service.digest import REFLECTIONS
from service.i18n import SUPPORTED_LANGUAGES, translator
from service.pipeline import RunContext, run_manager
from service.roster import load_roster_file
from service.settings import Settings
from tests.conftest import EXAMPLES

GOLDEN = Path(__file__).resolve().parent / "golden"
DEMO_NOW = datetime.fromisoformat("2026-11-23T08:00:00+01:00")
SUPPORT_URL = "https://intranet.example.com/wellbeing"
ROSTER = load_roster_file(EXAMPLES / "roster.yaml")
MANAGERS = tuple(m.email for m in ROSTER.managers)
DIGESTS = [(m, lang) for m in MANAGERS for lang in SUPPORTED_LANGUAGES]
IDS = [f"{m.partition('@')[0]}-{lang}" for m, lang in DIGESTS]
#: reports with no 1:1 in the lookback window, or new (examples/README.md)
WELCOME = {"anouk@example.com": ("Femke",), "daniel@example.com": ("Tom",)}
#: the digests kept as golden files: each manager reads their own language
GOLDEN_DIGESTS = (("anouk@example.com", "nl"), ("daniel@example.com", "en"))


async def _render(manager: str, language: str, tmp: Path, support_url: str | None) -> str:
    settings = Settings(
        _env_file=None,  # a developer's .env must not change the digests
        roster_file=EXAMPLES / "roster.yaml",
        ics={"dir": EXAMPLES / "calendars", "holds_dir": tmp / "holds"},
        email={"outbox_dir": tmp / "outbox"},
        support_url=support_url,
    )
    chosen = ROSTER.manager(manager)
    assert chosen is not None
    ctx = RunContext(settings, from_settings(settings), FileMailer(tmp / "outbox"))
    try:
        outcome = await run_manager(
            replace(chosen, language=language), ctx, now=DEMO_NOW, dry_run=True
        )
    finally:
        await ctx.connector.aclose()
        await ctx.mailer.aclose()
    assert outcome.rendered is not None, outcome.errors
    return outcome.rendered.text


@pytest.fixture(scope="module")
def digests(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], str]:
    """The plain-text digest of every demo manager in both languages (no support URL set)."""
    tmp = tmp_path_factory.mktemp("coaching")

    async def all_of_them() -> list[str]:
        return list(await asyncio.gather(*(_render(m, lg, tmp, None) for m, lg in DIGESTS)))

    with pytest.MonkeyPatch.context() as env:
        # a developer's own KINDLY_ variables must not change the digests either
        for name in [n for n in os.environ if n.startswith("KINDLY_")]:
            env.delenv(name)
        return dict(zip(DIGESTS, asyncio.run(all_of_them()), strict=True))


def agendas(text: str, language: str) -> int:
    return text.count(translator(language).gettext("Agenda: the person first"))


def numbered(text: str, number: int, *titles: str) -> int:
    """How many agenda items number ``number`` carry one of these block titles."""
    pattern = rf"^{number}\. (?:{'|'.join(re.escape(t) for t in titles)}): “"
    return len(re.findall(pattern, text, flags=re.MULTILINE))


class TestEveryPrinciple:
    """Each principle of the coaching table has its block in every demo digest, in en and nl."""

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_regular_one_on_ones(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        assert t.gettext("At a glance").upper() in text
        manager = ROSTER.manager(key[0])
        assert manager is not None
        assert all(f"* {r.name}: " in text for r in manager.reports)
        assert t.gettext("Time held this week").upper() in text
        for name in WELCOME.get(key[0], ()):
            section = text.split(f"== {name}")[1].split("\n== ")[0]
            assert f"1. {t.gettext('Getting to know you')}: “" in section

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_lead_with_the_person(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        count = agendas(text, key[1])
        assert count >= 2
        titles = (t.gettext("Personal check-in"), t.gettext("Getting to know you"))
        assert numbered(text, 1, *titles) == count

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_listen_first(self, digests: dict[tuple[str, str], str], key: tuple[str, str]) -> None:
        text, t = digests[key], translator(key[1])
        assert numbered(text, 2, t.gettext("Their topics first")) == agendas(text, key[1])

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_clarity_is_kindness(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        count = agendas(text, key[1])
        assert numbered(text, 3, t.gettext("What success looks like")) == count
        assert text.count(f"   {t.gettext('Expectations')}:\n") == count

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_recognise_small_wins(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        assert numbered(text, 4, t.gettext("A recent win")) == agendas(text, key[1])

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_feedback_both_ways(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        count = agendas(text, key[1])
        assert numbered(text, 5, t.gettext("Feedback both ways")) == count
        asks = t.gettext(
            "Ask “What should I do differently?”, then share one specific, timely observation."
        )
        assert text.count(asks) == count

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_psychological_safety(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        assert (
            t.gettext(
                "Kindly never invites anyone by itself: a surprise invitation can read as "
                "“you’re in trouble”, so you choose how and when to ask."
            )
            in text
        )
        for name in WELCOME.get(key[0], ()):
            section = text.split(f"== {name}")[1].split("\n== ")[0]
            assert name in section.split(t.gettext("Agenda: the person first"))[0].split("\n")[4]

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_know_your_role_and_limits(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        assert numbered(text, 6, t.gettext("Support")) == agendas(text, key[1])
        assert (
            t.gettext(
                "Know your role and its limits: you are not expected to solve everything "
                "yourself. When something heavier comes up, such as health, grief or exhaustion, "
                "listen, then point to HR or your organisation’s employee assistance programme."
            )
            in text
        )

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    def test_support_resources_from_settings(self, language: str, tmp_path: Path) -> None:
        text = asyncio.run(_render("anouk@example.com", language, tmp_path, SUPPORT_URL))
        femke = text.split("== Femke")[1].split("\n== ")[0]
        assert f": {SUPPORT_URL}" in femke  # a new hire's agenda links the resources
        assert text.rstrip().endswith(SUPPORT_URL)  # and the footer always does

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_boundaries_and_privacy(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        privacy = t.gettext(
            "Your personal notes stay in your own calendar and mailbox. Write what you agree "
            "under “Agreed expectations” in a 1:1’s description, one line per dash, and Kindly "
            "recaps it here the week after. Kindly never reads meeting titles and keeps no copy "
            "of your notes."
        )
        assert privacy in text
        assert (
            t.gettext(
                "Once a week Kindly reads your calendar, notices who is due for a 1:1, holds a "
                "tentative slot in your working hours and writes you this note."
            )
            in text
        )

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_reflect_and_adjust(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        text, t = digests[key], translator(key[1])
        assert t.gettext("A question for you").upper() in text
        assert any(t.gettext(q) in text for q in REFLECTIONS)
        assert t.gettext("Team coverage").upper() in text
        coverage = text.split(t.gettext("Team coverage").upper())[1]
        assert re.search(r"^\S.*\d+%", coverage, flags=re.MULTILINE), "no trend line"

    @pytest.mark.parametrize("key", DIGESTS, ids=IDS)
    def test_transparency(self, digests: dict[tuple[str, str], str], key: tuple[str, str]) -> None:
        text, t = digests[key], translator(key[1])
        block = text.split(t.gettext("What changed since last week").upper())[1].split("\n== ")[0]
        nothing = t.gettext("No 1:1 was cancelled, declined or moved since last week.")
        assert nothing in block or block.lstrip().startswith("* ")


class TestGolden:
    """Two demo digests, reviewed by eye, stay exactly as reviewed until deliberately updated."""

    @pytest.mark.parametrize(
        "key", GOLDEN_DIGESTS, ids=[f"{m.partition('@')[0]}-{lg}" for m, lg in GOLDEN_DIGESTS]
    )
    def test_golden_text_digest(
        self, digests: dict[tuple[str, str], str], key: tuple[str, str]
    ) -> None:
        manager, language = key
        golden = GOLDEN / f"{manager.partition('@')[0]}-{language}.txt"
        if os.environ.get("KINDLY_UPDATE_GOLDEN") == "1":
            golden.write_text(digests[key], encoding="utf-8")
        assert golden.exists(), f"{golden} is missing; create it with KINDLY_UPDATE_GOLDEN=1"
        assert digests[key] == golden.read_text(encoding="utf-8"), (
            f"{golden.name} differs; if the change is intended, regenerate with "
            "KINDLY_UPDATE_GOLDEN=1 and review the diff"
        )

"""The demo digests in a real browser: headless Chromium at desktop and phone widths.

Every demo manager's ``kindly preview`` is rendered in English and in Dutch and
measured at 600 and 375 px; the digest in the manager's own language is also
photographed at both widths, into ``var/artifacts/screenshots/``
(``<manager>-<language>-<width>.png``), for a human to look at. Skipped, with
the reason, only where Chromium can neither be found nor installed
(``tests/browser.py``).
"""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from service.i18n import SUPPORTED_LANGUAGES, translator
from tests.browser import BrowserUnavailable, Measurement, chromium, measure, screenshot
from tests.conftest import EXAMPLES, KINDLY, REPO, clean_environ
from tests.test_i18n import dutch_catalog, english_fragments, extracted

pytestmark = pytest.mark.browser

SCREENSHOTS = REPO / "var" / "artifacts" / "screenshots"
DEMO_NOW = "2026-11-23T08:00:00+01:00"
WIDTHS = (600, 375)
ROSTER = yaml.safe_load((EXAMPLES / "roster.yaml").read_text(encoding="utf-8"))
MANAGERS = tuple(m["email"] for m in ROSTER["managers"])
REPORTS = {m["email"]: tuple(r["name"] for r in m["reports"]) for m in ROSTER["managers"]}
#: the section headings every digest shows, as English msgids
SECTIONS = (
    "At a glance",
    "Team coverage",
    "Changes",
    "A question for you",
)
PAGES = [(m, lang) for m in MANAGERS for lang in SUPPORTED_LANGUAGES]
#: the language each manager reads (roster, else KINDLY_LANGUAGE's default)
OWN_LANGUAGE = {m["email"]: m.get("language", "en") for m in ROSTER["managers"]}


@dataclass(frozen=True, slots=True)
class Seen:
    """One digest as Chromium laid it out at one width, and its screenshot."""

    manager: str
    language: str
    html: str
    layout: Measurement
    #: only for the language the roster gives the manager (Chromium runs are the slow part)
    screenshot: Path | None


@pytest.fixture(scope="session")
def browser() -> Path:
    """Chromium, installed from Debian once per session when it is missing."""
    try:
        return chromium()
    except BrowserUnavailable as exc:
        pytest.skip(f"headless Chromium is not available: {exc}")


def _preview(manager: str, language: str, workdir: Path) -> str:
    """``kindly preview`` as the Makefile runs it, with every manager in one language."""
    roster = {"managers": [{**m, "language": language} for m in ROSTER["managers"]]}
    folder = workdir / language
    folder.mkdir(exist_ok=True)
    roster_file = folder / "roster.yaml"
    roster_file.write_text(yaml.safe_dump(roster, allow_unicode=True), encoding="utf-8")
    out = folder / f"{manager}.html"
    done = subprocess.run(
        [str(KINDLY), "preview", "--manager", manager, "--now", DEMO_NOW, "--out", str(out)],
        cwd=workdir,
        env=clean_environ(
            {
                "KINDLY_ROSTER_FILE": str(roster_file),
                "KINDLY_ICS__DIR": str(EXAMPLES / "calendars"),
                "KINDLY_ICS__HOLDS_DIR": str(workdir / "holds"),
                "KINDLY_EMAIL__OUTBOX_DIR": str(workdir / "outbox"),
            }
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out.read_text(encoding="utf-8")


def _shoot(view: tuple[str, str, int], html: str, height: int) -> Path:
    manager, language, width = view
    name = f"{manager.partition('@')[0]}-{language}-{width}"
    return screenshot(html, width, height, SCREENSHOTS / f"{name}.png")


@pytest.fixture(scope="session")
def seen(
    browser: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str, int], Seen]:
    """Every demo digest, in both languages, at both widths: measured in one Chromium run,
    then photographed two at a time."""
    workdir = tmp_path_factory.mktemp("browser")
    with ThreadPoolExecutor(max_workers=2) as pool:
        html = dict(
            zip(PAGES, pool.map(lambda p: _preview(p[0], p[1], workdir), PAGES), strict=True)
        )
        keys = {"/".join(map(str, view)): view for view in VIEWS}
        layouts = measure({k: (html[v[:2]], v[2]) for k, v in keys.items()}, workdir)
        by_view = {view: layouts[key] for key, view in keys.items()}
        shots = dict(
            zip(
                SHOT_VIEWS,
                pool.map(lambda v: _shoot(v, html[v[:2]], by_view[v].height), SHOT_VIEWS),
                strict=True,
            )
        )
        return {
            view: Seen(view[0], view[1], html[view[:2]], by_view[view], shots.get(view))
            for view in VIEWS
        }


VIEWS = [(m, lang, w) for m, lang in PAGES for w in WIDTHS]
IDS = [f"{m.partition('@')[0]}-{lang}-{w}" for m, lang, w in VIEWS]
SHOT_VIEWS = [(m, lang, w) for m, lang, w in VIEWS if OWN_LANGUAGE[m] == lang]


class TestLayout:
    """Each digest fits its viewport at desktop and phone widths, and is photographed."""

    @pytest.mark.parametrize("view", VIEWS, ids=IDS)
    def test_no_horizontal_overflow(
        self, seen: dict[tuple[str, str, int], Seen], view: tuple[str, str, int]
    ) -> None:
        page = seen[view]
        assert page.layout.width == view[2]
        assert page.layout.overflow == 0, (
            f"{page.layout.scroll_width}px wide in a {view[2]}px viewport"
        )

    @pytest.mark.parametrize(
        "view", SHOT_VIEWS, ids=[f"{m.partition('@')[0]}-{lg}-{w}" for m, lg, w in SHOT_VIEWS]
    )
    def test_screenshot_saved(
        self, seen: dict[tuple[str, str, int], Seen], view: tuple[str, str, int]
    ) -> None:
        shot = seen[view].screenshot
        assert shot is not None
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 20_000  # a page, not a blank rectangle

    def test_phone_layout_is_taller(self, seen: dict[tuple[str, str, int], Seen]) -> None:
        for manager, language in PAGES:
            desktop, phone = (seen[manager, language, w].layout for w in WIDTHS)
            assert phone.height > desktop.height > 1000


class TestSections:
    """Every section and every report shows on screen, in the digest's language."""

    @pytest.mark.parametrize("view", VIEWS, ids=IDS)
    def test_every_section_is_visible(
        self, seen: dict[tuple[str, str, int], Seen], view: tuple[str, str, int]
    ) -> None:
        page = seen[view]
        t = translator(page.language)
        missing = [h for h in SECTIONS if t.gettext(h) not in page.layout.text]
        missing += [name for name in REPORTS[page.manager] if name not in page.layout.text]
        assert missing == []

    @pytest.mark.parametrize("page", PAGES, ids=[f"{m.partition('@')[0]}-{lg}" for m, lg in PAGES])
    def test_html_declares_its_language(
        self, seen: dict[tuple[str, str, int], Seen], page: tuple[str, str]
    ) -> None:
        html = seen[(*page, WIDTHS[0])].html
        assert f'<html lang="{page[1]}">' in html


class TestTranslation:
    """What a Dutch reader sees on screen contains no English text of ours."""

    @pytest.mark.parametrize("manager", MANAGERS)
    def test_no_untranslated_string(
        self, seen: dict[tuple[str, str, int], Seen], manager: str
    ) -> None:
        text = seen[manager, "nl", WIDTHS[-1]].layout.text
        catalog = dutch_catalog()
        leaks = sorted(
            fragment
            for msgid in extracted()
            for fragment in english_fragments(msgid, catalog)
            if re.search(rf"(?<!\w){re.escape(fragment)}(?!\w)", text)
        )
        assert leaks == []

    def test_the_check_would_catch_english(self, seen: dict[tuple[str, str, int], Seen]) -> None:
        english = seen[MANAGERS[0], "en", WIDTHS[-1]].layout.text
        assert "Their topics" in english
        assert "Their topics" in english_fragments("Their topics", dutch_catalog())

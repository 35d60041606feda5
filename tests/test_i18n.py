"""Translations: every English text has a Dutch one, and Dutch digests contain no English."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from service.digest import render_digest
from service.errors import ConfigError
from service.i18n import environment, translations, translator
from service.model import Policy
from tests.test_digest import (
    CY,
    MARIA,
    POLICY,
    SAM,
    WEEK,
    analysis,
    coverage,
    sam_hold,
    statuses,
)
from tests.texts import digest_of, hold_text_of

REPO = Path(__file__).resolve().parent.parent
BABEL_CFG = REPO / "templates" / "babel.cfg"
DUTCH_PO = REPO / "templates" / "locale" / "nl" / "LC_MESSAGES" / "messages.po"
AMS = ZoneInfo("Europe/Amsterdam")
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%%")


def extracted() -> dict[str | tuple[str, ...], list[str]]:
    """Every msgid in the code and templates, as Babel's extractor finds it, with its places."""
    with BABEL_CFG.open(encoding="utf-8") as cfg:
        # Babel ships this function without annotations
        method_map, options_map = parse_mapping_cfg(cfg, str(BABEL_CFG))  # type: ignore[no-untyped-call]
    top = {REPO / "service", REPO / "templates"}
    found: dict[str | tuple[str, ...], list[str]] = {}
    for filename, lineno, message, _, _ in extract_from_dir(
        str(REPO),
        method_map,
        options_map,
        directory_filter=lambda path: any(Path(path).is_relative_to(t) for t in top),
    ):
        key = message if isinstance(message, str) else tuple(m for m in message if m)
        found.setdefault(key, []).append(f"{filename}:{lineno}")
    return found


def dutch_catalog() -> Catalog:
    with DUTCH_PO.open("rb") as po:
        return read_po(po, locale="nl")


def translated(string: str | tuple[str, ...] | list[str] | None) -> bool:
    """Every form (one, or one per plural) is non-empty."""
    forms = [string] if isinstance(string, str) else list(string or ())
    return bool(forms) and all(form.strip() for form in forms)


def english_fragments(msgid: str | tuple[str, ...], catalog: Catalog) -> set[str]:
    """The literal pieces of a msgid between its placeholders, long enough to be telling,
    except those its Dutch translation shares ("in week" is Dutch too)."""
    texts = [msgid] if isinstance(msgid, str) else list(msgid)
    entry = catalog.get(texts[0])
    dutch = "" if entry is None else str(entry.string)
    pieces = {p.strip(" ,.:;()") for text in texts for p in PLACEHOLDER.split(text)}
    return {p for p in pieces if len(p) >= 4 and p not in dutch}


class TestCatalog:
    """The Dutch catalog covers every msgid, completely and without fuzzy entries."""

    def test_extraction_finds_the_texts(self) -> None:
        found = extracted()
        assert len(found) > 150
        assert "Agreed expectations" in found
        assert any(place.startswith("templates") for places in found.values() for place in places)
        assert ("every week", "every %(num)d weeks") in found

    def test_every_msgid_has_a_dutch_translation(self) -> None:
        catalog = dutch_catalog()
        problems = []
        for msgid, places in extracted().items():
            key = msgid if isinstance(msgid, str) else msgid[0]
            entry = catalog.get(key)
            if entry is None or entry.fuzzy or not translated(entry.string):
                problems.append(f"{places[0]}: {msgid!r}")
        assert problems == []

    def test_no_stale_entries(self) -> None:
        used = {m if isinstance(m, str) else m[0] for m in extracted()}
        stale = [
            m.id
            for m in dutch_catalog()
            if m.id and (m.id if isinstance(m.id, str) else m.id[0]) not in used
        ]
        assert stale == []

    def test_placeholders_match(self) -> None:
        errors = [(m.id, [str(e) for e in errs]) for m, errs in dutch_catalog().check()]
        assert errors == []

    def test_plural_forms(self) -> None:
        nl = translator("nl")
        assert nl.ngettext("every week", "every %(num)d weeks", 1) == "elke week"
        assert nl.ngettext("every week", "every %(num)d weeks", 3) == "elke 3 weken"
        assert translator("en").ngettext("every week", "every %(num)d weeks", 3) == "every 3 weeks"


class TestDutchDigests:
    """A Dutch digest or hold contains none of the English msgids."""

    def dutch_outputs(self) -> str:
        calm = replace(statuses()[3], report=CY)
        digests = [
            digest_of(
                analysis(), holds={SAM.email: sam_hold()}, agreed={}, policy=POLICY, language="nl"
            ),
            digest_of(
                analysis((calm,), trend=coverage(3, 2, 2, 2, 2, 2, 2, 1)),
                holds={},
                agreed={},
                policy=Policy(),
                language="nl",
            ),
            digest_of(
                analysis(trend=coverage(2, 2, 2, 2, 2, 2, 2, 2)),
                holds={SAM.email: replace(sam_hold(), created=False)},
                agreed={SAM.email: ("x",)},
                policy=replace(POLICY, invite_report=True),
                language="nl",
            ),
        ]
        parts = []
        for d in digests:
            out = render_digest(d)
            parts += [out.subject, out.html, out.text]
        for status in statuses():
            for policy in (POLICY, replace(POLICY, invite_report=True)):
                title, text = hold_text_of(MARIA, status, week=WEEK, language="nl", policy=policy)
                parts += [title, text]
        return "\n".join(parts)

    def test_no_english_msgid_in_dutch_output(self) -> None:
        output = self.dutch_outputs()
        catalog = dutch_catalog()
        leaks = sorted(
            fragment
            for msgid in extracted()
            for fragment in english_fragments(msgid, catalog)
            if re.search(rf"(?<!\w){re.escape(fragment)}(?!\w)", output)
        )
        assert leaks == []

    def test_the_check_has_teeth(self) -> None:
        english = render_digest(
            digest_of(analysis(), holds={}, agreed={}, policy=POLICY, language="en")
        ).text
        assert "Feedback both ways" in english
        assert "Feedback both ways" in english_fragments("Feedback both ways", dutch_catalog())


class TestLanguages:
    """Only supported languages load; catalogs are compiled once and cached."""

    def test_unsupported_language(self) -> None:
        with pytest.raises(ConfigError, match=r"'fr'.*en, nl"):
            translator("fr")

    def test_catalog_is_cached(self) -> None:
        assert translations("nl") is translations("nl")
        assert environment("nl") is environment("nl")

    def test_english_is_the_identity(self) -> None:
        assert translations("en").gettext("Agreed expectations") == "Agreed expectations"
        assert translations("nl").gettext("Agreed expectations") == "Afgesproken verwachtingen"

    def test_autoescape_only_for_html_templates(self) -> None:
        env = environment("en")
        assert callable(env.autoescape)
        assert env.autoescape("digest.html.j2") is True
        assert env.autoescape("digest.txt.j2") is False

    @pytest.mark.parametrize(
        ("language", "expected"),
        [("en", "Mon, Nov 23, 9:00\u202fAM"), ("nl", "ma 23 nov, 09:00")],
    )
    def test_dates_in_locale_and_zone(self, language: str, expected: str) -> None:
        moment = datetime(2026, 11, 23, 8, tzinfo=UTC)
        assert translator(language).day_time(moment, AMS) == expected

    def test_dates_without_time(self) -> None:
        assert translator("nl").day(date(2026, 11, 16)) == "ma 16 nov"

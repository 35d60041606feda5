"""Translations, the Jinja environment and locale-aware dates, per language.

English strings are the msgids; Dutch lives in
``templates/locale/nl/LC_MESSAGES/messages.po``. The catalog is compiled in
memory the first time a language is used (no ``.mo`` files, no build step)
and cached, so the only I/O is reading the packaged files once.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from functools import cache
from importlib.resources import files

from babel.dates import format_skeleton, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from service.errors import ConfigError

SUPPORTED_LANGUAGES = ("en", "nl")
#: the package that ships templates and catalogs (found via importlib.resources)
TEMPLATES_PACKAGE = "templates"
DOMAIN = "messages"


def N_(message: str) -> str:
    """Mark a string for extraction without translating it yet (question banks)."""
    return message


def check_language(language: str) -> str:
    """The language itself, or a ConfigError naming the supported ones."""
    if language not in SUPPORTED_LANGUAGES:
        raise ConfigError(
            f"language {language!r} is not supported; set KINDLY_LANGUAGE or the roster's "
            f"language to one of: {', '.join(SUPPORTED_LANGUAGES)}"
        )
    return language


def catalog_path(language: str) -> str:
    return f"locale/{language}/LC_MESSAGES/{DOMAIN}.po"


@cache
def translations(language: str) -> Translations:
    """The compiled catalog of one language; English is the identity."""
    check_language(language)
    if language == "en":
        return Translations(domain=DOMAIN)
    source = files(TEMPLATES_PACKAGE).joinpath(catalog_path(language))
    try:
        with source.open("rb") as po:
            catalog = read_po(po, locale=language, domain=DOMAIN, abort_invalid=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"the {language} translations ({catalog_path(language)}) cannot be read ({exc}); "
            "reinstall Kindly"
        ) from None
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


@dataclass(frozen=True, slots=True)
class Translator:
    """Everything language-specific the pure core needs: texts, plurals, dates."""

    language: str

    def gettext(self, message: str) -> str:
        return translations(self.language).gettext(message)

    def ngettext(self, singular: str, plural: str, count: int, **values: object) -> str:
        """The plural form for ``count``, with ``%(num)d`` and the other values filled in."""
        chosen = translations(self.language).ngettext(singular, plural, count)
        return chosen % {"num": count, **values}

    def day(self, moment: datetime | date, tz: tzinfo | None = None) -> str:
        """A short weekday and date in the manager's locale ("Mon, Nov 23", "ma 23 nov")."""
        if isinstance(moment, datetime) and tz is not None:
            moment = moment.astimezone(tz)
        return format_skeleton("MMMEd", moment, locale=self.language)

    def time(self, moment: datetime, tz: tzinfo) -> str:
        """A short time of day in the manager's locale and zone ("9:00 AM", "09:00")."""
        return format_time(moment.astimezone(tz), "short", locale=self.language)

    def day_time(self, moment: datetime, tz: tzinfo) -> str:
        return f"{self.day(moment, tz)}, {self.time(moment, tz)}"


@cache
def translator(language: str) -> Translator:
    check_language(language)
    return Translator(language)


@cache
def environment(language: str) -> Environment:
    """Jinja with gettext for one language; ``.html.j2`` templates autoescape."""
    env = Environment(
        loader=PackageLoader(TEMPLATES_PACKAGE, "."),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # templates ship with the package: no stat() of every file on every render
        auto_reload=False,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env

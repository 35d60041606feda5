"""Translations, the Jinja environment and locale-aware dates, per language.

English strings are the msgids; Dutch lives in
``templates/locale/nl/LC_MESSAGES/messages.po``. The catalog is compiled in
memory the first time a language is used (no ``.mo`` files, no build step)
and cached, so the only I/O is reading the packaged files once.
"""

from __future__ import annotations

import io
import keyword
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from functools import cache, lru_cache, partial
from importlib.resources import files

from babel.dates import format_skeleton, format_time, get_time_format, tokenize_pattern
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import (
    Environment,
    PackageLoader,
    StrictUndefined,
    nodes,
    pass_eval_context,
    select_autoescape,
)
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
from jinja2.nodes import EvalContext
from markupsafe import Markup

from service.errors import ConfigError

SUPPORTED_LANGUAGES = ("en", "nl")
#: pattern letters that read only the clock (CLDR): a time written with these alone
#: depends on the hour, minute and second, not on the day or the zone
_CLOCK_FIELDS = frozenset("aBbhHKkms")
#: a digest formats a few dozen dates and times, and a run's digests mostly the same ones
_FORMAT_CACHE = 4096
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
        return gettext_in(self.language, message)

    def ngettext(self, singular: str, plural: str, count: int, **values: object) -> str:
        """The plural form for ``count``, with ``%(num)d`` and the other values filled in."""
        chosen = ngettext_in(self.language, singular, plural, count)
        return chosen % {"num": count, **values}

    def day(self, moment: datetime | date, tz: tzinfo | None = None) -> str:
        """A short weekday and date in the manager's locale ("Mon, Nov 23", "ma 23 nov")."""
        if isinstance(moment, datetime):
            # the skeleton has date fields only: the wall-clock date is all it reads
            moment = (moment.astimezone(tz) if tz is not None else moment).date()
        return _format_day(self.language, moment)

    def short_date(self, day: date) -> str:
        """A day without its weekday, for labels ("Nov 16", "16 nov")."""
        return _format_date(self.language, day)

    def time(self, moment: datetime, tz: tzinfo) -> str:
        """A short time of day in the manager's locale and zone ("9:00 AM", "09:00")."""
        local = moment.astimezone(tz)
        if not _short_time_reads_clock_only(self.language):
            return format_time(local, "short", locale=self.language)
        return _format_clock(self.language, local.hour, local.minute, local.second)

    def day_time(self, moment: datetime, tz: tzinfo) -> str:
        return f"{self.day(moment, tz)}, {self.time(moment, tz)}"


@lru_cache(maxsize=_FORMAT_CACHE)
def gettext_in(language: str, message: str) -> str:
    """Catalogs never change once loaded, and a digest looks up some 150 texts."""
    return translations(language).gettext(message)


@lru_cache(maxsize=_FORMAT_CACHE)
def ngettext_in(language: str, singular: str, plural: str, count: int) -> str:
    return translations(language).ngettext(singular, plural, count)


@lru_cache(maxsize=_FORMAT_CACHE)
def _format_day(language: str, day: date) -> str:
    """Babel resolves the skeleton and the locale on every call: once per day is enough."""
    return format_skeleton("MMMEd", day, locale=language)


@lru_cache(maxsize=_FORMAT_CACHE)
def _format_date(language: str, day: date) -> str:
    return format_skeleton("MMMd", day, locale=language)


@cache
def _short_time_reads_clock_only(language: str) -> bool:
    pattern = get_time_format("short", locale=language).pattern
    return all(
        value[0] in _CLOCK_FIELDS for kind, value in tokenize_pattern(pattern) if kind == "field"
    )


@lru_cache(maxsize=_FORMAT_CACHE)
def _format_clock(language: str, hour: int, minute: int, second: int) -> str:
    """The short time of a clock reading; only used when the pattern reads nothing else."""
    return format_time(datetime(2000, 1, 1, hour, minute, second), "short", locale=language)


@cache
def translator(language: str) -> Translator:
    check_language(language)
    return Translator(language)


class ConstantTranslations(Extension):
    """Translates ``{{ _("literal") }}`` once, when a template compiles, not on every render.

    Each environment serves one language, so a literal's translation is fixed;
    the output is what the i18n extension's newstyle gettext would give (the
    text formatted with no values, as markup in an autoescaped template).
    Calls with values, or in positions where the result could differ, are left alone;
    ``_`` and ``gettext`` are taken to be the installed ones (templates do not rebind them).
    """

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        tokens = list(stream)
        autoescape = self._autoescape(stream.name)
        index = 0
        while index < len(tokens):
            replaced = self._replace(tokens, index, autoescape=autoescape)
            if replaced is None:
                yield tokens[index]
                index += 1
            else:
                emitted, index = replaced
                yield from emitted

    def _replace(
        self, tokens: list[Token], index: int, *, autoescape: bool
    ) -> tuple[list[Token], int] | None:
        """What replaces ``{{ _("literal")`` at ``index``, and the index after what it replaces."""
        window = tokens[index : index + 6]
        kinds = [t.type for t in window]
        if kinds[:5] != ["variable_begin", "name", "lparen", "string", "rparen"] or len(kinds) < 6:
            return None
        begin, name, _, literal, _, after = window
        text = self._translated(literal.value) if name.value in ("_", "gettext") else None
        if text is None:
            return None
        if after.type == "variable_end":
            # the whole output tag: markup in an autoescaped template, so emitted as it is
            return [Token(begin.lineno, "data", text)], index + 6
        if not autoescape:
            # a plain string, for the filters after it
            return [begin, Token(literal.lineno, "string", text)], index + 5
        return None

    def _translated(self, message: str) -> str | None:
        language = getattr(self.environment, "kindly_language", None)
        if language is None:
            return None
        try:
            return gettext_in(language, message) % {}
        except (TypeError, ValueError, KeyError):
            return None  # left to the render, which fails the same way it always did

    def _autoescape(self, name: str | None) -> bool:
        setting = self.environment.autoescape
        return bool(setting(name) if callable(setting) else setting)


class FieldCodeGenerator(CodeGenerator):
    """Compiles ``x.name`` to Python's ``(x).name``: what :class:`FieldEnvironment`'s
    ``getattr`` does, without a call through the environment for each of the some 550
    fields a digest shows."""

    @optimizeconst
    def visit_Getattr(self, node: nodes.Getattr, frame: Frame) -> None:
        if self.environment.is_async or not _plain_name(node.attr):
            super().visit_Getattr(node, frame)
            return
        self.write("(")
        self.visit(node.node, frame)
        self.write(f").{node.attr}")


def _plain_name(name: str) -> bool:
    """A name Python reads as ``x.name`` (a keyword would not compile)."""
    return name.isidentifier() and not keyword.iskeyword(name)


class FieldEnvironment(Environment):
    """Jinja where ``x.name`` is Python's own attribute read, done in C.

    Kindly's templates read fields of its frozen view models, never mapping keys, so
    Jinja's fallback to ``x["name"]`` (a Python call for each of the some 450 fields a
    digest shows) is not needed; the templates compile it to the read itself. A name
    that is not there raises AttributeError: a template error, as StrictUndefined makes
    it anyway.
    """

    getattr = staticmethod(getattr)  # type: ignore[assignment]
    code_generator_class = FieldCodeGenerator


@cache
def environment(language: str) -> Environment:
    """Jinja with gettext for one language; ``.html.j2`` templates autoescape."""
    env = FieldEnvironment(
        loader=PackageLoader(TEMPLATES_PACKAGE, "."),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        extensions=["jinja2.ext.i18n", ConstantTranslations],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # templates ship with the package: no stat() of every file on every render
        auto_reload=False,
    )
    env.extend(kindly_language=language)
    catalog = translations(language)
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=partial(gettext_in, language),
        ngettext=partial(ngettext_in, language),
        newstyle=True,
        pgettext=catalog.pgettext,
        npgettext=catalog.npgettext,
    )
    # the same newstyle gettext, but ``_`` reaches it in one call instead of three
    env.globals["_"] = env.globals["gettext"] = _newstyle_gettext(language)
    return env


def _newstyle_gettext(language: str) -> Callable[..., str]:
    """The i18n extension's newstyle gettext: markup when autoescaping, then the values."""

    @pass_eval_context
    def gettext(eval_ctx: EvalContext, message: str, /, **values: object) -> str:
        text = gettext_in(language, message)
        return (Markup(text) if eval_ctx.autoescape else text) % values

    return gettext

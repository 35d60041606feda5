"""A template's stylesheet applied to the template once, not to every rendered page.

Inlining CSS into every rendered digest parses and re-serialises the whole page
(html5ever): more time than everything else in a digest. Instead, the template
itself goes through the inliner once per language, with markers standing in for
its Jinja code: statements as HTML comments, output tags as private-use
characters. The markers are then put back, each output tag wrapped in a filter
that escapes its value as the inliner's serialiser would have written it
(text, attribute, title). Whatever this cannot prove exact (a value in a class
or inside <style>, markup as a value, a translation with markup characters)
raises :class:`NotInlinable`, and the caller inlines the rendered page instead.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, partial

import css_inline
from jinja2 import Environment, StrictUndefined, Template

from service.i18n import FieldEnvironment, environment, gettext_in


@cache
def _inliner() -> css_inline.CSSInliner:
    # @media rules (dark mode, narrow screens) cannot be inlined: keep them in <style>
    return css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def inline_css(html: str) -> str:
    """The stylesheet of a rendered page applied to its elements (what mail clients need)."""
    return str(_inliner().inline(html))


class NotInlinable(Exception):
    """The template, or one value in it, needs the rendered page inlined."""


_STATEMENT = "<!--kindly-statement-{}-->"
_VALUE = "\ue000{}\ue001"
_MARKER = re.compile(r"<!--kindly-statement-(\d+)-->|\ue000(\d+)\ue001")
#: elements whose text the serialiser writes unescaped (a value there cannot be placed)
_RAW_TEXT = ("style", "script", "xmp", "iframe", "noembed", "noframes", "plaintext", "noscript")
_ATTRIBUTE = re.compile(r'([^\s"\'=<>/]+)="[^"]*\Z')
_GETTEXT = frozenset({"_", "gettext"})
#: the inlined template's environment has only ``_``/``gettext`` (all the template uses)
_PLURALS = frozenset({"ngettext", "pgettext", "npgettext"})


@dataclass(frozen=True, slots=True)
class _Code:
    """One piece of Jinja code of the template, as it stands in the source."""

    statement: bool
    source: str


@cache
def inlined_template(language: str, name: str) -> Template | None:
    """The HTML template with its stylesheet applied, or None when that cannot be exact."""
    env = environment(language)
    if env.loader is None:
        return None
    source, _, _ = env.loader.get_source(env, name)
    try:
        skeleton, code = _skeleton(env, source, language, name)
        return _precomputed_environment(language).from_string(_restore(inline_css(skeleton), code))
    except NotInlinable:
        return None


def _skeleton(env: Environment, source: str, language: str, name: str) -> tuple[str, list[_Code]]:
    """The template as plain HTML with markers for its code, constant texts translated.

    The lexer has already applied the environment's whitespace rules, so the code
    goes back without them (``trim_blocks``' newline dropped from ``%}``).
    """
    parts: list[str] = []
    code: list[_Code] = []
    raw = iter(env.lex(source, name))
    for lineno, kind, value in raw:
        if kind == "data":
            parts.append(value)
        elif kind == "comment_begin":
            _until(raw, "comment_end")
        elif (kind, value) in (("variable_begin", "{{"), ("block_begin", "{%")):
            inner, end = _until(raw, kind.replace("_begin", "_end"))
            if end.rstrip("\n") not in ("}}", "%}"):
                raise NotInlinable(f"whitespace control {end!r} at line {lineno}")
            parts.append(_place(env, kind == "block_begin", inner, language, code))
        else:
            raise NotInlinable(f"{kind} {value!r} at line {lineno}")
    return "".join(parts), code


def _until(raw: Iterator[tuple[int, str, str]], end: str) -> tuple[list[tuple[int, str, str]], str]:
    """The raw tokens up to the one of kind ``end``, and that token's value."""
    inner: list[tuple[int, str, str]] = []
    for token in raw:
        if token[1] == end:
            return inner, token[2]
        inner.append(token)
    raise NotInlinable(f"no {end} before the end of the template")


def _place(
    env: Environment,
    statement: bool,
    inner: list[tuple[int, str, str]],
    language: str,
    code: list[_Code],
) -> str:
    """What stands in the skeleton for one tag's code; the code joins ``code``."""
    tokens = [(t.type, t.value) for t in env.lexer.wrap(iter(inner))]
    if _PLURALS.intersection(v for k, v in tokens if k == "name"):
        raise NotInlinable("plural or context gettext")
    body = "".join(v for _, _, v in inner).strip()
    if statement:
        code.append(_Code(statement=True, source=f"{{% {body} %}}"))
        return _STATEMENT.format(len(code) - 1)
    constant = _constant_text(tokens, language)
    if constant is not None:
        return constant
    code.append(_Code(statement=False, source=body))
    return _VALUE.format(len(code) - 1)


def _constant_text(tokens: list[tuple[str, str]], language: str) -> str | None:
    """``_("literal")`` as the page shows it; None for other code.

    Newstyle gettext gives markup, formatted with no values: the inliner reads it
    as HTML, so it joins the skeleton as HTML. A call with values stays code, and
    its translation must then read the same as text (no ``&`` or ``<``).
    """
    if len(tokens) < 4 or tokens[0] not in {("name", n) for n in _GETTEXT}:
        return None
    if tokens[1][0] != "lparen" or tokens[2][0] != "string":
        return None
    translated = gettext_in(language, tokens[2][1])
    if tokens[3:] == [("rparen", ")")]:
        try:
            return translated % {}
        except (TypeError, ValueError, KeyError):
            raise NotInlinable(f"{tokens[2][1]!r} needs values") from None
    if "&" in translated or "<" in translated:
        raise NotInlinable(f"the translation of {tokens[2][1]!r} holds markup characters")
    return None


def _restore(inlined: str, code: list[_Code]) -> str:
    """The inlined skeleton as a template again, each marker replaced by its code.

    Statements must come back once each and in order; an output tag once, between
    the same two statements (the inliner may reorder a tag's attributes, and
    with them the output tags inside them).
    """
    if any(jinja in inlined for jinja in ("{{", "{%", "{#")):
        raise NotInlinable("a text reads as Jinja code")
    statements = [i for i, piece in enumerate(code) if piece.statement]
    seen: list[int] = []

    def back(match: re.Match[str]) -> str:
        index = int(match[1] or match[2])
        if index >= len(code) or code[index].statement != (match[1] is not None):
            raise NotInlinable(f"marker {index} changed")
        seen.append(index)
        piece = code[index]
        if piece.statement:
            return piece.source
        escaper = _context(inlined, match.start())
        return f"{{{{ ({piece.source}) | {escaper} }}}}"

    restored = _MARKER.sub(back, inlined)
    if sorted(seen) != list(range(len(code))) or [i for i in seen if i in statements] != statements:
        raise NotInlinable("the inliner moved or dropped template code")
    if [bisect_left(statements, i) for i in seen] != [_region(seen, statements, i) for i in seen]:
        raise NotInlinable("the inliner moved an output tag past a statement")
    return restored


def _region(seen: list[int], statements: list[int], index: int) -> int:
    """How many statements come before ``index`` in the inlined page."""
    return sum(1 for i in seen[: seen.index(index)] if i in statements)


def _context(page: str, position: int) -> str:
    """The filter that escapes a value where the marker at ``position`` stands."""
    before = page[:position]
    if before.rfind("<") > before.rfind(">"):
        attribute = _ATTRIBUTE.search(before[before.rfind("<") :])
        if attribute is None or attribute[1] == "class":
            # a class picks the rules: the styles would depend on the value
            raise NotInlinable("a value inside a tag, outside an attribute value or in a class")
        # a style declaration is parsed again by the inliner: only numbers are sure to survive
        return "kindly_number" if attribute[1] == "style" else "kindly_attribute"
    if _open_element(before, "title"):
        return "kindly_title"
    if any(_open_element(before, name) for name in _RAW_TEXT):
        raise NotInlinable("a value inside a raw-text element")
    return "kindly_text"


def _open_element(before: str, name: str) -> bool:
    return before.rfind(f"<{name}") > before.rfind(f"</{name}>")


@cache
def _precomputed_environment(language: str) -> Environment:
    """Renders the inlined template: no autoescape, each value escaped by its own filter."""
    env = FieldEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, auto_reload=False)
    message = partial(_message, language)
    env.globals.update(_=message, gettext=message)
    env.filters.update(
        kindly_text=_text,
        kindly_attribute=_attribute,
        kindly_title=_title,
        kindly_number=_number,
    )
    return env


def _message(language: str, message: str, /, **values: object) -> str:
    """Newstyle gettext without the markup: the output tag's filter escapes what it returns."""
    return gettext_in(language, message) % values


#: what the serialiser escapes in text, and what the parser changes (NUL) or may (CR)
_TEXT_SPECIAL = "&<>\xa0\r\0"
#: what the serialiser escapes in an attribute value, what the parser changes, and CR
_ATTRIBUTE_SPECIAL = '&"\xa0\r\0'


def _ordinary(text: str, special: str) -> bool:
    """No character of ``special`` in ``text``: a value that goes out as it is. A search per
    character (memchr) costs less than a regular expression's scan for a few of them, and a
    plain loop less than ``all()`` over a generator."""
    for character in special:  # noqa: SIM110
        if character in text:
            return False
    return True


def _plain(value: object) -> str:
    """The value as the page gets it; markup would have been parsed, so it cannot be placed."""
    if hasattr(value, "__html__"):
        raise NotInlinable("a value is markup")
    text = str(value)
    if "\r" in text:
        # the parser joins CR with a LF that may follow in the template: not knowable here
        raise NotInlinable("a carriage return")
    return text


def _text(value: object) -> str:
    """Escaped as the serialiser escapes text; the tree builder drops NUL in body text."""
    if type(value) is str and _ordinary(value, _TEXT_SPECIAL):
        return value
    return (
        _plain(value)
        .replace("\0", "")
        .replace("&", "&amp;")
        .replace("\xa0", "&nbsp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def _title(value: object) -> str:
    """Text of <title> (RCDATA): NUL becomes U+FFFD instead of being dropped."""
    return _text(_plain(value).replace("\0", "\ufffd"))


def _attribute(value: object) -> str:
    if type(value) is int:
        return str(value)  # digits: nothing to escape, and no markup
    if type(value) is str and _ordinary(value, _ATTRIBUTE_SPECIAL):
        return value
    return (
        _plain(value)
        .replace("\0", "\ufffd")
        .replace("&", "&amp;")
        .replace("\xa0", "&nbsp;")
        .replace('"', "&quot;")
    )


def _number(value: object) -> str:
    """Inside a style declaration only a plain integer is certain to read the same."""
    if type(value) is not int:
        raise NotInlinable("a style declaration takes integers only")
    return str(value)

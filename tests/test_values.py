"""The core's fast paths do what the plain code does: value types' quick ``__init__``, the
templates' attribute reads and escaping filters."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import service.agenda
import service.cadence
import service.digest
import service.hold_plan
import service.recap
import service.working_time  # noqa: F401 - their classes register with QUICK on import
from service import template_inlining
from service.i18n import environment
from service.model import Interval
from service.template_inlining import NotInlinable
from service.values import QUICK, quick_init
from tests.fuzzing import quick

CLASSES = sorted(QUICK, key=lambda cls: cls.__qualname__)
values = st.one_of(st.integers(), st.text(max_size=5), st.none(), st.booleans())


def fields_of(obj: object) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def test_the_hot_types_are_quick() -> None:
    names = {cls.__qualname__ for cls in CLASSES}
    assert {"Interval", "ReportStatus", "GlanceRow", "AgendaBlock", "Person"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__qualname__)
def test_same_signature(cls: type[Any]) -> None:
    assert inspect.signature(cls.__init__) == inspect.signature(QUICK[cls])


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__qualname__)
@quick
@given(data=st.data())
def test_same_fields_as_the_dataclass_init(cls: type[Any], data: st.DataObject) -> None:
    """Any arguments, positional or by name, with defaults left out or given."""
    fields = dataclasses.fields(cls)
    given_values = {
        f.name: data.draw(values)
        for f in fields
        if f.default is dataclasses.MISSING or data.draw(st.booleans())
    }
    by_position = data.draw(st.integers(0, len(fields)))
    names = [f.name for f in fields]
    # positional arguments only as far as no field before is left out
    leading = 0
    while leading < by_position and names[leading] in given_values:
        leading += 1
    args = [given_values[name] for name in names[:leading]]
    kwargs = {name: value for name, value in given_values.items() if name not in names[:leading]}
    built, expected = object.__new__(cls), object.__new__(cls)
    cls.__init__(built, *args, **kwargs)
    QUICK[cls](expected, *args, **kwargs)
    assert fields_of(built) == fields_of(expected)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__qualname__)
def test_still_frozen(cls: type[Any]) -> None:
    value = object.__new__(cls)
    name = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, name, 1)


def test_values_behave_as_before() -> None:
    one, two = Interval(1, 2), Interval(start=1, end=3)  # any values: the fields are not checked
    assert one == Interval(1, 2)
    assert one < two
    assert hash(one) == hash(Interval(1, 2))
    assert one != (1, 2)
    assert pickle.loads(pickle.dumps(one)) == one
    assert dataclasses.replace(one, end=3) == two
    assert repr(one) == "Interval(start=1, end=2)"
    with pytest.raises(TypeError):
        Interval(1)
    with pytest.raises(TypeError):
        Interval(1, 2, 3)
    with pytest.raises(TypeError):
        Interval(1, 2, start=1)


def test_only_for_the_plain_case() -> None:
    @dataclasses.dataclass(slots=True)
    class Mutable:
        x: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        x: list[int] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        x: int

    for cls in (Mutable, Factory, NoSlots):
        with pytest.raises(TypeError):
            quick_init(cls)


class TestTemplateFastPaths:
    """The templates read fields and escape values as before, only with fewer calls."""

    def test_fields_compile_to_attribute_reads(self) -> None:
        env = environment("en")
        source = str(env.compile("{{ d.greeting }} {{ d.class }}", raw=True))
        assert ".greeting" in source
        assert "'greeting'" not in source
        assert "environment.getattr(" in source  # ``class`` would not compile as ``.class``
        page = env.from_string("{{ d.greeting }} {{ d.class }}")
        assert page.render(d=SimpleNamespace(greeting="Hi", **{"class": "x"})) == "Hi x"

    def test_a_missing_field_still_fails(self) -> None:
        with pytest.raises(AttributeError):
            environment("en").from_string("{{ d.nope }}").render(d=SimpleNamespace())

    @quick
    @given(st.one_of(st.text(alphabet="ab&<>\"'\xa0\r\0 é’"), st.integers(), st.booleans()))
    def test_escaping_filters_as_the_full_escape(self, value: object) -> None:
        def escaped(full: Callable[[object], str]) -> str | type[NotInlinable]:
            try:
                return full(value)
            except NotInlinable:
                return NotInlinable

        text = str(value)
        if "\r" in text:
            assert escaped(template_inlining._text) is NotInlinable
            assert escaped(template_inlining._attribute) is NotInlinable
            return
        assert template_inlining._text(value) == (
            text.replace("\0", "")
            .replace("&", "&amp;")
            .replace("\xa0", "&nbsp;")
            .replace("<", "&lt;")
            .replace(">", "&gt;")
        )
        assert template_inlining._attribute(value) == (
            text.replace("\0", "\ufffd")
            .replace("&", "&amp;")
            .replace("\xa0", "&nbsp;")
            .replace('"', "&quot;")
        )

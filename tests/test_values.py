"""The quick ``__init__`` of the core's value types builds what the dataclass's own builds."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
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
from service.model import Interval
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

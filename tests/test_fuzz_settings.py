"""Fuzzing the settings: every KINDLY_ variable with hostile values gives ConfigError lines.

Each line names the variable (or says ``settings:`` for a rule between two),
a secret's value is never echoed, and nothing but :class:`ConfigError` leaves
:func:`load_settings`.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from service.errors import ConfigError
from service.settings import ENV_PREFIX, Settings, load_settings
from tests.fuzzing import NASTY, deep, environment, hostile_text, outcome, quick

SECRET_WORDS = ("PASSWORD", "SECRET", "KEY", "TOKEN")


def variables(model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX) -> list[str]:
    """Every KINDLY_ variable the settings read: each section (which takes JSON) and its parts."""
    found = []
    for name, field in model.model_fields.items():
        variable = prefix + name.upper().rstrip("_")
        kind: Any = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found += [variable, *variables(kind, variable + "__")]
        else:
            found.append(variable)
    return found


VARIABLES = variables()
#: values that are valid for some variables: hostile ones mixed with plausible ones
plausible = (
    st.sampled_from(
        ["0", "1", "15", "65536", "yes", "off", "09:00", "25:61", "UTC", "Europe/Amsterdam", "smtp"]
    ),
    st.sampled_from(['{"password": "hunter2hunter2"}', '["hunter2hunter2"]', "{", '{"x": 1}']),
)
assignments = st.dictionaries(
    st.sampled_from(VARIABLES), st.one_of(hostile_text, *plausible), min_size=1, max_size=4
)


def assert_settings_or_clear_error(env: dict[str, str]) -> None:
    with environment(env):
        _, error = outcome(lambda: load_settings(_env_file=None), ConfigError)
    if error is None:
        return
    lines = str(error).splitlines()
    assert lines
    for line in lines:
        assert line.startswith((ENV_PREFIX, "settings:", "REQUESTS_CA_BUNDLE")), line
    named = [v for v in env if any(line.startswith(v) for line in lines)]
    rules = [line for line in lines if line.startswith("settings:")]
    assert named or rules, (env, lines)
    for line in rules:
        # a line about a value that cannot be parsed still names the variable
        assert ENV_PREFIX in line, line
    for variable, value in env.items():
        if any(word in variable for word in SECRET_WORDS) and value.strip():
            # (another variable may hold the same text, so only this one's lines are read)
            assert not [line for line in lines if line.startswith(variable) and value in line]


class TestSettingsFuzz:
    """Hostile values in any KINDLY_ variable give one ConfigError line naming it."""

    @quick
    @given(assignments)
    def test_hostile_values(self, env: dict[str, str]) -> None:
        assert_settings_or_clear_error(env)

    @pytest.mark.fuzz
    @deep
    @given(assignments)
    def test_hostile_values_long_run(self, env: dict[str, str]) -> None:
        assert_settings_or_clear_error(env)

    @pytest.mark.parametrize("variable", VARIABLES)
    @pytest.mark.parametrize("value", [NASTY[2], NASTY[3], NASTY[4], NASTY[-1]])
    def test_every_variable(self, variable: str, value: str) -> None:
        assert_settings_or_clear_error({variable: value})


class TestSettingsRegressions:
    """Cases the fuzzing found: each now names its variable and hides what may be a secret."""

    def test_unparseable_section_json_names_the_variable(self) -> None:
        with environment({"KINDLY_ICS": "{"}), pytest.raises(ConfigError) as caught:
            load_settings(_env_file=None)
        assert str(caught.value).startswith("KINDLY_ICS: not valid JSON")

    def test_section_given_as_a_list_is_not_echoed(self) -> None:
        env = {"KINDLY_SMTP": '["hunter2hunter2"]'}
        with environment(env), pytest.raises(ConfigError) as caught:
            load_settings(_env_file=None)
        assert str(caught.value).startswith("KINDLY_SMTP: ")
        assert "hunter2" not in str(caught.value)

"""The shape of the code (docs/design.md, "The shape of the code"), read from the source.

The import graph comes from ``tools/imports.py``, the same command that prints it.
"""

from __future__ import annotations

import ast

import pytest

from tools import imports

#: the pure core: analysis, slots, agendas, hold planning, the digest and what they use
CORE = (
    "service.model",
    "service.week",
    "service.meetings",
    "service.cadence",
    "service.busy",
    "service.slots",
    "service.agenda",
    "service.hold_plan",
    "service.hold_text",
    "service.recap",
    "service.digest",
    "service.planner",
    "service.working_time",
    "service.away",
    "service.team_time",
    "service.speed",
    "service.values",
)
#: what the core may import from outside the project: computation, text and templates only
CORE_MAY_USE = frozenset(
    {
        "__future__",
        "_sha256",
        "base64",
        "bisect",
        "collections",
        "dataclasses",
        "datetime",
        "enum",
        "functools",
        "hashlib",
        "html",
        "itertools",
        "math",
        "operator",
        "re",
        "types",
        "typing",
        "unicodedata",
        "zoneinfo",
        # urllib.parse only; urllib.request is refused below
        "urllib",
        # translations and templates, read from the installed package
        "babel",
        "importlib",
        "io",
        "jinja2",
        # which attribute names compile to ``x.name`` (service.i18n)
        "keyword",
        "markupsafe",
        "css_inline",
        # public holidays, computed from rules in the installed package
        "holidays",
        "json",
    }
)
GRAPH = imports.graph()


class TestImportGraph:
    """No module imports itself back, and the packages do not import each other."""

    def test_no_cycle_between_modules(self) -> None:
        assert imports.cycles(GRAPH) == []

    def test_no_cycle_between_packages(self) -> None:
        assert imports.cycles(imports.packages(GRAPH)) == []

    def test_the_core_package_never_imports_a_connector(self) -> None:
        assert imports.packages(GRAPH)["service"] == frozenset()

    def test_a_cycle_is_found_when_there_is_one(self) -> None:
        edges = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"})}
        assert imports.cycles(edges) == [["a", "b", "c"]]


class TestPureCore:
    """The core modules reach no connector and no I/O library, however indirectly."""

    @pytest.mark.parametrize("module", CORE)
    def test_reaches_only_core_modules(self, module: str) -> None:
        reached = imports.reachable(module, GRAPH)
        allowed = {*CORE, "service.errors", "service.i18n", "service.template_inlining"}
        assert reached <= allowed, sorted(reached - allowed)

    @pytest.mark.parametrize("module", CORE)
    def test_uses_no_io_library(self, module: str) -> None:
        external = imports.external()
        used = set().union(*(external[m] for m in imports.reachable(module, GRAPH)))
        assert used <= CORE_MAY_USE, sorted(used - CORE_MAY_USE)

    def test_no_urllib_but_parse(self) -> None:
        found = {
            name
            for module in CORE
            for name in imports.imported(imports.modules()[module])
            if name.startswith("urllib")
        }
        assert found <= {"urllib.parse", "urllib.parse.urlsplit", "urllib.parse.quote"}


class TestPorts:
    """The core and the application reach the adapters only through the ports."""

    def test_no_getattr_on_a_port(self) -> None:
        """Optional capabilities are Protocol methods with a default, not ``getattr``."""
        ports = {"connector", "mailer", "holds_ledger", "ledger", "part"}
        offenders = []
        for name, path in imports.modules().items():
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in {"getattr", "hasattr"}
                    and node.args
                    and any(
                        isinstance(n, (ast.Name, ast.Attribute))
                        and getattr(n, "id", getattr(n, "attr", None)) in ports
                        for n in ast.walk(node.args[0])
                    )
                ):
                    offenders.append(f"{name}:{node.lineno}")
        assert offenders == []

    def test_only_the_wiring_names_an_adapter_module(self) -> None:
        """service/wiring.py builds adapters by name; no other core module names one."""
        naming = [
            name
            for name, path in imports.modules().items()
            if name.startswith("service.") and "connectors." in path.read_text(encoding="utf-8")
        ]
        assert naming == ["service.wiring"]

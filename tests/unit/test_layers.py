"""The library's import rules (docs/architecture.md): the roles its folders show, and no cycles.

- core/ imports only the core: no use case, adapter, trigger, configuration or runtime;
- usecases/ import the core and each other, never an adapter or a trigger;
- adapters/ import the core and each other (destinations never import the configuration);
- triggers/ import the core, the use cases and each other, never an adapter;
- config.py imports the core and the adapters whose URIs it checks; runtime.py (the composition root) anything;
- functions/ (the handlers) import the runtime, the triggers and observability only;
- no module reaches itself again through its imports, counting imports made inside functions (lazy imports).

Every import is read from the source (ast), at module level and inside functions alike.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "relay" / "aitask_relay"
FUNCTIONS = ROOT / "functions"

# role -> the roles it may import (the package's face, aitask_relay/__init__.py, holds only __version__)
ALLOWED = {
    "core": {"core", "face"},
    "usecases": {"core", "usecases", "face"},
    "adapters": {"core", "adapters", "face"},
    "triggers": {"core", "usecases", "triggers", "face"},
    "config": {"core", "adapters", "face"},
    "runtime": {"core", "usecases", "adapters", "triggers", "config", "runtime", "face"},
    "face": set(),
    "function": {"runtime", "triggers", "observability", "face"},
}


def role(module: str) -> str:
    """The role of a module of the package (aitask_relay.core.model -> core)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "face"
    if module == "aitask_relay.adapters.observability":
        return "observability"
    return parts[1]  # core, usecases, adapters, triggers, config, runtime


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, known: set[str]) -> set[str]:
    """The package's modules a source imports, wherever the import statement is (module level or in a function)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # from aitask_relay.adapters import aws -> the module aitask_relay.adapters.aws, when it is one
            names = [f"{node.module}.{a.name}" for a in node.names]
            names = [name if name in known else node.module for name in names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"a relative import (from {'.' * node.level}{node.module or ''}): write it absolute")
        else:
            continue
        found |= {name for name in names if name == "aitask_relay" or name.startswith("aitask_relay.")}
    return found


def graph(sources: dict[str, str]) -> dict[str, set[str]]:
    known = set(sources)
    return {module: imports_of(text, known) - {module} for module, text in sources.items()}


def violations(edges: dict[str, set[str]], roles: dict[str, str] | None = None) -> list[str]:
    """Each import that breaks a rule: 'importer -> imported (role -> role)'."""
    found = []
    for importer, imported in sorted(edges.items()):
        mine = (roles or {}).get(importer) or role(importer)
        mine = "adapters" if mine == "observability" else mine
        for target in sorted(imported):
            theirs = role(target)
            allowed = ALLOWED[mine]
            if theirs not in allowed and not (theirs == "observability" and "adapters" in allowed):
                found.append(f"{importer} -> {target} ({mine} -> {theirs})")
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def package_sources() -> dict[str, str]:
    return {module_name(path): path.read_text() for path in PACKAGE.rglob("*.py")}


def test_the_library_keeps_its_import_rules_and_has_no_cycle():
    # Given every module of the library, with its imports wherever they are made
    edges = graph(package_sources())
    # Then no import crosses a role it may not cross, and no module imports itself back
    assert violations(edges) == []
    assert cycles(edges) == []


def test_the_core_and_the_use_cases_import_no_package_outside_the_standard_library():
    # Given the core's and the use cases' modules
    import sys

    for module, text in package_sources().items():
        if role(module) not in ("core", "usecases"):
            continue
        # When every module they import is listed, wherever it is imported
        outside = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                outside |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                outside.add(node.module.split(".")[0])
        # Then each is the library itself or the standard library: no SDK, no Powertools
        assert outside - {"aitask_relay", "__future__"} <= sys.stdlib_module_names, module


def test_the_handlers_import_only_the_runtime_the_triggers_and_observability():
    # Given each handler (AWS Lambda and Function Compute)
    sources = package_sources()
    known = set(sources)
    handlers = sorted(FUNCTIONS.glob("*/*.py"))
    assert len(handlers) == 5
    edges = {f"functions.{path.parent.name}": imports_of(path.read_text(), known) for path in handlers}
    # Then each imports nothing of the library beyond those
    assert violations(edges, {name: "function" for name in edges}) == []


def test_the_checks_find_a_core_module_that_imports_an_adapter_and_a_cycle():
    # Given a made-up library whose core imports an adapter, whose use case imports a trigger, and two adapters
    # that import each other (one of them inside a function)
    sources = {
        "aitask_relay.core.model": "from aitask_relay.adapters.aws import client\n",
        "aitask_relay.usecases.relay": "from aitask_relay.triggers.direct import FetchRequest\n",
        "aitask_relay.triggers.direct": "",
        "aitask_relay.adapters.aws": "from aitask_relay.adapters import ledger\n",
        "aitask_relay.adapters.ledger": "def f():\n    from aitask_relay.adapters.aws import client\n",
    }
    # When they are checked
    edges = graph(sources)
    # Then both wrong imports and the cycle are reported
    assert violations(edges) == [
        "aitask_relay.core.model -> aitask_relay.adapters.aws (core -> adapters)",
        "aitask_relay.usecases.relay -> aitask_relay.triggers.direct (usecases -> triggers)",
    ]
    assert cycles(edges) == [["aitask_relay.adapters.aws", "aitask_relay.adapters.ledger"]]

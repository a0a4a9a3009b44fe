"""T0: the import graph of `infra` and `smoke_tests` has no cycle, and every import goes down the layers.

Imports are read from the source with `ast`, every one of them: at the top, inside functions (where a
cycle used to hide) and under `if TYPE_CHECKING:`. A failure names the files and the line of each
import involved, so the fix starts at the right place.

The layers, from the bottom: the smoke suite (a package of its own that any Kubeflow user can run,
so it sits below the Pulumi program and must not import it); leaf utilities; tool location and the
host; the stack's settings; manifests and patches; the Pulumi program; what runs it (benchmarks,
conformance, the local target, the in-cluster smoke Job, the state migration), with the conformance
run's session, its steps and its runner above the rest of it; and the commands at the top, which
nothing else imports.
A module may import its own layer and the layers below.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import REPO

PACKAGES = ("infra", "smoke_tests")

# Bottom first. A module belongs to the layer of the longest prefix that names it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("smoke suite: library", ("smoke_tests",)),
    ("smoke suite: fixtures and report", ("smoke_tests.fixtures", "smoke_tests.report")),
    ("smoke suite: plugin", ("smoke_tests.plugin",)),
    ("smoke suite: checks", ("smoke_tests.checks",)),
    ("utilities", ("infra", "infra.errors", "infra.paths", "infra.versions", "infra.preflight")),
    ("tools and host", ("infra.toolchain", "infra.runtime", "infra.nodeimage", "infra.doctor")),
    ("settings", ("infra.config", "infra.settings", "infra.manifests.components")),
    ("manifests and patches", ("infra.manifests", "infra.patches", "infra.auth", "infra.gateway")),
    ("program", ("infra.program", "infra.apply", "infra.admission", "infra.definitions", "infra.outputs",
                 "infra.clusters", "infra.automation", "infra.dependencies", "infra.object_set",
                 "infra.server_apply")),
    ("operations", ("infra.bench", "infra.conformance", "infra.local_target", "infra.smokejob", "infra.migrate")),
    ("conformance: the run's session", ("infra.conformance.session", "infra.conformance.workspace")),
    ("conformance: steps", ("infra.conformance.doctor", "infra.conformance.up", "infra.conformance.smoke",
                            "infra.conformance.teardown", "infra.conformance.upgrade",
                            "infra.conformance.upgrade_checks")),
    ("conformance: the runner", ("infra.conformance.runner",)),
    ("commands", ("infra.cli", "infra.commands")),
)

# The command line is not a library: only `infra.cli` imports the sub-command modules.
CLI = ("infra.cli", "infra.commands")

# Cycles still expected, each with why (none: the component map became a leaf that the config
# imports at the top). An entry here whose cycle is gone fails the test until it is deleted.
EXPECTED_CYCLES: tuple[frozenset[str], ...] = ()

@dataclass(frozen=True)
class Import:
    """One import statement's edge: `source` imports `target` at `line`."""

    source: str
    target: str
    line: int


@dataclass
class Graph:
    files: dict[str, Path]  # module name -> file
    imports: list[Import]
    root: Path

    def file(self, module: str) -> str:
        return self.files[module].relative_to(self.root).as_posix()

    def where(self, edge: Import) -> str:
        return f"{self.file(edge.source)}:{edge.line}"


def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    files = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    return files


def _resolve(name: str, files: Mapping[str, Path]) -> str | None:
    """The project module a dotted name is, or is inside of (None: not the project's)."""
    while name and name not in files:
        name = name.rpartition(".")[0]
    return name or None


def _imports_of(module: str, path: Path, files: Mapping[str, Path]) -> list[Import]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, up `level - 1` more
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                package = package[:len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            # `from package import submodule` imports the submodule; `from module import name`, the module.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
        for name in names:
            target = _resolve(name, files)
            if target is not None and target != module:
                found.append(Import(module, target, getattr(node, "lineno", 0)))
    return found


def import_graph(root: Path, packages: Iterable[str] = PACKAGES) -> Graph:
    files = module_files(root, packages)
    imports = [edge for module, path in files.items() for edge in _imports_of(module, path, files)]
    return Graph(files, imports, root)


def cycles(graph: Graph) -> list[list[Import]]:
    """One cycle (as its chain of imports) per strongly connected group of modules."""
    out: dict[str, list[Import]] = {}
    for edge in graph.imports:
        out.setdefault(edge.source, []).append(edge)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for edge in out.get(node, []):
            if edge.target not in index:
                visit(edge.target)
                low[node] = min(low[node], low[edge.target])
            elif edge.target in on_stack:
                low[node] = min(low[node], index[edge.target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for module in sorted(graph.files):
        if module not in index:
            visit(module)
    return [_a_cycle_in(group, out) for group in groups]


def _a_cycle_in(group: set[str], out: Mapping[str, list[Import]]) -> list[Import]:
    """A shortest way round from the group's first module back to itself, inside the group."""
    start = min(group)
    paths: dict[str, list[Import]] = {start: []}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for edge in sorted(out.get(node, []), key=lambda e: (e.target, e.line)):
            if edge.target not in group:
                continue
            if edge.target == start:
                return [*paths[node], edge]
            if edge.target not in paths:
                paths[edge.target] = [*paths[node], edge]
                queue.append(edge.target)
    raise AssertionError(f"no cycle found in the strongly connected group {sorted(group)}")


def layer_of(module: str, layers: tuple[tuple[str, tuple[str, ...]], ...] = LAYERS) -> tuple[int, str] | None:
    best: tuple[int, int, str] | None = None  # (prefix length, layer index, layer name)
    for position, (name, prefixes) in enumerate(layers):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), position, name)
    return None if best is None else (best[1], best[2])


def upward_imports(graph: Graph, layers: tuple[tuple[str, tuple[str, ...]], ...] = LAYERS) -> list[Import]:
    """Imports from a module to one in a higher layer."""
    wrong = []
    for edge in graph.imports:
        source, target = layer_of(edge.source, layers), layer_of(edge.target, layers)
        if source is not None and target is not None and target[0] > source[0]:
            wrong.append(edge)
    return wrong


def describe_cycle(graph: Graph, chain: list[Import]) -> str:
    return "import cycle: " + " -> ".join(
        [f"{graph.where(edge)}" for edge in chain] + [graph.file(chain[0].source)])


def describe_upward(graph: Graph, edge: Import, layers: tuple[tuple[str, tuple[str, ...]], ...] = LAYERS) -> str:
    source, target = layer_of(edge.source, layers), layer_of(edge.target, layers)
    assert source is not None and target is not None
    return (f"{graph.where(edge)} ({source[1]}) imports {graph.file(edge.target)} ({target[1]}), "
            "a higher layer")


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph(REPO)


def test_every_module_has_a_layer(graph: Graph) -> None:
    assert [graph.file(m) for m in sorted(graph.files) if layer_of(m) is None] == []


def test_no_import_cycle(graph: Graph) -> None:
    found = cycles(graph)
    expected = set(EXPECTED_CYCLES)
    new = [describe_cycle(graph, chain) for chain in found if frozenset(e.source for e in chain) not in expected]
    gone = sorted(sorted(c) for c in expected - {frozenset(e.source for e in chain) for chain in found})
    assert new == [], "\n".join(new)
    assert gone == [], f"these expected cycles are gone: delete them from EXPECTED_CYCLES: {gone}"


def test_imports_go_down_the_layers(graph: Graph) -> None:
    assert [describe_upward(graph, e) for e in upward_imports(graph)] == []


def suite_imports_of_the_program(graph: Graph) -> list[str]:
    """The smoke suite's imports of `infra`, each as `file:line imports file`."""
    return [f"{graph.where(e)} imports {graph.file(e.target)}" for e in graph.imports
            if e.source.split(".")[0] == "smoke_tests" and e.target.split(".")[0] == "infra"]


def test_the_smoke_suite_imports_nothing_of_the_pulumi_program(graph: Graph) -> None:
    """The suite is installed alone (smoke_tests/pyproject.toml) to check any Kubeflow: not one of
    its modules may import `infra`, at the top, in a function or for type checking."""
    assert suite_imports_of_the_program(graph) == []


def _is_cli(module: str) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in CLI)


def test_only_the_cli_imports_the_command_modules(graph: Graph) -> None:
    wrong = [f"{graph.where(e)} imports {graph.file(e.target)}, a command module"
             for e in graph.imports if _is_cli(e.target) and not _is_cli(e.source)]
    wrong += [f"{graph.where(e)} imports {graph.file(e.target)}, another sub-command's module"
              for e in graph.imports if e.source.startswith("infra.commands.")
              and e.target.startswith("infra.commands.") and e.target != "infra.commands.base"]
    assert wrong == [], "\n".join(wrong)


# --- the checker itself, on a package made for it ------------------------------------------------

def _package(root: Path, modules: dict[str, str]) -> None:
    for name, source in modules.items():
        path = root / (name.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")


def test_the_checker_finds_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    _package(tmp_path, {
        "pkg.__init__": "",
        "pkg.render": "from pkg.patches import apply\n",
        "pkg.patches.__init__": "def apply():\n    from pkg.patches import auth\n",
        "pkg.patches.auth": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.render import X\n",
        "pkg.leaf": "import os\n",
    })
    graph = import_graph(tmp_path, ["pkg"])
    assert [describe_cycle(graph, chain) for chain in cycles(graph)] == [
        "import cycle: pkg/patches/__init__.py:2 -> pkg/patches/auth.py:3 -> pkg/render.py:1 -> "
        "pkg/patches/__init__.py"]


def test_the_checker_finds_a_suite_module_importing_the_program(tmp_path: Path) -> None:
    _package(tmp_path, {
        "smoke_tests.__init__": "",
        "smoke_tests.fixtures.__init__": "",
        "smoke_tests.fixtures.target": "def go():\n    from infra.toolchain import find_binary\n",
        "infra.__init__": "from smoke_tests import fixtures\n",
        "infra.toolchain.__init__": "",
    })
    graph = import_graph(tmp_path, PACKAGES)
    assert suite_imports_of_the_program(graph) == [
        "smoke_tests/fixtures/target.py:2 imports infra/toolchain/__init__.py"]
    assert [describe_upward(graph, e) for e in upward_imports(graph)] == [
        "smoke_tests/fixtures/target.py:2 (smoke suite: fixtures and report) imports infra/toolchain/__init__.py "
        "(tools and host), a higher layer"]


def test_the_checker_names_both_files_of_an_upward_import(tmp_path: Path) -> None:
    _package(tmp_path, {
        "pkg.__init__": "",
        "pkg.run": "def go():\n    from .cli import main\n",
        "pkg.cli": "from pkg import run\n",
    })
    layers = (("bottom", ("pkg", "pkg.run")), ("top", ("pkg.cli",)))
    graph = import_graph(tmp_path, ["pkg"])
    assert [describe_upward(graph, e, layers) for e in upward_imports(graph, layers)] == [
        "pkg/run.py:2 (bottom) imports pkg/cli.py (top), a higher layer"]

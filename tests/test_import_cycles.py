"""The production code has no import cycles and no module over 400 lines.

Reads the source with ``ast`` (nothing is imported): every module under parley/, node/, api/, discovery/,
workers/ and tools/, named as it installs (``node/hub.py`` is ``parley.node.hub``, from pyproject's
package-dir). An import counts when it runs as the module loads: at module level, in a class body, under
``try`` or a plain ``if``; not inside a function, and not under ``if TYPE_CHECKING:``. ``from a import b``
is an edge to ``a.b`` when that is a module and to ``a``; an import of a module is also one to its
packages (their ``__init__`` runs first).
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRAPHED = ("parley", "node", "api", "discovery", "workers", "tools")
MEASURED = ("parley", "node", "api", "discovery", "workers")  # tools/ and loadtest/ are not production roles
MAX_LINES = 400

# Known before the clean-up: being split on another branch; the lead empties these lists as branches land.
# An entry no longer needed fails the test too, so the lists only ever shrink. No cycle was known.
KNOWN_CYCLES: list[set[str]] = []
KNOWN_LONG: set[str] = set()  # a production module over the limit, kept on purpose, would be named here

Graph = dict[str, set[str]]


def module_files(roots: tuple[str, ...] = GRAPHED, root: Path = ROOT) -> dict[str, Path]:
    """Installed module name → source file, for the top-level folders in ``roots``."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    folders = {"parley": "parley"} | {folder: package for package, folder in
                                      config["tool"]["setuptools"]["package-dir"].items()}
    out = {}
    for folder in roots:
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join((folders[folder], *parts))] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def load_time_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when a module with this body is loaded."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from load_time_imports(node.orelse)
        else:
            for field in ("body", "orelse", "finalbody"):
                yield from load_time_imports(getattr(node, field, []))
            for holder in (*getattr(node, "handlers", []), *getattr(node, "cases", [])):
                yield from load_time_imports(holder.body)


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def _with_parents(name: str) -> set[str]:
    """``a.b.c`` → ``{a, a.b, a.b.c}``: importing a module runs its packages' ``__init__`` first."""
    parts = name.split(".")
    return {".".join(parts[:n]) for n in range(1, len(parts) + 1)}


def _named(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """What an import statement names: ``from a import b`` names ``a`` and ``a.b`` (a module or not)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    source = _absolute(node, module, is_package)
    return [source, *(f"{source}.{alias.name}" for alias in node.names)]


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The known modules ``module`` imports as it loads."""
    out: set[str] = set()
    for node in load_time_imports(ast.parse(path.read_text(), str(path)).body):
        for name in _named(node, module, path.name == "__init__.py"):
            out |= _with_parents(name)
    # A module's own packages were imported before it ran, so naming them again starts nothing: a
    # package's ``__init__`` re-exporting its submodules, which import each other, is not a cycle.
    return (out & known) - _with_parents(module)


def import_graph(files: dict[str, Path]) -> Graph:
    known = set(files)
    return {module: imports_of(module, path, known) for module, path in files.items()}


def cycles(graph: Graph) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = {stack.pop()}
            while v not in component:
                component.add(stack.pop())
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def one_cycle(graph: Graph, component: set[str]) -> list[str]:
    """A path through ``component`` back to where it starts, to show in a failure."""
    start = min(component)
    path, seen = [start], {start}
    while True:
        step = min(w for w in graph[path[-1]] if w in component)
        if step in seen:
            return [*path[path.index(step):], step]
        path.append(step)
        seen.add(step)


def long_modules(files: dict[str, Path], root: Path = ROOT) -> dict[str, int]:
    """Source path → line count, for the modules over ``MAX_LINES``."""
    counts = {str(path.relative_to(root)): len(path.read_text().splitlines()) for path in files.values()}
    return {path: n for path, n in sorted(counts.items()) if n > MAX_LINES}


def test_no_import_cycles() -> None:
    graph = import_graph(module_files())
    found = cycles(graph)
    new = [" -> ".join(one_cycle(graph, c)) for c in found if not any(c <= known for known in KNOWN_CYCLES)]
    assert not new, "import cycles:\n  " + "\n  ".join(new)
    stale = [known for known in KNOWN_CYCLES if not any(c <= known for c in found)]
    assert not stale, f"no longer cycles, take them out of KNOWN_CYCLES: {stale}"


def test_no_production_module_over_400_lines() -> None:
    long = long_modules(module_files(MEASURED))
    new = {path: n for path, n in long.items() if path not in KNOWN_LONG}
    assert not new, f"over {MAX_LINES} lines, split by concept: " + ", ".join(f"{p} ({n})" for p, n in new.items())
    stale = sorted(KNOWN_LONG - set(long))
    assert not stale, f"no longer over {MAX_LINES} lines, take them out of KNOWN_LONG: {stale}"


def test_only_the_entry_point_imports_the_api_app() -> None:
    """``parley.api.app`` wires the handler modules; a handler module importing it back makes a cycle, even
    from inside a function."""
    importers = sorted(module for module, path in module_files().items() if module != "parley.tools.cli"
                       for node in ast.walk(ast.parse(path.read_text(), str(path)))
                       if isinstance(node, ast.Import | ast.ImportFrom)
                       and "parley.api.app" in _named(node, module, path.name == "__init__.py"))
    assert not importers, f"only parley.tools.cli (and tests) may import parley.api.app: {importers}"


def test_the_graph_sees_what_python_runs(tmp_path: Path) -> None:
    """The rules above, on a small tree: so the two tests can fail."""
    (tmp_path / "pyproject.toml").write_text('[tool.setuptools.package-dir]\n"parley.node" = "node"\n')
    sources = {
        "parley/__init__.py": "",
        "parley/a.py": "from parley.node import b\n",
        "parley/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import parley.a\n"
                       "def later():\n    import parley.a\n",
        "parley/d.py": "try:\n    from . import c\nexcept ImportError:\n    pass\nclass K:\n    import parley.e\n",
        "parley/e.py": "from parley import d\n" + "x = 1\n" * MAX_LINES,
        "node/__init__.py": "",
        "node/b.py": "import parley.a\nimport os\n",
    }
    for name, text in sources.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    files = module_files(("parley", "node"), tmp_path)
    graph = import_graph(files)
    assert graph["parley.c"] == set()  # TYPE_CHECKING and function-level imports do not count
    assert graph["parley.d"] == {"parley.c", "parley.e"}  # its own package ran first: not an edge
    assert sorted(map(sorted, cycles(graph))) == [["parley.a", "parley.node.b"], ["parley.d", "parley.e"]]
    assert one_cycle(graph, {"parley.a", "parley.node.b"}) == ["parley.a", "parley.node.b", "parley.a"]
    assert long_modules(files, tmp_path) == {"parley/e.py": MAX_LINES + 1}


def test_every_package_folder_is_in_the_wheel() -> None:
    """A folder of production code with an ``__init__.py`` that pyproject's ``packages`` does not name
    would be left out of a non-editable install (imports work from the source tree, then fail there)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = {folder: package for package, folder in config["package-dir"].items() if folder != "."}
    mapping["parley"] = "parley"
    found = set()
    for folder, package in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *rel.parts]))
    missing = sorted(found - listed)
    assert not missing, f"add to pyproject's packages: {missing}"

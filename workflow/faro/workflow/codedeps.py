"""A rule's code inputs, computed: the package files its entry function can import.

Every import statement inside the package is read once (with :mod:`ast`, never by importing),
the ones at module level and the lazy ones inside functions alike.  The closure of an entry
function ``module:function`` is then: the module's own top-level imports and those in the
function's body, and, for every package module reached, all of that module's imports, and the
``__init__`` files of the packages on the way (Python runs them on import).  So editing a
module reruns exactly the rules whose entry can reach it, and one plot module reruns only
its own figure.

Names resolved through a registry string (a backend in :data:`faro.backends.base.BACKENDS`,
a policy class in its YAML file) are not imports; the rules add those modules' closures
explicitly (:func:`closure` of the backend module, :func:`faro.workflow.support.policy_code`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path

PACKAGE = "faro"
#: the package's folder (``workflow/faro``): the code of this very checkout
PKG_DIR = Path(__file__).resolve().parent.parent


# -- the import graph (also tests/test_layout.py's: no cycles) --------------------------------
def package_modules(src: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` under ``src``."""
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(nodes: Iterable[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement in ``nodes`` (module level, in functions, in classes), except
    the bodies of ``if TYPE_CHECKING:`` (annotations only, never executed)."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from runtime_imports(node.orelse)
        else:
            yield from runtime_imports(ast.iter_child_nodes(node))


def imported_modules(nodes: Iterable[ast.AST], importer: str, is_package: bool, modules: Mapping[str, Path],
                     package: str = PACKAGE) -> set[str]:
    """The package modules the import statements under ``nodes`` name: ``import a.b``,
    ``from a import b`` (b a module: a.b, else a), relative imports resolved against the
    importing module's package."""
    pkg = importer if is_package else importer.rpartition(".")[0]
    targets: set[str] = set()
    for node in runtime_imports(nodes):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names if a.name.split(".")[0] == package)
            continue
        if node.level:
            up = pkg.split(".")
            base = ".".join(up[: len(up) - (node.level - 1)] + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        if base.split(".")[0] != package:
            continue
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            targets.add(sub if sub in modules else base)
    return targets


def import_graph(modules: Mapping[str, Path], package: str = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package modules it imports (lazy imports included, ``TYPE_CHECKING`` not)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        targets = imported_modules([tree], name, path.name == "__init__.py", modules, package)
        unknown = {t for t in targets if t not in modules}
        if unknown:
            raise ImportError(f"{name} imports modules that do not exist: {sorted(unknown)}")
        graph[name] = targets - {name}
    return graph


# -- code inputs ----------------------------------------------------------------------------
@cache
def _modules() -> dict[str, Path]:
    return package_modules(PKG_DIR.parent)


@cache
def _graph() -> dict[str, set[str]]:
    return import_graph(_modules())


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]


def _reach(start: Iterable[str]) -> set[str]:
    """``start``, every module they import, transitively, and the packages on the way (Python
    runs a package's ``__init__`` before any of its modules)."""
    graph = _graph()
    seen: set[str] = set()
    todo = [m for s in start for m in (s, *_parents(s))]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(d for d in graph[m] | set(_parents(m)) if d not in seen)
    return seen


@cache
def closure(entry: str) -> tuple[str, ...]:
    """Package files (relative to the project root, sorted) that ``entry`` can import.

    ``entry`` is ``"package.module"`` (the whole module) or ``"package.module:function"`` (the
    module's top-level imports and those in the function's body)."""
    module, _, func = entry.partition(":")
    modules = _modules()
    if module not in modules:
        raise ModuleNotFoundError(f"{module}: no such module in {PKG_DIR}")
    if func:
        path = modules[module]
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        body = next((n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                     and n.name == func), None)
        if body is None:
            raise AttributeError(f"{module} has no function {func!r}")
        defs = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
        top = [n for n in tree.body if not isinstance(n, defs)]
        direct = imported_modules([*top, body], module, path.name == "__init__.py", modules)
        mods = {module} | _reach(direct) | set(_parents(module))
    else:
        mods = _reach([module])
    root = PKG_DIR.parent.parent
    return tuple(sorted(str(modules[m].relative_to(root)) for m in mods))


def closure_of(*entries: str) -> list[str]:
    """The union of :func:`closure` over ``entries``, sorted."""
    return sorted(set().union(*(closure(e) for e in entries)))

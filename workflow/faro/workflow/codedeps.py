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
from functools import cache
from pathlib import Path

PACKAGE = "faro"
#: the package's folder (``workflow/faro``): the code of this very checkout
PKG_DIR = Path(__file__).resolve().parent.parent


def _module_file(module: str) -> Path | None:
    rel = Path(*module.split("."))
    for p in (PKG_DIR.parent / rel.with_suffix(".py"), PKG_DIR.parent / rel / "__init__.py"):
        if p.is_file():
            return p
    return None


def _is_package(module: str) -> bool:
    return (PKG_DIR.parent / Path(*module.split(".")) / "__init__.py").is_file()


def _targets(node: ast.AST, module: str) -> set[str]:
    """Package modules named by the import statements under ``node`` (any depth)."""
    out: set[str] = set()
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    for n in ast.walk(node):
        if isinstance(n, ast.Import):
            out.update(a.name for a in n.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(n, ast.ImportFrom):
            if n.level:
                parent = base[: len(base) - (n.level - 1)]
                target = ".".join(parent + ([n.module] if n.module else []))
            else:
                target = n.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            for a in n.names:  # ``from faro.x import y``: y may be a module of its own
                sub = f"{target}.{a.name}"
                out.add(sub if _module_file(sub) else target)
    return {m for m in out if _module_file(m)}


@cache
def _tree(module: str) -> ast.Module:
    path = _module_file(module)
    if path is None:
        raise ModuleNotFoundError(f"{module}: no such module in {PKG_DIR}")
    return ast.parse(path.read_text(), str(path))


@cache
def module_imports(module: str) -> frozenset[str]:
    """The package modules ``module`` imports anywhere in its file, with their parent packages."""
    found = _targets(_tree(module), module)
    return frozenset(found | {p for m in found for p in _parents(m)})


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]


@cache
def _module_closure(module: str) -> frozenset[str]:
    seen: set[str] = set()
    todo = [module, *_parents(module)]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(module_imports(m) - seen)
    return frozenset(seen)


@cache
def closure(entry: str) -> tuple[str, ...]:
    """Package files (relative to the project root, sorted) that ``entry`` can import.

    ``entry`` is ``"package.module"`` (the whole module) or ``"package.module:function"`` (the
    module's top-level imports and those in the function's body)."""
    module, _, func = entry.partition(":")
    tree = _tree(module)
    if func:
        body = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and n.name == func), None)
        if body is None:
            raise AttributeError(f"{module} has no function {func!r}")
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        direct = set().union(*(_targets(n, module) for n in top), _targets(body, module))
        mods = {module, *_parents(module)}.union(*(_module_closure(m) for m in direct))
    else:
        mods = set(_module_closure(module))
    root = PKG_DIR.parent.parent
    return tuple(sorted(str(_module_file(m).relative_to(root)) for m in mods))  # type: ignore[union-attr]


def closure_of(*entries: str) -> list[str]:
    """The union of :func:`closure` over ``entries``, sorted."""
    return sorted(set().union(*(closure(e) for e in entries)))

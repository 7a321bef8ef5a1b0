"""The repository's layout: the faro package's imports form no cycle, and no tracked file names
a path of the machine it was written on.

Both checks read the sources (``ast``, ``git ls-files``); the import graph is the one the
workflow computes the rules' code inputs from (:mod:`faro.workflow.codedeps`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from faro.workflow import codedeps

PROJECT = Path(__file__).resolve().parents[1]
SRC = PROJECT / "workflow"
PACKAGE = "faro"


# -- the import graph -------------------------------------------------------------------------
package_modules = codedeps.package_modules


def import_graph(modules: Mapping[str, Path], package: str = PACKAGE) -> dict[str, set[str]]:
    """The package's own import graph (faro.workflow.codedeps: the code inputs of the rules come
    from the same reading of the sources)."""
    return codedeps.import_graph(modules, package)


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One cycle (a, b, ..., a) per strongly connected component with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)

    out = []
    for comp in components:  # a shortest path from the component's first module back to it
        members, start = set(comp), comp[0]
        prev: dict[str, str] = {}
        frontier, found = [start], None
        while frontier and found is None:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v] & members):
                    if w == start:
                        found = v
                        break
                    if w not in prev:
                        prev[w] = v
                        nxt.append(w)
                if found is not None:
                    break
            frontier = nxt
        path = [start]
        v = found
        while v is not None and v != start:
            path.insert(1, v)
            v = prev.get(v)
        out.append([*path, start])
    return out


def test_import_graph_reads_the_sources():
    """Not vacuous: the graph holds the package and edges of every kind."""
    modules = package_modules(SRC)
    graph = import_graph(modules)
    assert len(modules) > 50 and "faro.control.controller" in modules
    assert sum(len(t) for t in graph.values()) > 100
    # module level, absolute
    assert "faro.solver.solve" in graph["faro.policies.hybrid"]
    # a lazy import inside a function
    assert "faro.forecast.training" in graph["faro.policies.hybrid"]


def test_import_graph_kinds(tmp_path):
    """Relative, lazy, ``from pkg import submodule``, and ``if TYPE_CHECKING:`` (not counted)."""
    pkg = tmp_path / "faro"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "from faro.sub import b\nfrom typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from faro import d\nelse:\n    import json\n",
        "d.py": "def f():\n    from .sub.b import g\n    return g\n",
        "sub/__init__.py": "from . import c\n",
        "sub/b.py": "from ..d import f\n",
        "sub/c.py": "from .. import a\nimport faro.sub\n",
    }
    for rel, text in files.items():
        (pkg / rel).write_text(text)
    graph = import_graph(package_modules(tmp_path))
    assert graph == {
        "faro": set(),
        "faro.a": {"faro.sub.b"},
        "faro.d": {"faro.sub.b"},
        "faro.sub": {"faro.sub.c"},
        "faro.sub.b": {"faro.d"},
        "faro.sub.c": {"faro.a", "faro.sub"},
    }
    assert sorted(cycles(graph)) == [["faro.d", "faro.sub.b", "faro.d"],
                                     ["faro.sub", "faro.sub.c", "faro.sub"]]
    del graph["faro.sub.b"]
    assert cycles(graph) == [["faro.sub", "faro.sub.c", "faro.sub"]]


def test_no_import_cycle():
    """The package's modules import each other without a cycle (lazy imports included): a
    cycle makes import order matter and the layers meaningless."""
    found = cycles(import_graph(package_modules(SRC)))
    assert not found, "import cycles in the faro package:\n" + "\n".join(" -> ".join(c) for c in found)


def layer_of(module: str) -> str:
    """A module's layer: its subpackage of faro (each backend its own), or its top-level module."""
    parts = module.split(".")
    if len(parts) > 2 and parts[1] == "backends" and parts[2] in ("sim", "ray", "k8s"):
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def test_every_rule_has_an_entry_and_the_dispatcher_is_in_no_code_inputs():
    # every rule that runs scripts/rule.py has its entry function listed; the registry that
    # lists them (and sets processes up) is imported by no entry function, so a new rule
    # changes no rule's code inputs and reruns nothing
    from faro.workflow.dispatch import ENTRIES

    text = "\n".join(f.read_text() for f in sorted((PROJECT / "rules").glob("*.smk")))
    blocks = re.split(r"^rule (\w+):", text, flags=re.M)
    scripted = {name for name, body in zip(blocks[1::2], blocks[2::2]) if "scripts/rule.py" in body}
    assert scripted == set(ENTRIES)
    for rule, entry in ENTRIES.items():
        files = codedeps.closure_of(entry)
        assert "workflow/faro/workflow/dispatch.py" not in files, rule
        assert "workflow/" + entry.partition(":")[0].replace(".", "/") + ".py" in files, rule


def test_no_cycle_between_layers():
    """The subpackages depend on each other one way only (README, "Architecture"): e.g. the
    backends never import the workflow glue, the model never imports the policies."""
    graph: dict[str, set[str]] = {}
    for mod, deps in import_graph(package_modules(SRC)).items():
        layer = layer_of(mod)
        graph.setdefault(layer, set()).update(layer_of(d) for d in deps if layer_of(d) != layer)
    found = cycles(graph)
    assert not found, "cycles between layers:\n" + "\n".join(" -> ".join(c) for c in found)
    backends = ("faro.backends.sim", "faro.backends.ray", "faro.backends.k8s")
    assert "faro.workflow" not in set().union(*(graph.get(b, set()) for b in backends))


# -- paths of this machine -------------------------------------------------------------------
#: top-level folders where checkouts, homes and shared data live on a machine; a tracked file
#: naming one (``<root>/<component>``) depends on that machine
MACHINE_ROOTS = ("work", "home", "root", "Users", "scratch")
#: paths under those roots that are the same everywhere (none so far; e.g. a container image's
#: home folder would go here)
ALLOWED: tuple[str, ...] = ()
#: tracked files not checked: the golden checksums (data, no paths)
SKIP_DIRS = ("tests/golden/",)


def machine_path_pattern(extra_roots: tuple[str, ...] = ()) -> re.Pattern[str]:
    """An absolute path under :data:`MACHINE_ROOTS` (or under ``extra_roots``, absolute folders
    of this machine): not part of a URL, of a longer path, ``~/...`` or ``$HOME/...``."""
    roots = "|".join([*(f"/{re.escape(r)}" for r in MACHINE_ROOTS), *map(re.escape, extra_roots)])
    return re.compile(rf"(?<![\w.~/$}})])(?:{roots})/[\w.+-]+")


def _this_machine() -> tuple[str, ...]:
    """This checkout's parent folder and the home folder, when they are specific folders."""
    out = []
    for p in (PROJECT.parent, Path.home()):
        s = str(p).rstrip("/")
        if s.count("/") >= 1 and s not in ("", "/tmp", "/var/tmp") and not s.startswith("/tmp/"):
            out.append(s)
    return tuple(out)


def tracked_text_files() -> Iterator[tuple[str, str]]:
    if shutil.which("git") is None or not (PROJECT / ".git").exists():
        pytest.skip("not a git checkout")
    names = subprocess.run(["git", "-C", str(PROJECT), "ls-files", "-z"], check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, names):
        path = PROJECT / name
        if name.startswith(SKIP_DIRS) or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        yield name, data.decode("utf-8", errors="replace")


@pytest.mark.parametrize("text, hit", [
    ("DATA = '/{}/shared/data/faro-artifact'".format("work"), True),
    ("see /{}/alice/faro".format("home"), True),
    ("cd /{}/.cache".format("root"), True),
    ("/tmp/faro-ray-state, /usr/bin/time, /dev/null, /etc/slurm/slurm.conf, /proc/1/stat", False),
    ("https://example.org/{}/x and ~/{}/x and $HOME/{}/x and a/{}/x".format("home", "work", "work", "root"),
     False),
    ("/var/lib/apt/lists/* and /opt/faro", False),
])
def test_machine_path_pattern(text, hit):
    assert bool(machine_path_pattern().search(text)) is hit


def test_no_machine_paths_in_tracked_files():
    """No tracked text file names an absolute path of a machine (a checkout, a home, shared
    data): paths come from the project root, the config or the environment."""
    pattern = machine_path_pattern(_this_machine())
    hits = []
    for name, text in tracked_text_files():
        for lineno, line in enumerate(text.splitlines(), 1):
            for m in pattern.finditer(line):
                if not m.group(0).startswith(ALLOWED):
                    hits.append(f"{name}:{lineno}: {m.group(0)}")
    assert not hits, "machine paths in tracked files:\n" + "\n".join(hits)


def test_this_machine_is_checked():
    """The checkout's own parent folder is among the patterns (when it is a specific folder)."""
    if not _this_machine():
        pytest.skip("checkout in a temporary folder")
    probe = f"x = '{_this_machine()[0]}/some/file'"
    assert machine_path_pattern(_this_machine()).search(probe)

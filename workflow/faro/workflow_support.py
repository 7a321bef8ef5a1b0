"""Helpers for ``rules/common.smk``: code dependencies, run order, session cleanup.

Snakemake tracks a rule's own script, not what it imports, so each rule names the
package modules it runs as inputs: editing the simulator reruns simulations,
editing a plot reruns only that plot, editing a policy's module reruns only the
cells of policies whose class lives there.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import yaml

from faro.config import project_root

PKG = "workflow/faro"
log = logging.getLogger("faro.workflow")


def code_files(*parts: str) -> list[str]:
    """Package files (relative to the project) for modules or sub-packages ``parts``."""
    root = project_root()
    out: list[str] = []
    for part in parts:
        p = root / PKG / part
        if not p.exists() and (root / PKG / f"{part}.py").is_file():
            p = root / PKG / f"{part}.py"
        if p.is_dir():
            out += sorted(str(f.relative_to(root)) for f in p.rglob("*.py"))
        elif p.is_file():
            out.append(str(p.relative_to(root)))
        else:
            raise FileNotFoundError(f"code dependency {PKG}/{part} does not exist")
    return out


def policy_code(policy_file: str) -> list[str]:
    """The module file of a policy's class, the policy base, and its declared ``code_deps``."""
    from faro.policies.registry import BUILTIN, policy_class

    root = project_root()
    path = root / policy_file
    spec = yaml.safe_load(path.read_text())["class"]
    target = BUILTIN.get(spec, spec)
    module = target.rpartition(":")[0]
    files = code_files("policies/base.py", "policies/registry.py")
    if module.endswith(".py"):
        files.append(module)
    else:
        found = importlib.util.find_spec(module)
        if found is not None and found.origin:
            origin = Path(found.origin).resolve()
            try:
                files.append(str(origin.relative_to(root)))
            except ValueError:
                pass  # an installed third-party module: not tracked
    cls = policy_class(spec, root)
    files += code_files(*getattr(cls, "code_deps", ()))
    return sorted(set(files))


def policy_data(policy_file: str, data_dir: str) -> list[str]:
    """Data files a policy reads (e.g. the forecaster's training history)."""
    from faro.policies.registry import policy_class

    spec = yaml.safe_load((project_root() / policy_file).read_text())
    cls = policy_class(spec["class"], project_root())
    fn = getattr(cls, "data_inputs", None)
    return list(fn(spec.get("params") or {}, data_dir)) if callable(fn) else []


def run_order(quotas, policies, seeds) -> list[tuple[int, str, int]]:
    """The fixed order in which live sessions run: seed, then quota, then policy.

    Seed-major, so a long real matrix completes one whole replicate (every quota x policy
    cell) before it starts the next: an interrupted run still gives comparable cells.
    """
    return [(int(q), str(p), int(s)) for s in seeds for q in quotas for p in policies]


def open_sessions(root: str) -> list[Path]:
    """Run folders with a session stage recorded and no teardown record after it."""
    base = Path(root)
    out = []
    for stages in sorted(base.glob("*_cpus/*/seed_*/stages")):
        if (stages / "teardown.json").is_file():
            teardown_t = (stages / "teardown.json").stat().st_mtime
            later = [p for p in stages.glob("*.json") if p.stat().st_mtime > teardown_t]
            if not later:
                continue
        if any(stages.glob("*.json")):
            out.append(stages.parent)
    return out


def teardown_sessions(root: str, backend: str) -> list[str]:
    """Tear down every open session under ``root`` (idempotent; errors are logged, not raised)."""
    from faro.backends.base import get_backend
    from faro.stages import read_records

    done = []
    be = get_backend(backend)
    for run_dir in open_sessions(root):
        try:
            be.teardown(run_dir, read_records(run_dir, "teardown"))
            done.append(str(run_dir))
        except Exception as e:  # noqa: BLE001 - keep tearing down the others
            log.error("teardown of %s failed: %s", run_dir, e)
    extra = getattr(be, "cleanup_leftovers", None)
    if callable(extra):
        try:
            for rec in extra():
                done.append(str(rec))
        except Exception as e:  # noqa: BLE001
            log.error("cleanup of leftover %s sessions failed: %s", backend, e)
    if done:
        log.info("tore down %d session(s): %s", len(done), json.dumps(done))
    return done

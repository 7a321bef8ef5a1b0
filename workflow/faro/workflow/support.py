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
import sys
from pathlib import Path

import yaml

from faro.workflow.paths import project_root

log = logging.getLogger("faro.workflow")


_ARGS: dict[tuple[str, ...], object] = {}


def command_line(argv: list[str] | None = None):
    """Snakemake's own parse of its command line (None when not run from the CLI)."""
    argv = list(sys.argv if argv is None else argv)
    if not argv or "snakemake" not in Path(argv[0]).as_posix():
        return None
    key = tuple(argv)
    if key not in _ARGS:
        from snakemake.cli import get_argument_parser

        try:
            _ARGS[key] = get_argument_parser().parse_known_args(argv[1:])[0]
        except SystemExit:  # not a command line Snakemake's parser understands
            _ARGS[key] = None
    return _ARGS[key]


def requested_targets(workflow, argv: list[str] | None = None) -> list[str]:
    """The targets named on the command line (empty for the default target or a lint run).

    Snakemake hands its targets to the workflow only after the Snakefile is read, so they
    are read here from the command line with Snakemake's own argument parser: every target,
    a single cell's path too, is checked before anything runs.
    """
    settings = getattr(workflow, "dag_settings", None)
    found = [str(t) for t in (getattr(settings, "targets", None) or ())]
    if found:
        return found
    args = command_line(argv)
    return [str(t) for t in (getattr(args, "targets", None) or ())]


#: Snakemake options after which no job runs (nothing may be moved then)
_NO_RUN = ("dryrun", "report", "lint", "summary", "detailed_summary", "list_rules", "list_target_rules",
           "dag", "rulegraph", "filegraph", "d3dag", "unlock", "cleanup_metadata", "touch",
           "delete_all_output",
           "delete_temp_output", "list_changes", "list_input_changes", "list_params_changes",
           "list_code_changes",
           "print_compilation", "archive", "containerize", "export_cwl", "generate_unit_tests",
           "cleanup_shadow")


def will_run_jobs(argv: list[str] | None = None) -> bool:
    """True for a command line that executes jobs (not -n, --report, --lint, ...)."""
    args = command_line(argv)
    if args is None or getattr(args, "target_jobs", None):  # a job Snakemake spawned: not the run
        return False
    return not any(getattr(args, k, None) for k in _NO_RUN)


def repair_corrupt(root: str, cells, argv: list[str] | None = None) -> list[str]:
    """Before a real run: move corrupt outputs of ``cells`` aside so that they are rebuilt
    (faro.workflow.doctor); before a dry run only say which.  Returns the lines printed."""
    from faro.workflow.doctor import scan, set_aside_corrupt

    if will_run_jobs(argv):
        lines = []
        for src, dst, why in set_aside_corrupt(root, cells):
            what = f"({why})" if why.startswith("made from") else f"is corrupt ({why})"
            lines.append(f"faro: {src} {what}: moved to {dst}; it is rebuilt now")
    elif getattr(command_line(argv), "dryrun", False):
        lines = [f"faro: {p.path} is corrupt ({p.detail}): a real run moves it aside and rebuilds it"
                 for p in scan(root, cells).problems if p.kind == "corrupt"]
    else:
        lines = []
    for line in lines:
        print(line, file=sys.stderr)
    return lines


def config_sources_of(workflow):
    """Where the config's keys came from (for error messages): --config, --configfile, default."""
    from faro.workflow.config import config_sources

    cs = getattr(workflow, "config_settings", None)
    return config_sources(getattr(cs, "configfiles", ()) or (), getattr(cs, "config", None))


def is_verbose(workflow) -> bool:
    out = getattr(workflow, "output_settings", None)
    return bool(getattr(out, "verbose", False))


def policy_code(policy_file: str) -> list[str]:
    """The code of a policy: the import closure of its class's module (computed,
    :mod:`faro.workflow.codedeps`) when it is in the package, else its own ``.py`` file."""
    from faro.policies.registry import BUILTIN
    from faro.workflow.codedeps import closure

    root = project_root()
    spec = yaml.safe_load((root / policy_file).read_text())["class"]
    module = BUILTIN.get(spec, spec).rpartition(":")[0]
    if module.endswith(".py"):  # a user's policy file: tracked itself (its imports are its own)
        return [module]
    if module.split(".")[0] == "faro":
        return list(closure(module))
    found = importlib.util.find_spec(module)
    if found is not None and found.origin:
        try:
            return [str(Path(found.origin).resolve().relative_to(root))]
        except ValueError:
            pass  # an installed third-party module: not tracked
    return []


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
    from faro.workflow.stage_runner import read_records

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

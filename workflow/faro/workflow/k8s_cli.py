"""The ``k8s`` backend's by-hand commands, on the run spec the workflow wrote (rule
``k8s_manifests``: ``RUN/manifests/run_spec.json``):

    python -m faro.workflow.k8s_cli manifests --run-spec RUN/manifests/run_spec.json --out DIR
    python -m faro.workflow.k8s_cli stage STAGE --run-spec RUN/manifests/run_spec.json --run-dir RUN

``manifests`` renders every object the stages apply, as YAML (touches no cluster); ``stage``
runs one stage through the workflow's own stage runner, so it applies exactly what the
Snakemake rule would and writes the same record (``RUN/stages/<stage>.json``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

#: the k8s stage names of the by-hand CLI -> the workflow's stage names (faro.backends.base.STAGES)
CLI_STAGES = {"setup_quota": "quota", "deploy_clusters": "clusters", "deploy_jobs": "jobs",
              "launch_autoscaler": "autoscaler", "replay": "replay", "fetch_logs": "fetch",
              "teardown": "teardown"}


def manifests(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m faro.workflow.k8s_cli manifests",
                                 description="Render a run's Kubernetes objects as YAML, "
                                             "as the stages apply them.")
    ap.add_argument("--run-spec", type=Path, required=True,
                    help="the run spec JSON the workflow wrote "
                         "(RUN/manifests/run_spec.json, rule k8s_manifests)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--ray-service", action="store_true", help="also render each job as a RayService")
    a = ap.parse_args(argv)

    from faro.backends.k8s.backend import load_run_spec, write_manifests

    paths = write_manifests(load_run_spec(a.run_spec), a.out, ray_services=a.ray_service)
    print(f"{len(paths) - 1} objects -> {a.out} ({len(paths)} files)")
    return 0


def stage(argv: Sequence[str] | None = None) -> int:
    """One stage by hand, through :func:`faro.workflow.stage_runner.run_stage`."""
    from faro.backends.k8s.backend import DETACHED, load_run_spec
    from faro.workflow.stage_runner import run_stage

    ap = argparse.ArgumentParser(prog="python -m faro.workflow.k8s_cli stage")
    ap.add_argument("stage", choices=list(CLI_STAGES))
    ap.add_argument("--run-spec", type=Path, required=True,
                    help="the run spec JSON the workflow wrote (RUN/manifests/run_spec.json)")
    ap.add_argument("--run-dir", type=Path, required=True,
                    help="the run's folder (RESULTS/Q_cpus/POLICY/seed_S)")
    ap.add_argument("--server", help="API server URL instead of the kubeconfig (e.g. `kubectl proxy`)")
    a = ap.parse_args(argv)

    run = load_run_spec(a.run_spec)
    if a.stage == "teardown":  # by hand = explicit: a session kept for a reattach goes too
        (a.run_dir / "live" / DETACHED).unlink(missing_ok=True)
    if a.server:
        run = run.with_backend_options(server=a.server)
    rec = run_stage(CLI_STAGES[a.stage], run, a.run_dir)
    state = rec.get("state") or {}
    print(json.dumps({"stage": a.stage, "namespace": state.get("namespace"), "seconds": rec["seconds"],
                      "record": str(a.run_dir / "stages" / f"{CLI_STAGES[a.stage]}.json")}))
    return 0


COMMANDS = {"manifests": manifests, "stage": stage}


def main(argv: Sequence[str] | None = None) -> int:
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print(f"usage: python -m faro.workflow.k8s_cli {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":
    raise SystemExit(main())

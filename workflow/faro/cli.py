"""The ``faro`` command: checks that help before running the workflow."""

from __future__ import annotations

import argparse
import sys

from faro.model.trace import TraceError, parse_trace


def _validate_trace(args: argparse.Namespace) -> int:
    jobs = args.jobs.split(",") if args.jobs else None
    try:
        trace = parse_trace(args.path, jobs)
    except TraceError as e:
        print(f"invalid trace: {e}", file=sys.stderr)
        return 1
    per_min = trace.counts.sum(axis=1)
    print(
        f"{args.path}: valid; {len(trace.jobs)} jobs ({', '.join(trace.jobs)}), {trace.n_minutes} minutes, "
        f"{trace.total} requests; per minute {per_min.min()}-{per_min.max()} (mean {per_min.mean():.0f})"
    )
    return 0


def _validate_experiment(args: argparse.Namespace) -> int:
    """The checks the workflow runs before anything starts, for one experiment: its
    definition, its trace (syntax, every job present; extra jobs a warning), and each
    quota x policy (minimum and starting replicas, the policy files and parameters)."""
    from faro.workflow.config import ConfigError, check_config, check_trace, default_config

    cfg = default_config()
    cfg["experiment"] = args.experiment
    if args.data_dir:
        cfg["data_dir"] = args.data_dir
    if args.policy_dir:
        cfg["policy_dir"] = args.policy_dir
    try:
        from faro.workflow.config import load_config_experiment

        exp = load_config_experiment(cfg)
        if args.quotas:
            cfg["quotas"] = [int(q) for q in args.quotas.split(",")]
        elif exp.raw.get("quotas"):
            cfg["quotas"] = [int(q) for q in exp.raw["quotas"]]
        if args.policies:
            cfg["policies"] = args.policies.split(",")
        exp = check_config(cfg, results_root=False)
        notes = check_trace(cfg, exp)
    except (ConfigError, ValueError) as e:
        print(f"invalid experiment: {e}", file=sys.stderr)
        return 1
    for n in notes:
        if "not fetched yet" in n:  # extra jobs were reported by check_config already
            print(f"note: {n}", file=sys.stderr)
    print(
        f"{args.experiment}: valid; experiment {exp.name}, {exp.n_jobs} jobs; quotas {cfg['quotas']} x "
        f"policies {', '.join(cfg['policies'])} checked"
    )
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from faro.workflow.doctor import format_report, scan, set_aside_corrupt

    if args.fix:
        for src, dst, why in set_aside_corrupt(args.results):
            print(f"moved {src} ({why}) to {dst}")
    rep = scan(args.results)
    print(format_report(rep))
    return 1 if rep.problems else 0

def _explain(args: argparse.Namespace) -> int:
    from faro.explain import explain

    try:
        print(explain(args.cell, args.at, seed=args.seed, jobs=args.job))
    except (FileNotFoundError, ValueError) as e:
        print(f"explain: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="faro", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("validate-trace", help="check a trace file (JSON Lines of per-minute counts)")
    p.add_argument("path")
    p.add_argument("--jobs", help="comma-separated job names that every line must have")
    p.set_defaults(fn=_validate_trace)
    p = sub.add_parser("validate-experiment",
                       help="check an experiment: definition, trace, quotas x policies")
    p.add_argument("experiment", help="an experiment's name (experiments/<name>/) or its folder")
    p.add_argument("--quotas", help="comma-separated quotas (default: the experiment's, else config.yaml's)")
    p.add_argument("--policies", help="comma-separated policies (default: config.yaml's)")
    p.add_argument("--data-dir", help="where fetched data sets are (default: config.yaml's data_dir)")
    p.add_argument("--policy-dir", help="policy files (default: config/policies)")
    p.set_defaults(fn=_validate_experiment)
    p = sub.add_parser("doctor", help="find incomplete or corrupt cells and say how to rebuild them")
    p.add_argument("results", nargs="?", default="results", help="results root (default: results)")
    p.add_argument("--fix", action="store_true", help="move corrupt files to <run>/corrupt/ (then rerun)")
    p.set_defaults(fn=_doctor)

    p = sub.add_parser("explain",
                       help="what each job's policy saw and decided at one minute of a run, and why "
                            "the controller did or did not carry it out (reads the run's decisions.parquet)")
    p.add_argument("cell",
                   help="a cell folder (results/32_cpus/faro_sum: seed 42, else the first) or a run folder")
    p.add_argument("--at", type=float, required=True, metavar="MINUTE", help="trace minute (from 0)")
    p.add_argument("--seed", type=int, help="the run's seed (default 42, else the cell's first)")
    p.add_argument("--job", action="append", help="only this job (repeatable)")
    p.set_defaults(fn=_explain)
    args = parser.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    raise SystemExit(main())

"""The ``faro`` command: checks that help before running the workflow."""

from __future__ import annotations

import argparse
import sys

from faro.trace import TraceError, parse_trace


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
    from faro.experiment import ExperimentError, load_experiment

    try:
        exp = load_experiment(args.path)
    except ExperimentError as e:
        print(f"invalid experiment: {e}", file=sys.stderr)
        return 1
    print(f"{args.path}: valid; experiment {exp.name}, {exp.n_jobs} jobs")
    return 0


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
    p = sub.add_parser("validate-experiment", help="check an experiment definition")
    p.add_argument("path", help="experiments/<name> or its experiment.yaml")
    p.set_defaults(fn=_validate_experiment)
    p = sub.add_parser("explain", help="what each job's policy saw and decided at one minute of a run, and why "
                       "the controller did or did not carry it out (reads the run's decisions.parquet)")
    p.add_argument("cell", help="a cell folder (results/32_cpus/faro_sum: seed 42, else the first) or a run folder")
    p.add_argument("--at", type=float, required=True, metavar="MINUTE", help="trace minute (from 0)")
    p.add_argument("--seed", type=int, help="the run's seed (default 42, else the cell's first)")
    p.add_argument("--job", action="append", help="only this job (repeatable)")
    p.set_defaults(fn=_explain)
    args = parser.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    raise SystemExit(main())

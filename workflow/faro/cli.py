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
    args = parser.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    raise SystemExit(main())

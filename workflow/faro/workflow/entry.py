"""Entry points of the Snakemake rules: every rule runs ``scripts/rule.py``, which calls
:func:`faro.workflow.dispatch.run_rule`, which calls the rule's function listed in
:data:`faro.workflow.dispatch.ENTRIES`.

Every function takes the ``snakemake`` object, logs to ``snakemake.log[0]`` and writes its
outputs atomically.  Imports are lazy, inside each function, so that a stage that does no heavy
work starts no heavy import, and so that a rule's computed code inputs
(:mod:`faro.workflow.codedeps`) are what its function can reach, not all of this module.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from faro.workflow.rulelog import logged


def fetch_data(smk) -> None:
    """The mirror is read here, not passed as a param: it never makes a fetched file stale."""
    from faro.model.data import fetch, resolve_mirror

    with logged(smk) as log:
        mirror, origin = resolve_mirror(smk.config.get("data_mirror"))
        log.info("data mirror: %s (from %s)", mirror, origin)
        rec = fetch(smk.params.dataset, smk.params.name, smk.output[0], mirror)  # store: <data_dir>/.verified
        log.info("fetched %s", rec)


def prepare_trace(smk) -> None:
    """The experiment's trace: validated, derived (job pick, window, scale) and written."""
    from faro.model.experiment import experiment_trace, load_experiment
    from faro.model.trace import write_trace

    with logged(smk) as log:
        exp = load_experiment(smk.input.experiment)
        trace, warnings = experiment_trace(exp, smk.input.trace)
        for w in warnings:
            log.warning("%s", w)
        write_trace(trace, smk.output[0])
        log.info("trace %s: %d jobs, %d minutes, %d requests", exp.name, len(trace.jobs), trace.n_minutes,
                 trace.total)


def stage(smk) -> None:
    """One stage of a live backend's run; on a backend without live state the replay rule is
    the run's only stage job and does every stage (faro.workflow.stage_runner.run_chain)."""
    from faro.backends.base import LIVE_BACKENDS
    from faro.runspec import RunSpec
    from faro.workflow.stage_runner import run_chain, run_stage, sigterm_as_interrupt

    with logged(smk) as log, sigterm_as_interrupt():
        run = RunSpec.from_dict(smk.params.run)
        run_dir = Path(smk.params.run_dir)
        inputs = [str(p) for p in smk.input]
        if LIVE_BACKENDS[run.backend]:
            rec = run_stage(smk.params.stage, run, run_dir, inputs=inputs)
            log.info("stage %s done in %.2fs", smk.params.stage, rec["seconds"])
            return
        if smk.params.stage != "replay":
            raise ValueError(f"the {run.backend} backend runs every stage in the replay job, "
                             f"not in a {smk.params.stage!r} job")
        for name, rec in run_chain(run, run_dir, inputs=inputs).items():
            log.info("stage %s done in %.2fs", name, rec["seconds"])


def k8s_manifests(smk) -> None:
    """A k8s run's objects as YAML, exactly what its stages apply, plus its run spec (the input of
    ``python -m faro.workflow.k8s_cli stage``). Touches no cluster."""
    from faro.backends.k8s.backend import write_manifests
    from faro.runspec import RunSpec

    with logged(smk) as log:
        run = RunSpec.from_dict(smk.params.run)
        if run.backend != "k8s":
            raise ValueError(f"k8s_manifests renders the k8s backend's objects; the backend is {run.backend}")
        out = Path(smk.output[0])
        tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")  # a folder: written whole, then moved
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            paths = write_manifests(run, tmp)
            shutil.rmtree(out, ignore_errors=True)
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("wrote %d manifest files and run_spec.json into %s", len(paths), smk.output[0])


def run_results(smk) -> None:
    """Everything derived from one run's logs, in one process: the requests are parsed once and
    passed on in memory (as a reader of the written file gets them) to the stats and the
    per-minute frames.  Writes requests/replicas/decisions.parquet (with provenance),
    latency_stats.pkl/.json, binned.parquet and job_latency.parquet."""
    import pyarrow.parquet as pq

    from faro.backends.base import get_backend
    from faro.model.binned import binned_frame, job_latency, write_binned, write_job_latency
    from faro.model.schema import write_decisions, write_replicas, write_requests
    from faro.model.stats import run_metrics, write_stats
    from faro.model.trace import parse_trace
    from faro.runspec import RunSpec
    from faro.workflow.provenance import run_provenance

    with logged(smk) as log:
        run = RunSpec.from_dict(smk.params.run)
        run_dir = Path(smk.params.run_dir)
        backend = get_backend(run.backend)
        out = smk.output
        prov = run_provenance(run)
        requests, replicas = backend.parse(run, run_dir)
        # from here on, the frames as a reader of the files gets them (the parsed ones are dropped)
        requests = write_requests(requests, out.requests, prov)
        replicas = write_replicas(replicas, out.replicas, prov)
        log.info("parsed %d requests, %d replica changes", len(requests), len(replicas))

        decisions = pq.read_table(run_dir / backend.decisions_file).to_pandas()
        decisions["policy"] = run.policy.name  # the policy's config (cell folder) on every backend
        write_decisions(decisions, out.decisions, prov)
        log.info("decision records: %d rows (%d ticks)", len(decisions), decisions["time_s"].nunique())

        exp = run.exp
        n_minutes = parse_trace(smk.input.trace, exp.jobs).n_minutes
        slo = {j: m.slo_ms for j, m in zip(exp.jobs, exp.job_models, strict=True)}
        stats, binned = run_metrics(requests, jobs=exp.jobs, slo_ms=slo, unit_time=run.unit_time,
                                    n_minutes=n_minutes, replicas=replicas)
        write_stats(stats, out.pkl, out.json)
        log.info("slo_rate %.2f, avg_total_utility %.3f", stats["slo_rate"], stats["avg_total_utility"])
        write_binned(binned_frame(binned), out.binned)
        write_job_latency(job_latency(requests, list(exp.jobs)), out.latency)
        log.info("binned %d job-minutes", binned.requests.size)


def cell_stats(smk) -> None:
    from faro.model.stats import average_over_seeds, read_stats, write_stats

    with logged(smk) as log:
        per_seed = [read_stats(p) for p in smk.input.stats]
        stats = average_over_seeds(per_seed, list(smk.params.seeds))
        write_stats(stats, smk.output.pkl, smk.output.json)
        log.info("cell over seeds %s: slo_rate %.2f", list(smk.params.seeds), stats["slo_rate"])


def stats_table(smk) -> None:
    """One row per run (every seed of every cell): results/stats.parquet and .csv."""
    import pandas as pd

    from faro.model.stats import read_stats, stats_row

    with logged(smk) as log:
        rows = []
        for path, key in zip(smk.input.stats, smk.params.runs, strict=True):
            rows.append({**key, **stats_row(read_stats(path))})
        df = pd.DataFrame(rows)
        _atomic_df(df, smk.output.parquet, smk.output.csv)
        log.info("stats table: %d runs", len(df))


def _atomic_df(df, parquet_path: str, csv_path: str) -> None:
    from faro.atomic import atomic_path

    with atomic_path(parquet_path) as tmp:
        df.to_parquet(tmp, index=False)
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False)


def teardown_all(smk) -> None:
    from faro.workflow.support import teardown_sessions

    with logged(smk) as log:
        if smk.params.backend == "k8s":  # explicit: sessions kept for a reattach go too
            from faro.backends.k8s.backend import K8sBackend

            for run_dir in K8sBackend.release_detached(smk.params.root):
                log.info("released detached k8s session %s for teardown", run_dir)
        done = teardown_sessions(smk.params.root, smk.params.backend)
        log.info("teardown: %d open session(s) removed", len(done))
        print(f"teardown: {len(done)} open session(s) removed", file=sys.__stderr__)


def train_forecaster(smk) -> None:
    from faro.forecast.training import train_and_save

    with logged(smk) as log:
        data_dir = Path(smk.input.history).parent.parent
        train_and_save("light", data_dir, smk.output[0])
        log.info("trained the light forecaster on days 1-10 -> %s", smk.output[0])


def train_nhits(smk) -> None:
    """N-HiTS on days 1-10 of the history (never day 11), fixed seed, saved with a manifest."""
    from faro.forecast.nhits import train_nhits as train
    from faro.forecast.training import history

    with logged(smk) as log:
        out_dir = Path(smk.output[0]).parent
        manifest = train(history(Path(smk.input.history).parent.parent), out_dir, seed=0)
        log.info("trained N-HiTS -> %s", manifest)

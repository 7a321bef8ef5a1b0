"""Entry points of the Snakemake rules (``scripts/*.py`` are one-line shims over these).

Every function takes the ``snakemake`` object, logs to ``snakemake.log[0]`` and
writes its outputs atomically.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from faro.atomic import atomic_path


@contextlib.contextmanager
def logged(smk) -> Iterator[logging.Logger]:
    """Send logging and stderr of a rule to its log file."""
    path = Path(smk.log[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        old_err = sys.stderr
        sys.stderr = fh
        try:
            yield logging.getLogger(f"faro.rule.{smk.rule}")
        except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: one line, no traceback (it is in the log)
            logging.getLogger("faro").exception("rule %s interrupted", smk.rule)
            print(interrupted_line(smk, e), file=sys.__stderr__, flush=True)
            raise SystemExit(130) from None
        except BaseException:
            logging.getLogger("faro").exception("rule %s failed", smk.rule)
            raise
        finally:
            sys.stderr = old_err
            root.removeHandler(handler)


def interrupted_line(smk, exc: BaseException | None = None) -> str:
    """What was interrupted and how to resume, in one line."""
    wc = dict(getattr(smk, "wildcards", {}) or {})
    where = ", ".join(f"{k} {v}" for k, v in wc.items())
    why = "SIGTERM" if type(exc).__name__ == "Terminated" else "Ctrl-C"
    return (
        f"faro: {why} interrupted rule {smk.rule}" + (f" ({where})" if where else "")
        + "; run the same command again to resume (finished outputs are kept, this one is redone)"
    )


def fetch_data(smk) -> None:
    """The mirror is read here, not passed as a param: it never makes a fetched file stale."""
    from faro.data import fetch, resolve_mirror

    with logged(smk) as log:
        mirror, origin = resolve_mirror(smk.config.get("data_mirror"))
        log.info("data mirror: %s (from %s)", mirror, origin)
        rec = fetch(smk.params.dataset, smk.params.name, smk.output[0], mirror)  # store: <data_dir>/.verified
        log.info("fetched %s", rec)


def prepare_trace(smk) -> None:
    """The experiment's trace: validated, derived (job pick, window, scale) and written."""
    from faro.experiment import experiment_trace, load_experiment
    from faro.trace import write_trace

    with logged(smk) as log:
        exp = load_experiment(smk.input.experiment)
        trace, warnings = experiment_trace(exp, smk.input.trace)
        for w in warnings:
            log.warning("%s", w)
        write_trace(trace, smk.output[0])
        log.info("trace %s: %d jobs, %d minutes, %d requests", exp.name, len(trace.jobs), trace.n_minutes, trace.total)


def stage(smk) -> None:
    from faro.stages import run_stage, sigterm_as_interrupt

    with logged(smk) as log, sigterm_as_interrupt():
        run = dict(smk.params.run)
        run_dir = Path(smk.params.run_dir)
        rec = run_stage(smk.params.stage, run, run_dir, inputs=[str(p) for p in smk.input])
        log.info("stage %s done in %.2fs", smk.params.stage, rec["seconds"])


def k8s_manifests(smk) -> None:
    """A k8s run's objects as YAML, exactly what its stages apply, plus its run spec (the input of
    ``python -m faro.backends.k8s.stages``). Touches no cluster."""
    from faro.backends.k8s.backend import write_manifests

    with logged(smk) as log:
        run = dict(smk.params.run)
        if run["backend"] != "k8s":
            raise ValueError(f"k8s_manifests renders the k8s backend's objects; the backend is {run['backend']}")
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


def parse(smk) -> None:
    from faro.backends.base import get_backend
    from faro.provenance import provenance
    from faro.schema import write_replicas, write_requests

    with logged(smk) as log:
        run = dict(smk.params.run)
        run_dir = Path(smk.params.run_dir)
        requests, replicas = get_backend(run["backend"]).parse(run, run_dir)
        prov = provenance(
            backend=run["backend"], experiment=run["experiment"], quota=run["quota"], policy=run["policy"],
            seed=run["seed"], config_hash=run["config_hash"], unit_time=run["unit_time"],
        )  # fmt: skip
        write_requests(requests, smk.output.requests, prov)
        write_replicas(replicas, smk.output.replicas, prov)
        log.info("parsed %d requests, %d replica changes", len(requests), len(replicas))


def parse_decisions(smk) -> None:
    """The run's decision records (raw, written by its controller) -> decisions.parquet with
    provenance; the policy column names the policy's config (cell folder) on every backend."""
    import pyarrow.parquet as pq

    from faro.backends.base import get_backend
    from faro.provenance import provenance
    from faro.schema import write_decisions

    with logged(smk) as log:
        run = dict(smk.params.run)
        run_dir = Path(smk.params.run_dir)
        raw = run_dir / get_backend(run["backend"]).decisions_file
        df = pq.read_table(raw).to_pandas()
        df["policy"] = run["policy"]
        prov = provenance(
            backend=run["backend"], experiment=run["experiment"], quota=run["quota"], policy=run["policy"],
            seed=run["seed"], config_hash=run["config_hash"], unit_time=run["unit_time"],
        )  # fmt: skip
        write_decisions(df, smk.output[0], prov)
        log.info("decision records: %d rows (%d ticks)", len(df), df["time_s"].nunique())


def run_stats(smk) -> None:
    from faro.experiment import load_experiment
    from faro.schema import read_replicas, read_requests
    from faro.stats import latency_stats, write_stats
    from faro.trace import parse_trace

    with logged(smk) as log:
        run = dict(smk.params.run)
        exp = load_experiment(run["experiment_file"])
        trace = parse_trace(smk.input.trace, exp.jobs)
        requests = read_requests(smk.input.requests)
        replicas = read_replicas(smk.input.replicas) if run["backend"] == "sim" else None
        slo = {j: m.slo_ms for j, m in zip(exp.jobs, exp.job_models, strict=True)}
        stats = latency_stats(requests, jobs=exp.jobs, slo_ms=slo, unit_time=run["unit_time"],
                              n_minutes=trace.n_minutes, replicas=replicas)  # fmt: skip
        write_stats(stats, smk.output.pkl, smk.output.json)
        log.info("slo_rate %.2f, avg_total_utility %.3f", stats["slo_rate"], stats["avg_total_utility"])


def cell_stats(smk) -> None:
    from faro.stats import average_over_seeds, read_stats, write_stats

    with logged(smk) as log:
        per_seed = [read_stats(p) for p in smk.input]
        stats = average_over_seeds(per_seed, list(smk.params.seeds))
        write_stats(stats, smk.output.pkl, smk.output.json)
        log.info("cell over seeds %s: slo_rate %.2f", list(smk.params.seeds), stats["slo_rate"])


def stats_table(smk) -> None:
    """One row per run (every seed of every cell): results/stats.parquet and .csv."""
    import pandas as pd

    from faro.stats import read_stats, stats_row

    with logged(smk) as log:
        rows = []
        for path, key in zip(smk.input, smk.params.runs, strict=True):
            rows.append({**key, **stats_row(read_stats(path))})
        df = pd.DataFrame(rows)
        _atomic_df(df, smk.output.parquet, smk.output.csv)
        log.info("stats table: %d runs", len(df))


def _atomic_df(df, parquet_path: str, csv_path: str) -> None:
    with atomic_path(parquet_path) as tmp:
        df.to_parquet(tmp, index=False)
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False)


def teardown_all(smk) -> None:
    from faro.workflow_support import teardown_sessions

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

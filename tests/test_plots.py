"""Figures and tables (faro.plots): every figure from a small synthetic results tree, through the
same entry functions the rules run, and the tables on hand-made numbers."""

from __future__ import annotations

import math
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from faro.model.binned import binned_frame, job_latency, write_binned
from faro.model.schema import write_replicas, write_requests
from faro.model.stats import average_over_seeds, run_metrics, stats_row, write_stats
from faro.model.trace import Trace, write_trace
from faro.plots.data import (
    cell_summary,
    cilantro_minutes,
    cluster_series,
    drop_spill_slot,
    job_long,
    read_cilantro,
    replica_steps,
    with_derived,
)
from faro.plots.tables import (
    MAIN_METRICS,
    display_sim_vs_real,
    kendall_distance,
    main_matrix,
    matrix_grid,
    scale_out,
    seeds_note,
    sim_vs_real,
    to_latex,
    to_markdown,
)
from faro.workflow import plot_entry as R

JOBS = ["serve-cluster0", "serve-cluster1", "serve-cluster2"]
QUOTAS = [6, 9]
POLICIES = ["fairshare", "aiad"]
SEEDS = [1, 2]
MINUTES = 6
UNIT = 60.0


# --------------------------------------------------------------------------- fixture tree


def _requests(rng, quota: int, policy: str) -> pd.DataFrame:
    """Synthetic requests: more CPUs and AIAD -> lower latency; a few failures."""
    rows = []
    base = 900.0 * 6 / quota * (0.8 if policy == "aiad" else 1.0)
    for k, job in enumerate(JOBS):
        n = 40 * MINUTES
        arr = np.sort(rng.uniform(0, MINUTES * UNIT, n))
        lat = rng.gamma(4.0, base / 4.0 * (1 + 0.2 * k), n)
        lat[rng.random(n) < 0.03] = np.nan
        rows.append(pd.DataFrame({"job": job, "arrival_s": arr, "latency_ms": lat}))
    df = pd.concat(rows, ignore_index=True)
    ok = df["latency_ms"].notna()
    df["seed"] = 0
    df["start_s"] = df["arrival_s"]
    df["end_s"] = df["arrival_s"] + np.where(ok, df["latency_ms"], 5.0) / 1000.0
    df["succeeded"] = ok
    df["status"] = np.where(ok, 200, 503).astype(np.int16)
    return df


def _replicas(quota: int) -> pd.DataFrame:
    rows = []
    for k, job in enumerate(JOBS):
        rows += [(0.0, job, 1), (30.0 + 10 * k, job, quota // len(JOBS)),
                 (200.0, job, max(1, quota // len(JOBS) - 1))]
    return pd.DataFrame(rows, columns=["time_s", "job", "replicas"])


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A results root: trace, runs (requests, replicas, binned, stats), cells, stats.parquet, extras."""
    root = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(0)
    counts = rng.integers(30, 50, size=(MINUTES, len(JOBS)))
    write_trace(Trace(tuple(JOBS), counts), root / "trace.json")
    table = []
    for q in QUOTAS:
        for p in POLICIES:
            per_seed = []
            for s in SEEDS:
                run = root / f"{q}_cpus/{p}/seed_{s}"
                req = _requests(rng, q, p)
                rep = _replicas(q)
                write_requests(req, run / "requests.parquet", {"seed": s})
                write_replicas(rep, run / "replicas.parquet", {"seed": s})
                # as the run_results job does: the stats and the per-minute bins in one pass
                st, bins = run_metrics(req, jobs=JOBS, slo_ms=720.0, unit_time=UNIT, n_minutes=MINUTES,
                                       replicas=rep)
                write_stats(st, run / "latency_stats.pkl", run / "latency_stats.json")
                write_binned(binned_frame(bins), run / "binned.parquet")
                job_latency(req, JOBS).to_parquet(run / "job_latency.parquet", index=False)
                per_seed.append(st)
                table.append({"experiment": "tiny", "backend": "sim", "quota": q, "policy": p, "seed": s,
                              **stats_row(st)})
            cell = average_over_seeds(per_seed, SEEDS)
            write_stats(cell, root / f"{q}_cpus/{p}/latency_stats.pkl",
                        root / f"{q}_cpus/{p}/latency_stats.json")
    pd.DataFrame(table).to_parquet(root / "stats.parquet", index=False)
    # another backend's table: the same cells, numbers perturbed
    real = pd.DataFrame(table)
    real["avg_total_utility"] *= 0.95
    real["backend"] = "k8s"
    real.to_parquet(root / "real_stats.parquet", index=False)
    # Cilantro-like logs, 2 jobs
    cil = root / "cilantro"
    cil.mkdir()
    for k in (1, 2):
        t0 = 1.7e9 + k
        t = t0 + np.arange(0, 600, 12.0)
        ev = np.full(len(t), 20.0)
        pd.DataFrame({"load": 1.0, "alloc": 2.0, "reward": 0.5, "sigma": 0.5, "event_start_time": t,
                      "event_end_time": t + 12, "num_events": ev, "num_successes": ev * (0.5 + 0.1 * k)},
                     index=t).to_csv(cil / f"root--prsj{k}_craypredserv.csv")
    # solver benchmark CSVs
    bench = root / "bench"
    bench.mkdir()
    pd.DataFrame({"method": ["cobyla", "cobyla", "de", "de"], "utility": ["relaxed", "step"] * 2,
                  "seconds": [0.01, 0.008, 0.2, 0.3], "objective": [9.0, 8.8, 9.0, 8.9],
                  "normalised_optimality": [1.0, 0.98, 1.0, 0.99],
                  "setting": ["cobyla", "cobyla", "de_maxiter20", "de_maxiter20"]}).to_csv(
        bench / "solver.csv", index=False)
    return root


class _NL(list):
    """A list with named entries, like Snakemake's input/output/params."""

    def __init__(self, **named):
        super().__init__(named.values())
        for k, v in named.items():
            setattr(self, k, v)


def smk(root: Path, rule: str, *, input=None, output=None, params=None):  # noqa: A002
    return types.SimpleNamespace(rule=rule, input=_NL(**(input or {})), output=_NL(**(output or {})),
                                 params=_NL(**(params or {})), log=[str(root / "logs" / f"{rule}.log")])


def figure(root: Path, name: str, prefix: str = "") -> dict:
    return {f"{prefix}png": str(root / "plots" / f"{name}.png"),
            f"{prefix}pdf": str(root / "plots" / f"{name}.pdf")}


def assert_files(*paths):
    for p in paths:
        assert Path(p).is_file() and Path(p).stat().st_size > 500, p


# --------------------------------------------------------------------------- every figure


def test_every_figure_from_the_tree(tree):
    root = tree
    cells = [str(root / f"{q}_cpus/{p}/latency_stats.pkl") for q in QUOTAS for p in POLICIES]
    keys = [(q, p) for q in QUOTAS for p in POLICIES]
    made = []

    out = figure(root, "headline_6cpus")
    R.plot_headline(smk(root, "plot_headline", input={"table": str(root / "stats.parquet")}, output=out,
                        params={"policies": POLICIES, "quota": 6, "backend": "sim"}))
    made += out.values()

    out = figure(root, "headline_settings")
    R.plot_headline_settings(smk(root, "plot_headline_settings",
                                 input={"table": str(root / "stats.parquet"),
                                        "others": [str(root / "real_stats.parquet")]}, output=out,
                                 params={"policies": POLICIES, "title": "3 jobs", "other_names": ["k8s"]}))
    made += out.values()

    out = {**figure(root, "overview"), **figure(root, "seed_spread", "spread_")}
    R.plot_overview(smk(root, "plot_overview", input={"table": str(root / "stats.parquet")}, output=out,
                        params={"policies": POLICIES, "quotas": QUOTAS}))
    made += out.values()

    out = {"fig1_png": str(root / "plots/cluster_utility_9cpus.png"),
           "fig1_pdf": str(root / "plots/cluster_utility_9cpus.pdf"),
           "cmp_png": str(root / "plots/replicas_9cpus_all.png"),
           "cmp_pdf": str(root / "plots/replicas_9cpus_all.pdf")}
    for p in POLICIES:
        out[f"slo_png_{p}"] = str(root / f"plots/slo_timeline_9cpus_{p}.png")
    R.plot_quota_timelines(smk(
        root, "plot_quota_timelines",
        input={"binned": [str(root / f"9_cpus/{p}/seed_1/binned.parquet") for p in POLICIES],
               "replicas": [str(root / f"9_cpus/{p}/seed_1/replicas.parquet") for p in POLICIES]},
        output=out, params={"policies": POLICIES, "jobs": JOBS, "quota": 9, "seed": 1, "backend": "sim",
                            "unit_time": UNIT, "proc_s": {j: 0.18 for j in JOBS}, "window": 2}))
    made += out.values()

    out = {**figure(root, "utility_vs_slo", "scatter_"), **figure(root, "job_boxes", "boxes_"),
           **figure(root, "utility_vs_effective", "effective_"), **figure(root, "pareto", "pareto_")}
    binned = [str(root / f"{q}_cpus/{p}/seed_1/binned.parquet") for q in QUOTAS for p in POLICIES]
    R.plot_summary(smk(root, "plot_summary", input={"table": str(root / "stats.parquet"), "binned": binned},
                       output=out, params={"policies": POLICIES, "quotas": QUOTAS}))
    made += out.values()

    out = figure(root, "job_latency")
    R.plot_job_latency(smk(root, "plot_job_latency",
                           input={"latency": [str(root / f"{q}_cpus/{p}/seed_1/job_latency.parquet")
                                              for q, p in keys]},
                           output=out,
                           params={"cells_keys": keys, "jobs": JOBS, "slo_ms": {j: 720.0 for j in JOBS}}))
    made += out.values()

    out = figure(root, "ablation")
    R.plot_ablation(smk(root, "plot_ablation", input={"cells": cells}, output=out,
                        params={"cells_keys": keys, "steps": ["fairshare", "aiad"],
                                "labels": {"fairshare": "step 1", "aiad": "+ step 2"}}))
    made += out.values()

    out = {**figure(root, "utility_functions", "util_"), **figure(root, "utility_vs_replicas", "rep_")}
    R.plot_model(smk(root, "plot_model", output=out,
                     params={"rate": 20.0, "caps": [0.9, 0.95], "proc_s": 0.18, "slo_s": 0.72}))
    made += out.values()

    csv = str(root / "bench/hierarchical.csv")
    R.bench_hierarchical(smk(root, "bench_hierarchical", input={"trace": str(root / "trace.json")},
                             output={"csv": csv},
                             params={"job_counts": [3, 6], "groups": [1, 2], "starts": [0],
                                     "cpus_per_job": 3.0, "proc_s": 0.18, "slo_s": 0.72}))
    bench = pd.read_csv(csv)
    assert len(bench) == 4 and set(bench["groups"]) == {1, 2}
    assert np.allclose(bench.loc[bench["groups"] == 1, "relative_objective"], 1.0)
    out = figure(root, "hierarchical")
    R.plot_hierarchical(smk(root, "plot_hierarchical", input={"csv": csv}, output=out))
    made += out.values()

    out = figure(root, "solver_optimality")
    R.plot_solver_optimality(smk(root, "plot_solver_optimality",
                                 input={"csv": str(root / "bench/solver.csv")}, output=out))
    made += out.values()

    out = figure(root, "cilantro")
    R.plot_cilantro(smk(root, "plot_cilantro",
                        input={"cilantro": sorted(str(p) for p in (root / "cilantro").glob("*.csv")),
                               "binned": str(root / "9_cpus/aiad/seed_1/binned.parquet")},
                        output=out, params={"quota": 9, "policy": "aiad", "backend": "sim"}))
    made += out.values()

    out = {"html": str(root / "plots/skipped.html")}
    R.plots_note(smk(root, "plots_note", output=out,
                     params={"made": ["headline"],
                             "skipped": [("Fig. 16 ablation", "no breakdown configured")]}))
    text = Path(out["html"]).read_text()
    assert "Fig. 16 ablation" in text and "no breakdown configured" in text
    assert_files(*made)
    assert all(Path(p).read_bytes()[:4] == b"%PDF" for p in made if p.endswith(".pdf"))


def test_forecast_figure_from_a_forecast_table(tree):
    from faro.forecast.base import LastValue
    from faro.plots.forecast import rolling_forecast

    truth = np.vstack([np.arange(30, dtype=float), 100 + np.arange(30, dtype=float)])
    df = rolling_forecast(LastValue(), truth, 1, horizon=7, first=15)
    # blocks start at minutes 15, 22, 29 and persistence repeats the last observed minute
    assert df["minute"].tolist() == list(range(15, 30))
    assert df.loc[df["minute"] == 21, "q0.5"].item() == 114.0  # history up to minute 14 of job 1
    assert df.loc[df["minute"] == 22, "q0.9"].item() == 121.0
    csv = tree / "bench/forecast.csv"
    df.to_csv(csv, index=False)
    out = figure(tree, "forecast_day11")
    R.plot_forecast(smk(tree, "plot_forecast", input={"csv": str(csv)}, output=out,
                        params={"job": 1, "forecaster": "last_value"}))
    assert_files(*out.values())


def test_tables_are_written_in_four_formats(tree):
    out = {k: str(tree / f"tables/main_matrix.{k}") for k in ("csv", "md", "tex", "html")}
    R.table_main(smk(tree, "table_main", input={"table": str(tree / "stats.parquet")}, output=out,
                     params={"policies": POLICIES, "quotas": QUOTAS, "backend": "sim"}))
    out2 = {k: str(tree / f"tables/sim_vs_real.{k}") for k in ("csv", "md", "tex", "html")}
    out2["summary"] = str(tree / "tables/sim_vs_real_summary.csv")
    out2.update(figure(tree, "sim_vs_real"))
    R.table_sim_vs_real(smk(tree, "table_sim_vs_real",
                            input={"this": str(tree / "stats.parquet"),
                                   "other": str(tree / "real_stats.parquet")},
                            output=out2, params={"this_label": "sim", "other_label": "k8s"}))
    out3 = {k: str(tree / f"tables/scale_out.{k}") for k in ("csv", "md", "tex", "html")}
    R.table_scale_out(smk(tree, "table_scale_out",
                          input={"tables": [str(tree / "stats.parquet"), str(tree / "real_stats.parquet")]},
                          output=out3, params={"names": ["3 jobs", "3 jobs (k8s)"]}))
    for p in [*out.values(), *out2.values(), *out3.values()]:
        assert Path(p).stat().st_size > 50, p
    md = Path(out["md"]).read_text()
    # policy x quota grids, SLO% first, two seeds -> mean ± sd, seeds stated in the caption
    assert md.splitlines()[2] == "| policy | 6 CPUs | 9 CPUs |" and "| FairShare | " in md and "±" in md
    assert "SLO% (requests within the SLO, %)" in md and "cluster SLO violation rate (%)" in md
    assert "over 2 seeds" in Path(out["html"]).read_text()
    csv = pd.read_csv(out["csv"])
    assert {"slo_rate_pct", "slo_violation_pct", "lost_utility"} <= set(csv.columns)
    assert csv["slo_violation_pct"].max() > 1.0  # percent, not a fraction
    assert r"\toprule" in Path(out["tex"]).read_text()
    summ = pd.read_csv(out2["summary"])
    # utility scaled by 0.95 everywhere: SLO violation identical, so its relative error is 0
    assert summ["slo_violation_mean_rel_err"].abs().max() == pytest.approx(0.0)


# --------------------------------------------------------------------------- hand-made numbers


def _runs(rows):
    base = {"experiment": "x", "backend": "sim", "p99": 100.0, "failed": 0, "avg_used_replicas": 10.0,
            "slo_rate": 80.0, "avg_util_a": 0.5, "avg_util_b": 0.5, "avg_slo_rate_a": 0.9,
            "avg_slo_rate_b": 0.8}
    return with_derived(pd.DataFrame([{**base, **r} for r in rows]))


def test_main_matrix_mean_and_std_over_seeds():
    runs = _runs([
        {"quota": 32, "policy": "aiad", "seed": 1, "avg_total_utility": 1.0, "avg_total_slo_rate": 0.9,
         "p99": 100.0},
        {"quota": 32, "policy": "aiad", "seed": 2, "avg_total_utility": 0.0, "avg_total_slo_rate": 0.7,
         "p99": 300.0},
        {"quota": 32, "policy": "fairshare", "seed": 1, "avg_total_utility": 1.5, "avg_total_slo_rate": 0.8},
        {"quota": 16, "policy": "aiad", "seed": 1, "avg_total_utility": 0.5, "avg_total_slo_rate": 0.5},
    ])
    t = main_matrix(runs)
    # quota first, then the paper's order (FairShare before AIAD)
    assert list(zip(t["quota"], t["policy"])) == [(16, "aiad"), (32, "fairshare"), (32, "aiad")]
    aiad = t[(t["quota"] == 32) & (t["policy"] == "aiad")].iloc[0]
    assert aiad["lost_utility"] == pytest.approx(1.5)  # N = 2 jobs: 2 - mean(1, 0)
    assert aiad["lost_utility_std"] == pytest.approx(math.sqrt(0.5))  # sample std of (1, 2)
    assert aiad["slo_violation"] == pytest.approx(0.2)
    assert aiad["p99"] == pytest.approx(200.0) and aiad["n_seeds"] == 2
    fs = t[t["policy"] == "fairshare"].iloc[0]
    assert fs["lost_utility_std"] == 0.0 and fs["n_seeds"] == 1
    lost = matrix_grid(t, next(m for m in MAIN_METRICS if m.column == "lost_utility")).set_index("policy")
    viol = matrix_grid(t, next(m for m in MAIN_METRICS if m.column == "slo_violation")).set_index("policy")
    assert list(lost.index) == ["FairShare", "AIAD"] and list(lost.columns) == ["16 CPUs", "32 CPUs"]
    assert lost.loc["AIAD", "32 CPUs"] == "1.50 ± 0.71" and viol.loc["AIAD", "32 CPUs"] == "20.0 ± 14.1"
    assert lost.loc["AIAD", "16 CPUs"] == "1.50"  # one seed: no ± 0
    assert lost.loc["FairShare", "16 CPUs"] == "–"  # not run
    md = to_markdown(lost.reset_index())
    assert md.splitlines()[0] == "| policy | 16 CPUs | 32 CPUs |"
    tex = to_latex(viol.reset_index())
    assert r"$\pm$" in tex and "%" not in tex.replace(r"\%", "")
    assert seeds_note(t) == "mean ± sample standard deviation over 1-2 seeds per cell"
    assert seeds_note(t[t["n_seeds"] == 1]) == "one seed per cell (no spread)"


def test_kendall_distance_hand_computed():
    assert kendall_distance([1, 2, 3], [10, 20, 30]) == (pytest.approx(1.0), 0)
    # one swapped pair of three: tau = (2 concordant - 1 discordant) / 3
    tau, disc = kendall_distance([1, 2, 3], [1, 3, 2])
    assert tau == pytest.approx(1 / 3) and disc == 1
    assert kendall_distance([1, 2, 3], [3, 2, 1]) == (pytest.approx(-1.0), 3)


def test_sim_vs_real_relative_error_and_ranking():
    sim = _runs([{"quota": 32, "policy": p, "seed": 1, "avg_total_utility": u, "avg_total_slo_rate": 0.9}
                 for p, u in [("fairshare", 1.0), ("aiad", 1.5), ("oneshot", 0.5)]])
    real = _runs([{"quota": 32, "policy": p, "seed": 1, "avg_total_utility": u, "avg_total_slo_rate": 0.8}
                  for p, u in [("fairshare", 1.2), ("aiad", 1.0), ("oneshot", 0.0), ("mark", 1.0)]])
    det, summ = sim_vs_real(sim, real, labels=("sim", "k8s"))
    assert det["policy"].tolist() == ["fairshare", "oneshot", "aiad"]  # common cells, paper order
    fs = det[det["policy"] == "fairshare"].iloc[0]
    assert fs["lost_utility_sim"] == pytest.approx(1.0) and fs["lost_utility_k8s"] == pytest.approx(0.8)
    assert fs["lost_utility_rel_err"] == pytest.approx(0.25)  # |1.0 - 0.8| / 0.8
    assert fs["lost_utility_diff"] == pytest.approx(-0.2)  # k8s - sim
    assert fs["n_seeds_sim"] == 1 and fs["lost_utility_sim_std"] == 0.0
    assert fs["slo_violation_rel_err"] == pytest.approx(0.5)  # |0.1 - 0.2| / 0.2
    q = summ[summ["quota"] == 32].iloc[0]
    # lost utility sim (fs 1.0, aiad 0.5, oneshot 1.5) vs k8s (0.8, 1.0, 2.0): fs/aiad swapped
    assert q["lost_utility_tau"] == pytest.approx(1 / 3) and q["lost_utility_discordant"] == 1
    with pytest.raises(ValueError, match="no .* cell in common"):
        sim_vs_real(sim.assign(quota=16), real)
    # two seeds on one side: mean, sample sd and counts
    sim2 = _runs([{"quota": 32, "policy": p, "seed": s, "avg_total_utility": u + 0.2 * (s - 1),
                   "avg_total_slo_rate": 0.9}
                  for p, u in [("fairshare", 1.0), ("aiad", 1.5), ("oneshot", 0.5)] for s in (1, 2)])
    d2, _ = sim_vs_real(sim2, real, labels=("sim", "k8s"))
    f2 = d2[d2["policy"] == "fairshare"].iloc[0]
    assert f2["n_seeds_sim"] == 2 and f2["n_seeds_k8s"] == 1
    assert (f2["lost_utility_sim"] == pytest.approx(0.9)
            and f2["lost_utility_sim_std"] == pytest.approx(0.2 / 2**0.5))
    shown = display_sim_vs_real(d2, labels=("sim", "k8s"))
    row = shown[shown["policy"] == shown["policy"].iloc[0]].iloc[0]
    assert row["seeds"] == "2 / 1" and " ± " in row["lost utility sim"]
    assert shown.loc[d2.index[d2["policy"] == "fairshare"][0], "lost utility diff"] == "-0.10"


def test_scale_out_per_job_loss():
    a = _runs([{"quota": 32, "policy": "aiad", "seed": 1, "avg_total_utility": 1.0,
                "avg_total_slo_rate": 0.9}])
    b = a.copy()
    for k in range(2, 4):
        b[f"avg_util_j{k}"] = 0.5
    b = with_derived(b.drop(columns=["n_jobs", "lost_utility", "slo_violation"]))
    t = scale_out([("2 jobs", a), ("4 jobs", b)])
    assert t["setting"].tolist() == ["2 jobs", "4 jobs"]
    assert t["lost_utility"].tolist() == pytest.approx([1.0, 3.0])
    assert t["lost_utility_per_job"].tolist() == pytest.approx([0.5, 0.75])


def test_drop_spill_slot_and_cluster_series():
    b = pd.DataFrame({"job": ["a", "b"] * 3, "minute": [0, 0, 1, 1, 2, 2], "requests": [10, 10, 12, 8, 1, 0],
                      "failed": 0, "slo_frac": [1.0, 0.5, 0.8, 0.6, 1.0, np.nan],
                      "util": [1.0, 0.5, 0.9, 0.7, 1.0, np.nan], "effective_util": 1.0})
    t = drop_spill_slot(b)
    assert sorted(t["minute"].unique()) == [0, 1]  # 1 request vs median 20: the spill slot
    assert drop_spill_slot(b[b["minute"] < 2]).equals(b[b["minute"] < 2])
    s = cluster_series(b)
    assert s.loc[0, "utility"] == pytest.approx(1.5) and s.loc[0, "requests"] == 20
    assert s.loc[1, "slo_violation"] == pytest.approx(0.3)  # 1 - mean(0.8, 0.6)
    assert s.loc[2, "slo_violation"] == pytest.approx(0.0)  # job b has no data in minute 2


def test_replica_steps_and_job_long():
    rep = pd.DataFrame({"time_s": [0.0, 10.0, 10.0, 5.0], "job": ["a", "a", "a", "b"],
                        "replicas": [1, 3, 2, 4]})
    s = replica_steps(rep, ["a", "b"], np.array([0.0, 4.0, 10.0, 20.0]))
    assert s["a"].tolist() == [1, 1, 2, 2]  # same-instant changes: the last one wins
    assert s["b"].tolist() == [0, 0, 4, 4]  # 0 before its first row
    runs = _runs([{"quota": 32, "policy": "aiad", "seed": 1, "avg_total_utility": 1.0,
                   "avg_total_slo_rate": 0.85}])
    jl = job_long(runs)
    assert sorted(jl["job"]) == ["a", "b"]
    assert jl.set_index("job").loc["b", "slo_violation"] == pytest.approx(0.2)


def test_cilantro_minutes_hand_computed(tmp_path):
    for k, succ in ((1, [10, 5, 8]), (2, [0, 10, 10])):
        t = 1000.0 + np.array([0.0, 30.0, 70.0])
        pd.DataFrame({"load": 1.0, "alloc": [1.0, 2.0, 3.0], "reward": 0.0, "sigma": 0.5,
                      "event_start_time": t, "event_end_time": t, "num_events": 10.0,
                      "num_successes": succ}, index=t).to_csv(
            tmp_path / f"root--prsj{k}_craypredserv.csv")
    df = read_cilantro(sorted(tmp_path.glob("*.csv")))
    assert set(df["job"]) == {"prsj1", "prsj2"} and df["time_s"].min() == 0.0
    m = cilantro_minutes(df)
    # minute 0: job 1 15/20, job 2 10/20 -> violation 1 - mean(0.75, 0.5); minute 1: 0.8 and 1.0
    assert m.loc[0, "slo_violation"] == pytest.approx(0.375)
    assert m.loc[1, "slo_violation"] == pytest.approx(0.1)
    assert m.loc[0, "requests"] == 40


def test_job_latency_hand_computed():
    req = pd.DataFrame({"job": ["a"] * 5 + ["b"] * 2,
                        "latency_ms": [10.0, 20.0, 30.0, 40.0, np.nan, 5.0, np.nan],
                        "succeeded": [True, True, True, True, False, True, False]})
    t = job_latency(req, ["a", "b", "c"]).set_index("job")
    assert t.loc["a", "p50"] == pytest.approx(25.0) and t.loc["a", "failed_fraction"] == pytest.approx(0.2)
    assert t.loc["b", "p99"] == pytest.approx(5.0) and t.loc["b", "requests"] == 2
    assert t.loc["c", "requests"] == 0 and np.isnan(t.loc["c", "p99"])


def test_cell_summary_single_seed_has_zero_std():
    runs = _runs([{"quota": 32, "policy": "aiad", "seed": 1, "avg_total_utility": 1.0,
                   "avg_total_slo_rate": 0.9}])
    c = cell_summary(runs, ["lost_utility"])
    assert c["lost_utility"].item() == pytest.approx(1.0) and c["lost_utility_std"].item() == 0.0

"""Decision records (faro.control.records), `faro explain` and the why figure.

The controller is driven with the fake actuator and scripted layers of test_controller;
ledger arithmetic is written beside each check.  A short simulated run checks that the
simulator records one row per job and tick in the shared schema.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from test_controller import FakeActuator, LayeredPolicy, ScriptedLayer
from test_sim_engine import EXP, trace

from faro.control.controller import Controller, JobMetrics, JobSpec
from faro.control.records import DecisionRecorder
from faro.explain import explain
from faro.model.schema import DECISIONS_SCHEMA, read_decisions, read_provenance, write_decisions
from faro.policies.explain import instrument
from faro.policies.reactive import AIAD

NAMES = ["a", "b"]


def metrics(busy=(0.0, 0.0)):
    return {
        n: JobMetrics(active_replicas=1, head_queue=3, replica_queues=(2,), avg_latency_ms=900.0,
                      arrivals_per_min=np.array([50, 60]), busy_s=b)
        for n, b in zip(NAMES, busy, strict=True)
    }


def controller(plan, quota, settling=(), initial=None):
    layer = ScriptedLayer(plan)
    rec = DecisionRecorder("scripted")
    ctl = Controller(LayeredPolicy(layer, initial=initial), [JobSpec(n, 720.0, 180.0) for n in NAMES], quota,
                     FakeActuator(set(settling)), rng=np.random.default_rng(0), upscale_order="job",
                     recorder=rec)
    return ctl, rec


def test_one_row_per_job_and_tick_with_clamp_retry_and_ledger():
    # quota 3, a and b at 1 each: 1 free CPU.  Tick 10: a asks 3 (2 trials) -> clamped to 2
    # (1 short), the ledger 1 -> 0, the rest re-queued.  Tick 20: the retry finds 0 free CPUs:
    # its last trial -> dropped.  b never acts.
    ctl, rec = controller({10.0: [dict(job="a", target=3, trials=2, source="s")]}, quota=3)
    ctl.tick(10.0, metrics((0.0, 0.0)))
    ctl.tick(20.0, metrics((5.0, 2.0)))
    df = rec.table().to_pandas()
    assert len(df) == 4 and rec.rows == 4
    a10, b10, a20, b20 = (df.iloc[k] for k in range(4))
    assert ((a10["job"], a10["requested"], a10["applied"], a10["outcome"], a10["shortfall"])
            == ("a", 3, 2, "clamped", 1))
    assert (a10["free_cpus_before"], a10["free_cpus_after"], a10["retry"]) == (1, 0, False)
    assert (a20["outcome"], a20["applied"], a20["shortfall"]) == ("dropped", 2, 1)
    assert (a20["retry"], a20["trials_left"]) == (True, 1)
    assert a20["layers"] == "scriptedlayer"
    assert (b10["outcome"], b10["n_actions"], b10["applied"]) == ("none", 0, 1)
    assert pd.isna(b10["requested"])
    # what the policy saw: 3 queued + 2 held, 60 requests in the last complete minute
    assert (a10["head_queue"], a10["held_total"], a10["arrivals_last_min"]) == (3, 2, 60)
    # utilisation: 5 busy seconds over the 10 s between the ticks on 1 active replica
    assert pd.isna(a10["utilization"]) and a20["utilization"] == pytest.approx(0.5)
    assert b20["utilization"] == pytest.approx(0.2)


def test_busy_executor_is_recorded():
    # b (2 replicas) is still starting replicas: its downscale 2 -> 1 meets a busy executor,
    # 1 trial -> dropped, the ledger unchanged (4 - 1 - 2 = 1 free)
    ctl, rec = controller({10.0: [dict(job="b", delta=-1, source="s")]}, quota=4, settling={"b"},
                          initial={"a": 1, "b": 2})
    ctl.tick(10.0, metrics())
    row = rec.table().to_pandas().set_index("job").loc["b"]
    assert ((row["outcome"], bool(row["executor_busy"]), row["requested"], row["applied"])
            == ("dropped", True, 1, 2))
    assert (row["shortfall"], row["free_cpus_after"]) == (-1, 1)


def test_records_round_trip_with_schema_and_provenance(tmp_path):
    ctl, rec = controller({10.0: [dict(job="a", target=2, source="s")]}, quota=4)
    ctl.tick(10.0, metrics())
    path = tmp_path / "run" / "decisions.parquet"
    write_decisions(rec.table().to_pandas(), path, {"unit_time": 60.0, "policy": "scripted"})
    assert read_provenance(path)["unit_time"] == 60.0
    back = read_decisions(path)
    assert list(back.columns) == DECISIONS_SCHEMA.names
    assert back.loc[back["job"] == "a", "outcome"].tolist() == ["applied"]
    rec.flush(tmp_path / "raw.parquet")
    assert pa.parquet.read_schema(tmp_path / "raw.parquet").names == DECISIONS_SCHEMA.names


def test_explain_prints_what_was_seen_asked_and_done(tmp_path):
    ctl, rec = controller({10.0: [dict(job="a", target=3, trials=2, source="s")]}, quota=3)
    for t in (10.0, 20.0, 30.0):
        ctl.tick(t, metrics())
    run = tmp_path / "results" / "3_cpus" / "scripted" / "seed_42"
    write_decisions(rec.table().to_pandas(), run / "decisions.parquet", {"unit_time": 60.0})
    text = explain(run.parent, 0)  # the cell folder: seed 42
    assert "ticks 10, 20, 30 s" in text
    assert "a: saw 1/1 replicas active, 3 queued + 2 held, latency 900 ms, 60 requests" in text
    assert "clamped to the ledger's free CPUs: 2 of 3 (1 short)" in text
    assert ("(a retry); controller: not carried out (the ledger had 0 free CPUs) "
            "and no trial left: dropped") in text
    with pytest.raises(ValueError, match="no controller tick in minute 5"):
        explain(run, 5)


def test_simulated_run_records_every_tick_in_the_shared_schema():
    rec = DecisionRecorder("aiad")
    pol = AIAD({}, jobs=["a", "b"], quota=4)
    from faro.backends.sim.engine import simulate

    res = simulate(EXP, trace(3), pol, 4, 42, recorder=rec)
    table = rec.table()
    assert table.schema.equals(DECISIONS_SCHEMA)
    df = table.to_pandas()
    ticks = res.info["ticks"]
    assert len(df) == 2 * ticks
    assert np.allclose(np.sort(df["time_s"].unique()), 10.0 * np.arange(1, ticks + 1))
    # light load, 1 replica each: AIAD's counter only falls, nothing is asked, all utilisation < 1
    assert (df["n_actions"] == 0).all() and (df["applied"] == 1).all()
    assert df["utilization"].dropna().between(0.0, 1.0).all() and df["utilization"].notna().any()


def test_records_are_in_trace_seconds_when_the_replay_is_compressed():
    # unit_time 30: a trace minute lasts 30 simulated seconds, the controller ticks every 5 s
    # of its clock = every 10 trace seconds; utilisation stays a fraction of real busy time
    from faro.backends.sim.engine import simulate

    rec = DecisionRecorder("aiad")
    res = simulate(EXP, trace(3), AIAD({}, jobs=["a", "b"], quota=4), 4, 42, unit_time=30.0, recorder=rec)
    df = rec.table().to_pandas()
    assert np.allclose(np.sort(df["time_s"].unique()), 10.0 * np.arange(1, res.info["ticks"] + 1))
    # 60 requests per trace minute = 2 req/s of ~0.154 s on 1 replica: ~31 % busy
    assert df["utilization"].dropna().median() == pytest.approx(0.31, abs=0.08)


def test_hybrid_records_forecast_and_solver_notes():
    from faro.policies.hybrid import Faro

    pol = Faro({"forecaster": "last_value", "objective": "sum", "interval_s": 60}, jobs=["a", "b"], quota=4)
    pol.bind({"unit_time": 60.0})
    rec = DecisionRecorder("faro_sum", instrument(pol))
    from faro.backends.sim.engine import simulate

    simulate(EXP, trace(3), pol, 4, 42, recorder=rec)
    df = rec.table().to_pandas()
    step = df[df["time_s"] == 60.0]
    assert step["layers"].iloc[0] == "predictive,ai"
    assert step["forecast_peak_rps"].notna().all() and step["solver_objective"].notna().all()
    assert step["solver_utility"].between(0, 1).all() and (step["solver_evals"] >= 0).all()
    # the last-value forecast of 60 requests a minute: 1 request/s
    assert step["forecast_peak_rps"].tolist() == pytest.approx([1.0, 1.0], abs=0.2)
    # solver notes only at the predictive steps (every 60 s), the AI layer's ticks have none
    steps = df["time_s"] % 60.0 == 0
    assert df.loc[~steps, "solver_objective"].isna().all() and df.loc[steps, "solver_objective"].notna().all()


def test_why_figure_draws_the_records():
    from faro.plots.why import fig_why, worst_job

    ctl, rec = controller({10.0: [dict(job="a", target=3, trials=2, source="s")]}, quota=3)
    for t in (10.0, 20.0, 30.0, 40.0, 50.0, 60.0):
        ctl.tick(t, metrics())
    d = rec.table().to_pandas()
    binned = pd.DataFrame({"job": ["a", "b"], "minute": [0, 0], "requests": [60, 60], "failed": [0, 0],
                           "slo_frac": [0.5, 1.0], "util": [0.5, 1.0], "effective_util": [0.5, 1.0]})
    assert worst_job(binned) == "a"
    fig = fig_why(d, binned, "a", unit_time=60.0, title="t")
    axes = fig.get_axes()
    assert len(axes) == 4
    allocated = [ln for ln in axes[1].get_lines() if ln.get_label() == "allocated"][0]
    assert list(allocated.get_ydata()) == [2, 2, 2, 2, 2, 2]
    assert axes[2].collections[0].get_label().startswith("clamped (1 ticks)")


def test_cell_pdf_on_request_is_the_png_figure_with_truetype_fonts(tmp_path):
    # `all` draws the per-cell figures as PNG; plot_cell_pdf draws one as PDF on request, from
    # the same builder and title as its PNG, with embedded TrueType (not Type 3) fonts
    import gc
    import logging
    import types

    from faro.model.binned import write_binned
    from faro.workflow import plot_entry as R
    from faro.workflow.dispatch import run_rule

    ctl, rec = controller({10.0: [dict(job="a", target=3, trials=2, source="s")]}, quota=3)
    for t in (10.0, 20.0, 30.0, 40.0, 50.0, 60.0):
        ctl.tick(t, metrics())
    write_decisions(rec.table().to_pandas(), tmp_path / "decisions.parquet", {"policy": "aiad"})
    write_binned(pd.DataFrame({"job": ["a", "b", "a", "b"], "minute": [0, 0, 1, 1],
                               "requests": [60, 60, 50, 40],
                               "failed": [0, 0, 0, 0], "slo_frac": [0.5, 1.0, 0.9, 1.0],
                               "util": [0.5, 1.0, 0.9, 1.0], "effective_util": [0.5, 1.0, 0.9, 1.0]}),
                 tmp_path / "binned.parquet")
    params = {"policy": "aiad", "quota": 3, "seed": 42, "backend": "sim", "unit_time": 60.0, "jobs": NAMES}
    titles = []
    for kind in ("slo_timeline", "why"):
        pdf = tmp_path / f"{kind}_3cpus_aiad.pdf"
        smk = types.SimpleNamespace(
            rule="plot_cell_pdf",
            input=types.SimpleNamespace(binned=str(tmp_path / "binned.parquet"),
                                        decisions=str(tmp_path / "decisions.parquet")),
            output=types.SimpleNamespace(pdf=str(pdf)), params=types.SimpleNamespace(kind=kind, **params),
            log=[str(tmp_path / f"{kind}.log")])
        threshold, level = gc.get_threshold(), logging.getLogger("fontTools").level
        try:
            run_rule(smk)  # as the rule's process does: set up for drawing, then the entry
        finally:  # this test process goes on with its own settings
            gc.unfreeze()
            gc.set_threshold(*threshold)
            logging.getLogger("fontTools").setLevel(level)
        data = pdf.read_bytes()
        assert data[:4] == b"%PDF" and b"/FontFile2" in data and b"/Type3" not in data
        titles.append((tmp_path / f"{kind}.log").read_text())
        assert "fontTools" not in titles[-1]  # the font subsetter's chatter stays out of the log
    assert "slo_timeline of aiad at 3 CPUs as PDF" in titles[0] and "why of aiad" in titles[1]
    # the PNG rules build the same figures with the same titles
    binned = pd.read_parquet(tmp_path / "binned.parquet")
    fig = R.slo_figure(binned, jobs=NAMES, title=R.cell_title("aiad", 3, 42, "sim"))
    assert fig._suptitle.get_text().startswith("Fig. 2: AIAD, 3 CPUs, seed 42 (sim)")
    fig, job = R.why_figure(read_decisions(tmp_path / "decisions.parquet"), binned, policy="aiad", quota=3,
                            seed=42, unit_time=60.0)
    assert job == "a" and fig.get_axes()[0].get_title() == "AIAD, 3 CPUs, seed 42: a (most SLO violations)"
    bad = types.SimpleNamespace(rule="plot_cell_pdf", input=smk.input, output=smk.output,
                                params=types.SimpleNamespace(kind="x", **params),
                                log=[str(tmp_path / "x.log")])
    with pytest.raises(ValueError, match="unknown figure kind 'x'"):
        R.plot_cell_pdf(bad)


def test_ray_metrics_store_sums_the_replicas_busy_counters():
    # the ray backend's HPA input: each replica reports its cumulative busy seconds; a gone
    # replica's last count stays in the job's total (a counter never goes back)
    from faro.serving.metrics import MetricsStore

    s = MetricsStore()
    s.report_held("a", "r1", 1, 100.0, 2.5)
    s.report_held("a", "r2", 0, 100.0, 1.0)
    s.report_held("a", "r1", 0, 101.0, 3.0)
    s.forget_replica("a", "r2")
    s.report_held("b", "r3", 0, 101.0)  # a replica that reports no counter
    snap = s.snapshot(101.0, 40.0, 60.0, 30.0)
    assert snap["a"]["busy_s"] == pytest.approx(4.0)
    assert np.isnan(snap["b"]["busy_s"])


@pytest.mark.slow
def test_workflow_runs_the_production_policies_with_records_and_why_figures(tmp_path):
    # the three production autoscalers join a matrix like any policy; every run leaves its
    # decision records (provenance, one row per job and tick), and each cell its why figure
    from test_workflow import make_experiment, smk

    make_experiment(tmp_path)
    policies = ["ray_serve_default", "k8s_hpa", "knative_kpa"]
    smk(tmp_path, "all", config={"policies": "[" + ",".join(policies) + "]", "quotas": "[3]"})
    root = tmp_path / "results"
    for p in policies:
        run = root / "3_cpus" / p / "seed_42"
        d = read_decisions(run / "decisions.parquet")
        assert set(d["policy"]) == {p} and set(d["job"]) == {"job0", "job1"}
        assert len(d) == 2 * d["time_s"].nunique() and d["time_s"].min() == 10.0
        assert (d["layers"] == p).any() and d["policy_metric"].notna().any()
        assert read_provenance(run / "decisions.parquet")["policy"] == p
        assert (root / "plots" / f"why_3cpus_{p}.png").stat().st_size > 1000
    # the per-cell PDFs are not part of `all`; asking for one draws it from the same run
    cell_pdfs = [f for f in (root / "plots").glob("*.pdf") if f.name.startswith(("why", "slo_timeline"))]
    assert not cell_pdfs
    pdfs = [f"results/plots/{k}_3cpus_k8s_hpa.pdf" for k in ("why", "slo_timeline")]
    out = smk(tmp_path, *[str(tmp_path / f) for f in pdfs],
              config={"policies": "[" + ",".join(policies) + "]", "quotas": "[3]"})
    assert out.stderr.count("rule plot_cell_pdf") == 2 and "rule replay" not in out.stderr
    assert all((tmp_path / f).read_bytes()[:4] == b"%PDF" for f in pdfs)
    table = pd.read_parquet(root / "stats.parquet")
    assert set(table["policy"]) == set(policies)

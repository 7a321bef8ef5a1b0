"""``faro explain RESULTS_CELL --at MINUTE``: what every job's policy saw and decided at one
minute of a run, and why the controller did or did not carry it out.

Reads only the run's ``decisions.parquet`` (:data:`faro.model.schema.DECISIONS_SCHEMA`, the same on
every backend; times in trace seconds) and its provenance (``unit_time``, the wall or
simulated seconds of a trace minute: forecast rates are per such second).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from faro.model.schema import read_decisions, read_provenance

DECISIONS = "decisions.parquet"

OUTCOME_WHY = {
    "applied": "carried out",
    "noop": "nothing to do (already there)",
    "clamped": ("clamped to the ledger's free CPUs: {applied} of {requested} ({shortfall} short); "
                "the rest retried"),
    "requeued": "no free CPU in the ledger: re-queued ({trials_left} trials left)",
    "busy": "the job's executor was busy (replicas still starting, or just after a downscale): retried",
    "dropped": "not carried out and no trial left (no free CPU, or executor busy): dropped",
    "none": "no action",
    "native": ("Serve's own target (native autoscaling, only observed): {applied} of {requested} "
               "RUNNING ({shortfall} pending or starting)"),
}
MODE_WHY = {
    "up-delay": "waiting out the upscale delay",
    "down-delay": "waiting out the downscale delay",
    "stabilized": "held by the scale-down stabilisation window",
    "rate-limited": "capped by the scale-up rate policy",
    "tolerance": "within the tolerance: no change",
    "unready": "starting pods counted at 0 %: no change",
    "no-metrics": "no utilisation sample yet: no change",
    "panic": "panic mode (never scales down)",
    "stable": "stable mode",
    "no-running": "no running replica: target kept",
    "up": "upscale delay over: target raised",
    "down": "downscale delay over: target lowered",
}


def run_dir_of(path: str | Path, seed: int | None = None) -> Path:
    """A run folder from a cell folder (``results/32_cpus/faro_sum``: seed 42 if present, else the
    first) or a run folder itself."""
    p = Path(path)
    if (p / DECISIONS).is_file():
        return p
    seeds = sorted(p.glob("seed_*"), key=lambda d: int(d.name.split("_", 1)[1]))
    if not seeds:
        raise FileNotFoundError(f"{p}: neither a run folder with {DECISIONS} "
                                f"nor a cell folder with seed_* runs")
    if seed is not None:
        run = p / f"seed_{seed}"
        if not run.is_dir():
            raise FileNotFoundError(f"{run} does not exist (seeds: {', '.join(d.name for d in seeds)})")
        return run
    named = [d for d in seeds if d.name == "seed_42"]
    return named[0] if named else seeds[0]


def load(run_dir: Path) -> tuple[pd.DataFrame, float]:
    path = run_dir / DECISIONS
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: build it with `snakemake {path}`")
    unit_time = float(read_provenance(path).get("unit_time", 60.0))
    return read_decisions(path), unit_time


def at_minute(df: pd.DataFrame, minute: float) -> pd.DataFrame:
    """The rows of the ticks in trace minute ``minute`` (time in ``[m, m + 1)`` minutes)."""
    lo, hi = minute * 60.0, (minute + 1) * 60.0
    return df[(df["time_s"] >= lo - 1e-9) & (df["time_s"] < hi - 1e-9)]


def _num(x, fmt: str = "{:.2f}") -> str:
    return "-" if x is None or pd.isna(x) else fmt.format(x)


def explain_job(rows: pd.DataFrame, unit_time: float = 60.0) -> list[str]:
    """Lines for one job over the ticks of one minute (``unit_time``: seconds of a trace minute,
    the unit of the forecast's rates)."""
    first, last = rows.iloc[0], rows.iloc[-1]
    out = [
        f"{last['job']}: saw {int(first['active_replicas'])}/{int(first['replicas'])} replicas active, "
        f"{int(first['head_queue'])} queued + {int(first['held_total'])} held, "
        f"latency {first['avg_latency_ms']:.0f} ms, "
        f"{int(first['arrivals_last_min'])} requests in the last minute, "
        f"utilisation {_num(first['utilization'])}"
    ]
    fc = rows.dropna(subset=["forecast_peak_rps"])
    if len(fc):
        f = fc.iloc[-1]
        out.append(f"  forecast: quantile {_num(f['forecast_quantile'])}, "
                   f"peak {f['forecast_peak_rps']:.1f} req/s "
                   f"({f['forecast_peak_rps'] * unit_time:.0f} per minute)")
    sv = rows.dropna(subset=["solver_objective"])
    if len(sv):
        s = sv.iloc[-1]
        out.append(f"  solver at {s['time_s']:.0f} s: "
                   f"{_num(s['policy_desired'], '{:.0f}')} replica(s) for this job, "
                   f"predicted utility {_num(s['solver_utility'], '{:.3f}')}; "
                   f"objective {s['solver_objective']:.3f}, "
                   f"{_num(s['solver_evals'], '{:.0f}')} evaluations, {1000 * s['solver_seconds']:.0f} ms, "
                   f"{'fills the quota' if s['solver_binding'] else 'leaves CPU free'}")
    runs: list[tuple[tuple, str, float, float, int]] = []  # (key, text, first t, last t, ticks)
    for _, r in rows.iterrows():
        key, text = tick_text(r)
        if text is None:
            continue
        if runs and runs[-1][0] == key:
            k, txt, t0, _t1, n = runs[-1]
            runs[-1] = (k, txt, t0, float(r["time_s"]), n + 1)
        else:
            runs.append((key, text, float(r["time_s"]), float(r["time_s"]), 1))
    for _key, text, t0, t1, n in runs:
        when = f"{t0:.0f} s" if n == 1 else f"{t0:.0f}-{t1:.0f} s ({n} ticks alike; values of the first)"
        out.append(f"  {when} {text}")
    return out


def why_not(r) -> str:
    """Why the controller did what it did with a tick's last action (see OUTCOME_WHY)."""
    outcome = r["outcome"].split("+")[-1]
    if outcome == "dropped":
        free = int(r["free_cpus_after"])
        cause = "its executor was busy" if r["executor_busy"] else f"the ledger had {free} free CPUs"
        return f"not carried out ({cause}) and no trial left: dropped"
    return OUTCOME_WHY.get(outcome, outcome).format(
        applied=int(r["applied"]), requested=_num(r["requested"], "{:.0f}"), shortfall=int(r["shortfall"]),
        trials_left=_num(r["trials_left"], "{:.0f}"),
    )


def tick_text(r) -> tuple[tuple, str | None]:
    """(what makes two ticks alike, the tick's line) for one job's row; None if nothing happened."""
    layers = r["layers"] or "-"
    policy = ""
    if pd.notna(r["policy_metric"]):
        policy = f" metric {r['policy_metric']:.2f} -> wants {_num(r['policy_desired'])}"
    mode = r["policy_mode"]
    if mode:
        policy += f" [{MODE_WHY.get(mode, mode)}]"
    key = (layers, mode, r["n_actions"], _num(r["requested"], "{:.0f}"), r["outcome"], int(r["applied"]))
    if r["n_actions"] == 0:
        if layers == "-" and not policy:
            return key, None
        return key, f"({layers}):{policy} no action; {int(r['applied'])} replica(s)"
    retry = " (a retry)" if r["retry"] else ""
    return key, (f"({layers}):{policy} asked {_num(r['requested'], '{:.0f}')} [{r['source']}]{retry}; "
                 f"controller: {why_not(r)}; now {int(r['applied'])} replica(s)")


def explain(path: str | Path, minute: float, *, seed: int | None = None,
            jobs: list[str] | None = None) -> str:
    run = run_dir_of(path, seed)
    df, unit_time = load(run)
    rows = at_minute(df, minute)
    if rows.empty:
        last = df["time_s"].max() / 60.0 if len(df) else 0
        raise ValueError(f"no controller tick in minute {minute} of {run} "
                         f"(the run ends at minute {last:.0f})")
    head = rows.iloc[0]
    ticks = sorted(rows["time_s"].unique())
    lines = [
        f"{run}: policy {head['policy']}, minute {minute:g} "
        f"(ticks {', '.join(f'{t:.0f}' for t in ticks)} s); "
        f"ledger free CPUs {int(head['free_cpus_before'])} -> {int(rows.iloc[-1]['free_cpus_after'])}"
    ]
    for job, part in rows.groupby("job", sort=False, observed=True):
        if jobs and job not in jobs:
            continue
        lines += explain_job(part.sort_values("time_s"), unit_time)
    return "\n".join(lines)

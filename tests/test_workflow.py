"""End-to-end: the whole DAG on a short synthetic trace, resumption, and bad input.

Each test runs Snakemake as a subprocess in the project folder with its own
results root and experiment (a temporary folder), so nothing touches results/.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from faro.model.schema import read_provenance, read_requests
from faro.model.stats import read_stats
from faro.model.trace import Trace, write_trace

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def make_experiment(tmp: Path, minutes: int = 6, jobs: int = 2, seed: int = 0) -> Path:
    """A 2-job experiment with its own synthetic trace (the main experiment's model)."""
    rng = np.random.default_rng(seed)
    names = [f"job{k}" for k in range(jobs)]
    counts = rng.integers(300, 700, size=(minutes, jobs))
    exp_dir = tmp / "exp"
    write_trace(Trace(tuple(names), counts), exp_dir / "trace.json")
    base = yaml.safe_load((PROJECT / "experiments/twitter_10jobs/experiment.yaml").read_text())
    base["name"] = "tiny"
    base["trace"] = {"file": "trace.json"}
    base["jobs"] = {"names": names, "model": "resnet34"}
    (exp_dir / "experiment.yaml").write_text(yaml.safe_dump(base))
    return exp_dir


def smk_cmd(tmp: Path, *args: str, config: dict | None = None, cores: int = 2) -> list[str]:
    """The Snakemake command of a test: its own experiment, results root and data dir."""
    cfg = {
        "experiment": str(tmp / "exp"),
        "results": str(tmp / "results"),
        "data_dir": str(tmp / "data"),
        "quotas": "[4]",
        "policies": "[fairshare,aiad,queue_threshold]",
    }
    cfg.update(config or {})
    return [*SNAKEMAKE, "--cores", str(cores), "--nolock", *args, "--config",
            *[f"{k}={v}" for k, v in cfg.items()]]


def smk(tmp: Path, *args: str, config: dict | None = None, check: bool = True,
        **kw) -> subprocess.CompletedProcess:
    cmd = smk_cmd(tmp, *args, config=config)
    out = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, timeout=600, **kw)
    if check and out.returncode != 0:
        raise AssertionError(f"snakemake failed ({out.returncode}):\n"
                             f"{out.stdout[-3000:]}\n{out.stderr[-5000:]}")
    return out


def test_whole_dag_on_a_short_trace(tmp_path):
    make_experiment(tmp_path)
    t0 = time.time()
    smk(tmp_path, "all")
    elapsed = time.time() - t0
    root = tmp_path / "results"
    for policy in ("fairshare", "aiad", "queue_threshold"):
        cell = root / "4_cpus" / policy
        run = cell / "seed_42"
        for stage in ("quota", "clusters", "jobs", "autoscaler", "replay", "fetch", "teardown"):
            rec = json.loads((run / "stages" / f"{stage}.json").read_text())
            assert rec["stage"] == stage and rec["backend"] == "sim" and rec["provenance"]["git_commit"]
        # the simulator's replay job does every stage of the run; one results job after it
        assert {p.name for p in (run / "logs").glob("*.log")} == {"replay.log", "results.log"}
        assert not (run / "live").exists(), "teardown leaves no live state"
        stats = read_stats(cell / "latency_stats.pkl")
        run_stats = read_stats(run / "latency_stats.pkl")
        assert stats["seeds"] == [42]
        assert stats["slo_rate"] == run_stats["slo_rate"]
        assert 0 <= stats["slo_rate"] <= 100 and stats["target_slo"] == 720
        twin = json.loads((cell / "latency_stats.json").read_text())
        assert twin["slo_rate"] == pytest.approx(stats["slo_rate"])
        req = read_requests(run / "requests.parquet")
        assert set(req["status"].unique()) <= {200, 503}
        prov = read_provenance(run / "requests.parquet")
        assert prov["backend"] == "sim" and prov["seed"] == 42 and prov["config_hash"]
    table = __import__("pandas").read_parquet(root / "stats.parquet")
    assert len(table) == 3 and set(table["policy"]) == {"fairshare", "aiad", "queue_threshold"}
    assert (root / "plots" / "headline_4cpus.png").stat().st_size > 1000
    # nothing left to do; a dry run lists no job
    dry = smk(tmp_path, "-n", "all")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    assert elapsed < 120, f"end-to-end took {elapsed:.0f}s"


def test_editing_a_policy_file_reruns_only_its_cells(tmp_path, monkeypatch):
    make_experiment(tmp_path)
    smk(tmp_path, "all")
    # a copy of aiad's parameters under a temporary policy dir, edited
    pol = tmp_path / "policies"
    pol.mkdir()
    for name in ("fairshare", "aiad", "queue_threshold"):
        (pol / f"{name}.yaml").write_text((PROJECT / "config/policies" / f"{name}.yaml").read_text())
    cfg = {"policy_dir": str(pol)}
    smk(tmp_path, "all", config=cfg)  # the policy_dir change itself is a params change: settle first
    before = {p: (tmp_path / f"results/4_cpus/{p}/seed_42/requests.parquet").stat().st_mtime_ns
              for p in ("fairshare", "aiad", "queue_threshold")}
    spec = yaml.safe_load((pol / "aiad.yaml").read_text())
    spec["params"]["upscale_ticks"] = 2
    (pol / "aiad.yaml").write_text(yaml.safe_dump(spec))
    dry = smk(tmp_path, "-n", "all", config=cfg)
    text = dry.stdout + dry.stderr
    assert "4_cpus/aiad/seed_42" in text
    assert "4_cpus/fairshare/seed_42/stages" not in text
    smk(tmp_path, "all", config=cfg)
    after = {p: (tmp_path / f"results/4_cpus/{p}/seed_42/requests.parquet").stat().st_mtime_ns
             for p in ("fairshare", "aiad", "queue_threshold")}
    assert after["fairshare"] == before["fairshare"]
    assert after["queue_threshold"] == before["queue_threshold"]
    assert after["aiad"] != before["aiad"]


def test_interrupted_run_resumes_without_redoing_cells(tmp_path):
    make_experiment(tmp_path, minutes=10)
    cmd = smk_cmd(tmp_path, "all", config={"quotas": "[4,6]", "policies": "[fairshare,aiad]"}, cores=1)
    proc = subprocess.Popen(cmd, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True,  # SIGINT as a terminal's foreground job gets it:
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # wait until Snakemake has recorded a finished cell (its log line comes after its bookkeeping)
    finished = False
    for line in proc.stdout:
        if "(Rule: cell_stats)" in line and "Finished jobid" in line:
            finished = True
            break
    cells = sorted((tmp_path / "results").glob("*_cpus/*/latency_stats.pkl"))
    assert finished and len(cells) == 1, f"expected one finished cell, found {cells}"
    first = cells[0]
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
    proc.stdout.close()
    assert proc.wait(timeout=120) != 0, "Ctrl-C did not stop the run"
    done_mtime = first.stat().st_mtime_ns
    # no half-written outputs: every parquet present is readable, no temp files left
    root = tmp_path / "results"
    for p in root.rglob("*.parquet"):
        read_requests(p) if p.name == "requests.parquet" else None
    leftovers = [p for p in root.rglob("*") if ".tmp" in p.name]
    assert not leftovers, leftovers
    out = smk(tmp_path, "all", config={"quotas": "[4,6]", "policies": "[fairshare,aiad]"}, check=True)
    assert first.stat().st_mtime_ns == done_mtime, "a finished cell was redone"
    assert len(list(root.glob("*_cpus/*/latency_stats.pkl"))) == 4
    assert f"{first.parent.relative_to(root)}/seed_42/stages/replay.json" not in out.stdout


@pytest.mark.parametrize(
    "mutate, expected",
    [
        ("malformed", "trace.json:3: malformed JSON"),
        ("missing_job", "trace.json:2: missing job(s) job1"),
        ("negative", "trace.json:4: job 'job0' has a negative count -5"),
    ],
)
def test_bad_trace_fails_with_line_number(tmp_path, mutate, expected):
    exp = make_experiment(tmp_path)
    lines = (exp / "trace.json").read_text().splitlines()
    if mutate == "malformed":
        lines[2] = lines[2][:-5]
    elif mutate == "missing_job":
        rec = json.loads(lines[1])
        del rec["counts"]["job1"]
        lines[1] = json.dumps(rec)
    else:
        rec = json.loads(lines[3])
        rec["counts"]["job0"] = {"classifier": -5}
        lines[3] = json.dumps(rec)
    (exp / "trace.json").write_text("\n".join(lines) + "\n")
    out = smk(tmp_path, "all", check=False)
    assert out.returncode != 0
    # checked before anything runs (issue 12): the message is Snakemake's error, no rule ran
    assert expected in out.stderr, out.stderr[-2000:]
    assert not (tmp_path / "results/logs/prepare_trace.log").exists()
    assert not list((tmp_path / "results").glob("*_cpus/*/seed_*/stages/replay.json")), "nothing ran"


@pytest.mark.parametrize(
    "config, expected",
    [
        ({"policies": "[aiad,nosuch]"}, "unknown policy 'nosuch'"),
        ({"quotas": "[1]"}, "quota 1 is smaller than the experiment's 2 jobs"),
        ({"backend": "slurm"}, "backend"),
        ({"seeds": "[-1]"}, "seeds"),
        ({"bogus_key": "1"}, "bogus_key"),
    ],
)
def test_bad_config_fails_before_anything_runs(tmp_path, config, expected):
    make_experiment(tmp_path)
    out = smk(tmp_path, "all", config=config, check=False)
    assert out.returncode != 0
    assert expected in out.stdout + out.stderr
    assert not (tmp_path / "results").exists()


def test_checksum_mismatch_is_a_clear_error(tmp_path, mirror):
    bad = tmp_path / "mirror"
    bad.mkdir()
    (bad / "input.json").write_text((mirror / "input.json").read_text().replace("957", "958", 1))
    out = subprocess.run(
        [*SNAKEMAKE, "--cores", "1", "--nolock", str(tmp_path / "data/faro-artifact/input.json"),
         "--config", f"data_mirror={bad}", f"data_dir={tmp_path / 'data'}",
         f"results={tmp_path / 'results'}"],
        cwd=PROJECT, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode != 0
    log = (tmp_path / "data/logs/faro-artifact/input.json.log").read_text()
    assert "sha256 mismatch for input.json" in log
    assert not (tmp_path / "data/faro-artifact/input.json").exists()


def test_results_root_refuses_another_experiment(tmp_path):
    make_experiment(tmp_path)
    root = tmp_path / "results"
    root.mkdir()
    (root / ".faro-root.json").write_text(json.dumps({"experiment": "other", "backend": "sim"}))
    out = smk(tmp_path, "-n", "all", check=False)
    assert out.returncode != 0
    assert "holds experiment 'other'" in out.stdout + out.stderr


def test_faro_and_mark_cells_on_a_derived_artifact_window(tmp_path, mirror):
    """Data fetch (mirror, sha256), trace derivation, forecaster training, Faro and MArk cells."""
    base = yaml.safe_load((PROJECT / "experiments/twitter_10jobs/experiment.yaml").read_text())
    base["name"] = "window"
    base["trace"] = {"dataset": "faro-artifact", "file": "input.json",
                     "derive": {"jobs": ["serve-cluster0", "serve-cluster3"], "first_minute": 100,
                                "minutes": 20, "scale": 0.2}}
    base["jobs"] = {"names": ["serve-cluster0", "serve-cluster3"], "model": "resnet34"}
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp/experiment.yaml").write_text(yaml.safe_dump(base))
    smk(tmp_path, "all", config={"policies": "[mark,faro_sum]", "quotas": "[6]", "data_mirror": str(mirror)})
    root = tmp_path / "results"
    trace = [json.loads(line) for line in (root / "trace.json").read_text().splitlines()]
    assert len(trace) == 20 and set(trace[0]["counts"]) == {"serve-cluster0", "serve-cluster3"}
    assert (tmp_path / "data/models/light.pkl").is_file()
    for policy in ("mark", "faro_sum"):
        stats = read_stats(root / f"6_cpus/{policy}/latency_stats.pkl")
        assert stats["slo_rate"] > 50
        decisions = (root / f"6_cpus/{policy}/seed_42/raw/decisions.jsonl").read_text().splitlines()
        sources = {json.loads(d)["source"] for d in decisions}
        assert any(s.startswith(policy.split("_")[0]) for s in sources), sources


def _quota_inputs(dry_run: str) -> dict[str, str]:
    """From a dry run's text: each setup_quota job's output run folder -> its input line."""
    out = {}
    for block in dry_run.split("rule setup_quota:")[1:]:
        lines = [ln.strip() for ln in block.splitlines()]
        inp = next(ln for ln in lines if ln.startswith("input:"))
        outp = next(ln for ln in lines if ln.startswith("output:"))
        out[outp.split("output:")[1].strip().rsplit("/stages/", 1)[0]] = inp
    return out


def test_live_sessions_form_one_chain_seed_first(tmp_path):
    """On a live backend each run's quota stage waits for the previous run's teardown, in the
    order seed, quota, policy (one whole replicate first); the simulator has no such chain."""
    make_experiment(tmp_path)
    cfg = {"backend": "ray", "quotas": "[4,6]", "policies": "[fairshare,aiad]", "seeds": "[1,2]"}
    inputs = _quota_inputs(smk(tmp_path, "-n", "--forceall", "stats", config=cfg).stdout)
    root = str(tmp_path / "results")
    chain = [f"{root}/{q}_cpus/{p}/seed_{s}" for s in (1, 2) for q in (4, 6) for p in ("fairshare", "aiad")]
    assert sorted(inputs) == sorted(chain)
    assert "teardown.json" not in inputs[chain[0]]
    for prev, run in zip(chain, chain[1:]):
        assert f"{prev}/stages/teardown.json" in inputs[run], (run, inputs[run])
    sim = smk(tmp_path, "-n", "--forceall", "stats",
              config={**cfg, "backend": "sim", "results": str(tmp_path / "r2")})
    # the simulator runs every stage of a run inside its replay job: no stage jobs, no chain
    assert "rule setup_quota:" not in sim.stdout and "rule replay:" in sim.stdout
    assert "teardown.json" not in sim.stdout

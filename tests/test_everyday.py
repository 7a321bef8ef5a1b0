"""Everyday use without surprises (issue 12): data settings, run identity, declared policy
parameters, short config errors, up-front trace and target checks, recovery, the end-of-run
summary.  Fast unit tests; the workflow-level ones are in test_everyday_workflow.py."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from faro.cli import main as faro_main
from faro.model import data as fdata
from faro.model.schema import write_requests
from faro.model.stats import write_stats
from faro.model.trace import Trace, TraceError, parse_trace, write_trace
from faro.policies.params import ParamError, resolve_params
from faro.policies.reactive import AIAD
from faro.policies.registry import make_policy
from faro.workflow.config import (
    ConfigError,
    check_config,
    check_config_schema,
    config_sources,
    default_config,
    run_identity_hash,
    target_cells,
)
from faro.workflow.doctor import format_report, scan, set_aside_corrupt
from faro.workflow.summary import summary_table

PROJECT = Path(__file__).resolve().parents[1]
BASE_EXP = PROJECT / "experiments/twitter_10jobs/experiment.yaml"


def tiny_experiment(tmp: Path, jobs=("job0", "job1"), trace_jobs=None, minutes: int = 4) -> Path:
    """An experiment folder with its own trace (``trace_jobs``: the trace's jobs, if different)."""
    exp_dir = tmp / "exp"
    names = list(trace_jobs or jobs)
    counts = np.full((minutes, len(names)), 100, dtype=np.int64)
    write_trace(Trace(tuple(names), counts), exp_dir / "trace.json")
    raw = yaml.safe_load(BASE_EXP.read_text())
    raw.update(name="tiny", trace={"file": "trace.json"}, jobs={"names": list(jobs), "model": "resnet34"})
    (exp_dir / "experiment.yaml").write_text(yaml.safe_dump(raw))
    return exp_dir


def tiny_config(tmp: Path, **over) -> dict:
    cfg = default_config()
    cfg.update(experiment=str(tmp / "exp"), results=str(tmp / "results"), data_dir=str(tmp / "data"),
               quotas=[4], policies=["fairshare", "aiad"])
    cfg.update(over)
    return cfg


# ---------------------------------------------------------------- 1. data settings


def test_fetch_restores_a_verified_file_offline_and_world_readable(tmp_path, mirror, monkeypatch):
    dest = tmp_path / "data" / "faro-artifact" / "input.json"
    rec = fdata.fetch("faro-artifact", "input.json", dest, mirror)
    assert rec["source"].startswith(str(Path(mirror).resolve()))
    old = os.umask(0o022)
    os.umask(old)
    if old == 0o022:
        assert stat.S_IMODE(dest.stat().st_mode) == 0o644
    assert dest.stat().st_mode & stat.S_IROTH, "fetched data files are world-readable"
    # Snakemake clears a job's output before redoing it; offline and without the mirror
    # the fetch restores the verified file instead of losing it
    dest.unlink()

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    rec = fdata.fetch("faro-artifact", "input.json", dest, None)
    assert "verified earlier" in rec["source"]
    fdata.verify(dest, "faro-artifact", "input.json")


def test_a_failed_fetch_keeps_the_file_it_cannot_replace(tmp_path, monkeypatch):
    dest = tmp_path / "data" / "faro-artifact" / "input.json"
    dest.parent.mkdir(parents=True)
    dest.write_text("previous content\n")
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(fdata.DataError, match="FARO_DATA_MIRROR"):
        fdata.fetch("faro-artifact", "input.json", dest, None)
    assert dest.read_text() == "previous content\n"
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".input.json.")], "no temp file left"


def test_keep_verified_stores_files_fetched_before_the_store(tmp_path, mirror):
    data = tmp_path / "data"
    dest = data / "faro-artifact" / "input.json"
    dest.parent.mkdir(parents=True)
    dest.write_bytes((Path(mirror) / "input.json").read_bytes())
    assert fdata.keep_verified(data) == [dest]
    sha = fdata.lookup("faro-artifact", "input.json").sha256
    assert fdata.verified_copy(data, sha).is_file()
    assert fdata.keep_verified(data) == []


def test_mirror_from_config_environment_or_user_settings(tmp_path, monkeypatch):
    monkeypatch.delenv(fdata.MIRROR_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert fdata.resolve_mirror(None) == (None, "none (download)")
    settings = tmp_path / "xdg" / "faro" / "config.yaml"
    settings.parent.mkdir(parents=True)
    settings.write_text("data_mirror: /from/settings\n")
    assert fdata.resolve_mirror(None) == ("/from/settings", str(settings))
    monkeypatch.setenv(fdata.MIRROR_ENV, "/from/env")
    assert fdata.resolve_mirror(None)[0] == "/from/env"
    assert fdata.resolve_mirror("/from/config")[0] == "/from/config"


def test_data_mirror_is_no_rule_param():
    text = (PROJECT / "rules/data.smk").read_text()
    assert 'config["data_mirror"]' not in text and "mirror=" not in text


# ---------------------------------------------------------------- 2. run identity


def test_run_identity_ignores_the_rest_of_the_matrix():
    base = dict(experiment={"name": "e"}, unit_time=60.0, backend="sim", backend_options={},
                policy={"class": "aiad", "params": {"upscale_ticks": 3}}, quota=32, seed=42)
    h = run_identity_hash(**base)
    assert h == run_identity_hash(**{**base, "backend_options": None})
    for key, value in [("quota", 36), ("seed", 43),
                       ("policy", {"class": "aiad", "params": {"upscale_ticks": 2}}),
                       ("unit_time", 10.0), ("backend", "ray")]:
        assert run_identity_hash(**{**base, key: value}) != h, key
    common = (PROJECT / "rules/common.smk").read_text()
    assert "CONFIG_HASH" not in common, "no hash of the whole config in a run's params"


# ---------------------------------------------------------------- 3. declared policy parameters


def test_policy_params_unknown_key_names_it_with_a_suggestion():
    with pytest.raises(ParamError, match=r"params\.upscale_tick: unknown parameter of AIAD "
                                         r"\(did you mean 'upscale_ticks'\?\)"):
        resolve_params(AIAD, {"upscale_tick": 2})


@pytest.mark.parametrize(
    "spec, params, match",
    [
        ("aiad", {"upscale_ticks": 0}, r"params\.upscale_ticks: 0 is less than the minimum of 1"),
        ("aiad", {"upscale_ticks": "3"}, r"params\.upscale_ticks: '3' is not of type 'integer'"),
        ("faro", {"quantile": 1.5}, r"params\.quantile: 1\.5 is greater than or equal to the maximum of 1"),
        ("faro", {"objective": "summ"}, r"params\.objective: 'summ' is not one of"),
        ("mark", {"forecaster": "arima"}, r"params\.forecaster"),
    ],
)
def test_policy_params_out_of_range_fail(spec, params, match):
    with pytest.raises(ParamError, match=match):
        make_policy(spec, params, jobs=["a", "b"], quota=4)


def test_policy_params_defaults_come_from_the_declaration():
    p = make_policy("aiad", {}, jobs=["a"], quota=2)
    assert (p.up_ticks, p.down_ticks) == (3, 60)
    f = make_policy("faro", {"quantile": 0.5}, jobs=["a"], quota=2)
    assert f.params["quantile"] == 0.5 and f.params["trials"] == 5 and f.quantile_step == 0.1
    assert "method" not in f.solver_kw, "solver keys keep the solver's own defaults"


def test_every_shipped_policy_file_passes_its_declaration():
    for f in sorted((PROJECT / "config/policies").glob("*.yaml")):
        spec = yaml.safe_load(f.read_text())
        make_policy(spec["class"], spec.get("params") or {}, jobs=["serve-cluster0", "serve-cluster1"],
                    quota=8, base_dir=PROJECT)


def test_policy_param_typo_fails_the_config_check_naming_file_and_key(tmp_path):
    tiny_experiment(tmp_path)
    pol = tmp_path / "policies"
    pol.mkdir()
    for name in ("fairshare", "aiad"):
        (pol / f"{name}.yaml").write_text((PROJECT / "config/policies" / f"{name}.yaml").read_text())
    (pol / "aiad.yaml").write_text((pol / "aiad.yaml").read_text().replace("upscale_ticks", "upscale_tick"))
    with pytest.raises(ConfigError) as e:
        check_config(tiny_config(tmp_path, policy_dir=str(pol)))
    msg = str(e.value)
    assert (str(pol / "aiad.yaml") in msg and "params.upscale_tick" in msg
            and "did you mean 'upscale_ticks'" in msg)


# ---------------------------------------------------------------- 4. config errors


def test_config_typo_is_one_short_line_naming_source_key_and_match(tmp_path):
    cfg = {**default_config(), "polices": ["aiad"]}
    with pytest.raises(ConfigError) as e:
        check_config_schema(cfg, config_sources((), {"polices": "[aiad]"}))
    msg = str(e.value)
    assert msg.startswith("--config: key polices: unknown key (did you mean 'policies'?)")
    assert "\n" not in msg and len(msg) < 400


def test_config_error_names_the_configfile(tmp_path):
    cf = tmp_path / "mine.yaml"
    cf.write_text("seeds: [x]\n")
    cfg = {**default_config(), "seeds": ["x"]}
    with pytest.raises(ConfigError, match=rf"^{cf}: key seeds/0: 'x' is not of type 'integer'$"):
        check_config_schema(cfg, config_sources([cf], None))
    cfg = {**default_config(), "backend": "slrum"}
    with pytest.raises(ConfigError,
                       match=r"^config/config\.yaml: key backend: 'slrum' is not one of sim, ray, k8s"):
        check_config_schema(cfg, config_sources((), None))


def test_full_schema_error_only_when_verbose():
    cfg = {**default_config(), "quotas": [0]}
    with pytest.raises(ConfigError) as short:
        check_config_schema(cfg, ())
    with pytest.raises(ConfigError) as full:
        check_config_schema(cfg, (), verbose=True)
    assert "full schema error" not in str(short.value) and "full schema error" in str(full.value)


# ---------------------------------------------------------------- 5. trace checks


def test_json_array_trace_says_what_a_trace_is(tmp_path):
    f = tmp_path / "t.json"
    f.write_text(json.dumps([{"ts": 0, "counts": {"a": {"classifier": 1}}}]))
    with pytest.raises(TraceError, match=r"t\.json:1: a JSON array; a trace is JSON Lines"):
        parse_trace(f)


def test_trace_missing_a_job_fails_the_config_check(tmp_path):
    tiny_experiment(tmp_path, jobs=("job0", "job1", "job2"), trace_jobs=("job0", "job1"))
    with pytest.raises(ConfigError, match=r"trace\.json:1: missing job\(s\) job2"):
        check_config(tiny_config(tmp_path, quotas=[6]))


def test_trace_extra_jobs_are_a_warning_naming_them(tmp_path, capsys):
    tiny_experiment(tmp_path, jobs=("job0", "job1"), trace_jobs=("job0", "job1", "job7"))
    check_config(tiny_config(tmp_path))
    assert "not in experiment tiny, ignored: job7" in capsys.readouterr().err


def test_validate_experiment_by_name_and_path(tmp_path, capsys):
    assert faro_main(["validate-experiment", "twitter_10jobs"]) == 0
    assert "valid; experiment twitter_10jobs, 10 jobs" in capsys.readouterr().out
    tiny_experiment(tmp_path, jobs=("job0", "job1", "job2"), trace_jobs=("job0", "job1"))
    assert faro_main(["validate-experiment", str(tmp_path / "exp"), "--quotas", "6"]) == 1
    assert "missing job(s) job2" in capsys.readouterr().err
    assert faro_main(["validate-experiment", "twiter_10jobs"]) == 1
    assert "did you mean 'twitter_10jobs'" in capsys.readouterr().err


# ---------------------------------------------------------------- 6. single-cell targets


def test_target_paths_name_their_cells(tmp_path):
    cfg = tiny_config(tmp_path)
    root = cfg["results"]
    got = target_cells(cfg, ["all", f"{root}/2_cpus/aiad/latency_stats.pkl", f"{root}/6_cpus",
                             f"{root}/plots/headline_4cpus.png"])
    assert [(q, p) for _, q, p in got] == [(2, "aiad"), (6, "fairshare"), (6, "aiad")]
    with pytest.raises(ConfigError, match="outside the results root"):
        target_cells(cfg, ["elsewhere/4_cpus/aiad/latency_stats.pkl"])


@pytest.mark.parametrize(
    "cell, match",
    [
        ("2_cpus/aiad",
         r"target .*2_cpus/aiad/latency_stats.pkl: quota 2 is smaller than the experiment's 3 jobs"),
        ("4_cpus/nosuch", r"unknown policy 'nosuch'"),
        ("4_cpus/aiadd", r"unknown policy 'aiadd' \(did you mean 'aiad'\?\)"),
    ],
)
def test_single_cell_target_is_checked_up_front(tmp_path, cell, match):
    tiny_experiment(tmp_path, jobs=("job0", "job1", "job2"))
    cfg = tiny_config(tmp_path)
    with pytest.raises(ConfigError, match=match):
        check_config(cfg, [f"{cfg['results']}/{cell}/latency_stats.pkl"])


def test_quota_below_a_policys_starting_replicas_fails(tmp_path):
    tiny_experiment(tmp_path)
    mod = tmp_path / "greedy.py"
    mod.write_text("from faro.policies.base import Policy\n\n\nclass Greedy(Policy):\n"
                   "    def initial_replicas(self):\n        return {j: 3 for j in self.jobs}\n\n"
                   "    def decide(self, snapshot):\n        return []\n")
    pol = tmp_path / "policies"
    pol.mkdir()
    (pol / "greedy.yaml").write_text(f"class: {mod}:Greedy\n")
    with pytest.raises(ConfigError,
                       match=r"policy 'greedy' starts the 2 jobs with 6 replicas, more than the quota"):
        check_config(tiny_config(tmp_path, policy_dir=str(pol), policies=["greedy"], quotas=[4]))


# ---------------------------------------------------------------- 7. doctor


def _fake_cell(root: Path, quota=4, policy="aiad", seeds=(42,)) -> Path:
    cell = root / f"{quota}_cpus" / policy
    for s in seeds:
        run = cell / f"seed_{s}"
        (run / "stages").mkdir(parents=True)
        (run / "stages" / "teardown.json").write_text("{}")
        df = pd.DataFrame({"job": ["a"], "seed": [s], "arrival_s": [0.0], "start_s": [0.0], "end_s": [0.1],
                           "latency_ms": [100.0], "succeeded": [True], "status": [200]})
        write_requests(df, run / "requests.parquet", {"seed": s})
        write_stats({"slo_rate": 90.0, "avg_total_utility": 0.9, "avg_total_slo_rate": 0.95,
                     "avg_util_a": 0.9},
                    run / "latency_stats.pkl", run / "latency_stats.json")
    write_stats({"slo_rate": 90.0, "avg_total_utility": 0.9, "avg_total_slo_rate": 0.95, "avg_util_a": 0.9,
                 "seeds": list(seeds)}, cell / "latency_stats.pkl", cell / "latency_stats.json")
    return cell


def test_doctor_finds_corrupt_missing_and_stale_and_says_how_to_rebuild(tmp_path):
    root = tmp_path / "results"
    cell = _fake_cell(root)
    other = _fake_cell(root, policy="fairshare")
    assert not scan(root).problems
    req = cell / "seed_42" / "requests.parquet"
    req.write_bytes(req.read_bytes()[:100])  # truncated
    (other / "seed_42" / "latency_stats.pkl").unlink()
    later = other / "latency_stats.pkl"
    os.utime(cell / "seed_42" / "latency_stats.pkl", (later.stat().st_mtime + 10,) * 2)
    kinds = {(p.kind, p.path.name) for p in scan(root).problems}
    assert ("corrupt", "requests.parquet") in kinds
    assert ("incomplete", "seed_42") in kinds
    assert ("stale", "latency_stats.pkl") in kinds
    text = format_report(scan(root))
    assert "snakemake --cores 2" in text and str(other / "seed_42" / "latency_stats.pkl") in text
    moved = set_aside_corrupt(root)
    # with it, what was made from it (else Snakemake keeps those and never rebuilds the file)
    assert [m[0] for m in moved] == [req, cell / "seed_42/latency_stats.pkl",
                                     cell / "seed_42/latency_stats.json",
                                     cell / "latency_stats.pkl", cell / "latency_stats.json"]
    assert not req.exists() and moved[1][2] == "made from requests.parquet"
    assert moved[0][1].parent == cell / "seed_42" / "corrupt" and moved[0][1].is_file(), "kept, never deleted"


def test_faro_doctor_cli_exit_status(tmp_path, capsys):
    root = tmp_path / "results"
    _fake_cell(root)
    assert faro_main(["doctor", str(root)]) == 0
    (root / "4_cpus/aiad/latency_stats.pkl").write_bytes(b"not a pickle")
    assert faro_main(["doctor", str(root)]) == 1
    assert "corrupt" in capsys.readouterr().out
    assert faro_main(["doctor", "--fix", str(root)]) == 1  # moved aside; the cell now needs its stats
    assert not (root / "4_cpus/aiad/latency_stats.pkl").exists()


# ---------------------------------------------------------------- 8. summary


def test_summary_table_shows_the_headline_numbers_of_each_cell(tmp_path):
    root = tmp_path / "results"
    _fake_cell(root, quota=4, policy="aiad", seeds=(42, 43))
    text = summary_table(root, [(4, "aiad"), (4, "mark")], experiment="tiny", backend="sim")
    lines = text.splitlines()
    assert lines[0] == f"faro: 2 cell(s) in {root} (experiment tiny, backend sim)"
    assert lines[1].split()[:6] == ["quota", "policy", "seeds", "SLO%", "lost", "utility"]
    row = lines[2].split()
    assert row[:6] == ["4", "aiad", "42,43", "90.00", "0.100", "0.050"]
    assert row[6] == str(root / "4_cpus" / "aiad")
    assert "(no stats)" in lines[3]
    assert "report: snakemake --report" in text


def test_interrupted_line_is_one_line():
    from faro.workflow.rulelog import interrupted_line

    class Smk:
        rule = "replay"
        wildcards = {"quota": "4", "policy": "aiad", "seed": "42"}

    line = interrupted_line(Smk())
    assert "\n" not in line and "replay (quota 4, policy aiad, seed 42)" in line and "resume" in line


def test_targets_and_run_mode_come_from_snakemakes_own_parser():
    from faro.workflow.support import requested_targets, will_run_jobs

    argv = ["/venv/bin/snakemake", "--cores", "2", "results/2_cpus/aiad/latency_stats.pkl", "--config",
            "quotas=[2]"]
    assert requested_targets(None, argv) == ["results/2_cpus/aiad/latency_stats.pkl"]
    assert will_run_jobs(argv)
    assert not will_run_jobs([*argv, "-n"]) and not will_run_jobs(["snakemake", "--report", "r.html"])
    assert not will_run_jobs(["snakemake", "--target-jobs", "replay:quota=4,policy=aiad,seed=42"])
    assert requested_targets(None, ["pytest", "-q"]) == [] and not will_run_jobs(["python", "x.py"])

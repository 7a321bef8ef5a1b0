"""Everyday use without surprises (issue 12), through Snakemake: forgetting the mirror,
narrowing and widening the matrix, comment edits, a corrupt output, a partial report,
single-cell targets, Ctrl-C.  Each test has its own experiment and results root."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from test_workflow import PROJECT, SNAKEMAKE, make_experiment, smk, smk_cmd

from faro.model.data import verify

pytestmark = pytest.mark.slow
#: rules that simulate (or set up) a run: none may run again when nothing about the run changed
RUN_RULES = {"setup_quota", "deploy_clusters", "deploy_jobs", "launch_autoscaler", "replay", "fetch_logs",
             "teardown_run", "run_results"}


def rules_run(out: subprocess.CompletedProcess) -> list[str]:
    return re.findall(r"^(?:local)?rule (\w+):", out.stdout + out.stderr, flags=re.M)


def offline_env(tmp: Path) -> dict:
    """No mirror anywhere (config, environment, user settings) and no network."""
    env = {k: v for k, v in os.environ.items() if k != "FARO_DATA_MIRROR"}
    env.update(XDG_CONFIG_HOME=str(tmp / "xdg"), https_proxy="http://127.0.0.1:9",
               HTTPS_PROXY="http://127.0.0.1:9")
    return env


def test_forgetting_the_mirror_neither_reruns_nor_loses_data(tmp_path, mirror):
    make_experiment(tmp_path)
    target = str(tmp_path / "data/faro-artifact/input.json")
    smk(tmp_path, target, config={"data_mirror": str(mirror)})
    f = Path(target)
    assert f.stat().st_mode & stat.S_IROTH, "world-readable"
    # a plain dry run without the mirror: nothing is stale
    dry = smk(tmp_path, "-n", target, env=offline_env(tmp_path))
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-2000:]
    # even a forced redo of the fetch, offline and without a mirror, keeps the verified file
    out = smk(tmp_path, target, "--forcerun", "fetch_data", env=offline_env(tmp_path))
    assert "fetch_data" in rules_run(out)
    verify(f, "faro-artifact", "input.json")


def test_narrowing_widening_and_comment_edits_rerun_no_run(tmp_path):
    make_experiment(tmp_path)
    pol = tmp_path / "policies"
    pol.mkdir()
    for name in ("fairshare", "aiad", "queue_threshold"):
        (pol / f"{name}.yaml").write_text((PROJECT / "config/policies" / f"{name}.yaml").read_text())
    base = {"policy_dir": str(pol)}
    first = smk(tmp_path, "stats", config={**base, "policies": "[fairshare,aiad]"})
    assert {"replay", "run_results"} <= set(rules_run(first))
    assert re.search(r"^\s+4\s+aiad\s+42\s+\d+\.\d\d\s+\d+\.\d{3}\s+\d\.\d{3}\s+\S+4_cpus/aiad$",
                     first.stdout, flags=re.M), first.stdout[-1500:]
    runs = sorted((tmp_path / "results").glob("*_cpus/*/seed_42/requests.parquet"))
    before = {p: p.stat().st_mtime_ns for p in runs}
    for policies in ("[aiad]", "[fairshare,aiad]", "[aiad]", "[fairshare,aiad]"):
        out = smk(tmp_path, "stats", config={**base, "policies": policies})
        again = RUN_RULES & set(rules_run(out))
        assert not again, f"policies={policies} reran {again}"
    # a comment and blank lines in a policy file change nothing about its runs
    aiad = pol / "aiad.yaml"
    aiad.write_text("# tuned later\n\n" + aiad.read_text() + "\n# end\n")
    dry = smk(tmp_path, "-n", "stats", config={**base, "policies": "[fairshare,aiad]"})
    assert not RUN_RULES & set(rules_run(dry)), (dry.stdout + dry.stderr)[-2000:]
    assert {p: p.stat().st_mtime_ns for p in runs} == before


def test_a_corrupt_output_is_rebuilt_by_a_plain_rerun(tmp_path):
    make_experiment(tmp_path)
    cfg = {"policies": "[aiad]"}
    smk(tmp_path, "stats", config=cfg)
    run = tmp_path / "results/4_cpus/aiad/seed_42"
    req = run / "requests.parquet"
    req.write_bytes(req.read_bytes()[:1000])  # truncated
    doctor = subprocess.run([*SNAKEMAKE[:1], "-m", "faro.cli", "doctor", str(tmp_path / "results")],
                            capture_output=True, text=True, cwd=PROJECT)
    assert (doctor.returncode == 1 and f"corrupt    {req}" in doctor.stdout
            and "snakemake --cores 2" in doctor.stdout)
    for _ in range(2):  # the plain command, run as a user would after the failure
        out = smk(tmp_path, "stats", config=cfg)
    assert "run_results" not in rules_run(out), "rebuilt once, then nothing to do"
    assert (run / "latency_stats.pkl").is_file()
    assert [p.name.split(".parquet")[0] for p in (run / "corrupt").glob("requests.parquet.*")] == ["requests"]
    from faro.model.schema import read_requests

    assert len(read_requests(req)) > 0


def test_report_on_a_partial_matrix(tmp_path):
    make_experiment(tmp_path)
    smk(tmp_path, "all", config={"policies": "[fairshare,aiad]"})
    report = tmp_path / "report.html"
    out = smk(tmp_path, "--report", str(report), config={"policies": "[fairshare,aiad,queue_threshold]"})
    text = out.stdout + out.stderr
    assert report.stat().st_size > 10_000
    assert "Missing metadata" not in text and text.lower().count("warning") <= 2, text[-3000:]
    html = report.read_text()
    assert "Not in this report" in html and "not built yet" in html


def test_single_cell_target_is_checked_before_anything_runs(tmp_path):
    make_experiment(tmp_path, jobs=3)
    root = tmp_path / "results"
    for cell, match in [("2_cpus/aiad", "quota 2 is smaller than the experiment's 3 jobs"),
                        ("4_cpus/nosuch", "unknown policy 'nosuch'")]:
        out = smk(tmp_path, str(root / cell / "latency_stats.pkl"), check=False)
        text = out.stdout + out.stderr
        assert out.returncode != 0 and match in text, text[-2000:]
        assert "InputFunctionException" not in text and len(text.splitlines()) < 15, text
        assert not list(root.glob("*_cpus/*/seed_*/stages/*.json"))


def test_config_typo_in_a_configfile_is_short(tmp_path):
    make_experiment(tmp_path)
    cf = tmp_path / "mine.yaml"
    cf.write_text(yaml.safe_dump({"polices": ["aiad"]}))
    out = subprocess.run([*smk_cmd(tmp_path, "-n", "all"), "--configfile", str(cf)], cwd=PROJECT,
                         capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert f"{cf}: key polices: unknown key (did you mean 'policies'?)" in text
    assert len(text.splitlines()) < 15, text


def test_ctrl_c_prints_one_line_saying_how_to_resume(tmp_path):
    make_experiment(tmp_path, minutes=3000, jobs=10)
    cmd = smk_cmd(tmp_path, "stats", config={"quotas": "[20]", "policies": "[aiad]"}, cores=1)
    proc = subprocess.Popen(cmd, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:
        if "rule replay:" in line:
            break
    time.sleep(3)  # inside the simulation
    os.killpg(proc.pid, signal.SIGINT)
    rest = proc.stdout.read()
    proc.stdout.close()
    assert proc.wait(timeout=120) != 0
    assert ("faro: Ctrl-C interrupted rule replay (quota 20, policy aiad, seed 42); "
            "run the same command") in rest
    assert "Traceback" not in rest and "numba" not in rest, rest[-3000:]


def test_policy_parameter_typo_fails_before_anything_runs(tmp_path):
    make_experiment(tmp_path)
    pol = tmp_path / "policies"
    pol.mkdir()
    for name in ("fairshare", "aiad", "queue_threshold"):
        (pol / f"{name}.yaml").write_text((PROJECT / "config/policies" / f"{name}.yaml").read_text())
    (pol / "aiad.yaml").write_text((pol / "aiad.yaml").read_text().replace("upscale_ticks", "upscale_tick"))
    out = smk(tmp_path, "-n", "all", config={"policy_dir": str(pol)}, check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert (f"{pol / 'aiad.yaml'}: params.upscale_tick: unknown parameter of AIAD "
            f"(did you mean 'upscale_ticks'?)") in text


def test_trace_problems_are_caught_before_anything_runs(tmp_path):
    exp = make_experiment(tmp_path, jobs=3)
    spec = yaml.safe_load((exp / "experiment.yaml").read_text())
    spec["jobs"]["names"] = ["job0", "job1", "job3"]  # job3 is not in the trace, job2 is extra
    (exp / "experiment.yaml").write_text(yaml.safe_dump(spec))
    out = smk(tmp_path, "-n", "all", config={"quotas": "[6]"}, check=False)
    assert out.returncode != 0 and "trace.json:1: missing job(s) job3" in out.stdout + out.stderr
    spec["jobs"]["names"] = ["job0", "job1"]
    (exp / "experiment.yaml").write_text(yaml.safe_dump(spec))
    out = smk(tmp_path, "-n", "all", config={"quotas": "[6]"})
    assert "not in experiment tiny, ignored: job2" in out.stderr

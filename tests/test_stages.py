"""The stage runner: which stages a session rebuilds, and a sim run rebuilt after its live state vanished."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from faro.model.trace import Trace, write_trace
from faro.workflow.config import make_run_spec
from faro.workflow.stage_runner import run_stage, stale_stages

PROJECT = Path(__file__).resolve().parents[1]


class FakeBackend:
    def __init__(self, alive: dict[str, bool]):
        self._alive = alive

    def alive(self, stage, run_dir, record):
        return self._alive.get(stage, True)


REC = {s: {} for s in ("quota", "clusters", "jobs", "autoscaler", "replay")}


def test_a_finished_replay_needs_no_running_autoscaler():
    # the autoscaler exits when the replay ends: fetching logs must not redo anything
    b = FakeBackend({"autoscaler": False, "replay": True})
    assert stale_stages(b, "fetch", Path("."), REC) == []


def test_walks_back_to_the_latest_live_stage():
    b = FakeBackend({"autoscaler": False, "jobs": True})
    assert stale_stages(b, "replay", Path("."), REC) == ["autoscaler"]
    b = FakeBackend({"clusters": False, "jobs": False, "autoscaler": False, "quota": True})
    assert stale_stages(b, "replay", Path("."), REC) == ["clusters", "jobs", "autoscaler"]
    b = FakeBackend({s: False for s in REC})
    assert stale_stages(b, "fetch", Path("."), REC) == ["quota", "clusters", "jobs", "autoscaler", "replay"]
    assert stale_stages(b, "quota", Path("."), REC) == []


def test_missing_records_count_as_gone():
    b = FakeBackend({})
    assert stale_stages(b, "replay", Path("."), {"quota": {}, "clusters": {}}) == ["jobs", "autoscaler"]


def _tiny_run(tmp_path, backend="sim"):
    names = ["a", "b"]
    exp_dir = tmp_path / "exp"
    write_trace(Trace(tuple(names), np.array([[30, 20], [40, 10]])), exp_dir / "trace.json")
    exp = yaml.safe_load((PROJECT / "experiments/twitter_10jobs/experiment.yaml").read_text())
    exp.update(name="t", trace={"file": "trace.json"}, jobs={"names": names, "model": "resnet34"})
    (exp_dir / "experiment.yaml").write_text(yaml.safe_dump(exp))
    return make_run_spec(experiment=exp, backend=backend, quota=4, policy="aiad", seed=1, unit_time=60.0,
                         trace_file=str(exp_dir / "trace.json"), policy_dir=PROJECT / "config/policies")


def test_sim_run_rebuilds_a_lost_replay_before_fetching(tmp_path):
    run = _tiny_run(tmp_path)
    run_dir = tmp_path / "run"
    for stage in ("quota", "clusters", "jobs", "autoscaler", "replay"):
        run_stage(stage, run, run_dir)
    (run_dir / "live" / "requests.npz").unlink()  # the simulated cluster's logs are gone
    rec = run_stage("fetch", run, run_dir)
    assert rec["redone_before"] == ["replay"]
    assert json.loads((run_dir / "stages/replay.json").read_text())["rebuilt"] is True
    assert (run_dir / "raw/requests.npz").is_file()
    rec = run_stage("teardown", run, run_dir)
    assert not (run_dir / "live").exists()


def test_the_simulators_replay_job_runs_the_whole_chain_with_every_record(tmp_path):
    from faro.backends.base import STAGES
    from faro.workflow.stage_runner import run_chain

    run, run_dir = _tiny_run(tmp_path), tmp_path / "run"
    trace = str(tmp_path / "exp/trace.json")
    recs = run_chain(run, run_dir, inputs=[trace])
    assert list(recs) == list(STAGES)
    for stage in STAGES:
        on_disk = json.loads((run_dir / "stages" / f"{stage}.json").read_text())
        assert on_disk == recs[stage] and on_disk["stage"] == stage and not on_disk["redone_before"]
    assert list(recs["replay"]["inputs"]) == [trace] and recs["quota"]["inputs"] == {}
    assert (run_dir / "raw/requests.npz").is_file() and not (run_dir / "live").exists()
    assert recs["autoscaler"]["state"]["policy"] == "aiad"


def test_a_live_backend_never_runs_its_stages_as_one_chain(tmp_path):
    import pytest

    from faro.workflow.stage_runner import run_chain

    with pytest.raises(ValueError, match="each stage is a job of its own"):
        run_chain(_tiny_run(tmp_path, backend="ray"), tmp_path / "run")
    assert not (tmp_path / "run").exists()

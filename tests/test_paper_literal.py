"""The paper-literal switch: one configfile selects N-HiTS at quantile 0.6 for the five Faro
variants and leaves everything else as in the default configuration."""

from __future__ import annotations

from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT = PROJECT / "config/policies"
LITERAL = PROJECT / "config/policies/paper_literal"
FARO = ["faro_fair", "faro_sum", "faro_fair_sum", "faro_penalty_sum", "faro_penalty_fair_sum"]


def _params(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_configfile_points_at_the_paper_literal_policies():
    cfg = yaml.safe_load((PROJECT / "config/experiments/paper_literal.yaml").read_text())
    assert (PROJECT / cfg["policy_dir"]).resolve() == LITERAL.resolve()
    assert cfg["results"] != "results" and len(cfg["seeds"]) == 5


def test_every_paper_policy_is_there_and_only_the_faro_forecast_differs():
    default_cfg = yaml.safe_load((PROJECT / "config/config.yaml").read_text())
    assert sorted(p.stem for p in LITERAL.glob("*.yaml")) == sorted(default_cfg["policies"])
    for name in default_cfg["policies"]:
        lit, dflt = _params(LITERAL / f"{name}.yaml"), _params(DEFAULT / f"{name}.yaml")
        if name not in FARO:
            assert lit == dflt, name
            continue
        assert lit["params"]["forecaster"] == "nhits" and lit["params"]["quantile"] == 0.6
        rest = {k: v for k, v in lit["params"].items()
                if k not in ("forecaster", "forecaster_params", "quantile")}
        assert rest == {k: v for k, v in dflt["params"].items() if k not in ("forecaster", "quantile")}, name

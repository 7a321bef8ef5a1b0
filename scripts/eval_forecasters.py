"""Score the load forecasters on day 11 (sample 0 = the replayed trace); write a CSV, print a table.

Command line:
    PYTHONPATH=workflow python scripts/eval_forecasters.py \
        --data-dir ../shared/data/faro-artifact --out results/forecast/eval.csv \
        [--forecasters default,last_value,oracle,nhits] [--nhits-dir results/forecast/nhits]
As a Snakemake ``script:``: input ``history`` (the pickle; its folder holds SHA256SUMS) and
optionally ``nhits`` (the N-HiTS manifest), output ``csv``, params ``forecasters``.
The light forecaster is fitted here on days 1-10; N-HiTS is loaded from its trained folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from faro.forecast.evaluate import evaluate_forecasters
from faro.forecast.history import load_history_from_dir
from faro.forecast.registry import make_forecaster


def run(data_dir: Path, out: Path, names: list[str], nhits_dir: Path | None) -> None:
    hist = load_history_from_dir(data_dir)
    truth = hist.test_series(sample=0)
    train = hist.training_series(max_day=10)
    fs = {}
    for name in names:
        if name == "oracle":
            fs[name] = make_forecaster(name, truth=truth)
        elif name == "nhits":
            if nhits_dir is None:
                raise SystemExit("--nhits-dir is required for the nhits forecaster")
            fs[name] = make_forecaster(name, model_dir=nhits_dir)
        elif name in ("default", "light"):
            fs[name] = make_forecaster(name, train=train)
        else:
            fs[name] = make_forecaster(name)
    t0 = time.perf_counter()
    table = evaluate_forecasters(fs, truth)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    table.to_csv(tmp, index=False, float_format="%.4f")
    tmp.replace(out)
    with np.printoptions(precision=3):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"# evaluated {len(fs)} forecasters in {time.perf_counter() - t0:.1f} s -> {out}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get(
        "FARO_DATA_MIRROR", Path(__file__).resolve().parents[2] / "shared/data/faro-artifact")))
    ap.add_argument("--out", type=Path, default=Path("results/forecast/eval.csv"))
    ap.add_argument("--forecasters", default="default,last_value,oracle")
    ap.add_argument("--nhits-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    run(a.data_dir, a.out, [n.strip() for n in a.forecasters.split(",") if n.strip()],
        a.nhits_dir)


if __name__ == "__main__":
    if "snakemake" in globals():  # run as a Snakemake script: directive
        sm = globals()["snakemake"]
        nh = sm.input.get("nhits") if hasattr(sm.input, "get") else None
        run(Path(sm.input["history"]).parent, Path(sm.output["csv"]),
            list(sm.params.get("forecasters", ["default", "last_value", "oracle"])),
            Path(nh).parent if nh else None)
    else:
        main(sys.argv[1:])

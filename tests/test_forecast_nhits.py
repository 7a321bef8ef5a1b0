"""N-HiTS: imports without torch, a clear error without the extra, a tiny train/load cycle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from faro.forecast.history import History

WORKFLOW = str(Path(__file__).resolve().parents[1] / "workflow")


def test_imports_without_torch_and_says_how_to_install():
    code = (
        "import sys\n"
        "sys.modules['torch'] = None; sys.modules['darts'] = None\n"
        "import faro.forecast.nhits as m\n"
        "from faro.forecast.registry import make_forecaster\n"
        "try:\n"
        "    make_forecaster('nhits', model_dir='nowhere')\n"
        "except ImportError as e:\n"
        "    print('ERR', e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PYTHONPATH": WORKFLOW, "PATH": "/usr/bin:/bin"}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "ERR" in r.stdout and "pip install torch==2.13.0" in r.stdout


def _toy_history() -> History:
    rng = np.random.default_rng(0)
    t = np.arange(40)
    base = 100 + 50 * np.sin(2 * np.pi * t / 10)
    c = base * np.exp(0.05 * rng.standard_normal((10, 11, 1, 40)))
    return History(counts=c, series_ids=tuple(f"s{j}" for j in range(9)) + ("twitter",))


@pytest.mark.slow
def test_tiny_train_load_predict(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("darts")
    from faro.forecast.nhits import load_nhits, train_nhits

    h = _toy_history()
    man = train_nhits(h, tmp_path / "m", max_epochs=2, patience=1, layer_widths=8,
                      batch_size=64, seed=1)
    info = json.loads(man.read_text())
    assert info["input_lens"]["2"] == 10 and info["input_lens"]["0"] == 15
    assert info["train_days"] == [1, 8] and info["val_days"] == [9, 10]
    f = load_nhits(tmp_path / "m", num_samples=20, seed=3)
    hists = [h.test_series(0)[j, :30] for j in range(10)]
    qs = (0.9, 0.1, 0.5)
    a = f.predict_batch(hists, 7, qs)
    assert a.shape == (10, 3, 7) and np.all(a >= 0)
    assert np.all(a[:, 0] >= a[:, 2]) and np.all(a[:, 2] >= a[:, 1])
    # fixed seed: a fresh loader draws the same samples for the same call
    b = load_nhits(tmp_path / "m", num_samples=20, seed=3).predict_batch(hists, 7, qs)
    np.testing.assert_allclose(a, b)
    one = f.predict(hists[2], 7, qs, job=2)
    assert one.shape == (3, 7) and np.all(np.diff(one[[1, 2, 0]], axis=0) >= 0)
    with pytest.raises(NotImplementedError):
        f.fit([])
    # a tampered model file is refused
    p = tmp_path / "m" / "nhits_in15.pt"
    p.write_bytes(p.read_bytes() + b"x")
    with pytest.raises(ValueError, match="sha256 mismatch"):
        load_nhits(tmp_path / "m")

"""History loading: checksum before unpickling, job mapping, day-11 guard."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from faro.forecast.history import (
    HISTORY_FILENAME,
    TEST_DAY,
    ChecksumError,
    History,
    default_series_order,
    expected_sha256,
    job_order_from_trace,
    load_history,
    load_history_from_dir,
    load_trace_counts,
    verify_sha256,
)


def _data_dir() -> Path | None:
    here = Path(__file__).resolve().parents[1]
    for c in (os.environ.get("FARO_DATA_DIR"), os.environ.get("FARO_DATA_MIRROR"),
              here.parent / "shared" / "data" / "faro-artifact"):
        if c and (Path(c) / HISTORY_FILENAME).exists():
            return Path(c)
    return None


DATA = _data_dir()
needs_data = pytest.mark.skipif(DATA is None, reason="faro-artifact data not found")


class _Boom:
    """Unpickling this sets a flag: proves whether a file was unpickled."""

    hit: list[int] = []

    def __reduce__(self):
        return (_Boom.hit.append, (1,))


def test_sha256_mismatch_raises_before_unpickling(tmp_path):
    p = tmp_path / HISTORY_FILENAME
    p.write_bytes(pickle.dumps(_Boom()))
    actual = hashlib.sha256(p.read_bytes()).hexdigest()
    wrong = "0" * 64
    _Boom.hit.clear()
    with pytest.raises(ChecksumError) as e:
        load_history(p, wrong)
    msg = str(e.value)
    assert str(p) in msg and wrong in msg and actual in msg
    assert _Boom.hit == []  # never unpickled


def test_verify_accepts_matching_hash_any_case(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"abc")
    # sha256("abc"), a published test vector
    h = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    verify_sha256(p, h.upper())
    with pytest.raises(ChecksumError):
        verify_sha256(p, h[:-1] + "e")


def test_expected_sha256_parses_sums_file(tmp_path):
    s = tmp_path / "SHA256SUMS"
    s.write_text("aa" * 32 + "  input.json\n" + "bb" * 32 + " *x.pkl\n")
    assert expected_sha256(s, "input.json") == "aa" * 32
    assert expected_sha256(s, "x.pkl") == "bb" * 32
    with pytest.raises(KeyError):
        expected_sha256(s, "missing.pkl")


def _toy_history() -> History:
    c = np.arange(3 * 11 * 2 * 5, dtype=float).reshape(3, 11, 2, 5)
    return History(counts=c, series_ids=("a", "b", "twitter"))


def test_training_refuses_test_day():
    h = _toy_history()
    with pytest.raises(ValueError, match="test day"):
        h.training_series(max_day=TEST_DAY)
    with pytest.raises(ValueError):
        h.training_series(max_day=12)


def test_training_series_layout():
    h = _toy_history()
    tr = h.training_series(max_day=10)
    assert len(tr) == 3 and tr[0].shape == (20, 5)
    # day-major: row 0 = day 1 sample 0, row 1 = day 1 sample 1, row 2 = day 2 sample 0
    np.testing.assert_array_equal(tr[1][2], h.counts[1, 1, 0])
    v = h.training_series(min_day=9, max_day=10, samples=[1])
    assert v[2].shape == (2, 5)
    np.testing.assert_array_equal(v[2][1], h.counts[2, 9, 1])
    np.testing.assert_array_equal(h.test_series(1)[0], h.counts[0, 10, 1])


def test_series_order_and_trace_matching():
    assert default_series_order(["twitter", "f0", "0a"]) == ["0a", "f0", "twitter"]
    trace = np.array([[1, 2, 3], [4, 5, 6]])
    test = {"x": np.array([4, 5, 6]), "y": np.array([1, 2, 3])}
    assert job_order_from_trace(test, trace) == ["y", "x"]
    with pytest.raises(ValueError):
        job_order_from_trace({"x": np.array([4, 5, 6])}, trace)


def test_trace_counts_parse(tmp_path):
    p = tmp_path / "input.json"
    p.write_text('{"ts": 1, "counts": {"serve-cluster10": {"classifier": 7}, '
                 '"serve-cluster2": {"classifier": 5}}}\n'
                 '{"ts": 0, "counts": {"serve-cluster10": {"classifier": 3}, '
                 '"serve-cluster2": {"classifier": 1}}}\n')
    np.testing.assert_array_equal(load_trace_counts(p), [[1, 5], [3, 7]])


@needs_data
def test_real_history_matches_trace():
    h = load_history_from_dir(DATA)  # also checks the job order against input.json
    assert h.counts.shape == (10, 11, 4, 360)
    assert h.series_ids[-1] == "twitter"
    trace = load_trace_counts(DATA / "input.json")
    assert int(trace.sum()) == 2_675_770
    np.testing.assert_array_equal(h.test_series(0), trace)
    assert [a.shape for a in h.training_series()] == [(40, 360)] * 10

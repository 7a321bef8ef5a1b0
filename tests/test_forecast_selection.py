"""Leave-one-day-out folds for forecaster selection: never day 11, never the held-out day."""

from __future__ import annotations

import numpy as np
import pytest

from faro.forecast.history import History
from faro.forecast.selection import day_trace, folds, leave_day_out, make_candidate


def _toy_history() -> History:
    # value = 1000 * day + 10 * sample + job: every row says where it came from
    c = np.zeros((2, 11, 2, 30))
    for d in range(11):
        for s in range(2):
            for j in range(2):
                c[j, d, s, :] = 1000 * (d + 1) + 10 * s + j
    return History(counts=c, series_ids=("a", "twitter"))


def _days(rows: np.ndarray) -> set[int]:
    return {int(v) // 1000 for v in rows[:, 0]}


@pytest.mark.parametrize("day", [1, 5, 10])
def test_leave_day_out_drops_that_day_and_day_11(day):
    tr = leave_day_out(_toy_history(), day)
    assert len(tr) == 2 and tr[0].shape == (9 * 2, 30)  # 9 days x 2 samples
    assert _days(tr[0]) == set(range(1, 11)) - {day}
    assert {int(v) % 10 for v in tr[1][:, 0]} == {1}  # job 1's rows only


def test_refuses_test_day_and_out_of_range():
    h = _toy_history()
    with pytest.raises(ValueError, match="validation day"):
        leave_day_out(h, 11)
    with pytest.raises(ValueError, match="test day"):
        day_trace(h, 11, ["a", "b"])
    with pytest.raises(ValueError, match="2 history series"):
        day_trace(h, 3, ["a"])


def test_day_trace_is_sample_0_minutes_by_jobs():
    t = day_trace(_toy_history(), 3, ["job0", "job1"])
    assert t.jobs == ("job0", "job1") and t.counts.shape == (30, 2) and t.counts.dtype == np.int64
    assert (t.counts[:, 0] == 3000).all() and (t.counts[:, 1] == 3001).all()
    (f,) = list(folds(_toy_history(), ["job0", "job1"], [4]))
    assert f.day == 4 and 4 not in _days(f.train[0]) and (f.trace.counts[:, 0] == 4000).all()


def test_make_candidate_fits_light_and_builds_last_value():
    h = _toy_history()
    tr = leave_day_out(h, 2)
    light = make_candidate({"forecaster": "light", "params": {"n_lags": 0}}, tr)
    assert light.n_lags == 0 and set(light.models) == {0, 1, None}
    lv = make_candidate({"forecaster": "last_value"}, tr)
    np.testing.assert_allclose(lv.predict(np.array([5.0, 7.0]), 3, (0.5,))[0], [7.0, 7.0, 7.0])


def test_policy_overrides_checked():
    from faro.forecast.selection import policy_overrides

    assert policy_overrides("a", {"forecaster": "light"}) == {}
    assert policy_overrides("a", {"policy_params": {"quantile": 0.5}}) == {"quantile": 0.5}
    with pytest.raises(ValueError, match="unknown policy_params.*'objective'"):
        policy_overrides("a", {"policy_params": {"objective": "fair"}})
    with pytest.raises(ValueError, match=r"candidate 'b': policy_params.quantile must be in \(0, 1\)"):
        policy_overrides("b", {"policy_params": {"quantile": 1.5}})
    with pytest.raises(ValueError, match="must be a mapping"):
        policy_overrides("c", {"policy_params": [0.5]})

"""Golden checksums: one seed gives the same Parquet data on every machine.

``tests/golden/checksums.json`` holds the sha256 of the data of ``requests.parquet`` and
``replicas.parquet`` of short reference runs (:mod:`faro.backends.sim.golden`).  The checks run in
this process and in child processes whose numpy CPU features, BLAS kernel and thread count
and numba target CPU differ, which is what differs between two machines of one kind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faro.backends.sim.golden import CASE, golden_checksums

PROJECT = Path(__file__).resolve().parents[1]
GOLDEN = json.loads((PROJECT / "tests/golden/checksums.json").read_text())

#: process settings that change numpy's dispatched kernels, OpenBLAS's kernel and threads, and
#: numba's code generation (AVX-512 off, another BLAS core type, a generic target CPU)
VARIANTS = {
    "no-avx512-haswell-blas-1-thread-generic-numba": {
        "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
        "OPENBLAS_CORETYPE": "Haswell",
        "OPENBLAS_NUM_THREADS": "1",
        "NUMBA_CPU_NAME": "generic",
    },
    "blas-2-threads-host-numba": {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"},
}


def test_golden_case_is_the_one_recorded():
    assert GOLDEN["case"] == CASE, "tests/golden/checksums.json was made for another case: rewrite it"


def test_golden_checksums_in_this_process(mirror):
    assert golden_checksums(PROJECT, mirror) == GOLDEN["checksums"]


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_golden_checksums_with_other_cpu_features(variant, mirror, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES")}
    env.update(VARIANTS[variant])
    out = tmp_path / "sums.json"
    subprocess.run(
        [sys.executable, "-m", "faro.backends.sim.golden", "--mirror", str(mirror), "--project", str(PROJECT),
         "--write", str(out)],
        env=env, cwd=PROJECT, check=True, capture_output=True, text=True, timeout=600,
    )
    assert json.loads(out.read_text())["checksums"] == GOLDEN["checksums"]


def test_data_checksum_ignores_metadata_but_not_data(tmp_path):
    import pandas as pd

    from faro.model.schema import data_checksum, write_replicas

    df = pd.DataFrame({"time_s": [0.0, 1.5], "job": ["a", "b"], "replicas": [1, 2]})
    write_replicas(df, tmp_path / "x.parquet", {"commit": "one"})
    write_replicas(df, tmp_path / "y.parquet", {"commit": "another"})
    assert data_checksum(tmp_path / "x.parquet") == data_checksum(tmp_path / "y.parquet")
    df.loc[1, "time_s"] = 1.5000000000000002  # one unit in the last place
    write_replicas(df, tmp_path / "z.parquet", {"commit": "one"})
    assert data_checksum(tmp_path / "z.parquet") != data_checksum(tmp_path / "x.parquet")


def test_data_checksum_of_a_table_with_null_booleans(tmp_path):
    """Decision records have nullable booleans (solver_binding): null and False hash apart."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from faro.model.schema import data_checksum

    def digest(values):
        pq.write_table(pa.table({"b": pa.array(values, pa.bool_())}), tmp_path / "t.parquet")
        return data_checksum(tmp_path / "t.parquet")

    assert digest([True, None]) == digest([True, None])
    assert len({digest([True, None]), digest([True, False]), digest([None, None])}) == 3

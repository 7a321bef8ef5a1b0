"""The Parquet schema every backend's logs parse into.

``requests.parquet``: one row per request; ``replicas.parquet``: one row per change
of a job's active replica count; ``decisions.parquet``: one row per job and controller
tick (what the policy saw, asked for, and what the controller did; written by
:class:`faro.control.records.DecisionRecorder`).  Stats and plots read only these, so
they never know which backend produced the data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from faro.atomic import atomic_path

SCHEMA_VERSION = "1"

REQUESTS_SCHEMA = pa.schema(
    [
        pa.field("job", pa.dictionary(pa.int16(), pa.string()), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("arrival_s", pa.float64(), nullable=False),  # since replay start
        pa.field("start_s", pa.float64(), nullable=True),  # service start, where known
        pa.field("end_s", pa.float64(), nullable=False),  # response received
        pa.field("latency_ms", pa.float64(), nullable=True),  # NaN/null when failed
        pa.field("succeeded", pa.bool_(), nullable=False),
        pa.field("status", pa.int16(), nullable=False),  # HTTP code: 200, 503, ...
    ]
)

REPLICAS_SCHEMA = pa.schema(
    [
        pa.field("time_s", pa.float64(), nullable=False),
        pa.field("job", pa.dictionary(pa.int16(), pa.string()), nullable=False),
        pa.field("replicas", pa.int32(), nullable=False),
    ]
)


_DICT = pa.dictionary(pa.int16(), pa.string())

#: one row per job per controller tick, the same on every backend (see faro.control.records)
DECISIONS_SCHEMA = pa.schema(
    [
        pa.field("time_s", pa.float64(), nullable=False),  # trace seconds since replay start
        pa.field("job", _DICT, nullable=False),
        pa.field("policy", _DICT, nullable=False),
        pa.field("layers", _DICT, nullable=False),  # layers that decided this tick ("" none)
        # what the policy saw
        pa.field("replicas", pa.int32(), nullable=False),  # the controller's allocation
        pa.field("active_replicas", pa.int32(), nullable=False),
        pa.field("head_queue", pa.int32(), nullable=False),
        pa.field("held_total", pa.int32(), nullable=False),  # requests held by the replicas
        pa.field("held_max", pa.int32(), nullable=False),
        pa.field("avg_latency_ms", pa.float64(), nullable=False),
        pa.field("arrivals_last_min", pa.int64(), nullable=False),  # last complete minute
        pa.field("utilization", pa.float64(), nullable=True),  # busy fraction since last tick
        pa.field("executor_busy", pa.bool_(), nullable=False),
        pa.field("admission_rate", pa.float64(), nullable=False),
        pa.field("forecast_quantile", pa.float64(), nullable=True),
        pa.field("forecast_peak_rps", pa.float64(), nullable=True),
        # the policy's own reading and recommendation (production policies)
        pa.field("policy_metric", pa.float64(), nullable=True),
        pa.field("policy_desired", pa.float64(), nullable=True),
        pa.field("policy_mode", _DICT, nullable=False),
        # what it asked for
        pa.field("source", _DICT, nullable=False),
        pa.field("n_actions", pa.int16(), nullable=False),
        pa.field("requested", pa.int32(), nullable=True),  # target after [min, max] bounds
        pa.field("retry", pa.bool_(), nullable=False),  # a queued retry of an earlier action
        # what the controller did
        # applied|clamped|requeued|busy|dropped|noop|none; native: Serve's own target, observed
        pa.field("outcome", _DICT, nullable=False),
        pa.field("applied", pa.int32(), nullable=False),  # allocation after this tick
        pa.field("shortfall", pa.int32(), nullable=False),  # requested - carried out (0: in full)
        pa.field("trials_left", pa.int32(), nullable=True),
        pa.field("free_cpus_before", pa.int32(), nullable=False),
        pa.field("free_cpus_after", pa.int32(), nullable=False),
        # solver policies (Faro): the decision's solve
        pa.field("solver_objective", pa.float64(), nullable=True),
        pa.field("solver_utility", pa.float64(), nullable=True),  # predicted, this job
        pa.field("solver_evals", pa.int32(), nullable=True),
        pa.field("solver_seconds", pa.float64(), nullable=True),
        pa.field("solver_binding", pa.bool_(), nullable=True),  # allocation fills the quota
    ]
)


def _table(df: pd.DataFrame, schema: pa.Schema, provenance: Mapping[str, Any]) -> pa.Table:
    missing = [f.name for f in schema if f.name not in df.columns]
    if missing:
        raise ValueError(f"missing columns {missing} for schema {schema.names}")
    table = pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    meta = {b"faro.schema_version": SCHEMA_VERSION.encode()}
    meta[b"faro.workflow.provenance"] = json.dumps(dict(provenance), sort_keys=True, default=str).encode()
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})


def write_parquet(
    df: pd.DataFrame, path: str | os.PathLike, schema: pa.Schema, provenance: Mapping[str, Any]
) -> pa.Table:
    """Write ``df`` with the explicit ``schema``, zstd, provenance in the metadata; atomically.
    Returns the table written (what a reader of the file gets back)."""
    table = _table(df, schema, provenance)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return table


def _frame(table: pa.Table, str_columns: tuple[str, ...] = ("job",)) -> pd.DataFrame:
    """A table as the readers below return it: dictionary columns as plain strings."""
    df = table.to_pandas()
    for col in str_columns:
        df[col] = df[col].astype(str)
    return df


def read_provenance(path: str | os.PathLike) -> dict[str, Any]:
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(b"faro.workflow.provenance")
    return json.loads(raw) if raw else {}


def write_requests(df: pd.DataFrame, path: str | os.PathLike, provenance: Mapping[str, Any]) -> pd.DataFrame:
    """Write a run's requests; returns them as :func:`read_requests` would read them back."""
    return _frame(write_parquet(df, path, REQUESTS_SCHEMA, provenance))


def write_replicas(df: pd.DataFrame, path: str | os.PathLike, provenance: Mapping[str, Any]) -> pd.DataFrame:
    """Write a run's replica changes; returns them as :func:`read_replicas` would read them back."""
    return _frame(write_parquet(df, path, REPLICAS_SCHEMA, provenance))


def write_decisions(df: pd.DataFrame, path: str | os.PathLike, provenance: Mapping[str, Any]) -> None:
    write_parquet(df, path, DECISIONS_SCHEMA, provenance)


def read_decisions(path: str | os.PathLike) -> pd.DataFrame:
    return _frame(pq.read_table(path), ("job", "policy", "layers", "policy_mode", "source", "outcome"))


def read_requests(path: str | os.PathLike) -> pd.DataFrame:
    return _frame(pq.read_table(path))


def read_replicas(path: str | os.PathLike) -> pd.DataFrame:
    return _frame(pq.read_table(path))


def data_checksum(path: str | os.PathLike) -> str:
    """sha256 of a Parquet file's data alone: column names, types and values in order.

    Metadata (provenance, versions, the git commit) and the file's encoding are left out,
    so two runs with the same seed give the same checksum on any machine.  Dictionary
    columns are hashed as their decoded values; nulls are marked explicitly.
    """
    import hashlib

    import numpy as np
    import pyarrow.compute as pc

    table = pq.read_table(path)
    h = hashlib.sha256()
    for name, col in zip(table.column_names, table.columns, strict=True):
        col = col.combine_chunks()
        if pa.types.is_dictionary(col.type):
            col = col.dictionary_decode()
        h.update(f"{name}:{col.type}:{len(col)}\n".encode())
        h.update(np.asarray(pc.is_null(col)).tobytes())
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            h.update("\0".join("" if v is None else v for v in col.to_pylist()).encode())
        else:
            zero = False if pa.types.is_boolean(col.type) else 0  # nulls are in the mask above
            filled = col.fill_null(zero) if col.null_count else col.to_numpy(zero_copy_only=False)
            h.update(np.asarray(filled).tobytes())
    return h.hexdigest()

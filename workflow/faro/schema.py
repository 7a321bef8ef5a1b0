"""The Parquet schema every backend's logs parse into.

``requests.parquet``: one row per request; ``replicas.parquet``: one row per change
of a job's active replica count.  Stats and plots read only these, so they never
know which backend produced the data.
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


def _table(df: pd.DataFrame, schema: pa.Schema, provenance: Mapping[str, Any]) -> pa.Table:
    missing = [f.name for f in schema if f.name not in df.columns]
    if missing:
        raise ValueError(f"missing columns {missing} for schema {schema.names}")
    table = pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    meta = {b"faro.schema_version": SCHEMA_VERSION.encode()}
    meta[b"faro.provenance"] = json.dumps(dict(provenance), sort_keys=True, default=str).encode()
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})


def write_parquet(
    df: pd.DataFrame, path: str | os.PathLike, schema: pa.Schema, provenance: Mapping[str, Any]
) -> None:
    """Write ``df`` with the explicit ``schema``, zstd, provenance in the metadata; atomically."""
    table = _table(df, schema, provenance)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_provenance(path: str | os.PathLike) -> dict[str, Any]:
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(b"faro.provenance")
    return json.loads(raw) if raw else {}


def write_requests(df: pd.DataFrame, path: str | os.PathLike, provenance: Mapping[str, Any]) -> None:
    write_parquet(df, path, REQUESTS_SCHEMA, provenance)


def write_replicas(df: pd.DataFrame, path: str | os.PathLike, provenance: Mapping[str, Any]) -> None:
    write_parquet(df, path, REPLICAS_SCHEMA, provenance)


def read_requests(path: str | os.PathLike) -> pd.DataFrame:
    df = pq.read_table(path).to_pandas()
    df["job"] = df["job"].astype(str)
    return df


def read_replicas(path: str | os.PathLike) -> pd.DataFrame:
    df = pq.read_table(path).to_pandas()
    df["job"] = df["job"].astype(str)
    return df


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
            h.update(np.asarray(col.fill_null(0) if col.null_count else col.to_numpy(zero_copy_only=False)).tobytes())
    return h.hexdigest()

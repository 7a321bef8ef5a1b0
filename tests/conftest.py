"""Shared fixtures: project paths and the local data mirror."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("FARO_DATA_MIRROR", PROJECT.parent / "shared" / "data" / "faro-artifact"))


@pytest.fixture(scope="session")
def project() -> Path:
    return PROJECT


@pytest.fixture(scope="session")
def mirror() -> Path:
    if not (MIRROR / "input.json").is_file():
        pytest.skip(f"no data mirror at {MIRROR} (set FARO_DATA_MIRROR)")
    return MIRROR

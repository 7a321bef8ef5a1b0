"""Saving figures atomically in several formats."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt


def save(fig, *paths: str | os.PathLike) -> None:
    for path in paths:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.stem}.tmp{os.getpid()}{p.suffix}")
        fig.savefig(tmp)
        os.replace(tmp, p)
    plt.close(fig)

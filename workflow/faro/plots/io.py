"""Saving figures atomically in several formats."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt

#: raster resolution of PNGs (PDFs are vector)
PNG_DPI = 150


def save(fig, *paths: str | os.PathLike) -> None:
    """Write ``fig`` to every path (format from the suffix), tightly cropped, then close it."""
    bbox = fig.get_tightbbox().padded(0.03)  # computed once for all formats
    for path in paths:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.stem}.tmp{os.getpid()}{p.suffix}")
        fig.savefig(tmp, bbox_inches=bbox, dpi=PNG_DPI if p.suffix == ".png" else "figure")
        os.replace(tmp, p)
    plt.close(fig)

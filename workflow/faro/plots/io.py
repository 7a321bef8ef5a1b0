"""Saving figures atomically in several formats."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt

from faro.atomic import atomic_path

#: raster resolution of PNGs (PDFs are vector)
PNG_DPI = 150


#: fonts embedded as TrueType (Type 42), not Type 3, in PDF/PS (read at save time)
SAVE_RC = {"pdf.fonttype": 42, "ps.fonttype": 42}


def save(fig, *paths: str | os.PathLike) -> None:
    """Write ``fig`` to every path (format from the suffix), tightly cropped, then close it."""
    bbox = fig.get_tightbbox().padded(0.03)  # computed once for all formats
    with plt.rc_context(SAVE_RC):
        for path in paths:
            with atomic_path(path) as tmp:
                fig.savefig(tmp, bbox_inches=bbox, dpi=PNG_DPI if tmp.suffix == ".png" else "figure")
    plt.close(fig)

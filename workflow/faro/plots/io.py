"""Saving figures atomically in several formats."""

from __future__ import annotations

import os
import weakref

import matplotlib.pyplot as plt

from faro.atomic import atomic_path

#: raster resolution of PNGs (PDFs are vector)
PNG_DPI = 150
#: zlib level of PNGs: for these figures (flat colours, lines, text) level 3 writes files 2%
#: larger than the default 6 in two thirds of its encoding time (8 per-cell figures, 2026-12-06)
PNG_OPTIONS = {"compress_level": 3}


#: fonts embedded as TrueType (Type 42), not Type 3, in PDF/PS (read at save time)
SAVE_RC = {"pdf.fonttype": 42, "ps.fonttype": 42}

#: figures whose layout is final as drawn (:func:`fixed_layout`): saved uncropped
_FIXED: weakref.WeakSet = weakref.WeakSet()


def fixed_layout(fig, *, left: float, right: float, bottom: float, top: float, **spacing):
    """Place the subplots with margins given in inches (``spacing``: ``hspace``/``wspace`` as in
    ``subplots_adjust``) and mark the layout final: :func:`save` then writes the figure as
    drawn, without the tight-bounding-box pass that costs about a sixth of a figure's drawing
    time. For figures drawn many times over (one per cell); their margins are sized for their
    longest text, and ``tests/test_figures.py`` checks that nothing drawn leaves the canvas."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h, **spacing)
    _FIXED.add(fig)
    return fig


def has_fixed_layout(fig) -> bool:
    """Whether ``fig``'s layout was fixed by :func:`fixed_layout` (it is saved uncropped)."""
    return fig in _FIXED


def save(fig, *paths: str | os.PathLike) -> None:
    """Write ``fig`` to every path (format from the suffix), tightly cropped unless its layout is
    fixed (:func:`fixed_layout`), then close it."""
    # computed once for all formats
    bbox = None if has_fixed_layout(fig) else fig.get_tightbbox().padded(0.03)
    with plt.rc_context(SAVE_RC):
        for path in paths:
            with atomic_path(path) as tmp:
                if tmp.suffix == ".png":
                    fig.savefig(tmp, bbox_inches=bbox, dpi=PNG_DPI, pil_kwargs=PNG_OPTIONS)
                else:
                    fig.savefig(tmp, bbox_inches=bbox)
    plt.close(fig)

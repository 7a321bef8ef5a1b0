"""Keep the raw records of an earlier, failed attempt of a run before a new attempt starts.

A live run that fails mid-replay leaves partial records (every request sent so far, the
autoscaler's decisions).  When the run is redone, the new attempt writes the same file names;
:func:`archive_attempt` first moves the old files to ``raw/attempts/<n>/`` (n = 1, 2, ...),
so nothing a failed attempt produced is lost and the parser only reads the new attempt.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

ATTEMPTS = "attempts"


def archive_attempt(raw: str | Path, names: Iterable[str]) -> Path | None:
    """Move the files ``names`` that exist in ``raw`` into the next ``raw/attempts/<n>/``.

    Returns that folder, or None when no file of an earlier attempt is there.  The folder
    gets a ``moved.json`` (time, files) so a reader knows where the files came from.
    """
    raw = Path(raw)
    present = [n for n in names if (raw / n).exists()]
    if not present:
        return None
    base = raw / ATTEMPTS
    base.mkdir(parents=True, exist_ok=True)
    n = 1 + max((int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()), default=0)
    dest = base / str(n)
    dest.mkdir()
    for name in present:
        (raw / name).rename(dest / name)
    (dest / "moved.json").write_text(json.dumps({"epoch": time.time(), "files": present}))
    return dest

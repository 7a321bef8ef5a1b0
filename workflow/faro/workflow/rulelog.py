"""A rule's log: logging and stderr of one rule go to its ``log:`` file; an interrupt becomes
one line on the terminal saying how to resume."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def logged(smk) -> Iterator[logging.Logger]:
    """Send logging and stderr of a rule to its log file."""
    path = Path(smk.log[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        old_err = sys.stderr
        sys.stderr = fh
        try:
            yield logging.getLogger(f"faro.rule.{smk.rule}")
        except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: one line, no traceback (it is in the log)
            logging.getLogger("faro").exception("rule %s interrupted", smk.rule)
            print(interrupted_line(smk, e), file=sys.__stderr__, flush=True)
            raise SystemExit(130) from None
        except BaseException:
            logging.getLogger("faro").exception("rule %s failed", smk.rule)
            raise
        finally:
            sys.stderr = old_err
            root.removeHandler(handler)


def interrupted_line(smk, exc: BaseException | None = None) -> str:
    """What was interrupted and how to resume, in one line."""
    wc = dict(getattr(smk, "wildcards", {}) or {})
    where = ", ".join(f"{k} {v}" for k, v in wc.items())
    why = "SIGTERM" if type(exc).__name__ == "Terminated" else "Ctrl-C"
    return (
        f"faro: {why} interrupted rule {smk.rule}" + (f" ({where})" if where else "")
        + "; run the same command again to resume (finished outputs are kept, this one is redone)"
    )

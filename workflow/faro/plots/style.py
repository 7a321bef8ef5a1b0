"""One policy order, colour, marker, line style and label per policy, used by every figure.

The paper's nine policies come first, in the paper's order; then the production autoscalers
this project adds ("beyond the paper"); then any other policy in the order given.  A policy
this module does not know still gets a stable colour, marker and line style (from its name),
so adding a policy to the matrix needs no change here.

Line styles and markers separate the families at a glance: the static/reactive baselines are
dashed, MArk dash-dotted, the five Faro variants solid (each with its own marker), the
production autoscalers dotted.
"""

from __future__ import annotations

import zlib

import matplotlib

matplotlib.use("Agg")

#: the paper's nine policies, in the paper's order
PAPER_POLICIES = [
    "fairshare", "oneshot", "aiad", "mark", "faro_fair", "faro_sum", "faro_fair_sum",
    "faro_penalty_sum", "faro_penalty_fair_sum",
]
#: production autoscalers compared beyond the paper (shown after the paper's nine)
BEYOND_PAPER = ["ray_serve_default", "k8s_hpa", "knative_kpa"]
POLICY_ORDER = PAPER_POLICIES + BEYOND_PAPER
POLICY_LABELS = {
    "fairshare": "FairShare",
    "oneshot": "Oneshot",
    "aiad": "AIAD",
    "mark": "MArk",
    "faro_fair": "Faro-Fair",
    "faro_sum": "Faro-Sum",
    "faro_fair_sum": "Faro-FairSum",
    "faro_penalty_sum": "Faro-PenaltySum",
    "faro_penalty_fair_sum": "Faro-PenaltyFairSum",
    "ray_serve_default": "Ray Serve autoscaler",
    "k8s_hpa": "K8s HPA",
    "knative_kpa": "Knative KPA",
    # Serve's own autoscaler on the ray backend (not in the default matrix: ray only)
    "ray_serve_native": "Ray Serve autoscaler (native)",
}
_PALETTE = [
    "#7f7f7f", "#bcbd22", "#8c564b", "#9467bd", "#1f77b4", "#2ca02c", "#d62728", "#ff7f0e", "#17becf",
    "#e377c2", "#393b79", "#637939",
]
POLICY_COLORS = dict(zip(POLICY_ORDER, _PALETTE, strict=True))
POLICY_MARKERS = dict(zip(POLICY_ORDER, ["s", "v", "^", "D", "o", "P", "*", "X", "h", "<", ">", "p"],
                          strict=True))
#: colours of policies this module does not know (picked by a stable hash of the name)
_EXTRA = ["#aec7e8", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5"]
_EXTRA_MARKERS = ["d", "H", "8", "1", "2", "3", "4", "+"]
#: line style per family
FAMILY_LINESTYLES = {"baseline": (0, (4, 1.5)), "mark": (0, (5, 1.5, 1, 1.5)), "faro": "-",
                     "beyond": (0, (1, 1.2)), "other": (0, (3, 1, 1, 1, 1, 1))}


def _hash(policy: str) -> int:
    return zlib.crc32(str(policy).encode())


def family(policy: str) -> str:
    """``baseline`` (FairShare, Oneshot, AIAD), ``mark``, ``faro`` (any ``faro_*`` config),
    ``beyond`` (the production autoscalers) or ``other``."""
    if policy in ("fairshare", "oneshot", "aiad"):
        return "baseline"
    if policy == "mark":
        return "mark"
    if str(policy).startswith("faro"):
        return "faro"
    if policy in BEYOND_PAPER:
        return "beyond"
    return "other"


def is_paper_policy(policy: str) -> bool:
    return policy in PAPER_POLICIES


def ordered(policies) -> list[str]:
    """Known policies in the paper's order (then the production autoscalers), then the others
    in the order given."""
    policies = list(dict.fromkeys(policies))
    known = [p for p in POLICY_ORDER if p in policies]
    return known + [p for p in policies if p not in POLICY_ORDER]


def label(policy: str) -> str:
    return POLICY_LABELS.get(policy, str(policy))


def color(policy: str) -> str:
    if policy in POLICY_COLORS:
        return POLICY_COLORS[policy]
    return _EXTRA[_hash(policy) % len(_EXTRA)]


def marker(policy: str) -> str:
    if policy in POLICY_MARKERS:
        return POLICY_MARKERS[policy]
    return _EXTRA_MARKERS[_hash(policy) % len(_EXTRA_MARKERS)]


def linestyle(policy: str):
    return FAMILY_LINESTYLES[family(policy)]


def line_kw(policy: str, **kw) -> dict:
    """Keyword arguments of one policy's line (colour, line style, marker, label)."""
    return {"color": color(policy), "ls": linestyle(policy), "marker": marker(policy), "label": label(policy),
            **kw}


def paper_rc() -> dict:
    """Figure defaults: small fonts for a two-column paper; TrueType (Type 42) fonts in PDFs."""
    return {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8,
            "xtick.labelsize": 8, "ytick.labelsize": 8, "figure.dpi": 150, "savefig.bbox": "tight",
            "pdf.fonttype": 42, "ps.fonttype": 42}


def job_label(job: str) -> str:
    """Short label of a job: ``serve-cluster3`` -> ``job 3`` (names without a number unchanged)."""
    import re

    m = re.search(r"(\d+)$", str(job))
    return f"job {m.group(1)}" if m else str(job)


def grid_shape(n: int, ncols: int = 2) -> tuple[int, int]:
    """(rows, cols) of small multiples for ``n`` panels."""
    cols = min(ncols, max(n, 1))
    return (n + cols - 1) // cols, cols


def legend_outside(ax_or_fig, handles=None, *, ncol: int = 5, where: str = "top", **kw):
    """A legend outside the plotting area (above by default, or to the right), never over data."""
    opts = {"frameon": False, "fontsize": 7}
    if where == "right":
        opts.update(loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=1)
    else:
        opts.update(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=ncol)
    opts.update(kw)
    if handles is not None:
        opts["handles"] = handles
    return ax_or_fig.legend(**opts)


#: width (inches) of one column and of the full text width of a two-column paper
COLUMN_WIDTH = 3.4
TEXT_WIDTH = 7.0

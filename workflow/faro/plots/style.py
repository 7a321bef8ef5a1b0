"""One policy order, one colour and one label per policy, used by every figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

POLICY_ORDER = [
    "fairshare", "oneshot", "aiad", "mark", "faro_fair", "faro_sum", "faro_fair_sum",
    "faro_penalty_sum", "faro_penalty_fair_sum",
    # beyond the paper: the production autoscalers (faro.policies.production), after the nine
    "ray_serve_default", "k8s_hpa", "knative_kpa",
]  # fmt: skip
#: policies that are not in the paper, marked with BEYOND_MARK in every label
BEYOND_PAPER = {"ray_serve_default", "k8s_hpa", "knative_kpa"}
BEYOND_MARK = "\u2020"
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
    "ray_serve_default": "Ray Serve default",
    "k8s_hpa": "K8s HPA",
    "knative_kpa": "Knative KPA",
}
_PALETTE = [
    "#7f7f7f", "#bcbd22", "#8c564b", "#9467bd", "#1f77b4", "#2ca02c", "#d62728", "#ff7f0e", "#17becf",
    "#393b79", "#e7969c", "#637939",
]  # fmt: skip
POLICY_COLORS = dict(zip(POLICY_ORDER, _PALETTE, strict=True))
_EXTRA = ["#e377c2", "#aec7e8", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d"]


def ordered(policies) -> list[str]:
    """Known policies in the paper's order, then the others in the order given."""
    known = [p for p in POLICY_ORDER if p in policies]
    return known + [p for p in policies if p not in POLICY_ORDER]


def label(policy: str) -> str:
    """The policy's display label; policies beyond the paper carry a dagger."""
    text = POLICY_LABELS.get(policy, policy)
    return f"{text} {BEYOND_MARK}" if policy in BEYOND_PAPER else text


def color(policy: str) -> str:
    if policy in POLICY_COLORS:
        return POLICY_COLORS[policy]
    return _EXTRA[sum(map(ord, policy)) % len(_EXTRA)]


def paper_rc() -> dict:
    return {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8,
            "xtick.labelsize": 8, "ytick.labelsize": 8, "figure.dpi": 150, "savefig.bbox": "tight"}  # fmt: skip


def job_label(job: str) -> str:
    """Short label of a job: ``serve-cluster3`` -> ``job 3`` (names without a number unchanged)."""
    import re

    m = re.search(r"(\d+)$", str(job))
    return f"job {m.group(1)}" if m else str(job)


def grid_shape(n: int, ncols: int = 2) -> tuple[int, int]:
    """(rows, cols) of small multiples for ``n`` panels."""
    cols = min(ncols, max(n, 1))
    return (n + cols - 1) // cols, cols


#: width (inches) of one column and of the full text width of a two-column paper
COLUMN_WIDTH = 3.4
TEXT_WIDTH = 7.0

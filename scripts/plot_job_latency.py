# Snakemake shim: the logic is faro.plots.rules.plot_job_latency (workflow/faro/plots/rules.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.plots.rules import plot_job_latency  # noqa: E402

plot_job_latency(snakemake)  # noqa: F821

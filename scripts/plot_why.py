# Snakemake shim: the logic is faro.plots.why.plot_why (workflow/faro/plots/why.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.plots.why import plot_why  # noqa: E402

plot_why(snakemake)  # noqa: F821

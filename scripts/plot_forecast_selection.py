# Snakemake shim: the logic is faro.plots.rules.plot_forecast_selection (workflow/faro/plots/rules.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.plots.rules import plot_forecast_selection  # noqa: E402

plot_forecast_selection(snakemake)  # noqa: F821

# Snakemake shim: the logic is faro.plots.rules.forecast_day11 (workflow/faro/plots/rules.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.plots.rules import forecast_day11  # noqa: E402

forecast_day11(snakemake)  # noqa: F821

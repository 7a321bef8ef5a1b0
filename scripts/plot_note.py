# Snakemake shim: the logic is faro.plots.rules.plots_note (workflow/faro/plots/rules.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.plots.rules import plots_note  # noqa: E402

plots_note(snakemake)  # noqa: F821

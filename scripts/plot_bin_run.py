# Snakemake shim: the logic is faro.plots.rules.bin_run (workflow/faro/plots/rules.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.plots.rules import bin_run  # noqa: E402

bin_run(snakemake)  # noqa: F821

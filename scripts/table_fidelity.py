# Snakemake shim: the logic is faro.plots.rules.table_fidelity (workflow/faro/plots/rules.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.plots.rules import table_fidelity  # noqa: E402

table_fidelity(snakemake)  # noqa: F821

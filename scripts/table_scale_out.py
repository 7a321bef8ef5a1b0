# Snakemake shim: the logic is faro.plots.rules.table_scale_out (workflow/faro/plots/rules.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.plots.rules import table_scale_out  # noqa: E402

table_scale_out(snakemake)  # noqa: F821

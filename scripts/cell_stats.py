# Snakemake shim: the logic is faro.pipeline.cell_stats (workflow/faro/pipeline.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.pipeline import cell_stats  # noqa: E402

cell_stats(snakemake)  # noqa: F821

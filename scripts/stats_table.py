# Snakemake shim: the logic is faro.pipeline.stats_table (workflow/faro/pipeline.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.pipeline import stats_table  # noqa: E402

stats_table(snakemake)  # noqa: F821

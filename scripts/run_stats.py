# Snakemake shim: the logic is faro.pipeline.run_stats (workflow/faro/pipeline.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.pipeline import run_stats  # noqa: E402

run_stats(snakemake)  # noqa: F821

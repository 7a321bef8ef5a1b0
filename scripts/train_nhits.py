# Snakemake shim: the logic is faro.pipeline.train_nhits (workflow/faro/pipeline.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.pipeline import train_nhits  # noqa: E402

train_nhits(snakemake)  # noqa: F821

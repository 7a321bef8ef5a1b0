# Snakemake shim: the logic is faro.pipeline.parse (workflow/faro/pipeline.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.pipeline import parse  # noqa: E402

parse(snakemake)  # noqa: F821

# Snakemake shim: the logic is faro.pipeline.parse_decisions (workflow/faro/pipeline.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.pipeline import parse_decisions  # noqa: E402

parse_decisions(snakemake)  # noqa: F821

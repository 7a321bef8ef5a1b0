# Snakemake shim: the logic is faro.pipeline.stage (workflow/faro/pipeline.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.pipeline import stage  # noqa: E402

stage(snakemake)  # noqa: F821

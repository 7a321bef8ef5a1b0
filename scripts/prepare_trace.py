# Snakemake shim: the logic is faro.pipeline.prepare_trace (workflow/faro/pipeline.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.pipeline import prepare_trace  # noqa: E402

prepare_trace(snakemake)  # noqa: F821

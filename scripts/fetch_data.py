# Snakemake shim: the logic is faro.pipeline.fetch_data (workflow/faro/pipeline.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.pipeline import fetch_data  # noqa: E402

fetch_data(snakemake)  # noqa: F821

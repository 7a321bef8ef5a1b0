# Snakemake shim: the logic is faro.pipeline.mark_root (workflow/faro/pipeline.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.pipeline import mark_root  # noqa: E402

mark_root(snakemake)  # noqa: F821

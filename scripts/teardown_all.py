# Snakemake shim: the logic is faro.pipeline.teardown_all (workflow/faro/pipeline.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.pipeline import teardown_all  # noqa: E402

teardown_all(snakemake)  # noqa: F821

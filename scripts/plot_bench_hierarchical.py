# Snakemake shim: the logic is faro.plots.rules.bench_hierarchical (workflow/faro/plots/rules.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.plots.rules import bench_hierarchical  # noqa: E402

bench_hierarchical(snakemake)  # noqa: F821

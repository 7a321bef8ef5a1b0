# Snakemake shim: the logic is faro.plots.rules.bench_solver_optimality (workflow/faro/plots/rules.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.plots.rules import bench_solver_optimality  # noqa: E402

bench_solver_optimality(snakemake)  # noqa: F821

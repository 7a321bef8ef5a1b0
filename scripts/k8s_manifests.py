# Snakemake shim: the logic is faro.pipeline.k8s_manifests (workflow/faro/pipeline.py).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.pipeline import k8s_manifests  # noqa: E402

k8s_manifests(snakemake)  # noqa: F821

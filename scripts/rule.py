# The one script of every rule: runs the rule's entry function (faro.workflow.dispatch.ENTRIES)
# from this checkout's package, whatever else is installed.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "workflow"))  # noqa: F821
from faro.workflow.dispatch import run_rule  # noqa: E402

run_rule(snakemake)  # noqa: F821

from faro.pipeline import run_stats

run_stats(snakemake)  # noqa: F821

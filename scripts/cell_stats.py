from faro.pipeline import cell_stats

cell_stats(snakemake)  # noqa: F821

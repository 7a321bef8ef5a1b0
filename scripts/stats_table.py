from faro.pipeline import stats_table

stats_table(snakemake)  # noqa: F821

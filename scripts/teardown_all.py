from faro.pipeline import teardown_all

teardown_all(snakemake)  # noqa: F821

from faro.pipeline import stage

stage(snakemake)  # noqa: F821

from faro.pipeline import parse

parse(snakemake)  # noqa: F821

from faro.pipeline import mark_root

mark_root(snakemake)  # noqa: F821

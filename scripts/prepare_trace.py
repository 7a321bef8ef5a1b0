from faro.pipeline import prepare_trace

prepare_trace(snakemake)  # noqa: F821

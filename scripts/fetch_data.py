from faro.pipeline import fetch_data

fetch_data(snakemake)  # noqa: F821

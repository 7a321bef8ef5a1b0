from faro.pipeline import plot_headline

plot_headline(snakemake)  # noqa: F821

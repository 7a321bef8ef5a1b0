"""The glue between Snakemake and the package: the config checks (:mod:`.config`), the typed
run spec (:mod:`.runspec`), the rules' entry points (:mod:`.entry`, :mod:`.plot_entry`), the
stage runner with its records (:mod:`.stage_runner`), what the Snakefile computes at parse
time (:mod:`.support`, :mod:`.codedeps`), executor resources (:mod:`.executor`), provenance,
the end-of-run summary and ``faro doctor``.  Nothing outside this package imports it, except
the command line (:mod:`faro.cli`).
"""

# Figures (through report()) and the `plots` target, which redoes only figures.


rule plot_headline:
    input:
        cells=get_quota_cells,
        code=code_files("plots"),
    output:
        png=report(
            ROOT + "/plots/headline_{quota}cpus.png",
            category="Headline",
            subcategory="{quota} CPUs",
            caption="../report/headline.rst",
            labels={"figure": "headline", "quota": "{quota}"},
        ),
        pdf=ROOT + "/plots/headline_{quota}cpus.pdf",
    params:
        policies=config["policies"],
        quota="{quota}",
    log:
        ROOT + "/logs/plots/headline_{quota}cpus.log",
    script:
        "../scripts/plot_headline.py"


rule plots:
    input:
        get_plots(),

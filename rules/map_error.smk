# How exact the map is: the error of maps from resampled text subsets (uniform, LS, KL; arXiv 2505.15428)
# and the map's uncertainty under a bootstrap over its texts (rules/analysis.smk's ANALYSIS config).

RESAMPLING = ANALYSIS["resampling_error"]
UNCERTAINTY = ANALYSIS["map_uncertainty"]


rule measure_resampling_error:
    input:
        "results/coords/coordinates.npz",
    output:
        table=report(
            "results/analysis/resampling_error/errors.html",
            caption="../report/analysis_resampling_error.rst",
            category="Analysis",
            subcategory="Text resampling",
        ),
        table_other=multiext("results/analysis/resampling_error/errors", ".csv", ".md", ".tex"),
        summary=report(
            "results/analysis/resampling_error/matching.html",
            caption="../report/analysis_resampling_error.rst",
            category="Analysis",
            subcategory="Text resampling",
        ),
        summary_other=multiext("results/analysis/resampling_error/matching", ".csv", ".md", ".tex"),
        figure=report(
            "results/analysis/resampling_error/errors.png",
            caption="../report/analysis_resampling_error.rst",
            category="Analysis",
            subcategory="Text resampling",
        ),
        figure_pdf="results/analysis/resampling_error/errors.pdf",
    log:
        "logs/measure_resampling_error/measure_resampling_error.log",
    conda:
        "../envs/analysis.yaml"
    params:
        methods=RESAMPLING["methods"],
        fractions=RESAMPLING["fractions"],
        seeds=RESAMPLING["seeds"],
        out_stem=stem("table"),
        summary_stem=stem("summary"),
        figure_stem=stem("figure"),
    shell:
        "python -m lmmap analyze resampling-error --coordinates {input:q} --methods {params.methods:q}"
        " --fractions {params.fractions} --seeds {params.seeds}"
        " --out-stem {params.out_stem:q} --summary-stem {params.summary_stem:q}"
        " --figure-stem {params.figure_stem:q} > {log:q} 2>&1"


rule estimate_map_uncertainty:
    input:
        coords="results/coords/coordinates.npz",
        embedding="results/coords/tsne.csv",
    output:
        table=report(
            "results/analysis/map_uncertainty/models.html",
            caption="../report/analysis_map_uncertainty.rst",
            category="Analysis",
            subcategory="Map uncertainty",
        ),
        table_other=multiext("results/analysis/map_uncertainty/models", ".csv", ".md", ".tex"),
        pairs="results/analysis/map_uncertainty/kl_pairs.csv",
        kl_se="results/analysis/map_uncertainty/kl_se.npz",
        figure=report(
            "results/analysis/map_uncertainty/ellipses.png",
            caption="../report/analysis_map_uncertainty.rst",
            category="Analysis",
            subcategory="Map uncertainty",
        ),
        figure_pdf="results/analysis/map_uncertainty/ellipses.pdf",
    log:
        "logs/estimate_map_uncertainty/estimate_map_uncertainty.log",
    conda:
        "../envs/analysis.yaml"
    params:
        hue=config["map"]["hues"][0],
        type_colours=type_colours_option(),
        replicates=UNCERTAINTY["replicates"],
        max_iter=UNCERTAINTY["max_iter"],
        perplexity=config["map"]["perplexity"],
        seed=UNCERTAINTY["seed"],
        out_stem=stem("table"),
        figure_stem=stem("figure"),
    shell:
        "python -m lmmap analyze map-uncertainty --coordinates {input.coords:q} --embedding {input.embedding:q}"
        " --hue {params.hue:q} {params.type_colours:q} --replicates {params.replicates}"
        " --max-iter {params.max_iter} --perplexity {params.perplexity} --seed {params.seed}"
        " --out-stem {params.out_stem:q} --pairs {output.pairs:q} --kl-se {output.kl_se:q}"
        " --figure-stem {params.figure_stem:q} > {log:q} 2>&1"

# The first figures: the model map, the PCA variance curve (with the dimensionality table), the KL heatmap.


rule embed_models:
    input:
        coords="results/coords/coordinates.npz",
        table="results/matrix/models.csv",
    output:
        "results/coords/tsne.csv",
    log:
        "logs/embed_models/embed_models.log",
    benchmark:
        "logs/embed_models/embed_models.benchmark.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        perplexity=config["map"]["perplexity"],
        max_iter=config["map"]["max_iter"],
        seed=config["map"]["seed"],
    shell:
        "python -m lmmap embed --coordinates {input.coords:q} --models-table {input.table:q}"
        " --perplexity {params.perplexity} --max-iter {params.max_iter} --seed {params.seed}"
        " --out {output:q} > {log:q} 2>&1"


# Every t-SNE map, one job per colouring (map.hues): a models-table column or a variable derived from
# L, Q and the benchmark scores (lmmap.analysis.tsne_map); only the benchmark colourings wait for scores.
rule plot_maps:
    input:
        matrix="results/matrix/loglik.npz",
        coords="results/coords/coordinates.npz",
        table="results/matrix/models.csv",
        embedding="results/coords/tsne.csv",
        benchmarks=lambda w: benchmarks_input(w) if w.hue in NEEDS_BENCHMARKS else [],
    output:
        png=report(
            "results/figures/map_{hue}.png",
            caption="../report/map.rst",
            category="Map",
            subcategory="t-SNE map",
            labels={"colour": "{hue}"},
        ),
        pdf="results/figures/map_{hue}.pdf",
    log:
        "logs/plot_maps/{hue}.log",
    conda:
        "../envs/analysis.yaml"
    params:
        benchmarks=lambda w, input: ["--benchmarks", *input.benchmarks] if input.benchmarks else [],
        annotate=["--annotate"] if config["map"]["annotate"] else [],
        type_colours=type_colours_option(),
        out_dir=folder("png"),
    shell:
        "python -m lmmap analyze maps --matrix {input.matrix:q} --coordinates {input.coords:q}"
        " --models-table {input.table:q} --embedding {input.embedding:q} {params.benchmarks:q}"
        " --variables {wildcards.hue:q} {params.annotate} {params.type_colours:q} --out-dir {params.out_dir:q}"
        " > {log:q} 2>&1"


# PCA of Q, one computation: the variance curve (figure and CSV) and the dimensionality table.
rule plot_dimensionality:
    input:
        "results/coords/coordinates.npz",
    output:
        png=report("results/figures/pca_variance.png", caption="../report/pca.rst", category="Map", subcategory="PCA"),
        pdf="results/figures/pca_variance.pdf",
        curve="results/tables/pca_components.csv",
        table=report(
            f"{ANALYSIS_DIR}/dimensionality.html",
            caption="../report/analysis_dimensionality.rst",
            category="Analysis",
            subcategory="Dimensionality",
        ),
        other=multiext(f"{ANALYSIS_DIR}/dimensionality", ".csv", ".md", ".tex"),
    log:
        "logs/plot_dimensionality/plot_dimensionality.log",
    conda:
        "../envs/analysis.yaml"
    params:
        levels=config["pca"]["levels"],
        figure_stem=stem("png"),
        table_stem=stem("table"),
    shell:
        "python -m lmmap analyze dimensionality --coordinates {input:q} --levels {params.levels}"
        " --out-stem {params.table_stem:q} --figure-stem {params.figure_stem:q} --out-curve {output.curve:q}"
        " > {log:q} 2>&1"


rule plot_kl_heatmap:
    input:
        kl="results/coords/kl_estimate.npz",
        table="results/matrix/models.csv",
    output:
        png=report(
            "results/figures/kl_heatmap.png",
            caption="../report/kl_heatmap.rst",
            category="Map",
            subcategory="KL heatmap",
        ),
        pdf="results/figures/kl_heatmap.pdf",
    log:
        "logs/plot_kl_heatmap/plot_kl_heatmap.log",
    conda:
        "../envs/analysis.yaml"
    params:
        group=config["map"]["hues"][0],
        type_colours=type_colours_option(),
        out_stem=stem("png"),
    shell:
        "python -m lmmap plot-kl --kl {input.kl:q} --models-table {input.table:q} --group {params.group:q}"
        " {params.type_colours:q} --out-stem {params.out_stem:q} > {log:q} 2>&1"

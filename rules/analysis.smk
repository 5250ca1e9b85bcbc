# The paper's analyses (lmmap.analysis, `python -m lmmap analyze ...`): dimensionality, KL validation, benchmark prediction, the perplexity baseline, the leakage
# screen, weight interpolation and the model list. Tables: CSV + Markdown + LaTeX; figures: PNG + PDF.

from lmmap.workflow import grid_points_json

ANALYSIS = config["analysis"]
GRIDS = {slug: list(grid.points) for slug, grid in GRID_DEFS.items()}  # rules/common.smk


rule validate_kl:
    input:
        coords="results/coords/coordinates.npz",
        texts="results/texts/texts.jsonl",
        models="results/models/models.json",
    output:
        pairs=multiext("results/analysis/kl_validation/pairs", ".csv", ".md", ".tex", ".html"),
        summary=report(
            "results/analysis/kl_validation/summary.html",
            caption="../report/analysis_kl.rst",
            category="Analysis",
            subcategory="KL validation",
        ),
        summary_other=multiext("results/analysis/kl_validation/summary", ".csv", ".md", ".tex"),
        scatter=report(
            "results/analysis/kl_validation/scatter.png",
            caption="../report/analysis_kl.rst",
            category="Analysis",
            subcategory="KL validation",
        ),
        scatter_pdf="results/analysis/kl_validation/scatter.pdf",
    log:
        "logs/validate_kl/validate_kl.log",
    benchmark:
        "logs/validate_kl/validate_kl.benchmark.tsv"
    priority: 1  # the longest analyses: started first, not after the plots
    conda:
        "../envs/scoring.yaml"
    params:
        model_ids=["--model-ids", *ANALYSIS["kl_validation"]["models"]] if ANALYSIS["kl_validation"]["models"] else [],
        max_models=ANALYSIS["kl_validation"]["max_models"],
        n_texts=ANALYSIS["kl_validation"]["n_texts"],
        n_samples=ANALYSIS["kl_validation"]["n_samples"],
        sample_tokens=(
            ["--sample-tokens", ANALYSIS["kl_validation"]["sample_tokens"]]
            if ANALYSIS["kl_validation"]["sample_tokens"]
            else []
        ),
        seed=ANALYSIS["kl_validation"]["seed"],
        device=ANALYSIS["kl_validation"]["device"],
        dtype=ANALYSIS["kl_validation"]["dtype"],
        out_stem=stem("pairs"),
        summary_stem=stem("summary"),
        figure_stem=stem("scatter"),
    shell:
        "python -m lmmap analyze validate-kl --coordinates {input.coords:q} --texts {input.texts:q}"
        " --models {input.models:q} {params.model_ids:q} --max-models {params.max_models}"
        " --n-texts {params.n_texts} --n-samples {params.n_samples} {params.sample_tokens}"
        " --seed {params.seed} --device {params.device:q} --dtype {params.dtype:q}"
        " --out-stem {params.out_stem:q} --summary-stem {params.summary_stem:q}"
        " --figure-stem {params.figure_stem:q} > {log:q} 2>&1"


rule predict_benchmarks:
    input:
        matrix="results/matrix/loglik.npz",
        coords="results/coords/coordinates.npz",
        table="results/matrix/models.csv",
        benchmarks=BENCHMARKS,
    output:
        html=report(
            "results/analysis/prediction/ridge.html",
            caption="../report/analysis_prediction.rst",
            category="Analysis",
            subcategory="Benchmark prediction",
        ),
        other=multiext("results/analysis/prediction/ridge", ".csv", ".md", ".tex"),
        predictions="results/analysis/prediction/predictions.csv",
        scatter=report(
            "results/analysis/prediction/ridge_scatter.png",
            caption="../report/analysis_prediction.rst",
            category="Analysis",
            subcategory="Benchmark prediction",
        ),
        scatter_pdf="results/analysis/prediction/ridge_scatter.pdf",
    log:
        "logs/predict_benchmarks/predict_benchmarks.log",
    benchmark:
        "logs/predict_benchmarks/predict_benchmarks.benchmark.tsv"
    priority: 1  # the longest analyses: started first, not after the plots
    conda:
        "../envs/analysis.yaml"
    threads: 2
    params:
        features=ANALYSIS["prediction"]["features"],
        cv=ANALYSIS["prediction"]["cv"],
        group_by=ANALYSIS["prediction"]["group_by"],
        seeds=ANALYSIS["prediction"]["seeds"],
        splits=ANALYSIS["prediction"]["splits"],
        inner_splits=ANALYSIS["prediction"]["inner_splits"],
        alphas=ANALYSIS["prediction"]["alphas"],
        mean_logp_alphas=ANALYSIS["prediction"]["mean_logp_alphas"],
        score_range=ANALYSIS["prediction"]["score_range"],
        max_components=ANALYSIS["prediction"]["max_components"],
        out_stem=stem("html"),
        figure_stem=stem("scatter"),
    shell:
        "python -m lmmap analyze predict --matrix {input.matrix:q} --coordinates {input.coords:q}"
        " --models-table {input.table:q} --benchmarks {input.benchmarks:q} --features {params.features:q}"
        " --cv {params.cv:q} --group-by {params.group_by:q} --seeds {params.seeds} --splits {params.splits}"
        " --inner-splits {params.inner_splits} --alphas {params.alphas} --mean-logp-alphas {params.mean_logp_alphas}"
        " --score-range {params.score_range} --max-components {params.max_components}"
        " --jobs {threads} --out-stem {params.out_stem:q} --predictions {output.predictions:q}"
        " --figure-stem {params.figure_stem:q} > {log:q} 2>&1"


rule tabulate_perplexity_baseline:
    input:
        matrix="results/matrix/loglik.npz",
        table="results/matrix/models.csv",
        benchmarks=BENCHMARKS,
    output:
        html=report(
            "results/analysis/baseline/loglik_correlation.html",
            caption="../report/analysis_baseline.rst",
            category="Analysis",
            subcategory="Perplexity baseline",
        ),
        other=multiext("results/analysis/baseline/loglik_correlation", ".csv", ".md", ".tex"),
        scatter=report(
            "results/analysis/baseline/loglik_scatter.png",
            caption="../report/analysis_baseline.rst",
            category="Analysis",
            subcategory="Perplexity baseline",
        ),
        scatter_pdf="results/analysis/baseline/loglik_scatter.pdf",
    log:
        "logs/tabulate_perplexity_baseline/tabulate_perplexity_baseline.log",
    conda:
        "../envs/analysis.yaml"
    params:
        type_colours=type_colours_option(),
        out_stem=stem("html"),
        figure_stem=stem("scatter"),
    shell:
        "python -m lmmap analyze perplexity-baseline --matrix {input.matrix:q} --models-table {input.table:q}"
        " --benchmarks {input.benchmarks:q} {params.type_colours:q} --out-stem {params.out_stem:q}"
        " --figure-stem {params.figure_stem:q} > {log:q} 2>&1"


rule screen_leakage:
    input:
        matrix="results/matrix/loglik.npz",
        table="results/matrix/models.csv",
        benchmarks=BENCHMARKS,
        embedding="results/coords/tsne.csv",
        known=[ZOO_LINEAGE] if ZOO_GROUPS else [],
    output:
        html=report(
            "results/analysis/leakage/leakage.html",
            caption="../report/analysis_leakage.rst",
            category="Analysis",
            subcategory="Leakage screen",
        ),
        other=multiext("results/analysis/leakage/leakage", ".csv", ".md", ".tex"),
        scatter=multiext("results/analysis/leakage/leakage_scatter", ".png", ".pdf"),
        map=report(
            "results/analysis/leakage/leakage_map.png",
            caption="../report/analysis_leakage.rst",
            category="Analysis",
            subcategory="Leakage screen",
        ),
        map_pdf="results/analysis/leakage/leakage_map.pdf",
    log:
        "logs/screen_leakage/screen_leakage.log",
    conda:
        "../envs/analysis.yaml"
    params:
        method=ANALYSIS["leakage"]["method"],
        group_by=ANALYSIS["leakage"]["group_by"],
        threshold=ANALYSIS["leakage"]["threshold"],
        show=ANALYSIS["leakage"]["show"],
        known=lambda w, input: ["--known", *input.known] if input.known else [],
        type_colours=type_colours_option(),
        out_stem=stem("html"),
        figure_stem=stem("scatter"),
        map_stem=stem("map"),
    shell:
        "python -m lmmap analyze leakage --matrix {input.matrix:q} --models-table {input.table:q}"
        " --benchmarks {input.benchmarks:q} --embedding {input.embedding:q} --method {params.method}"
        " --group-by {params.group_by:q} --threshold {params.threshold}"
        " --show {params.show} {params.known:q} {params.type_colours:q} --out-stem {params.out_stem:q}"
        " --figure-stem {params.figure_stem:q} --map-stem {params.map_stem:q} > {log:q} 2>&1"


rule tabulate_model_list:
    input:
        matrix="results/matrix/loglik.npz",
        table="results/matrix/models.csv",
        benchmarks=benchmarks_input,
    output:
        html=report(
            "results/analysis/model_list.html",
            caption="../report/analysis_model_list.rst",
            category="Models",
            subcategory="Model list",
        ),
        other=multiext("results/analysis/model_list", ".csv", ".md", ".tex"),
    log:
        "logs/tabulate_model_list/tabulate_model_list.log",
    conda:
        "../envs/analysis.yaml"
    params:
        benchmarks=lambda w, input: ["--benchmarks", *input.benchmarks] if input.benchmarks else [],
        out_stem=stem("html"),
    shell:
        "python -m lmmap analyze model-list --matrix {input.matrix:q} --models-table {input.table:q}"
        " {params.benchmarks:q} --out-stem {params.out_stem:q} > {log:q} 2>&1"


if GRIDS:

    rule plot_interpolation:
        input:
            texts="results/texts/texts.jsonl",
            scores=lambda w: [f"results/interpolation/{w.grid}/scores/{spec.slug}.npz" for *_, spec in GRIDS[w.grid]],
            # the triple's geometry, measured by the merge of the grid's first point (every merge writes it)
            geometry=lambda w: f"{GRIDS[w.grid][0][2].source}/interpolation.json",
            coords=["results/coords/coordinates.npz"] if ANALYSIS["interpolation"]["clip_value"] == "map" else [],
        output:
            matrix="results/interpolation/{grid}/loglik.npz",
            table=multiext("results/analysis/interpolation/{grid}", ".csv", ".md", ".tex", ".html"),
            summary=multiext("results/analysis/interpolation/{grid}_summary", ".csv", ".md", ".tex", ".html"),
            figure=report(
                "results/analysis/interpolation/{grid}.png",
                caption="../report/analysis_interpolation.rst",
                category="Analysis",
                subcategory="Weight interpolation",
                labels={"grid": "{grid}"},
            ),
            figure_pdf="results/analysis/interpolation/{grid}.pdf",
        log:
            "logs/plot_interpolation/{grid}.log",
        conda:
            "../envs/analysis.yaml"
        params:
            grid=lambda w: grid_points_json(GRIDS[w.grid]),
            clip=interpolation_clip,
            out_stem=stem("table"),
            summary_stem=stem("summary"),
            figure_stem=stem("figure"),
        shell:
            "python -m lmmap analyze interpolation --texts {input.texts:q} --grid {params.grid:q}"
            " --scores {input.scores:q} --name {wildcards.grid:q} {params.clip:q} --geometry {input.geometry:q}"
            " --out-matrix {output.matrix:q} --out-stem {params.out_stem:q} --summary-stem {params.summary_stem:q}"
            " --figure-stem {params.figure_stem:q} > {log:q} 2>&1"


rule summarise_findings:
    input:
        unpack(findings_inputs),
    output:
        html=report(
            "results/analysis/findings.html",
            caption="../report/analysis_findings.rst",
            category="Findings",
            subcategory="Checked on this run",
        ),
        other=multiext("results/analysis/findings", ".csv", ".md", ".tex"),
    log:
        "logs/summarise_findings/summarise_findings.log",
    conda:
        "../envs/analysis.yaml"
    params:
        arguments=findings_arguments,
        out_stem=stem("html"),
    shell:
        "python -m lmmap analyze findings {params.arguments} --out-stem {params.out_stem:q} > {log:q} 2>&1"

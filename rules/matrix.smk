# The K×N matrix L and the model coordinates Q.


localrules:
    export_models,


rule export_models:
    input:
        sheet=[config["models"]] if config["models"] else [],
    output:
        "results/models/models.json",
    log:
        "logs/export_models/export_models.log",
    conda:
        "../envs/analysis.yaml"
    params:
        sheet=["--sheet", config["models"]] if config["models"] else [],
        zoo=json.dumps(config["zoo"] if config["zoo"]["enabled"] else {}),
        zoo_dir=ZOO_DIR,
    shell:
        "python -m lmmap export-models --out {output:q} {params.sheet:q} --zoo {params.zoo:q}"
        " --zoo-dir {params.zoo_dir:q} > {log:q} 2>&1"


rule merge_matrix:
    input:
        texts="results/texts/texts.jsonl",
        models="results/models/models.json",
        scores=merge_score_inputs(),
    output:
        matrix="results/matrix/loglik.npz",
        table=report(
            "results/matrix/models.csv",
            caption="../report/models.rst",
            category="Models",
            subcategory="Models table (matrix rows)",
        ),
    log:
        "logs/merge_matrix/merge_matrix.log",
    benchmark:
        "logs/merge_matrix/merge_matrix.benchmark.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        allow_missing=["--allow-missing"] if EXCLUDED else [],
    shell:
        "python -m lmmap merge --texts {input.texts:q} --models {input.models:q} --scores {input.scores:q}"
        " --out {output.matrix:q} --out-table {output.table:q} {params.allow_missing} > {log:q} 2>&1"


rule compute_coordinates:
    input:
        "results/matrix/loglik.npz",
    output:
        coords="results/coords/coordinates.npz",
        kl="results/coords/kl_estimate.npz",
    log:
        "logs/compute_coordinates/compute_coordinates.log",
    benchmark:
        "logs/compute_coordinates/compute_coordinates.benchmark.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        clip_quantile=config["coordinates"]["clip_quantile"],
    shell:
        "python -m lmmap coordinates --matrix {input:q} --clip-quantile {params.clip_quantile}"
        " --out {output.coords:q} --out-kl {output.kl:q} > {log:q} 2>&1"

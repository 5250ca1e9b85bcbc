# The K×N matrix L and the model coordinates Q.


localrules:
    export_models,


rule export_models:
    output:
        "results/models/models.json",
    params:
        models=[spec.as_dict() for spec in MODELS.values()],
        sheet=config.get("models") or None,
    run:
        from lmmap.provenance import write_provenance
        from lmmap.storage import write_json

        write_json(output[0], {"models": params.models})
        write_provenance(output[0], "export-models", inputs=[params.sheet] if params.sheet else [],
                         params={"n_models": len(params.models)})


rule merge_matrix:
    input:
        texts="results/texts/texts.jsonl",
        models="results/models/models.json",
        scores=score_files(),
    output:
        matrix="results/matrix/loglik.npz",
        table=report("results/matrix/models.csv", caption="../report/models.rst", category="Matrix"),
    log:
        "logs/merge_matrix/merge_matrix.log",
    benchmark:
        "benchmarks/merge_matrix/merge_matrix.tsv"
    shell:
        "python -m lmmap merge --texts {input.texts:q} --models {input.models:q} --scores {input.scores:q}"
        " --out {output.matrix:q} --out-table {output.table:q} > {log:q} 2>&1"


rule compute_coordinates:
    input:
        "results/matrix/loglik.npz",
    output:
        coords="results/coords/coordinates.npz",
        kl="results/coords/kl_estimate.npz",
    log:
        "logs/compute_coordinates/compute_coordinates.log",
    benchmark:
        "benchmarks/compute_coordinates/compute_coordinates.tsv"
    params:
        clip_quantile=config["coordinates"]["clip_quantile"],
    shell:
        "python -m lmmap coordinates --matrix {input:q} --clip-quantile {params.clip_quantile}"
        " --out {output.coords:q} --out-kl {output.kl:q} > {log:q} 2>&1"

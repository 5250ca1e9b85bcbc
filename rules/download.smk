# Downloads: every Hugging Face model is fetched into the local cache (HF_HOME, on a file system
# the compute nodes share) by a local job, on the machine that runs Snakemake and has network,
# before its scoring job, which then loads it offline at the same revision.
# score_model waits for it: input: download=download_input (rules/resources.smk).

from lmmap.workflow import DOWNLOAD_FIELDS, sheet_options


localrules:
    download_model,


rule download_model:
    output:
        "results/downloads/{model}.json",
    log:
        "logs/download_model/{model}.log",
    retries: 2
    conda:
        "../envs/scoring.yaml"
    params:
        model_id=lambda w: model_spec(w).model_id,
        source=lambda w: model_spec(w).source,
        options=lambda w: sheet_options(model_spec(w), DOWNLOAD_FIELDS),
    shell:
        "python -m lmmap download --model-id {params.model_id:q} --source {params.source:q}"
        " {params.options:q} --out {output:q} > {log:q} 2>&1"

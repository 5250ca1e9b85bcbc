# Downloads: every Hugging Face model is fetched into the local cache (HF_HOME, on a file system
# the compute nodes share) by a local job, on the machine that runs Snakemake and has network,
# before its scoring job, which then loads it offline at the same revision.
# score_model uses: input: download=download_input


from lmmap.download import is_hub_source


localrules:
    download_model,


def download_input(wildcards):
    """The download record a hub model's scoring waits for; nothing for local models."""
    return [f"results/downloads/{wildcards.model}.json"] if is_hub_source(model_spec(wildcards).source) else []


def download_options(spec):
    options = []
    for flag, value in (("--revision", spec.revision), ("--gguf-file", spec.gguf_file)):
        if value:
            options += [flag, value]
    return options


rule download_model:
    output:
        "results/downloads/{model}.json",
    log:
        "logs/download_model/{model}.log",
    params:
        model_id=lambda w: model_spec(w).model_id,
        source=lambda w: model_spec(w).source,
        options=lambda w: download_options(model_spec(w)),
    retries: 2
    shell:
        "python -m lmmap download --model-id {params.model_id:q} --source {params.source:q}"
        " {params.options:q} --out {output:q} > {log:q} 2>&1"

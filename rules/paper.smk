# Paper-data mode (`--configfile config/paper/config.yaml`): the paper's released log-likelihoods and
# benchmark scores replace scoring and the demo benchmarks. Their pickles are converted once, and only
# with the explicit opt-in `paper.allow_pickle: true`, into the files every later rule reads.

PAPER = config["paper"]
PAPER_TYPES = shipped_file(PAPER["types"])

if PAPER["enabled"]:

    rule convert_paper_data:
        input:
            loglik=PAPER["loglik_pickle"],
            model_data=PAPER["model_data_pickle"],
            texts="results/texts/texts.jsonl",
            types=[PAPER_TYPES] if PAPER_TYPES else [],
        output:
            matrix="results/matrix/loglik.npz",
            table="results/matrix/models.csv",
            benchmarks="results/benchmarks/scores.csv",
        log:
            "logs/convert_paper_data/convert_paper_data.log",
        benchmark:
            "logs/convert_paper_data/convert_paper_data.benchmark.tsv"
        conda:
            "../envs/analysis.yaml"
        params:
            allow_pickle=["--allow-pickle"] if PAPER["allow_pickle"] else [],
            types=lambda w, input: ["--types", *input.types] if input.types else [],
        shell:
            "python -m lmmap convert-paper-data --loglik {input.loglik:q} --model-data {input.model_data:q}"
            " --texts {input.texts:q} {params.types:q} {params.allow_pickle} --out-matrix {output.matrix:q}"
            " --out-models {output.table:q} --out-benchmarks {output.benchmarks:q} > {log:q} 2>&1"

    ruleorder: convert_paper_data > merge_matrix

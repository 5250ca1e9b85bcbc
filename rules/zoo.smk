# The demo zoo (config `zoo`, see lmmap.zoo): one job trains the shared tokenizer and tokenises the
# training data; then one job per family builds all of the family's models (every size, fine-tunes,
# merges, precision variants and contaminated models), because starting torch and transformers costs
# more than building a small model. The zoo's interpolation grids are merged by rules/interpolation.smk,
# the same rules as the paper's grids. Each model directory appears whole, its
# config.json included, when it is complete.

from lmmap.workflow import config_files, outside_parents, recipes_json

ZOO_DATA = {"tokenizer": f"{ZOO_DIR}/data/tokenizer.json", "data": f"{ZOO_DIR}/data/tokens.npz"}


if ZOO_GROUPS:

    rule prepare_zoo_data:
        input:
            corpus="results/corpus/documents.jsonl",
            texts="results/texts/texts.jsonl",
        output:
            **ZOO_DATA,
        log:
            "logs/prepare_zoo_data/prepare_zoo_data.log",
        benchmark:
            "logs/prepare_zoo_data/prepare_zoo_data.benchmark.tsv"
        conda:
            "../envs/scoring.yaml"
        params:
            vocab_size=ZOO_CONFIG["tokenizer"]["vocab_size"],
            sample=ZOO_CONFIG["tokenizer"]["sample_every"],
            min_line_chars=ZOO_CONFIG["min_shared_line_chars"],
        shell:
            "python -m lmmap zoo-data --corpus {input.corpus:q} --texts {input.texts:q}"
            " --vocab-size {params.vocab_size} --tokenizer-sample {params.sample}"
            " --min-line-chars {params.min_line_chars}"
            " --tokenizer-out {output.tokenizer:q} --data-out {output.data:q} > {log:q} 2>&1"

    rule tabulate_zoo_lineage:
        output:
            report(
                ZOO_LINEAGE,
                caption="../report/zoo.rst",
                category="Models",
                subcategory="Demo zoo lineage",
            ),
        log:
            "logs/tabulate_zoo_lineage/tabulate_zoo_lineage.log",
        conda:
            "../envs/analysis.yaml"
        params:
            zoo=json.dumps(ZOO_CONFIG),
        shell:
            "python -m lmmap zoo-lineage --zoo-config {params.zoo:q} --out {output:q} > {log:q} 2>&1"

    for _family, _models in ZOO_GROUPS.items():

        rule:
            name:
                "build_zoo_family_{}".format(_family.replace("-", "_").replace(".", "_"))
            input:
                **ZOO_DATA,
                parents=config_files(outside_parents(_models), ZOO_DIR),
            output:
                config_files((m.slug for m in _models), ZOO_DIR),
            log:
                f"logs/build_zoo_family/{_family}.log",
            benchmark:
                f"logs/build_zoo_family/{_family}.benchmark.tsv"
            # All builds before any scoring: the long builds then never end up alone on the last cores.
            priority: 2
            conda:
                "../envs/scoring.yaml"
            threads: 1
            params:
                recipes=recipes_json(_models),
                zoo_dir=lambda w, output: Path(output[0]).parents[1],  # <zoo_dir>/<slug>/config.json
            shell:
                "python -m lmmap build-zoo --recipes {params.recipes:q} --tokenizer {input.tokenizer:q}"
                " --data {input.data:q} --zoo-dir {params.zoo_dir:q} --threads {threads} > {log:q} 2>&1"

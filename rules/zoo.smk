# The demo zoo (config `zoo`, see lmmap.zoo): one job trains the shared tokenizer and tokenises the
# training data; then one job per family builds all of the family's models (every size, fine-tunes,
# merges, precision variants, contaminated models and interpolation grids), because starting torch
# and transformers costs more than building a small model. Each model directory appears whole, its
# config.json included, when it is complete.

import re

from lmmap.zoo import build_groups

ZOO_CONFIG = config.get("zoo") or {}
ZOO_GROUPS = build_groups(ZOO_CONFIG) if ZOO_CONFIG.get("enabled") else {}
ZOO_DATA = {"tokenizer": "results/zoo/data/tokenizer.json", "data": "results/zoo/data/tokens.npz"}


def zoo_config_json(slugs):
    return [f"results/zoo/{slug}/config.json" for slug in slugs]


def zoo_recipes(models):
    return json.dumps([{"slug": m.slug, "recipe": m.recipe, "parents": list(m.parents)} for m in models])


def zoo_outputs():
    """The zoo's own deliverables (its models are built because scoring needs them)."""
    return ["results/zoo/lineage.csv"] if ZOO_GROUPS else []


def zoo_outside_parents(models):
    """Parents built by another family's job."""
    return sorted({p for m in models for p in m.parents} - {m.slug for m in models})


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
            "benchmarks/prepare_zoo_data/prepare_zoo_data.tsv"
        params:
            vocab_size=ZOO_CONFIG["tokenizer"]["vocab_size"],
            sample=ZOO_CONFIG["tokenizer"].get("sample_every", 3),
            min_line_chars=ZOO_CONFIG.get("min_shared_line_chars", 32),
        shell:
            "python -m lmmap zoo-data --corpus {input.corpus:q} --texts {input.texts:q}"
            " --vocab-size {params.vocab_size} --tokenizer-sample {params.sample}"
            " --min-line-chars {params.min_line_chars}"
            " --tokenizer-out {output.tokenizer:q} --data-out {output.data:q} > {log:q} 2>&1"

    rule tabulate_zoo:
        output:
            report("results/zoo/lineage.csv", caption="../report/zoo.rst", category="Demo zoo"),
        log:
            "logs/tabulate_zoo/tabulate_zoo.log",
        params:
            zoo=json.dumps(ZOO_CONFIG),
        shell:
            "python -m lmmap zoo-lineage --zoo-config {params.zoo:q} --out {output:q} > {log:q} 2>&1"

    for _family, _models in ZOO_GROUPS.items():

        rule:
            name:
                "build_zoo_family_" + re.sub(r"\W", "_", _family)
            input:
                **ZOO_DATA,
                parents=zoo_config_json(zoo_outside_parents(_models)),
            output:
                zoo_config_json(m.slug for m in _models),
            log:
                f"logs/build_zoo_family/{_family}.log",
            benchmark:
                f"benchmarks/build_zoo_family/{_family}.tsv"
            params:
                recipes=zoo_recipes(_models),
            threads: 1
            shell:
                "python -m lmmap zoo-build --recipes {params.recipes:q} --tokenizer {input.tokenizer:q}"
                " --data {input.data:q} --threads {threads} > {log:q} 2>&1"

# The reference text set: the paper's JSONL, or the demo corpus chunked the paper's way.


rule build_demo_corpus:
    output:
        "results/corpus/documents.jsonl",
    log:
        "logs/build_demo_corpus/build_demo_corpus.log",
    benchmark:
        "logs/build_demo_corpus/build_demo_corpus.benchmark.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        domains=config["demo_corpus"]["domains"],
        fractions=[config["demo_corpus"]["fractions"][s] for s in ("reference", "train", "heldout")],
        max_docs=config["demo_corpus"]["max_docs_per_domain"],
        max_bytes=config["demo_corpus"]["max_doc_bytes"],
    shell:
        "python -m lmmap demo-corpus --out {output:q} --domains {params.domains:q}"
        " --fractions {params.fractions} --max-docs-per-domain {params.max_docs}"
        " --max-doc-bytes {params.max_bytes} > {log:q} 2>&1"


rule prepare_texts:
    input:
        text_source(),
    output:
        report(
            "results/texts/texts.jsonl",
            caption="../report/texts.rst",
            category="Inputs",
            subcategory="Reference texts",
        ),
    log:
        "logs/prepare_texts/prepare_texts.log",
    benchmark:
        "logs/prepare_texts/prepare_texts.benchmark.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        chunk=["--chunk", "--split", "reference"] if config["texts"]["source"] == "demo" else [],
        n=["--n", config["texts"]["n"]] if config["texts"]["n"] else [],
        seed=config["texts"]["seed"],
        max_bytes=config["texts"]["max_bytes"],
        min_bytes=config["texts"]["min_bytes"],
    shell:
        "python -m lmmap prepare-texts --input {input:q} --out {output:q} {params.chunk} {params.n}"
        " --seed {params.seed} --max-bytes {params.max_bytes} --min-bytes {params.min_bytes} > {log:q} 2>&1"

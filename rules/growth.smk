# Growing a map (lmmap.growth): the map of the models created before growth.cut_date published as one
# directory, results/map/, and each later model scored on the map's text sample and placed on it.


# score-many's jobs: each placed model (its sheet row) scored on the map's text sample
PLACEMENT_JOBS = json.dumps(
    [
        {k: v for k, v in spec.as_dict().items() if v is not None and k != "slug"}
        | {"out": f"{PLACEMENT_DIR}/scores/{slug}.npz"}
        for slug, spec in PLACED.items()
    ]
)


rule publish_map:
    input:
        matrix="results/matrix/loglik.npz",
        table="results/matrix/models.csv",
        texts="results/texts/texts.jsonl",
        benchmarks=benchmarks_input,
    output:
        map=MAP_FILES,
    log:
        "logs/publish_map/publish_map.log",
    benchmark:
        "logs/publish_map/publish_map.benchmark.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        cut_date=["--cut-date", GROWTH["cut_date"]] if GROWTH["cut_date"] else [],
        benchmarks=lambda w, input: ["--benchmarks", input.benchmarks] if input.benchmarks else [],
        clip_quantile=config["coordinates"]["clip_quantile"],
        perplexity=config["map"]["perplexity"],
        max_iter=config["map"]["max_iter"],
        seed=config["map"]["seed"],
        method=GROWTH["sample"]["method"],
        n_draws=GROWTH["sample"]["n_draws"],
        sample_seed=GROWTH["sample"]["seed"],
        alphas=config["analysis"]["prediction"]["alphas"],
        leakage_method=config["analysis"]["leakage"]["method"],
        leakage_group_by=config["analysis"]["leakage"]["group_by"],
        leakage_threshold=config["analysis"]["leakage"]["threshold"],
        out_dir=folder("map"),
    shell:
        "python -m lmmap publish-map --matrix {input.matrix:q} --models-table {input.table:q} --texts {input.texts:q}"
        " {params.benchmarks:q} {params.cut_date:q} --clip-quantile {params.clip_quantile}"
        " --perplexity {params.perplexity} --max-iter {params.max_iter} --seed {params.seed}"
        " --sample-method {params.method} --n-draws {params.n_draws} --sample-seed {params.sample_seed}"
        " --alphas {params.alphas} --leakage-method {params.leakage_method}"
        " --leakage-group-by {params.leakage_group_by:q} --leakage-threshold {params.leakage_threshold}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule score_many_placed:
    input:
        texts=f"{MAP_DIR}/texts_sample.jsonl",
        models=[f"{spec.source}/config.json" for spec in PLACED.values() if spec.is_zoo],
        downloads=[f"results/downloads/{slug}.json" for slug, spec in PLACED.items() if is_hub_source(spec.source)],
    output:
        [f"{PLACEMENT_DIR}/scores/{slug}.npz" for slug in PLACED],
    log:
        "logs/score_many_placed/score_many_placed.log",
    benchmark:
        "logs/score_many_placed/score_many_placed.benchmark.tsv"
    conda:
        "../envs/scoring.yaml"
    params:
        jobs=PLACEMENT_JOBS,
        batch_tokens=batch_tokens_option(),
        device=config["scoring"]["device"],
    shell:
        "python -m lmmap score-many --jobs {params.jobs:q} --texts {input.texts:q}"
        " {params.batch_tokens} --device {params.device:q} > {log:q} 2>&1"


rule place_models:
    input:
        map=MAP_FILES,
        scores=[f"{PLACEMENT_DIR}/scores/{slug}.npz" for slug in PLACED],
        benchmarks=benchmarks_input,
        table="results/matrix/models.csv",
    output:
        table=PLACEMENT_TABLE,
        figure=multiext(f"{PLACEMENT_DIR}/placed", ".png", ".pdf"),
    log:
        "logs/place_models/place_models.log",
    benchmark:
        "logs/place_models/place_models.benchmark.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        benchmarks=lambda w, input: ["--benchmarks", input.benchmarks] if input.benchmarks else [],
        neighbours=GROWTH["neighbours"],
        level=GROWTH["interval_level"],
        map_dir=lambda w, input: str(Path(input.map[0]).parent),
        out_table=stem("table"),
        out_figure=stem("figure"),
    shell:
        "python -m lmmap place --map {params.map_dir:q} --scores {input.scores:q} {params.benchmarks:q}"
        " --models-table {input.table:q} --neighbours {params.neighbours} --level {params.level}"
        " --out-table {params.out_table:q} --out-figure {params.out_figure:q} > {log:q} 2>&1"


rule check_placement:
    input:
        placement=f"{PLACEMENT_DIR}/placed.csv",
        lineage=ZOO_LINEAGE,
        benchmarks=BENCHMARKS,
    output:
        check=PLACEMENT_CHECK,
    log:
        "logs/check_placement/check_placement.log",
    conda:
        "../envs/analysis.yaml"
    params:
        top=GROWTH["check_top"],
        out_stem=stem("check"),
    shell:
        "python -m lmmap check-placement --placement {input.placement:q} --lineage {input.lineage:q}"
        " --benchmarks {input.benchmarks:q} --top {params.top} --out-stem {params.out_stem:q} > {log:q} 2>&1"

# Growing a map (lmmap.growth): the map of the models created before growth.cut_date published as one
# directory, results/map/, and each later model scored on the map's text sample and placed on it.

import dataclasses

from lmmap.workflow import created_since

GROWTH = config["growth"]
LEAKAGE = config["analysis"]["leakage"]
# models created on or after the cut: scored on the text sample, placed rather than mapped
PLACED = {spec.slug: spec for spec in created_since(list(MODELS.values()), GROWTH["cut_date"])}
MAP_FILES = expand(
    "results/map/{name}",
    name=["map.npz", "models.csv", "ridge.npz", "leakage.json", "texts_sample.jsonl", "manifest.json"],
)
PLACEMENT_TABLE = multiext("results/placement/placed", ".csv", ".md", ".tex", ".html")
PLACEMENT_CHECK = multiext("results/placement/acceptance", ".csv", ".md", ".tex", ".html") + multiext(
    "results/placement/acceptance_summary", ".csv", ".md", ".tex", ".html"
)
WITH_BENCHMARKS = config["analysis"]["benchmarks"]


# what `rule all` builds: the published map, and with models after the cut their placement (and on
# the demo zoo, its check against the zoo's lineage)
GROWTH_OUTPUTS = (
    [
        *MAP_FILES,
        *([*PLACEMENT_TABLE, "results/placement/placed.png"] if PLACED else []),
        *(PLACEMENT_CHECK if PLACED and ZOO_OUTPUTS and WITH_BENCHMARKS else []),
    ]
    if GROWTH["enabled"]
    else []
)
# score-many's jobs: each placed model (its sheet row) scored on the map's text sample
PLACEMENT_JOBS = json.dumps(
    [
        {k: v for k, v in dataclasses.asdict(spec).items() if v is not None}
        | {"out": f"results/placement/scores/{slug}.npz"}
        for slug, spec in PLACED.items()
    ]
)


rule publish_map:
    input:
        matrix="results/matrix/loglik.npz",
        table="results/matrix/models.csv",
        texts="results/texts/texts.jsonl",
        benchmarks=[BENCHMARKS] if WITH_BENCHMARKS else [],
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
        leakage_method=LEAKAGE["method"],
        leakage_group_by=LEAKAGE["group_by"],
        leakage_threshold=LEAKAGE["threshold"],
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
        texts="results/map/texts_sample.jsonl",
        models=[f"{spec.source}/config.json" for spec in PLACED.values() if spec.source.startswith("results/zoo/")],
        downloads=[f"results/downloads/{slug}.json" for slug, spec in PLACED.items() if is_hub_source(spec.source)],
    output:
        [f"results/placement/scores/{slug}.npz" for slug in PLACED],
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
        scores=[f"results/placement/scores/{slug}.npz" for slug in PLACED],
        benchmarks=[BENCHMARKS] if WITH_BENCHMARKS else [],
        table="results/matrix/models.csv",
    output:
        table=PLACEMENT_TABLE,
        figure=multiext("results/placement/placed", ".png", ".pdf"),
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
        placement="results/placement/placed.csv",
        lineage="results/zoo/lineage.csv",
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

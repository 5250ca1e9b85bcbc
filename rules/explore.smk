# The interactive map: one self-contained HTML file (plotly, JavaScript embedded) to explore the map.


rule write_interactive_map:
    input:
        matrix="results/matrix/loglik.npz",
        coords="results/coords/coordinates.npz",
        table="results/matrix/models.csv",
        embedding="results/coords/tsne.csv",
        texts="results/texts/texts.jsonl",
        benchmarks=benchmarks_input,
        type_colours=[TYPE_COLOURS] if TYPE_COLOURS else [],
    output:
        report(
            "results/map.html",
            caption="../report/interactive_map.rst",
            category="Map",
            subcategory="Interactive map",
            labels={"figure": "interactive map"},
        ),
    log:
        "logs/write_interactive_map/write_interactive_map.log",
    conda:
        "../envs/analysis.yaml"
    params:
        benchmarks=lambda w, input: ["--benchmarks", *input.benchmarks] if input.benchmarks else [],
        type_colours=lambda w, input: ["--type-colours", *input.type_colours] if input.type_colours else [],
        landmarks=["--landmarks", *config["map"]["landmarks"]] if config["map"]["landmarks"] else [],
        max_landmarks=config["map"]["max_landmarks"],
        neighbours=config["map"]["neighbours"],
    shell:
        "python -m lmmap interactive-map --matrix {input.matrix:q} --coordinates {input.coords:q}"
        " --models-table {input.table:q} --embedding {input.embedding:q} --texts {input.texts:q}"
        " {params.benchmarks:q} {params.type_colours:q} {params.landmarks:q}"
        " --max-landmarks {params.max_landmarks} --neighbours {params.neighbours} --out {output:q} > {log:q} 2>&1"

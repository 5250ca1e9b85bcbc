# The audit: every final result traced back to its raw inputs, every hash re-checked (see lmmap.audit).
# A mismatch fails the job, and the log names each file that is missing or changed.


rule audit_results:
    input:
        # every final result (evaluated once all rule files are read)
        lambda w: audited_outputs(),
    output:
        json=report(
            "results/audit.json",
            caption="../report/audit.rst",
            category="Provenance",
            subcategory="Audit (full report, JSON)",
        ),
        summary=report(
            "results/audit.html", caption="../report/audit.rst", category="Provenance", subcategory="Audit summary"
        ),
    log:
        "logs/audit_results/audit_results.log",
    conda:
        "../envs/analysis.yaml"
    params:
        # the config files (hashed into the report) and the resolved config that the values recorded
        # in each sidecar are compared with (a changed value also reruns the audit)
        config_files=[arg for path in workflow.configfiles if Path(path).is_file() for arg in ("--config", path)],
        config_json=json.dumps(config, sort_keys=True, default=str),
    shell:
        "python -m lmmap audit {input:q} {params.config_files:q} --config-json {params.config_json:q}"
        " --out {output.json:q} --summary {output.summary:q} > {log:q} 2>&1"

# lmmap: map language models by their log-likelihood vectors (Oyama et al., ACL 2025).
# The default config is the embedded demo; `--configfile config/paper/config.yaml` maps the paper's models.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"


wildcard_constraints:
    model=r"[A-Za-z0-9._-]+",


include: "rules/resources.smk"
include: "rules/download.smk"
include: "rules/texts.smk"
include: "rules/score.smk"
include: "rules/matrix.smk"
include: "rules/figures.smk"
include: "rules/zoo.smk"
include: "rules/interpolation.smk"
include: "rules/tasks.smk"
include: "rules/audit.smk"
include: "rules/paper.smk"
include: "rules/analysis.smk"
include: "rules/map_error.smk"
include: "rules/explore.smk"
include: "rules/growth.smk"
include: "rules/cluster.smk"


rule all:
    default_target: True
    input:
        get_final_output(),

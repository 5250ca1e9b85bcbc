# lmmap: map language models by their log-likelihood vectors (Oyama et al., ACL 2025).
# The default config is the embedded demo; `--configfile config/paper/config.yaml` maps the paper's models.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/texts.smk"
include: "rules/score.smk"
include: "rules/matrix.smk"
include: "rules/figures.smk"
include: "rules/zoo.smk"


rule all:
    input:
        all_outputs(),
    default_target: True

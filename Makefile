# digit-recognizer: the map of the project.
#
#   make all                      set up, prepare the data, run the four notebooks, render the report
#   make all EPOCHS=30 SEED=1     the same for another run (each parameter set is a run in models/)
#   make runs                     compare every kept run
#   make test-fast                the tests that train nothing (make test: all of them)
#
# The pipeline's steps and their order live in one place, lib/digits/pipeline/steps.py: `make all`, `make
# notebooks`, `make report` and the step targets each call its entry point (python -m digits.pipeline) once, and
# it checks the files on disk and does only what is missing. Make keeps the environment, the lock files, the
# tests and cleaning.
#
# Parameters (make all EPOCHS=30) reach the pipeline exactly as typed: it reads them from MAKEFLAGS, where
# Make keeps its command line. Make neither expands them nor exports them, so `$`, `$(...)`, quotes and
# spaces are characters like any other, and no value is ever part of a shell command.
#
# The environment (VENV=dir for another one, GPU=1 for TensorFlow with CUDA) is set up by a module that needs only
# the system's python3 (digits.pipeline.environment). VENV and GPU are read from make's command line, else from the
# environment; Make never expands them: VENV reaches the recipes as the variable DIGITS_VENV, taken unexpanded with
# $(value ...), and they quote it.

.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
unexport $(foreach variable,$(.VARIABLES),$(if $(filter command line,$(origin $(variable))),$(variable)))

VENV ?= .venv
export DIGITS_VENV := $(value VENV)
# Every step runs this clone's own lib/, even in an environment that several clones share.
export PYTHONPATH := lib
export PYTHONUNBUFFERED := 1
PYTHON := "$$DIGITS_VENV/bin/python"
ENVIRONMENT := python3 -m digits.pipeline.environment

PIPELINE_TARGETS := all notebooks report data explore train evaluate submit runs compare use predict kaggle-data \
	kaggle-submit clean-models lab serve-report sweep
.PHONY: help check setup lock test test-fast clean $(PIPELINE_TARGETS)

help: ## List the targets and the parameters
	@echo "digit-recognizer: make TARGET [PARAMETER=value ...]"
	@echo
	@echo "Targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'
	@echo
	@python3 -m digits.pipeline.commandline help

all: setup ## Everything: the data, the four notebooks and the report of the run the parameters name
notebooks: setup ## Run the four notebooks (for the latest run, or the one the parameters or RUN name)
report: setup ## Render the HTML report (Quarto if installed, else a self-contained page)
data: setup ## Write train.csv, test.csv, test_labels.csv to DATA_DIR (or check Kaggle's files there)
explore: setup ## Run notebooks/10-explore.ipynb on the data
train: setup ## Train the run the parameters name (notebooks/20-train.ipynb), or reuse it when finished
evaluate: setup ## Run notebooks/30-evaluate.ipynb: test accuracy, confusion matrix, mistakes
submit: setup ## Run notebooks/40-submit.ipynb: write the run's submission.csv
sweep: setup ## Many runs in one command: make sweep EPOCHS=5,10,15 SEED=42,43 [WORKERS=2] (see README)
runs: setup ## The kept runs: their table (EPOCHS=15,30 ARCH=wide selects, SORT=val_accuracy sorts), what they show
compare: setup ## Is one run better than another? make compare RUN=a,b (counts, McNemar's p-value, seeds, figure)
use: setup ## Choose the run that report, predict, submit and kaggle-submit use: make use RUN=name
predict: setup ## Read your own images: make predict IMAGES=folder-or-file [RUN=name]
kaggle-data: setup ## Download Kaggle's train.csv and test.csv into DATA_DIR (needs Kaggle credentials)
kaggle-submit: setup ## Submit the run's submission.csv to Kaggle, with the run and its validation accuracy
clean-models: setup ## Remove the runs this project made in MODELS_DIR (RUN=name: one), keeping files it did not make
lab: setup ## Open JupyterLab at the project's root (127.0.0.1, with a token; PORT=..., BROWSER=no)
serve-report: setup ## Serve the rendered book on 127.0.0.1:8000 (PORT=...), where its search works

# One entry point orders the steps of each of these targets.
$(PIPELINE_TARGETS):
	@$(PYTHON) -m digits.pipeline $@

# Before the environment is installed, VENV, GPU and the parameters are checked with the system's Python, so that a
# typo costs no install; afterwards the pipeline parses them (once) itself.
check: ## Check the parameters, VENV and GPU (needs no environment)
	@$(ENVIRONMENT) check

# Every package at the exact version and hash of the lock file; then this project (editable), its kernel and
# JupyterLab's settings; and in a git clone, the nbstripout filter. Only when the lock file or pyproject.toml changed
# since the environment was installed (its stamp holds their digest). An existing environment (a conda one given as
# VENV=$$CONDA_PREFIX) is used as it is.
setup: ## Create the environment (.venv, or VENV=dir; GPU=1 for CUDA on Linux) from the lock
	@$(ENVIRONMENT) install

lock: check ## Refresh requirements.lock and requirements-gpu.lock from pyproject.toml (needs PyPI)
	$(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv pip compile pyproject.toml --quiet --extra dev --universal --generate-hashes \
		--python-version 3.10 -o requirements.lock
	$(PYTHON) -m uv pip compile pyproject.toml --quiet --extra dev --extra gpu --universal --generate-hashes \
		--python-version 3.10 --excludes <(echo tensorflow-cpu) -o requirements-gpu.lock

test: setup ## Run every test (under an hour on 2 cores)
	$(PYTHON) -m pytest

test-fast: setup ## Run the tests that train nothing and open no browser (a few minutes): the edit loop
	$(PYTHON) -m pytest -m "not slow"

clean: ## Remove what rendering the report wrote (listed as it wrote it), keeping any other file; data, runs stay
	@python3 -m digits.pipeline.cleaning

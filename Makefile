# digit-recognizer: the map of the pipeline.
#
#   make all                      set up, prepare the data, run the four notebooks, render the report
#   make all EPOCHS=30 SEED=1     the same for another run (each parameter set is a run in models/)
#   make runs                     compare every kept run
#   make test                     run the tests
#
# Each step is a Python command (digits.pipeline) that checks the files on disk
# (the run folder in models/) and does only the work that is missing or out of
# date. The parameters reach it through the environment, where Make puts the
# variables given on its command line; they are never part of a shell command,
# so any value (spaces, quotes) is safe.

.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

VENV ?= .venv
PYTHON := $(VENV)/bin/python
KERNEL := digit-recognizer
# GPU=1: TensorFlow with CUDA (Linux); the environment is installed from the matching lock file.
GPU ?=
VARIANT := $(if $(filter 1,$(GPU)),gpu,cpu)
OTHER_VARIANT := $(if $(filter 1,$(GPU)),cpu,gpu)
LOCK := requirements$(if $(filter gpu,$(VARIANT)),-gpu).lock
SETUP_DONE := $(VENV)/.setup-$(VARIANT)
# Every step runs this clone's own lib/, even in an environment that several clones share.
export PYTHONPATH := lib
export PYTHONUNBUFFERED := 1
PIPELINE := $(PYTHON) -m digits.pipeline
# `make all` works on the run its parameters name (training it if needed); a bare
# `make notebooks` or `make report` works on the latest finished run and never trains.
all: STEP_FLAGS := --use-parameters

.PHONY: help all setup check-parameters data explore train evaluate submit notebooks report runs kaggle-data \
	kaggle-submit predict lock test lab clean clean-models

help: ## List the targets and the parameters
	@echo "digit-recognizer: make TARGET [PARAMETER=value ...]"
	@echo
	@echo "Targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-17s %s\n", $$1, $$2}'
	@echo
	@echo "Parameters (default after =):"
	@python3 -m digits.config help

all: check-parameters setup data notebooks report ## Everything: setup, data, the four notebooks, the report

check-parameters: ## Check the parameters before any work
	@python3 -m digits.config check

setup: $(SETUP_DONE) ## Create the environment (.venv, or VENV=dir; GPU=1 for CUDA on Linux) from the lock

# Every package at the exact version and hash of the lock file; then this project, editable.
# An existing environment (a conda one given as VENV=$$CONDA_PREFIX) is used as it is. The CPU and
# GPU builds of TensorFlow cannot share an environment: switching removes the other one first.
$(SETUP_DONE): $(LOCK) pyproject.toml
	@if [ "$(VARIANT)" = gpu ] && [ "$$(uname -s)" != Linux ]; then \
		echo "error: GPU=1 installs TensorFlow with CUDA, which exists for Linux only" >&2; exit 2; fi
	test -x $(PYTHON) || python3 -m venv $(VENV)
	if [ -f $(VENV)/.setup-$(OTHER_VARIANT) ]; then \
		$(PYTHON) -m pip uninstall --quiet --yes tensorflow tensorflow-cpu && rm $(VENV)/.setup-$(OTHER_VARIANT); fi
	$(PYTHON) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PYTHON) -m pip install --quiet --no-deps -e .
	$(PYTHON) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (digit-recognizer)"
	@touch $@

lock: ## Refresh requirements.lock and requirements-gpu.lock from pyproject.toml (needs the internet)
	$(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv pip compile pyproject.toml --quiet --extra dev --universal --generate-hashes \
		--python-version 3.10 -o requirements.lock
	$(PYTHON) -m uv pip compile pyproject.toml --quiet --extra dev --extra gpu --universal --generate-hashes \
		--python-version 3.10 --excludes <(echo tensorflow-cpu) -o requirements-gpu.lock

data: check-parameters setup ## Write train.csv, test.csv, test_labels.csv to DATA_DIR (or check Kaggle's files there)
	@$(PIPELINE) data

explore: data ## Run notebooks/10-explore.ipynb on the data
	@$(PIPELINE) explore

train: data ## Run notebooks/20-train.ipynb: train the run (or reuse it when finished)
	@$(PIPELINE) train $(STEP_FLAGS)

evaluate: train ## Run notebooks/30-evaluate.ipynb: test accuracy, confusion matrix, mistakes
	@$(PIPELINE) evaluate $(STEP_FLAGS)

submit: evaluate ## Run notebooks/40-submit.ipynb: write the run's submission.csv
	@$(PIPELINE) submit $(STEP_FLAGS)

notebooks: explore train evaluate submit ## Run the four notebooks

report: notebooks ## Render the HTML report of the run (Quarto if installed, else a self-contained page)
	@$(PIPELINE) report $(STEP_FLAGS)

runs: setup ## Compare every kept run: print the table and write MODELS_DIR/runs.csv
	@$(PIPELINE) runs

predict: setup ## Read your own images: make predict IMAGES=folder-or-file [RUN=name] (default: the latest run)
	@$(PYTHON) -m digits.predict

# The Kaggle command (KAGGLE=... names another one) reads its credentials from ~/.kaggle or the environment.
export KAGGLE ?= $(VENV)/bin/kaggle

kaggle-data: check-parameters setup ## Download Kaggle's train.csv and test.csv into DATA_DIR (needs Kaggle credentials)
	@$(PIPELINE) kaggle-data

kaggle-submit: submit ## Submit the run's submission.csv to Kaggle, with the run and its validation accuracy
	@$(PIPELINE) kaggle-submit $(STEP_FLAGS)

test: setup ## Run the tests
	$(PYTHON) -m pytest

# Jupyter refuses to run as root unless told; containers often run as root.
lab: setup ## Open JupyterLab (127.0.0.1, with a token) in the project environment
	$(VENV)/bin/jupyter lab --ip 127.0.0.1 --notebook-dir notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

clean: ## Remove the rendered report (keeps data, runs and the environment)
	rm -rf report/notebooks report/_book report/.quarto report/_summary.md report/submission.csv \
		report/runs-accuracy.png

clean-models: setup ## Remove the run folders this project made in MODELS_DIR, so the next run trains from scratch
	@$(PYTHON) -m digits.runs clean

# digit-recognizer: the map of the pipeline.
#
#   make all          set up, prepare the data, run the four notebooks, render the report
#   make all EPOCHS=30 ARCH=seed SAMPLE_SIZE=2000 ...   the same with other parameters
#   make test         run the tests
#
# Outputs are file targets: a second `make all` with the same parameters does
# nothing, and changed training parameters rerun training and what follows it.

.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:

# Run parameters (empty = the architecture's own recipe).
ARCH ?= strided
EPOCHS ?=
BATCH_SIZE ?=
SEED ?= 42
SAMPLE_SIZE ?= 0
VALIDATION_FRACTION ?= 0.1
DATA_DIR ?= data
MODELS_DIR ?= models
VENV ?= .venv

PYTHON := $(VENV)/bin/python
KERNEL := digit-recognizer
SETUP_DONE := $(VENV)/.setup-done
DATA_DONE := $(DATA_DIR)/.prepared.json
RAW_MNIST := $(wildcard data/raw/mnist/*.gz) data/raw/mnist/SHA256SUMS.uncompressed
EXECUTED := report/notebooks
RUN_PARAMETERS := $(EXECUTED)/.run-parameters
BOOK := report/_book/index.html
TRAIN_ARGS := --arch '$(ARCH)' --epochs '$(EPOCHS)' --batch-size '$(BATCH_SIZE)' --seed '$(SEED)' \
	--sample-size '$(SAMPLE_SIZE)' --validation-fraction '$(VALIDATION_FRACTION)' --data-dir '$(DATA_DIR)'
# papermill -p flags. Paths are absolute because the notebooks run in notebooks/;
# unset EPOCHS and BATCH_SIZE keep the notebook's None (the recipe).
PAPERMILL_PATHS := -p data_dir '$(abspath $(DATA_DIR))' -p models_dir '$(abspath $(MODELS_DIR))'
PAPERMILL_TRAIN := -p arch '$(ARCH)' -p seed '$(SEED)' -p sample_size '$(SAMPLE_SIZE)' \
	-p validation_fraction '$(VALIDATION_FRACTION)' $(PAPERMILL_PATHS) \
	$(if $(EPOCHS),-p epochs '$(EPOCHS)') $(if $(BATCH_SIZE),-p batch_size '$(BATCH_SIZE)')

# Run a notebook with papermill into a hidden temporary copy, streaming its output
# (training progress) to the terminal; only a successful run becomes the target.
# A failed run is kept as _failed-<name>.ipynb for reading, never as the target.
define run_notebook
	@mkdir -p $(EXECUTED)
	@echo "==> running $< -> $@"
	@$(PYTHON) -m papermill --kernel $(KERNEL) --no-progress-bar --stdout-file /dev/stdout --cwd notebooks \
		$< $(@D)/.$(@F) $(1) \
		|| { mv -f $(@D)/.$(@F) $(@D)/_failed-$(@F) 2>/dev/null; \
		     echo "error: $< failed; the executed copy is $(@D)/_failed-$(@F)" >&2; exit 1; }
	@$(PYTHON) -m digits.report tidy $(@D)/.$(@F)
	@rm -f $(@D)/_failed-$(@F)
	@mv -f $(@D)/.$(@F) $@
endef

.PHONY: help all setup data notebooks report test lab clean clean-models check-parameters

help: ## List the targets
	@echo "digit-recognizer: make TARGET [ARCH=strided|seed] [EPOCHS=n] [BATCH_SIZE=n] [SEED=n] [SAMPLE_SIZE=n] [DATA_DIR=dir]"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-17s %s\n", $$1, $$2}'

all: check-parameters setup data notebooks report ## Everything: setup, data, the four notebooks, the report
	@echo "report: $(BOOK)"

check-parameters: ## Check the run parameters before any work
	@PYTHONPATH=lib python3 -m digits.config $(TRAIN_ARGS)

setup: $(SETUP_DONE) ## Create the environment (.venv, or VENV=dir) and its Jupyter kernel

# An existing environment (a conda one given as VENV=$$CONDA_PREFIX) is used as it is.
$(SETUP_DONE): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	$(PYTHON) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (digit-recognizer)"
	@touch $@

data: $(DATA_DONE) ## Write train.csv, test.csv, test_labels.csv to DATA_DIR (or check Kaggle's own files there)

$(DATA_DONE): $(RAW_MNIST) $(wildcard $(DATA_DIR)/train.csv $(DATA_DIR)/test.csv) | $(SETUP_DONE)
	$(PYTHON) -m digits.data --data-dir '$(DATA_DIR)'

notebooks: $(addprefix $(EXECUTED)/,10-explore.ipynb 20-train.ipynb 30-evaluate.ipynb 40-submit.ipynb) ## Run the four notebooks with papermill

# Rewritten only when the parameters change, so that Make sees the change.
$(RUN_PARAMETERS): check-parameters
	@mkdir -p $(EXECUTED)
	@echo "$(TRAIN_ARGS)" | cmp -s - $@ || echo "$(TRAIN_ARGS)" > $@

$(EXECUTED)/10-explore.ipynb: notebooks/10-explore.ipynb $(DATA_DONE)
	$(call run_notebook,-p data_dir '$(abspath $(DATA_DIR))')

$(EXECUTED)/20-train.ipynb: notebooks/20-train.ipynb $(DATA_DONE) $(RUN_PARAMETERS)
	$(call run_notebook,$(PAPERMILL_TRAIN))

$(EXECUTED)/30-evaluate.ipynb: notebooks/30-evaluate.ipynb $(EXECUTED)/20-train.ipynb
	$(call run_notebook,-p arch '$(ARCH)' $(PAPERMILL_PATHS))

$(EXECUTED)/40-submit.ipynb: notebooks/40-submit.ipynb $(EXECUTED)/20-train.ipynb
	$(call run_notebook,-p arch '$(ARCH)' $(PAPERMILL_PATHS))

report: $(BOOK) ## Render the HTML report (Quarto if installed, else a self-contained fallback)

$(BOOK): $(addprefix $(EXECUTED)/,10-explore.ipynb 20-train.ipynb 30-evaluate.ipynb 40-submit.ipynb) \
		report/_quarto.yml report/index.qmd | $(SETUP_DONE)
	$(PYTHON) -m digits.report render --arch '$(ARCH)' --models-dir '$(MODELS_DIR)' --report-dir report

test: setup ## Run the tests
	$(PYTHON) -m pytest

# Jupyter refuses to run as root unless told; containers often run as root.
lab: setup ## Open JupyterLab (127.0.0.1, with a token) in the project environment
	$(VENV)/bin/jupyter lab --ip 127.0.0.1 --notebook-dir notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

clean: ## Remove executed notebooks and the rendered report (keeps data, models and the environment)
	rm -rf $(EXECUTED) report/_book report/_summary.md report/submission.csv report/.quarto

clean-models: ## Remove trained models, so the next run trains from scratch
	rm -rf $(MODELS_DIR)/*/

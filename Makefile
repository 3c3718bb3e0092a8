# bnrep: one target per job. Every target builds the environment first if it is missing.
#   make figures              the main job: every notebook on the default profile (quick)
#   make figures PROFILE=mnist   any params/<profile>.yaml
#   make test                 the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= quick
# Where the full datasets live; ../shared/data holds MNIST and the CIFAR-10 JPEG copy on the CI machines.
BNLIB_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export BNLIB_DATA_DIR
export NUMBA_CACHE_DIR ?= $(HOME)/.cache/bnlib/numba
export PYTHONUNBUFFERED := 1

.PHONY: env figures paper test lab html sparsity silhouette umap models benchmarks clean-env

env: $(BIN)/.installed

# requirements-lock.txt pins every package; torch/torchvision are a matching pair that imports on CPU.
$(BIN)/.installed: requirements-lock.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-lock.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

figures: env
	$(BIN)/python -m bnlib.runner --profile $(PROFILE)

models: env
	$(BIN)/python -m bnlib.runner --profile $(PROFILE) --notebook 00_models
sparsity: env
	$(BIN)/python -m bnlib.runner --profile $(PROFILE) --notebook 01_sparsity
silhouette: env
	$(BIN)/python -m bnlib.runner --profile $(PROFILE) --notebook 02_silhouette
umap: env
	$(BIN)/python -m bnlib.runner --profile $(PROFILE) --notebook 03_umap

# The paper's experiments. CIFAR-10/VGG-16 wants a GPU: `make figures PROFILE=cifar10` there.
paper: env
	$(BIN)/python -m bnlib.runner --profile mnist

test: env
	$(BIN)/python -m pytest -q

lab: env
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

html: env
	$(BIN)/python -m bnlib.appendix

benchmarks: env
	$(BIN)/python benchmarks/silhouette.py
	$(BIN)/python benchmarks/capture_memory.py
	$(BIN)/python benchmarks/train_throughput.py

clean-env:
	rm -rf $(VENV)

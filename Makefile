# bnrep: one target per job. Every target builds the environment first if it is missing.
#   make figures              the main job: every notebook on the default profile (quick)
#   make figures PROFILE=mnist   any params/<profile>.yaml
#   make refresh              re-render everything committed from the committed CSVs (about 1.5 min)
#   make test                 the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= quick
# RAY=local starts Ray on this machine; RAY=auto or RAY=ray://host:10001 joins a running cluster.
RAY ?=
RAY_FLAG := $(if $(RAY),--ray $(filter-out local,$(RAY)),)
# Where the full datasets live; ../shared/data holds MNIST and the CIFAR-10 JPEG copy on the CI machines.
BNLIB_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export BNLIB_DATA_DIR
export NUMBA_CACHE_DIR ?= $(HOME)/.cache/bnlib/numba
export PYTHONUNBUFFERED := 1

.PHONY: env ray-env figures refresh paper ablation cifar10-cpu report check test lab html benchmarks gpu-bundle clean-env

env: $(BIN)/.installed

# requirements-lock.txt pins every package; torch/torchvision are a matching pair that imports on CPU.
$(BIN)/.installed: requirements-lock.txt pyproject.toml bnlib/lab_overrides.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-lock.txt
	@# bnlib from this checkout, as an editable install would, without setuptools' build warnings
	$(BIN)/python -c "import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()['purelib'], 'bnrep.pth').write_text('$(CURDIR)\n')"
	@# JupyterLab opens notebooks/*.py as notebooks (jupytext), without the news pop-up
	install -D -m 644 bnlib/lab_overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $@

figures: env $(if $(RAY),ray-env)
	$(BIN)/python -m bnlib.runner --profile $(PROFILE) $(RAY_FLAG)

# The optional Ray extra, at the pins the scale-out tests ran with.
ray-env: $(BIN)/.ray-installed
$(BIN)/.ray-installed: requirements-ray-lock.txt | env
	$(BIN)/python -m pip install --quiet -r requirements-ray-lock.txt
	touch $@

# One target per notebook and its figure, named after notebooks/NN_<name>.py: make sparsity, make clustering_views,
# make norm_ablation, ... Each runs on PROFILE when given, else on the profile its own parameters cell names.
NOTEBOOK_NAMES := $(patsubst notebooks/%.py,%,$(sort $(wildcard notebooks/[0-9][0-9]_*.py)))
NOTEBOOK_TARGETS := $(foreach n,$(NOTEBOOK_NAMES),$(subst $(firstword $(subst _, ,$(n)))_,,$(n)))
.PHONY: $(NOTEBOOK_TARGETS)
$(NOTEBOOK_TARGETS): env
	$(BIN)/python -m bnlib.runner $(if $(filter-out file,$(origin PROFILE)),--profile $(PROFILE)) \
		--notebook $(filter %_$@,$(NOTEBOOK_NAMES))

# The paper's experiments. CIFAR-10/VGG-16 wants a GPU: `make figures PROFILE=cifar10` there.
paper: env
	$(BIN)/python -m bnlib.runner --profile mnist

# Which ingredient of BN does it: 7 normalisations x 4 seeds on mnist5k (notebooks 00 and 05).
ablation: env
	$(BIN)/python -m bnlib.runner --profile ablation

# The paper's CIFAR-10 design at a width a 2-core CPU trains in under 100 minutes.
cifar10-cpu: env
	$(BIN)/python -m bnlib.runner --profile cifar10-cpu

# Re-render every committed notebook, figure, results page and README block from the committed CSVs (no models).
refresh: env
	$(BIN)/python -m bnlib.refresh

# A profile's Results tables and verdicts, computed from figures/$(PROFILE)/*.csv.
report: env
	$(BIN)/python -m bnlib.report $(PROFILE)

# Re-run PROFILE from an empty cache into a temporary folder; report the drift against the committed
# CSVs and exit 1 if a README verdict flips.
check: env
	$(BIN)/python -m bnlib.check $(PROFILE)

# Two pytest-xdist workers (one per core of the 2-core reference machine); the tests that compare timings run
# alone afterwards. TEST_WORKERS=1 runs the parallel part in one process.
TEST_WORKERS ?= 2
test: env ray-env
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not serial"
	$(BIN)/python -m pytest -q -m serial

lab: env
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

html: env
	$(BIN)/python -m bnlib.appendix

# Wheels and data for a GPU machine with no network (README: On a borrowed GPU machine).
gpu-bundle: env
	$(BIN)/python tools/gpu_bundle.py

benchmarks: env
	$(BIN)/python benchmarks/silhouette.py
	$(BIN)/python benchmarks/capture_memory.py
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/vgg_cpu_throughput.py
	$(BIN)/python benchmarks/views_cost.py --profile quick
	$(BIN)/python benchmarks/cpu_kernels.py

clean-env:
	rm -rf $(VENV)

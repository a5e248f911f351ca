# Two commands: `make repro` (run the pipeline) and `make test` (run the tests).
# Both create/refresh .venv. `make test-cluster` runs the `cluster` tier: the shipped Slurm
# array job on a real single-node Slurm (installed with apt when missing; needs root) and
# s3:// DVC remotes against a local S3 server (the `cluster` extra).
#
# torch: PyPI's Linux wheel of torch pulls multi-GB CUDA libraries, so the
# install adds PyTorch's CPU wheel index when it is reachable (checked with a
# 3 s timeout; offline machines with a local CPU wheel skip it). GPU users
# install their CUDA torch into .venv first and run `make repro TORCH_SPEC=torch`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_INDEX_OPT = $(shell $(PYTHON) -c "import urllib.request as u; u.urlopen('$(TORCH_CPU_INDEX)/torch/', timeout=3)" >/dev/null 2>&1 && echo --extra-index-url $(TORCH_CPU_INDEX))
export DVC_NO_ANALYTICS := 1
export DVC_STUDIO_OFFLINE := 1

.PHONY: repro test test-slow test-all test-cluster lint docs install install-dev install-cluster clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH_SPEC) $(TORCH_INDEX_OPT)
	$(BIN)/pip install -q -e '.[clip]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev,clip]'
	touch $@

$(VENV)/.installed-cluster: $(VENV)/.installed-dev
	$(BIN)/pip install -q -e '.[dev,clip,cluster]'
	touch $@

$(VENV)/.installed-docs: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[docs,clip]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
install-cluster: $(VENV)/.installed-cluster

repro: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# make test: the fast tier (every module, no end-to-end dvc runs); make test-slow: the
# end-to-end tests (dvc repro / dvc exp run in temp repos, README recipes, sweeps);
# make test-all: both. The cluster tier (real Slurm, S3) is make test-cluster.
# Both tiers run on every core (pytest-xdist; TEST_WORKERS=0: one process). The slow tier
# uses --dist loadfile: a file's tests stay in one worker, so its shared pipeline run is
# made once; the fast tier balances test by test (measured faster on 2 cores).
TEST_WORKERS ?= auto
XDIST = -n $(TEST_WORKERS) --dist loadfile
test: install-dev
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not slow and not cluster"

test-slow: install-dev
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q $(XDIST) -m "slow and not cluster"

test-all: install-dev
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q $(XDIST) -m "not cluster"

# -rP prints what the tier's tests print: the Slurm run's job log and report, the refusals
test-cluster: install-cluster
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -m cluster -rP

lint: install-dev
	$(BIN)/ruff check fclf stages tests

# the docs site (mkdocs.yml, docs/) into site/; --strict: a broken link or a page missing
# from the nav fails. The CLI reference page is generated from the Typer app at build time.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

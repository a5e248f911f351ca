# Two commands: `make repro` (run the pipeline) and `make test` (run the tests).
# Both create/refresh .venv. TORCH_SPEC pins the CPU build by default; a GPU
# user runs e.g. `make repro TORCH_SPEC="torch==2.13.0 --index-url <your CUDA wheel index>"`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
export DVC_NO_ANALYTICS := 1
export DVC_STUDIO_OFFLINE := 1

.PHONY: repro test lint install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e '.[clip]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev,clip]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

repro: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: install-dev
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check fclf stages tests

# Two commands on a fresh machine:  `make train`  and  `make test`.
# Both create .venv on first use. The pinned torch wheel is installed first so that
# resolving `torch>=2.2` never pulls a multi-gigabyte CUDA build; override with
# `make TORCH_SPEC="torch" ...` on a machine that wants another build.
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup train test lint format bench gpu

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

train: setup
	$(BIN)/minitorch-edu train $(ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -q -n auto $(ARGS)

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup
	$(BIN)/python -m benchmarks $(ARGS)

# On a machine with a CUDA GPU (a torch build with CUDA): the CUDA tests, then every benchmark
# on the GPU, its results written to benchmarks/results/.
gpu: setup
	$(BIN)/python -c "import sys, torch; torch.cuda.is_available() or sys.exit('make gpu: torch finds no CUDA GPU (is this torch built with CUDA?)')"
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -q -m cuda $(ARGS)
	$(BIN)/python -m benchmarks --device cuda

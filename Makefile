# Two commands for a fresh checkout: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint unit bench-core bench-freshness clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/convergence up --demo

lint: install
	$(BIN)/ruff check shared services tests
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q

unit: install
	$(BIN)/pytest -q tests/unit

bench-core: install
	$(BIN)/python -m tests.benchmarks.bench_core

bench-freshness: install
	$(BIN)/python -m tests.benchmarks.bench_freshness

clean:
	rm -rf $(VENV) .convergence .pytest_cache .ruff_cache .hypothesis

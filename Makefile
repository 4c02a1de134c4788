# Two commands for a fresh checkout: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install compile run test lint unit bench bench-quick bench-core bench-freshness bench-processing bench-reads clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The fold compiled to C by mypyc: the same source, about 1.2x the events/s (README, "Benchmarks").
# Every target that runs it rebuilds it first when shared/fold.py has changed.
COMPILED := $(VENV)/.fold-compiled

compile: $(COMPILED)

$(COMPILED): shared/fold.py $(STAMP)
	mkdir -p build
	$(BIN)/mypyc shared/fold.py > build/mypyc.log 2>&1 || { cat build/mypyc.log; exit 1; }
	touch shared/fold*.so $(COMPILED)

run: $(COMPILED)
	$(BIN)/convergence up --demo

lint: install
	$(BIN)/ruff check shared services tests
	$(BIN)/lint-imports
	$(BIN)/mypy shared services

test: lint $(COMPILED)
	$(BIN)/pytest -q

unit: $(COMPILED)
	$(BIN)/pytest -q tests/unit

# The suite: every figure beside its baseline from the same run (README, "Benchmarks"; bench/results.md).
# Needs wrk (apt-get install -y wrk); bench-quick, which CI runs, makes do without and writes build/bench-quick/.
bench: $(COMPILED)
	$(BIN)/python -m tests.benchmarks.suite

bench-quick: $(COMPILED)
	$(BIN)/python -m tests.benchmarks.suite --quick

bench-core: $(COMPILED)
	$(BIN)/python -m tests.benchmarks.bench_core

bench-freshness: $(COMPILED)
	$(BIN)/python -m tests.benchmarks.bench_freshness

bench-processing: $(COMPILED)
	$(BIN)/python -m tests.benchmarks.bench_processing

# Needs wrk (a Python client is slower than the API it would measure): apt-get install -y wrk
bench-reads: $(COMPILED)
	$(BIN)/python -m tests.benchmarks.bench_reads

clean:
	rm -rf $(VENV) build shared/*.so .convergence .pytest_cache .ruff_cache .hypothesis

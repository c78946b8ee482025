# The two quick-start commands: `make run` (install and start a local cluster) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run run-cassandra test install install-test lint bench bench-foundation bench-store bench-workers loadtest-smoke capacity clean

run: install
	$(BIN)/parley up

run-cassandra: install  # the same cluster with history in a local Cassandra 5.0 (needs Java 17 and Maven)
	$(BIN)/parley up --store cassandra

test: install-test
	ops/test-deps.sh $(BIN)/python
	$(BIN)/ruff check .
	$(BIN)/python ops/typecheck.py
	$(BIN)/pytest

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

lint: install-test
	$(BIN)/ruff check .

bench: install-test  # the standard set: raw capacity figures + a short Foundation run -> loadtest/results/capacity.jsonl
	$(BIN)/python -m parley.loadtest.standard

bench-foundation: install-test  # the full cross-node DM benchmark alone -> loadtest/results/bench.jsonl
	$(BIN)/python -m parley.loadtest.bench

loadtest-smoke: install-test  # Locust, 10 users for 10 s against a local cluster it starts; HTML report
	$(BIN)/python -m parley.loadtest.run smoke

capacity: install-test  # the 50M-DAU cluster size from the latest measured figures; rewrites the docs' tables
	$(BIN)/python -m parley.loadtest.model
	$(BIN)/python -m parley.loadtest.docs

bench-store: install-test
	$(BIN)/python -m parley.loadtest.store_bench

bench-workers: install-test  # archive rate with 1 vs 2 archivers, presence entries/s per worker -> loadtest/results/workers.jsonl
	$(BIN)/python -m parley.loadtest.workers_bench

clean:
	rm -rf .parley

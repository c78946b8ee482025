# The two quick-start commands: `make run` (install and start a local cluster) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run run-cassandra test install install-test lint bench bench-store clean

run: install
	$(BIN)/parley up

run-cassandra: install  # the same cluster with history in a local Cassandra 5.0 (needs Java 17 and Maven)
	$(BIN)/parley up --store cassandra

test: install-test
	ops/test-deps.sh $(BIN)/python
	$(BIN)/ruff check .
	$(BIN)/mypy
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

bench: install-test
	$(BIN)/python -m loadtest.bench

bench-store: install-test
	$(BIN)/python -m loadtest.store_bench

clean:
	rm -rf .parley

# The two quick-start commands: `make run` (install and start a local cluster) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install install-test lint bench clean

run: install
	$(BIN)/parley up

test: install-test
	$(BIN)/ruff check .
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

clean:
	rm -rf .parley

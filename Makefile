# One entry point for people and CI. Every target creates the virtual environment it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: help install run test lint bench clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/carelevel: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	@touch $@

install: $(BIN)/carelevel  ## create .venv and install carelevel with its dev tools

run: install  ## evaluate an example screening (ANSWERS=path to choose another)
	$(BIN)/carelevel evaluate $(or $(ANSWERS),examples/adult-iop-suitable.json)

lint: install  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install  ## lint, check the default rule set, run the test suite
	$(MAKE) --no-print-directory lint
	$(BIN)/carelevel rules check app/engine/default_rules/iop-level-of-care.yaml
	$(BIN)/pytest

bench: install  ## engine micro-benchmark (µs per evaluation)
	$(BIN)/python bench/engine.py

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis

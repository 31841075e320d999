# seethrough: `make demo` runs the whole pipeline, `make test` runs the checks.
# Both first make sure .venv exists and holds the project (re-done only when pyproject.toml changes).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.seethrough-installed
DEMO := runs/demo
export SEETHROUGH_PROGRESS ?= 1

.PHONY: demo test lint venv clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	SEETHROUGH_PROGRESS=0 $(BIN)/python -m pytest

demo: $(STAMP)
	@mkdir -p $(DEMO)
	$(BIN)/python -m surrogate tree --out $(DEMO)/tree
	$(BIN)/python -m training index $(DEMO) --title "seethrough demo" >/dev/null
	@echo "Demo report: $(CURDIR)/$(DEMO)/index.html"

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache

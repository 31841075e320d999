# seethrough: `make demo` runs the whole pipeline, `make test` runs the checks.
# Both first make sure .venv exists and holds the project (re-done only when pyproject.toml changes).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.seethrough-installed
DEMO := runs/demo
export SEETHROUGH_PROGRESS ?= 1

.PHONY: demo test lint venv browser clean

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

browser:
	@scripts/install_chromium.sh

test: lint browser
	SEETHROUGH_PROGRESS=0 $(BIN)/python -m pytest

demo: $(STAMP)
	@mkdir -p $(DEMO)
	$(BIN)/python -m surrogate lime --config configs/lime_tabular.yaml --out $(DEMO)/lime_tabular
	$(BIN)/python -m surrogate tree --out $(DEMO)/tree
	$(BIN)/python -m surrogate prototypes --config configs/prototypes.yaml --out $(DEMO)/prototypes
	$(BIN)/python -m surrogate lime --config configs/lime_scenes.yaml --out $(DEMO)/lime_scenes
	$(BIN)/python -m gan_dissect dissect --config configs/dissect.yaml --out $(DEMO)/dissect
	$(BIN)/python -m gan_dissect ablate --config configs/ablate_demo.yaml \
		--dissection $(DEMO)/dissect --out $(DEMO)/ablate
	$(BIN)/python -m gan_dissect actmax --config configs/actmax_demo.yaml \
		--units $(DEMO)/ablate --out $(DEMO)/actmax
	$(BIN)/python -m gan_dissect invert --config configs/invert_demo.yaml \
		--units $(DEMO)/ablate --out $(DEMO)/invert
	$(BIN)/python -m training index $(DEMO) --title "seethrough demo" >/dev/null
	@echo "Demo report: $(CURDIR)/$(DEMO)/index.html"

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache

# Retrain every shipped model from scratch into training/weights/ and print the evaluation
# (hours on 2 CPU cores; README "Training" lists each model's time). `make demo` never retrains.
.PHONY: train
train: $(STAMP)
	PYTHON=$(BIN)/python scripts/train_all.sh

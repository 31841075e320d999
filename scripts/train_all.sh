#!/usr/bin/env bash
# Retrain every shipped model from scratch and export it into training/weights/, then print
# the evaluation figures. Order matters: the GANs' quality callback and cards use the segmenter.
# Usage: scripts/train_all.sh   (PYTHON defaults to .venv/bin/python; see README "Training")
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export SEETHROUGH_PROGRESS=${SEETHROUGH_PROGRESS:-0}

fit_and_export() {  # fit_and_export CONFIG RUN NAME [export options...]
    local config=$1 run=$2 name=$3
    shift 3
    rm -rf "runs/train/$run"  # a fresh run: no samples or metrics left from an earlier one
    "$PYTHON" -m training fit --config "configs/$config.yaml"
    "$PYTHON" -m training export "runs/train/$run" --name "$name" "$@"
}

fit_and_export segmenter segmenter segmenter
fit_and_export lamp_classifier lamp_classifier lamp_classifier
fit_and_export gan64_v2 gan64_v2 generator
"$PYTHON" -m training export runs/train/gan64_v2 --name discriminator --part discriminator
fit_and_export encoder encoder encoder  # inverts the generator just exported
"$PYTHON" benchmarks/evaluate_training.py

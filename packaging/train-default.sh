#!/usr/bin/env bash
# Trains (or resumes) the default editing model in the background; see models/default/MODEL_CARD.md.
# Usage (from the repo root): ./dsk run -- bash packaging/train-default.sh [OUT_DIR] [DATA_DIR]
# DATA_DIR holds the unpacked Debian packages plasma-workspace-wallpapers, mate-backgrounds and
# tuxpaint-stamps-default (packaging/fetch-training-data.sh makes it).
# Shipping a checkpoint that beats the shipped one: copy its weights into models/default, update
# the card, then rewrite the folder's manifest (the tests check that it verifies):
#   diffsketch models manifest models/default --made "trained by DiffSketch ..., step N, EMA weights"
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.cache/train/default}
data=${2:-.cache/data/root/usr/share}
# oneDNN's kernels: ~5x faster for this model; a step with a non-finite loss is skipped.
export DSK_ONEDNN=${DSK_ONEDNN:-1}
# A checkpoint in OUT: resume it. None (a new machine): continue from the shipped model
# (its weights start the network and the EMA; Adam and the step count start fresh).
start=(--init-from models/default)
[ -f "$out/checkpoint/state.json" ] && start=(--resume)
exec diffsketch train --config models/default/train-config.json --data "$data" --out "$out" "${start[@]}"

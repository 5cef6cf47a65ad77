#!/bin/bash
# Data-parallel benchmark (docs/benchmarks.md, "Data-parallel training"): `train` of the shipped
# model's config as 1 process of batch 8 and as 2 ranks of batch 4 (the all-reduce during and after
# backward), then `finetune` of the shipped model as 1 process of batch 2 and 2 ranks of batch 1;
# ROUNDS rounds, each running the five in this order. Prints each run's last progress line.
#
#   ./dsk run -- bash tests/tools/bench_data_parallel.sh [DATA_DIR] [ROUNDS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
D=$ROOT/build/bin/diffsketch
DATA=${1:-$ROOT/.cache/data/root/usr/share}
ROUNDS=${2:-2}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
python3 - "$ROOT/models/default/train-config.json" "$W" <<'PY'
import json, sys
config, out = sys.argv[1], sys.argv[2]
for name, batch, extra in [("one", 8, {}), ("two", 4, {}), ("two-after", 4, {"grad_overlap": False})]:
    c = json.load(open(config))
    c["train"].update({"batch": batch, "log_every": 20, "checkpoint_minutes": 60}, **extra)
    json.dump(c, open(f"{out}/{name}.json", "w"), indent=1)
PY
mkdir -p "$W/sketches"
for i in 0 1 2 3; do cp "$ROOT/models/default/example/sketch.png" "$W/sketches/s$i.png"; done
for round in $(seq "$ROUNDS"); do
  for cfg in one two two-after; do
    n=""; [ $cfg = one ] || n="--nproc 2"
    rm -rf "$W/out"
    $D train $n --device cpu --config "$W/$cfg.json" --data "$DATA" --out "$W/out" --steps 60 > "$W/log" 2>&1
    echo "train $cfg, round $round: $(grep 'step 60/' "$W/log")"
  done
  for ft in one two; do
    a="--batch 2"; [ $ft = one ] || a="--nproc 2 --batch 1"
    rm -rf "$W/out"
    $D finetune $a --device cpu --model "$ROOT/models/default" --sketches "$W/sketches" --steps 10 --iters 6 \
      --out "$W/out" > "$W/log" 2>&1
    echo "finetune $ft, round $round: $(grep 'iter 6/6' "$W/log")"
  done
done

#!/usr/bin/env bash
# packaging/cuda-check.sh [DIFFSKETCH] [TRAIN_DATA_DIR]: checks a CUDA build of the engine on a
# machine with a GPU (the CPU test suite cannot reach the CUDA paths). Run from the repo root with a
# diffsketch built against a CUDA-enabled LibTorch (README, "GPU"). It runs, on the shipped default
# model and its example: an edit on the CPU and on CUDA (the two results must agree within 2 levels),
# variants with sketch strength 3, sketch guidance, generate, interpolate, eval-inpaint, then
# bench-edit and bench on both devices (medians, for docs/benchmarks.md), and a short training run
# with a checkpoint every 3 seconds when TRAIN_DATA_DIR (a folder of pictures) is given.
# Prints one line per check and exits 1 if any failed. DSK_CHECK_DEVICE=cpu runs the same checks
# with the CPU in CUDA's place (to try the script on a machine without a GPU), and
# DSK_CHECK_TRAIN_STEPS shortens the training run (150 steps).
set -uo pipefail
cd "$(dirname "$0")/.."
B=${1:-build/bin/diffsketch}
data=${2:-}
gpu=${DSK_CHECK_DEVICE:-cuda}
train_steps=${DSK_CHECK_TRAIN_STEPS:-150}
[ -x "$B" ] || { echo "cuda-check: no engine at $B (give the path of a CUDA build's diffsketch)" >&2; exit 2; }
out=$(mktemp -d /tmp/dsk-cuda-check.XXXXXX)
trap 'rm -rf "$out"' EXIT
ex=models/default/example
inputs=(--model models/default --image $ex/image.png --mask $ex/mask.png --sketch $ex/sketch.png)
edit_args=("${inputs[@]}" --steps 20 --seed 1)
failed=0

# check NAME CMD...: runs CMD (2 minutes at most), prints its status, wall time and last lines.
check() {
  local name=$1; shift
  local start=$(date +%s.%N)
  timeout 120 "$@" >"$out/log" 2>&1
  local rc=$?
  local wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  if [ $rc -eq 0 ]; then echo "ok    $name ($wall s)"; else echo "FAIL  $name (exit $rc, $wall s)"; failed=1; fi
  if [ -n "${SHOW:-}" ]; then grep -E "$SHOW" "$out/log"; else grep -v '^.\?step ' "$out/log" | tail -n "${TAIL:-1}"; fi | sed 's/^/      /'
}

"$B" edit "${inputs[@]}" --device $gpu --steps 1 --no-refine --out "$out/probe.png" >"$out/log" 2>&1 ||
  { echo "cuda-check: this engine cannot run on $gpu here:"; tail -n 2 "$out/log"; exit 2; }

check "edit on the CPU" "$B" edit "${edit_args[@]}" --device cpu --out "$out/cpu.png"
check "edit on $gpu" "$B" edit "${edit_args[@]}" --device $gpu --out "$out/cuda.png"
check "$gpu and CPU edits agree within 2 levels" python3 tests/gimp/pngcheck.py close "$out/cpu.png" "$out/cuda.png" 2
check "edit --variants 2 --sketch-scale 3" "$B" edit "${edit_args[@]}" --device $gpu --variants 2 --sketch-scale 3 --out "$out/v.png"
check "edit --sketch-guidance 1" "$B" edit "${edit_args[@]}" --device $gpu --sketch-guidance 1 --out "$out/g.png"
check "generate" "$B" generate --model models/default --sketch $ex/sketch.png --steps 10 --device $gpu --out "$out/gen.png"
check "interpolate" "$B" interpolate --model models/default --sketch $ex/sketch.png --seeds 1,2 --frames 3 --steps 10 \
  --device $gpu --out "$out/interp"
TAIL=6 check "eval-inpaint" "$B" eval-inpaint --model models/default --images $ex --count 2 --size 128 --seed 1 --steps 10 --device $gpu
for d in $gpu cpu; do
  SHOW=median check "bench-edit on $d" "$B" bench-edit --model models/default --size 256 --steps 20 --iters 5 --device $d
done
for p in adm-256-uncond adm-64-cond; do
  for d in $gpu cpu; do SHOW=median check "bench $p on $d" "$B" bench --preset $p --iters 5 --device $d; done
done
for d in $gpu cpu; do
  SHOW=median check "bench default model, batch 8, on $d" "$B" bench --config models/default/model.json --batch 8 --iters 20 --device $d
done
if [ -n "$data" ]; then
  python3 - "$out/train.json" "$train_steps" <<'EOF'
import json, sys
c = json.load(open("models/default/train-config.json"))
c["train"].update(init_from="models/default", checkpoint_minutes=0.05, steps=int(sys.argv[2]), batch=32, log_every=25)
json.dump(c, open(sys.argv[1], "w"))
EOF
  TAIL=3 check "train on $gpu, $train_steps steps, a checkpoint every 3 s" "$B" train --config "$out/train.json" --data "$data" \
    --out "$out/train" --device $gpu
fi
exit $failed

#!/usr/bin/env bash
# packaging/demo.sh: the main job of `./dsk demo`, run inside the build environment with build/bin
# on PATH. Sketch-guided inpainting of the shipped example (models/default/example: a picture held
# out of training, a selection mask and a sketch) with the shipped default model; writes
# out/demo-result.png and out/demo-compare.png (input | sketch | mask | result | Telea).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
command -v diffsketch >/dev/null || PATH="$repo/build/bin:$PATH"
command -v diffsketch >/dev/null || { echo "demo: diffsketch is not built (run ./dsk build)" >&2; exit 1; }
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

model=models/default
example=models/default/example
[ -f "$model/weights.safetensors" ] || { echo "demo: $model has no weights.safetensors (see models/default/MODEL_CARD.md)" >&2; exit 1; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

mkdir -p out
start=$(now)
echo "== sketch-guided inpainting: $example/image.png, 20 DDIM steps, seed 1, model $model"
diffsketch edit --model "$model" --image "$example/image.png" --mask "$example/mask.png" \
  --sketch "$example/sketch.png" --steps 20 --seed 1 \
  --out out/demo-result.png --compare out/demo-compare.png
echo
echo "demo: result  $repo/out/demo-result.png"
echo "demo: compare $repo/out/demo-compare.png (input | sketch | mask | result | OpenCV Telea)"
echo "demo: total $(since "$start")"

#!/usr/bin/env bash
# packaging/demo.sh: the main job of `./dsk demo`, run inside the build environment with build/bin
# on PATH. For now: the ADM conformance check against the reference implementation, then a
# classifier-guided DDIM sample of the fixture model (random weights: the image is noise-like; it
# shows the pipeline, not image quality). A later issue replaces this with the sketch-guided
# inpainting demo.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
command -v diffsketch >/dev/null || PATH="$repo/build/bin:$PATH"
command -v diffsketch >/dev/null || { echo "demo: diffsketch is not built (run ./dsk build)" >&2; exit 1; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

start=$(now)
echo "== 1/2 conformance: recompute the reference's adm-small case (tests/data/conformance/adm-small)"
t=$(now)
diffsketch conformance --case tests/data/conformance/adm-small
echo "   ($(since "$t"))"

echo "== 2/2 sample: DDIM, 25 steps, class 3, classifier guidance scale 10, seed 42"
mkdir -p out
t=$(now)
diffsketch sample --model tests/data/models/adm-small --classifier tests/data/models/adm-small-classifier \
  --class 3 --classifier-scale 10 --steps 25 --seed 42 --out out/demo-sample.png
echo "   ($(since "$t"))"

echo
echo "demo: wrote $repo/out/demo-sample.png (32x32, from the fixture model with random weights)"
echo "demo: total $(since "$start")"

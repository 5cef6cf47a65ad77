#!/usr/bin/env bash
# The diffsketch command line end to end on the fixture models (tests/data/models/adm-small, and
# the editing model tiny-editing): sampling and editing write deterministic PNGs, bad flags and
# bad folders exit 2 with a message.
# Usage: test_cli.sh PATH/TO/diffsketch PATH/TO/tests/data   (CTest: cli_basics, label unit)
set -uo pipefail

bin=${1:?usage: test_cli.sh DIFFSKETCH TESTS_DATA}
data=${2:?usage: test_cli.sh DIFFSKETCH TESTS_DATA}
[ -x "$bin" ] || { echo "FAIL: $bin is not an executable (build the diffsketch target)"; exit 1; }
model="$data/models/adm-small"
classifier="$data/models/adm-small-classifier"
editing="$data/models/tiny-editing"
# On a loaded 2-core machine (ctest -j 2, other builds) OpenBLAS's own thread pool next to
# LibTorch's OpenMP threads, all spin-waiting, makes this tiny model ~50x slower (see
# docs/benchmarks.md). Functional checks only here, so keep the threads from fighting.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
work=$(mktemp -d "${TMPDIR:-/tmp}/dsk-cli-XXXXXX")
trap 'rm -rf "$work"' EXIT

# shellcheck source=tests/cli/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---- sampling ----
base=(sample --model "$model" --class 3 --device cpu)
sample=("${base[@]}" --steps 5)
expect 0 'a\.png' "sample writes a PNG" -- "${sample[@]}" --seed 1 --out "$work/a.png"
if [ -s "$work/a.png" ] && [ "$(head -c 8 "$work/a.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
  pass "a.png is a PNG"
else
  fail "a.png is missing or not a PNG"
fi
expect 0 'b\.png' "same seed again" -- "${sample[@]}" --seed 1 --out "$work/b.png"
if cmp -s "$work/a.png" "$work/b.png"; then pass "same seed -> identical files"; else fail "same seed -> different files"; fi
expect 0 'c\.png' "another seed" -- "${sample[@]}" --seed 2 --out "$work/c.png"
if [ -s "$work/c.png" ] && ! cmp -s "$work/a.png" "$work/c.png"; then
  pass "different seed -> different file"
else
  fail "different seed -> same (or no) file"
fi
expect 0 'd\.png' "DDPM with classifier guidance" -- sample --model "$model" --classifier "$classifier" --class 3 \
  --classifier-scale 10 --sampler ddpm --respacing 3,2 --seed 1 --device cpu --out "$work/d.png"
[ -s "$work/d.png" ] && pass "d.png written" || fail "d.png not written"
expect 0 'e-2\.png' "--batch 2 numbers the files" -- "${sample[@]}" --seed 1 --batch 2 --out "$work/e.png"
[ -s "$work/e-1.png" ] && [ -s "$work/e-2.png" ] && pass "e-1.png, e-2.png written" || fail "batch files missing"

# ---- bad flags: exit 2 and a message ----
expect 2 'steps must be in 1\.\.1000; got 0' "--steps 0" -- "${base[@]}" --steps 0 --seed 1 --out "$work/x.png"
expect 2 'steps must be in 1\.\.1000; got 5000' "--steps 5000" -- "${base[@]}" --steps 5000 --seed 1 --out "$work/x.png"
expect 2 "ddim37.*stride" "--respacing ddim37 (no integer stride gives 37 of 1000)" -- "${base[@]}" --respacing ddim37 --seed 1 --out "$work/x.png"
expect 2 "respacing 'abc'" "--respacing abc" -- "${base[@]}" --respacing abc --seed 1 --out "$work/x.png"
expect 2 "not a model folder" "missing model folder" -- sample --model "$work/no-such-model" --seed 1 --out "$work/x.png"
expect 2 "kind adm-unet.*needs adm-classifier" "--classifier of the wrong kind" -- \
  "${sample[@]}" --classifier "$model" --seed 1 --out "$work/x.png"
expect 2 "kind adm-classifier.*needs adm-unet" "--model of the wrong kind" -- \
  sample --model "$classifier" --class 3 --seed 1 --out "$work/x.png"
expect 2 "needs --class Y with Y in 0\.\.9" "class-conditional model without --class" -- \
  sample --model "$model" --steps 5 --seed 1 --device cpu --out "$work/x.png"
# CLI11 itself rejects values outside a flag's set, with its own exit codes (not 2).
expect nonzero "sampler" "--sampler foo" -- "${sample[@]}" --sampler foo --seed 1 --out "$work/x.png"
[ ! -e "$work/x.png" ] && pass "no image from a failed run" || fail "a failed run wrote x.png"

# ---- edit, generate, interpolate with the editing fixture ----
# Inputs as PNM (OpenCV reads them): a 48x40 picture, a mask (a 16x12 box) and a paper sketch.
python3 - "$work" <<'PY'
import sys
d = sys.argv[1]
w, h = 48, 40
img = bytes(v for y in range(h) for x in range(w) for v in ((x * 5) % 256, (y * 6) % 256, ((x + y) * 3) % 256))
open(f"{d}/in.ppm", "wb").write(b"P6 %d %d 255\n" % (w, h) + img)
mask = bytes(255 if 16 <= x < 32 and 14 <= y < 26 else 0 for y in range(h) for x in range(w))
open(f"{d}/mask.pgm", "wb").write(b"P5 %d %d 255\n" % (w, h) + mask)
sketch = bytes(0 if (y == 20 and 12 <= x < 36) or (x == 24 and 10 <= y < 30) else 255 for y in range(h) for x in range(w))
open(f"{d}/sketch.pgm", "wb").write(b"P5 %d %d 255\n" % (w, h) + sketch)
PY
edit=(edit --model "$editing" --image "$work/in.ppm" --mask "$work/mask.pgm" --sketch "$work/sketch.pgm" --steps 3
      --device cpu --feather 2)
expect 0 'ed\.png' "edit with an editing model" -- "${edit[@]}" --seed 4 --out "$work/ed.png"
expect 0 'ed2\.png' "edit, same seed again" -- "${edit[@]}" --seed 4 --out "$work/ed2.png"
cmp -s "$work/ed.png" "$work/ed2.png" && pass "edit: same seed -> identical files" || fail "edit: same seed -> different files"
if python3 - "$work" <<'PY'
import sys, zlib, struct
d = sys.argv[1]
def png_rgb(path):  # 8-bit RGB, non-interlaced; undoes the PNG filters
    data = open(path, "rb").read()
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I", data[pos:pos + 4])[0], data[pos + 4:pos + 8]
        if kind == b"IHDR": w, h, depth, ctype = struct.unpack(">IIBB", data[pos + 8:pos + 18])
        if kind == b"IDAT": idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    assert depth == 8 and ctype == 2, (depth, ctype)
    raw, stride, rows, prev = zlib.decompress(idat), w * 3, [], bytearray(w * 3)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a, b, c = (line[i - 3] if i >= 3 else 0), prev[i], (prev[i - 3] if i >= 3 else 0)
            p = a + b - c
            pred = [0, a, b, (a + b) // 2, a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c][f]
            line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line)); prev = line
    return w, h, rows
w, h, out = png_rgb(f"{d}/ed.png")
src = open(f"{d}/in.ppm", "rb").read().split(b"\n", 1)[1]
changed_out = changed_in = 0
for y in range(h):
    for x in range(w):
        inside = 16 <= x < 32 and 14 <= y < 26
        # PNG holds RGB, the PPM too
        same = out[y][x * 3:x * 3 + 3] == src[(y * w + x) * 3:(y * w + x) * 3 + 3]
        changed_out += (not inside) and not same
        changed_in += inside and not same
if (w, h) != (48, 40) or changed_out or not changed_in:
    print(f"{w}x{h}, {changed_out} pixels changed outside the mask, {changed_in} inside")
    sys.exit(1)
PY
then pass "edit: 48x40, pixels outside the mask unchanged, inside regenerated"; else fail "edit: result size or pixels"; fi
expect 0 'ed0\.png' "edit --sketch-guidance 0 --sketch-guidance-mode exact" -- "${edit[@]}" --seed 4 \
  --sketch-guidance 0 --sketch-guidance-mode exact --out "$work/ed0.png"
cmp -s "$work/ed.png" "$work/ed0.png" && pass "edit: --sketch-guidance 0 is no guidance" || fail "edit: --sketch-guidance 0 changed the result"
expect 0 'edi\.png' "edit --init-strength 1 (from pure noise)" -- "${edit[@]}" --seed 4 --init-strength 1 \
  --out "$work/edi.png"
cmp -s "$work/ed.png" "$work/edi.png" && fail "edit: the default (from a smooth fill) gave the from-noise result" \
  || pass "edit: the default start (a smooth fill) differs from --init-strength 1"
expect 2 'init strength must be in \(0, 1\]' "--init-strength 0" -- "${edit[@]}" --init-strength 0 --out "$work/x.png"
expect 2 'init strength must be in \(0, 1\]' "--init-strength 1.5" -- "${edit[@]}" --init-strength 1.5 --out "$work/x.png"
expect 2 'refine strength must be in \(0, 1\]' "--refine-strength -0.1" -- "${edit[@]}" --refine-strength -0.1 --out "$work/x.png"
expect 2 'refine steps must be in 1\.\.100' "--refine-steps 0" -- "${edit[@]}" --refine-steps 0 --out "$work/x.png"
expect nonzero 'Could not convert: --refine-steps' "--refine-steps x" -- "${edit[@]}" --refine-steps x --out "$work/x.png"
expect 2 'harmonize must be in \[0, 1\]' "--harmonize 2" -- "${edit[@]}" --harmonize 2 --out "$work/x.png"
DSK_PRECISION=half expect 2 "DSK_PRECISION must be auto, fp32 or bf16; got 'half'" "a bad DSK_PRECISION" -- "${edit[@]}" --out "$work/x.png"
[ -e "$work/x.png" ] && fail "a bad DSK_PRECISION wrote a file" || pass "a bad DSK_PRECISION writes nothing"
DSK_PRECISION=fp32 expect 0 'edp\.png' "edit with DSK_PRECISION=fp32" -- "${edit[@]}" --seed 4 --out "$work/edp.png"
expect 0 'edh\.png' "edit --harmonize 0 (the model's own colours)" -- "${edit[@]}" --seed 4 --harmonize 0 --out "$work/edh.png"
cmp -s "$work/ed.png" "$work/edh.png" && fail "edit: --harmonize 0 gave the default (colour-matched) result" \
  || pass "edit: the default colour matching differs from --harmonize 0"
expect 0 'RePaint jumps run the whole process from noise' "--repaint-jumps with the default init strength" -- \
  edit --model "$model" --image "$work/in.ppm" --mask "$work/mask.pgm" --steps 3 --device cpu --repaint-jumps 1 --class 3 \
  --repaint-length 2 --out "$work/x.png"
expect 2 '--sketch-guidance 1500 must be in 0\.\.1000' "--sketch-guidance 1500" -- "${edit[@]}" --sketch-guidance 1500 --out "$work/x.png"
expect 2 '--sketch-guidance -1 must be in 0\.\.1000' "--sketch-guidance -1" -- "${edit[@]}" --sketch-guidance -1 --out "$work/x.png"
# NaN and absurd values are refused by the engine's ranges (core/engine/defaults.h), before any work.
expect 2 'sketch scale must be in 0\.\.20' "--sketch-scale nan" -- "${edit[@]}" --sketch-scale nan --out "$work/x.png"
expect 2 'eta must be in \[0, 1\]' "--eta 1e308" -- "${edit[@]}" --eta 1e308 --out "$work/x.png"
expect 2 'feather must be in 0\.\.256' "--feather 2000000000" -- "${edit[@]:0:${#edit[@]}-2}" --feather 2000000000 \
  --out "$work/x.png"  # edit's line without its own --feather 2
expect 2 'RePaint jumps must be in 0\.\.20' "--repaint-jumps 1000000000" -- "${edit[@]}" --repaint-jumps 1000000000 --out "$work/x.png"
expect 2 'also a result' "--compare naming the result" -- "${edit[@]}" --compare "$work/ed.png" --out "$work/ed.png"
# A failed edit leaves no folder it created; an output folder that cannot be made fails before the work.
expect 2 'eta must be in' "a failed edit into new folders" -- "${edit[@]}" --eta 5 --out "$work/new/deeper/x.png"
[ ! -e "$work/new" ] && pass "a failed edit removed the folders it created" || fail "a failed edit left $work/new"
expect 2 'cannot create the output folder' "--out under a file" -- "${edit[@]}" --out "$work/in.ppm/x.png"
# Variants are written all or none: the second's name is taken by a folder, so neither is written.
mkdir -p "$work/vv-2.png"
expect 1 'vv-2\.png' "--variants 2 with the second unwritable" -- "${edit[@]}" --variants 2 --out "$work/vv.png"
[ ! -e "$work/vv-1.png" ] && pass "variants: none written when one cannot be" || fail "variants: vv-1.png was left alone"
ls -a "$work" | grep -q '\.tmp-' && fail "variants: a temporary was left behind" || pass "variants: no temporary left"
expect nonzero "sketch-guidance-mode" "--sketch-guidance-mode fast" -- "${edit[@]}" --sketch-guidance-mode fast --out "$work/x.png"
gen=(generate --model "$editing" --sketch "$work/sketch.pgm" --steps 3 --device cpu)
expect 0 'gen-2\.png' "generate two variants" -- "${gen[@]}" --seed 21 --variants 2 --out "$work/gen.png"
expect 0 'g21\.png' "generate seed 21" -- "${gen[@]}" --seed 21 --sketch-guidance 0 --out "$work/g21.png"
cmp -s "$work/gen-1.png" "$work/g21.png" && pass "generate: variant 1 is seed 21's image" || fail "generate: variant 1 differs from seed 21"
expect 0 '\(seed 22\)' "interpolate 3 frames" -- interpolate --model "$editing" --sketch "$work/sketch.pgm" --steps 3 \
  --device cpu --seeds 21,22 --frames 3 --mode slerp --sketch-guidance 0 --out "$work/frames"
[ -s "$work/frames/frame-03.png" ] && [ ! -e "$work/frames/frame-04.png" ] && pass "interpolate: frame-01..03" ||
  fail "interpolate: not exactly 3 frames"
cmp -s "$work/frames/frame-01.png" "$work/gen-1.png" && cmp -s "$work/frames/frame-03.png" "$work/gen-2.png" &&
  pass "interpolate: the end frames are the seeds' generate results" || fail "interpolate: end frames differ from generate"
expect 2 '--sketch-guidance 2000 must be in 0\.\.1000' "generate --sketch-guidance 2000" -- "${gen[@]}" --sketch-guidance 2000 --out "$work/x.png"
expect 2 '--sketch-guidance 2000 must be in 0\.\.1000' "interpolate --sketch-guidance 2000" -- interpolate --model "$editing" \
  --sketch "$work/sketch.pgm" --seeds 1,2 --sketch-guidance 2000 --out "$work/xdir"
expect 0 'gg\.png' "generate with sketch guidance 5 (cheap)" -- "${gen[@]}" --seed 21 --sketch-guidance 5 --out "$work/gg.png"
[ -s "$work/gg.png" ] && ! cmp -s "$work/gg.png" "$work/g21.png" && pass "generate: sketch guidance 5 changes the image" ||
  fail "generate: sketch guidance 5 gave no image or the unguided one"
mkdir -p "$work/eval" && cp "$work/ed.png" "$work/eval/picture.png"
expect 0 '"mode": "exact"' "eval-inpaint with sketch guidance 2, exact" -- eval-inpaint --model "$editing" --images "$work/eval" \
  --count 1 --size 32 --seed 1 --steps 2 --sampler ddim --device cpu --baselines "" --sketch-guidance 2 --sketch-guidance-mode exact --json
expect 2 '--sketch-guidance 1001 must be in 0\.\.1000' "eval-inpaint --sketch-guidance 1001" -- eval-inpaint --model "$editing" \
  --images "$work/eval" --sketch-guidance 1001
expect 2 "needs editing-unet" "generate refuses a plain ADM model" -- generate --model "$model" --sketch "$work/sketch.pgm" --out "$work/x.png"

# ---- bench-edit ----
expect 0 "median .* s, min .* U-Net evaluations per edit" "bench-edit on the editing fixture" -- bench-edit \
  --model "$editing" --size 32 --steps 2 --sampler ddim --iters 1 --warmup 0 --device cpu
expect 2 "size must be in 16\.\.4096" "bench-edit --size 8" -- bench-edit --model "$editing" --size 8
expect 0 "sketch strength 2, init strength" "bench-edit --sketch-scale 2" -- bench-edit \
  --model "$editing" --size 32 --steps 2 --sampler ddim --iters 1 --warmup 0 --device cpu --sketch-scale 2
expect 2 "sketch scale must be in 0\.\.20" "bench-edit --sketch-scale 25" -- bench-edit --model "$editing" --sketch-scale 25
expect 0 "dpm\+\+2m    3 steps, (fp32|bf16): median .* the speed of the first" "bench-edit: two configurations side by side" -- \
  bench-edit --model "$editing" --size 32 --steps 2,3 --sampler ddim,dpm++2m --iters 1 --warmup 0 --device cpu
expect 0 "ddim       2 steps, fp32: median .*speed of the first" "bench-edit --precision auto,fp32" -- \
  bench-edit --model "$editing" --size 32 --steps 2 --sampler ddim --precision auto,fp32 --iters 1 --warmup 0 --device cpu
out=$("$bin" bench-edit --model "$editing" --size 64 --steps 4,3 --sampler ddim,unipc --detail tiles,patch --iters 1 \
  --warmup 0 --device cpu 2>&1)
grep -qE "ddim       4 steps, (fp32|bf16), detail tiles, tiles' sketch strength 2: median" <<<"$out" \
  && grep -qE "unipc      3 steps, (fp32|bf16), detail patch: median .*speed of the first" <<<"$out" \
  && pass "bench-edit --detail tiles,patch: one configuration per detail" || fail "bench-edit --detail tiles,patch: $out"
expect nonzero "--detail: blur not in" "bench-edit --detail blur" -- bench-edit --model "$editing" --detail patch,blur
expect 2 "one value each, or lists of the same length" "bench-edit --detail with a list of another length" -- \
  bench-edit --model "$editing" --steps 2,3 --sampler ddim --detail tiles,patch,none
expect nonzero "--precision: half not in" "bench-edit --precision half" -- bench-edit --model "$editing" --precision half
expect 0 "U-Net forward, fp32: median" "bench --precision fp32" -- bench --config "$editing/model.json" --iters 1 \
  --precision fp32
expect 0 "U-Net forward, fp32 channels-last: median" "bench --memory-format contiguous,channels-last" -- bench \
  --config "$editing/model.json" --iters 1 --precision fp32 --memory-format contiguous,channels-last --json "$work/bench.json"
grep -q '"channel_mult": "1"' "$work/bench.json" && grep -q '"forward_ms_median"' "$work/bench.json" \
  && pass "bench --json: the resolved flags and the timings" || fail "bench --json: $(head -c 300 "$work/bench.json")"
expect 2 "--json .*: the folder .* does not exist; create it first" "bench --json into a missing folder" -- bench \
  --config "$editing/model.json" --iters 1 --json "$work/no-such-folder/bench.json"
expect 2 "needs at least 3 steps" "bench-edit: dpm++2m with 2 steps" -- bench-edit --model "$editing" --size 32 \
  --steps 2 --sampler dpm++2m --iters 1 --warmup 0 --device cpu
expect 2 "lists of the same length" "bench-edit: lists of different lengths" -- bench-edit --model "$editing" \
  --steps 3,2,4 --sampler ddim,dpm++2m
expect 2 "the unipc sampler \(UniPC, second order\) needs at least 3 steps" "bench-edit: the edit's default sampler with 2 steps" -- \
  bench-edit --model "$editing" --size 32 --steps 2 --iters 1 --warmup 0 --device cpu
expect 0 "unipc +3 steps, (fp32|bf16): median .* U-Net evaluations per edit" "bench-edit: the edit's defaults are UniPC" -- \
  bench-edit --model "$editing" --size 32 --steps 3 --iters 1 --warmup 0 --device cpu
expect 0 "tiles' sketch strength 1: median .* the speed of the first" "bench-edit --refine-sketch-scale 2,1" -- \
  bench-edit --model "$editing" --size 48 --steps 3 --detail tiles --refine-sketch-scale 2,1 --iters 1 --warmup 0 --device cpu
expect 2 "refine sketch scale must be in 0\.\.20" "bench-edit --refine-sketch-scale 30" -- \
  bench-edit --model "$editing" --size 32 --steps 3 --refine-sketch-scale 30 --iters 1 --warmup 0 --device cpu

# ---- bench-solvers ----
expect 0 "NFE +ddim +dpm\+\+2m +unipc" "bench-solvers on a conformance case" -- bench-solvers \
  --case "$data/conformance/adm-small" --nfe 3,4
expect 2 "--nfe must be in 3\.\.1000; got 1" "bench-solvers --nfe 1" -- bench-solvers --case "$data/conformance/adm-small" --nfe 1
expect 2 "ddpm is stochastic" "bench-solvers --sampler ddpm" -- bench-solvers --case "$data/conformance/adm-small" --sampler ddpm
expect 2 "give --case DIR .* or --model M --sketch PNG" "bench-solvers with neither" -- bench-solvers
expect 2 "needs --sketch" "bench-solvers --model without a sketch" -- bench-solvers --model "$editing"
expect 0 "^3 +[0-9.e+-]+ +[0-9.e+-]+" "bench-solvers on an editing model" -- bench-solvers --model "$editing" \
  --sketch "$work/sketch.pgm" --variants 1 --nfe 3

# ---- train: bad settings are named before any work ----
mkdir -p "$work/pics" && cp "$work/ed.png" "$work/pics/a.png"
python3 - "$data/models/tiny-editing/train-config.json" "$work" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
for name, extra in [("neg", {"edge_loss_weight": -1}), ("typo", {"edge_los_weight": 4}), ("type", {"edge_loss_weight": "x"})]:
    d = json.loads(json.dumps(c)); d["train"].update(extra)
    json.dump(d, open(f"{sys.argv[2]}/train-{name}.json", "w"))
PY
expect 2 'edge_loss_weight must be >= 0' "train: negative edge_loss_weight" -- train --config "$work/train-neg.json" \
  --data "$work/pics" --out "$work/tr" --device cpu
expect 2 "unknown training setting 'edge_los_weight'" "train: misspelt setting" -- train --config "$work/train-typo.json" \
  --data "$work/pics" --out "$work/tr" --device cpu
expect 2 "'edge_loss_weight' has the wrong type" "train: setting of the wrong type" -- train \
  --config "$work/train-type.json" --data "$work/pics" --out "$work/tr" --device cpu

# ---- info ----
expect 0 "307 tensors" "info on the U-Net weights" -- info "$data/conformance/adm-small/unet.safetensors"
expect 0 "matches preset: none" "info says no preset matches" -- info "$model"
expect 0 "adm-small .*adm-unet.*32 px" "info on a model folder" -- info "$model"
expect 2 "pickle" "info on a pickle" -- info "$data/conformance/adm-small/classifier.pt"

# ---- conformance: a case whose KEYS name no output checks nothing and must say so ----
mkdir -p "$work/conf-nokeys"
for f in unet.safetensors classifier.safetensors io.safetensors; do ln -s "$data/conformance/adm-small/$f" "$work/conf-nokeys/$f"; done
python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); c["KEYS"] = {"x": "input only"}; json.dump(c, open(sys.argv[2], "w"))' \
  "$data/conformance/adm-small/config.json" "$work/conf-nokeys/config.json"
expect 2 "KEYS names no output to recompute" "conformance with nothing to check" -- conformance --case "$work/conf-nokeys"

# ---- train-sketch-features: bad data folders (training itself: test_sketch_features_train) ----
mkdir -p "$work/sketches/circle"
expect 2 "1 class folder.*at least 2" "train-sketch-features needs 2 classes" -- \
  train-sketch-features --data "$work/sketches" --out "$work/sf" --device cpu
expect 2 "no such folder" "train-sketch-features on a missing folder" -- \
  train-sketch-features --data "$work/no-sketches" --out "$work/sf" --device cpu

echo "cli_basics: $failures failure(s)"
[ "$failures" -eq 0 ]

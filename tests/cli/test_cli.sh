#!/usr/bin/env bash
# The diffsketch command line end to end on the fixture model (tests/data/models/adm-small):
# sampling writes deterministic PNGs, bad flags and bad folders exit 2 with a message.
# Usage: test_cli.sh PATH/TO/diffsketch PATH/TO/tests/data   (CTest: cli_basics, label unit)
set -uo pipefail

bin=${1:?usage: test_cli.sh DIFFSKETCH TESTS_DATA}
data=${2:?usage: test_cli.sh DIFFSKETCH TESTS_DATA}
[ -x "$bin" ] || { echo "FAIL: $bin is not an executable (build the diffsketch target)"; exit 1; }
model="$data/models/adm-small"
classifier="$data/models/adm-small-classifier"
# On a loaded 2-core machine (ctest -j 2, other builds) OpenBLAS's own thread pool next to
# LibTorch's OpenMP threads, all spin-waiting, makes this tiny model ~50x slower (see
# docs/benchmarks.md). Functional checks only here, so keep the threads from fighting.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
work=$(mktemp -d "${TMPDIR:-/tmp}/dsk-cli-XXXXXX")
trap 'rm -rf "$work"' EXIT

failures=0
pass() { echo "ok:   $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect CODE PATTERN NAME -- ARGS...: runs diffsketch ARGS, wants exit CODE (a number, or
# "nonzero") and PATTERN (grep -E) in its stdout+stderr.
expect() {
  local code=$1 pattern=$2 name=$3
  shift 4
  local out rc
  out=$("$bin" "$@" 2>&1)
  rc=$?
  if { [ "$code" = nonzero ] && [ "$rc" -eq 0 ]; } || { [ "$code" != nonzero ] && [ "$rc" -ne "$code" ]; }; then
    fail "$name: exit $rc, expected $code; output:"$'\n'"$out"
  elif ! grep -qE -- "$pattern" <<<"$out"; then
    fail "$name: output lacks /$pattern/:"$'\n'"$out"
  else
    pass "$name"
  fi
}

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
expect 2 '--steps 0 must be in 1\.\.1000' "--steps 0" -- "${base[@]}" --steps 0 --seed 1 --out "$work/x.png"
expect 2 '--steps 5000 must be in 1\.\.1000' "--steps 5000" -- "${base[@]}" --steps 5000 --seed 1 --out "$work/x.png"
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

# ---- info ----
expect 0 "307 tensors" "info on the U-Net weights" -- info "$data/conformance/adm-small/unet.safetensors"
expect 0 "matches preset: none" "info says no preset matches" -- info "$model"
expect 0 "adm-small .*adm-unet.*32 px" "info on a model folder" -- info "$model"
expect 2 "pickle" "info on a pickle" -- info "$data/conformance/adm-small/classifier.pt"

echo "cli_basics: $failures failure(s)"
[ "$failures" -eq 0 ]

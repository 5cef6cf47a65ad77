#!/usr/bin/env bash
# packaging/fuzz.sh TARGET SECONDS: build a libFuzzer target with clang (ASan + UBSan) in
# build-fuzz/ and run it for SECONDS on a copy of its seed corpus (tests/fuzz/corpus/TARGET).
# Targets: safetensors (the weights reader), protocol (every frame a client can send), model_json
# (model.json's network and diffusion flags), request (the engine's request checks, fed by frames). Runs inside the build environment
# (./dsk fuzz TARGET SECS). Exits non-zero on a finding.
set -euo pipefail

target=${1:-}
secs=${2:-60}
case "$target" in safetensors | protocol | model_json | request) ;; *)
  echo "usage: packaging/fuzz.sh safetensors|protocol|model_json|request SECONDS" >&2; exit 2 ;;
esac
[[ $secs =~ ^[0-9]+$ ]] || { echo "usage: packaging/fuzz.sh TARGET SECONDS" >&2; exit 2; }

repo=$(cd "$(dirname "$0")/.." && pwd)
build="$repo/build-fuzz"
seeds="$repo/tests/fuzz/corpus/$target"
artifacts="$build/fuzz-artifacts/$target"

CC=clang CXX=clang++ cmake -S "$repo" -B "$build" -G Ninja -DDSK_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target "fuzz_$target"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$artifacts"
cp "$seeds"/* "$work/corpus/"
log="$build/fuzz_$target.log"
# Tokens of each format, so that mutations reach the validation rules rather than the JSON lexer.
common=('{' '}' '[' ']' ',' ':' '0' '-1' '1.5' '18446744073709551615' '9223372036854775808' '4294967296' 'null'
  'true' 'false' '"')
case "$target" in
  safetensors) tokens=('"dtype"' '"shape"' '"data_offsets"' '"__metadata__"' '"F32"' '"F16"' '"BF16"' '"F64"' '"I64"'
    '"BOOL"' '"U8"' '"F8_E4M3"' '"F8_E5M2"') ;;
  protocol | request) tokens=('DSKP' '"type"' '"models"' '"edit"' '"generate"' '"interpolate"' '"cancel"' '"model-list"'
    '"progress"' '"result"' '"error"' '"payloads"' '"width"' '"height"' '"channels"' '"dtype"' '"u8"' '"u16"'
    '"f32"' '"sampling"' '"image"' '"mask"' '"sketch"' '"image_x"' '"sketch_guidance"' '"mode"' '"preview"'
    '"detail"' '"patch"' '"tiles"' '"none"' '"variants"' '"feather"' '"frames"' '"slerp"' '"ddim"' '"ddpm"'
    '"cpu"' '"auto"' '"eta"' '"steps"' '"respacing"' '"class"' 'NaN' '1e308' '-0.0' '2147483647') ;;
  model_json) tokens=('"image_size"' '"num_channels"' '"num_res_blocks"' '"channel_mult"' '"attention_resolutions"'
    '"num_heads"' '"num_head_channels"' '"num_heads_upsample"' '"learn_sigma"' '"diffusion_steps"'
    '"noise_schedule"' '"timestep_respacing"' '"ddim25"' '"cosine"' '"1,2,2"' '"16,8"' '"True"' '"classifier_width"'
    '"classifier_pool"' '"sketch_channels"' '"sketch_null"') ;;
esac
for t in "${common[@]}" "${tokens[@]}"; do
  printf '"%s"\n' "$(sed 's/\\/\\\\/g; s/"/\\"/g' <<<"$t")"
done >"$work/$target.dict"
# Readable stack traces in crash reports: llvm-symbolizer if installed, else binutils' addr2line.
symbolizer=$(command -v llvm-symbolizer || ls /usr/lib/llvm-*/bin/llvm-symbolizer 2>/dev/null | tail -n 1 \
  || command -v addr2line || true)
if [ -n "$symbolizer" ]; then export ASAN_SYMBOLIZER_PATH="$symbolizer"; fi
export UBSAN_OPTIONS=print_stacktrace=1

rc=0
"$build/bin/fuzz_$target" "$work/corpus" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=30 \
  -dict="$work/$target.dict" -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1 || rc=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
if [ "$rc" -eq 0 ]; then
  echo "fuzz_$target: OK, ${secs}s, ${execs:-?} execs, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}, no crashes (log: $log)"
else
  found=$(grep -hE 'ERROR: |runtime error:|Test unit written to' "$log" | head -n 3 | tr '\n' ' ' || true)
  echo "fuzz_$target: FAILED (exit $rc) after ${execs:-?} execs: ${found:-see $log} (log: $log)"
  exit 1
fi

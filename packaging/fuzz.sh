#!/usr/bin/env bash
# packaging/fuzz.sh SECONDS: build the libFuzzer target for the safetensors parser with clang
# (ASan + UBSan) in build-fuzz/ and run it for SECONDS on a copy of the seed corpus.
# Runs inside the build environment (./dsk fuzz safetensors SECS). Exits non-zero on a finding.
set -euo pipefail

secs=${1:-60}
[[ $secs =~ ^[0-9]+$ ]] || { echo "usage: packaging/fuzz.sh SECONDS" >&2; exit 2; }

repo=$(cd "$(dirname "$0")/.." && pwd)
build="$repo/build-fuzz"
seeds="$repo/tests/fuzz/corpus/safetensors"
artifacts="$build/fuzz-artifacts"

CC=clang CXX=clang++ cmake -S "$repo" -B "$build" -G Ninja -DDSK_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target fuzz_safetensors

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$artifacts"
cp "$seeds"/* "$work/corpus/"
log="$build/fuzz_safetensors.log"
# Tokens of the format, so that mutations reach the validation rules rather than the JSON lexer.
for t in '{' '}' '[' ']' ',' ':' '"dtype"' '"shape"' '"data_offsets"' '"__metadata__"' '"F32"' '"F16"' \
  '"BF16"' '"F64"' '"I64"' '"BOOL"' '"U8"' '"F8_E4M3"' '"F8_E5M2"' '0' '-1' '1.5' '18446744073709551615' \
  '9223372036854775808' '4294967296' 'null' 'true' '"'; do
  printf '"%s"\n' "$(sed 's/\\/\\\\/g; s/"/\\"/g' <<<"$t")"
done >"$work/safetensors.dict"
# Readable stack traces in crash reports: llvm-symbolizer if installed, else binutils' addr2line.
symbolizer=$(command -v llvm-symbolizer || ls /usr/lib/llvm-*/bin/llvm-symbolizer 2>/dev/null | tail -n 1 \
  || command -v addr2line || true)
if [ -n "$symbolizer" ]; then export ASAN_SYMBOLIZER_PATH="$symbolizer"; fi
export UBSAN_OPTIONS=print_stacktrace=1

rc=0
"$build/bin/fuzz_safetensors" "$work/corpus" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=30 \
  -dict="$work/safetensors.dict" -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1 || rc=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
if [ "$rc" -eq 0 ]; then
  echo "fuzz_safetensors: OK, ${secs}s, ${execs:-?} execs, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}, no crashes (log: $log)"
else
  found=$(grep -hE 'ERROR: |runtime error:|Test unit written to' "$log" | head -n 3 | tr '\n' ' ' || true)
  echo "fuzz_safetensors: FAILED (exit $rc) after ${execs:-?} execs: ${found:-see $log} (log: $log)"
  exit 1
fi

#!/usr/bin/env bash
# One cell of the portability matrix (docs/testing.md): every test that compares computed numbers,
# with LibTorch's and oneDNN's CPU kernels held to LEVEL, THREADS threads, oneDNN on or off.
#
#   cell.sh LEVEL THREADS ONEDNN BIN_DIR DATA_DIR OUT_DIR
#     LEVEL   native (what the CPU picks) | avx512 | avx2 | default (no vector extensions)
#     THREADS 1 | 2
#     ONEDNN  on | off   (DSK_ONEDNN=1 / 0: convolutions through oneDNN or LibTorch's own kernels)
#
# Exits 77 (CTest: skipped) when this CPU cannot run LEVEL: LibTorch does not check
# ATEN_CPU_CAPABILITY against the CPU, and a level above it dies of an illegal instruction.
# Writes OUT_DIR/LEVEL-tTHREADS-ONEDNN.tsv: "comparison<TAB>error<TAB>bound" per comparison made
# (tests/unit/numerics.h, and the conformance cases' relative errors), read by report.py.
set -uo pipefail
level=$1 threads=$2 onednn=$3 bin=$4 data=$5 out=$6
cell="$level-t$threads-$onednn"

flags=$(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2)
has() { for f in "$@"; do [[ " $flags " == *" $f "* ]] || return 1; done; }
case "$level" in
  native) env_aten="" aten="" isa="" ;;
  avx512) env_aten=avx512 aten=AVX512 isa=avx512_core; has avx512f avx512bw avx512vl avx512dq fma avx2 ||
            { echo "skipped: this CPU has no AVX-512 (F/BW/VL/DQ)"; exit 77; } ;;
  avx2) env_aten=avx2 aten=AVX2 isa=avx2; has avx2 fma || { echo "skipped: this CPU has no AVX2/FMA"; exit 77; } ;;
  default) env_aten=default aten="NO AVX" isa=sse41; has sse4_1 || { echo "skipped: this CPU has no SSE4.1"; exit 77; } ;;
  *) echo "cell.sh: unknown level '$level' (native, avx512, avx2 or default)" >&2; exit 2 ;;
esac
case "$onednn" in on) export DSK_ONEDNN=1 ;; off) export DSK_ONEDNN=0 ;;
  *) echo "cell.sh: ONEDNN must be on or off, not '$onednn'" >&2; exit 2 ;; esac
if [ "$level" != native ]; then
  export ATEN_CPU_CAPABILITY=$env_aten ONEDNN_MAX_CPU_ISA=${isa^^}
fi
export DSK_THREADS=$threads OMP_NUM_THREADS=$threads
mkdir -p "$out"
log="$out/$cell.tsv"
: >"$log"
export DSK_NUMERICS_LOG=$log
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp  # what the tests write (checkpoints of ~1 GB among it) goes when the cell ends

failed=0
# The tests that compare numbers: the sketch features (ResNet), the editing network and the
# sampling pipeline around it, v-prediction, the fine-tuning chain and its gradient, the sketch
# loss, model loading, schedules and respacing, the null sketch, training-state resume, and the
# shipped model's line test (a quality threshold that float differences could tip).
gtests=(
  "test_resnet ResNet.*:ResNetSketchFeatures.*"
  "test_edit Edit.*:VPrediction.*:-Edit.CancelStopsWithinOneStep"
  "test_finetune Chain.*:SketchLoss.*:Finetune.LowersTheSketchLossWithIdentityBounded:Finetune.AResumedRunEqualsAnUninterruptedOne"
  "test_model_loading *"
  "test_schedule *"
  "test_train SketchNull.*:LrDecay.*"
  "test_sketch_features_train TrainSketchFeatures.ResumeContinuesAtTheSavedStepLikeAnUninterruptedRun"
  "test_default_model *"
)
kernels_checked=0
for entry in "${gtests[@]}"; do
  read -r name filter <<<"$entry"
  start=$(date +%s%N)
  "$bin/$name" --gtest_filter="$filter" --gtest_brief=1 >"$tmp/$name.out" 2>&1
  rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  line=$(grep -m1 '^\[ kernels  \]' "$tmp/$name.out" | sed 's/^\[ kernels  \] //')
  printf '%-22s rc %d  %6d ms  %s\n' "$name" "$rc" "$ms" "$line"
  if [ "$rc" -ne 0 ]; then
    failed=1
    sed 's/^/    /' "$tmp/$name.out" | grep -v '^    \[ *\(OK\|RUN\) ' | tail -40
  fi
  # The level asked for must be the level in force, or the cell tests nothing new.
  if [ -n "$aten" ] && [ "$kernels_checked" = 0 ]; then
    kernels_checked=1
    if [[ "$line" != "ATen $aten, oneDNN $isa "* ]]; then
      echo "FAIL: asked for ATen $aten / oneDNN $isa, the test binary ran with: $line"
      failed=1
    fi
  fi
  if [ -n "$line" ] && [ "$onednn" = off ] && [[ "$line" != *"($onednn)"* ]]; then
    echo "FAIL: asked for oneDNN $onednn, the test binary ran with: $line"
    failed=1
  fi
done

# The conformance cases: the reference implementation's outputs, recomputed.
for case_dir in "$data"/conformance/*/; do
  case_name=$(basename "$case_dir")
  start=$(date +%s%N)
  "$bin/diffsketch" conformance --case "$case_dir" >"$tmp/conf.out" 2>&1
  rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf '%-22s rc %d  %6d ms\n' "conformance $case_name" "$rc" "$ms"
  awk -v c="$case_name" '$2 == "rel_err" { printf "conformance/%s/%s\t%s\t%s\n", c, $1, $3, $5 }' "$tmp/conf.out" >>"$log"
  [ "$rc" -eq 0 ] || { failed=1; sed 's/^/    /' "$tmp/conf.out"; }
done

echo "$(wc -l <"$log") comparisons recorded in $log"
exit $failed

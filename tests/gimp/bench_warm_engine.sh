#!/usr/bin/env bash
# Cold and warm edits through the GIMP plug-in (a benchmark, not a test; docs/benchmarks.md).
#
#   bench_warm_engine.sh PLUGIN_BINARY ENGINE_BINARY MODEL_DIR WORK_DIR [STEPS]
#
# The edit is the Script-Fu batch script's (plugin/scripts/diffsketch-batch.scm) on the default
# model's example (models/default/example: a 256 px picture, its mask and sketch), so every run
# edits the same selection with the same seed. Each line is one gimp-console run (start, one edit,
# export, quit), timed from outside:
#   gimp only   a run that edits nothing: GIMP's own start and quit
#   private     DSK_NO_SERVER=1: the plug-in starts a private engine for the edit (the engine's
#               start-up and the model load in every edit)
#   cold        no server running: the plug-in starts the warm engine (start-up and load paid once)
#   warm        the server from the cold run is still there: the model is loaded
# The edit's own cost is a run's time minus "gimp only".
set -uo pipefail

PLUGIN=$(realpath "$1") ENGINE=$(realpath "$2") MODEL=$(realpath "$3") WORK=$(realpath -m "$4")
STEPS=${5:-25}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
EXAMPLE="$MODEL/example"

rm -rf "$WORK"
mkdir -p "$WORK/run" "$WORK/cache" "$WORK/profile/plug-ins/diffsketch" "$WORK/in" "$WORK/out"
chmod 700 "$WORK/run"
cp "$PLUGIN" "$WORK/profile/plug-ins/diffsketch/diffsketch"
cp "$EXAMPLE/image.png" "$WORK/in/pic.png"
cp "$EXAMPLE/mask.png" "$WORK/in/pic-mask.png"
cp "$EXAMPLE/sketch.png" "$WORK/in/pic-sketch.png"
export GIMP3_DIRECTORY="$WORK/profile" XDG_RUNTIME_DIR="$WORK/run" XDG_CACHE_HOME="$WORK/cache"
export DSK_ENGINE="$ENGINE" DSK_DEVICE=cpu
unset DISPLAY DSK_NO_SERVER

batch="(load \"$HERE/../../plugin/scripts/diffsketch-batch.scm\") (diffsketch-batch \"$WORK/in\" \"$WORK/out\" \"$MODEL\" $STEPS 42 -1)"
nothing="(gimp-message \"nothing\")"

# run NAME SCHEME [ENV...]: one timed gimp-console run; prints NAME and seconds.
run() {
  local name=$1 code=$2 start end
  shift 2
  start=$(date +%s.%N)
  env "$@" timeout 600 gimp-console -i -d -f --quit --batch-interpreter=plug-in-script-fu-eval -b "$code" \
    >"$WORK/$name.log" 2>&1
  local status=$?
  end=$(date +%s.%N)
  if [ "$status" -ne 0 ] || { [ "$code" = "$batch" ] && ! grep -q "summary: 1 done" "$WORK/$name.log"; }; then
    echo "bench_warm_engine: run $name failed (status $status); log $WORK/$name.log" >&2
    exit 1
  fi
  awk -v n="$name" -v s="$start" -v e="$end" 'BEGIN { printf "%-10s %6.2f s\n", n, e - s }'
}

server_pid() { pgrep -f -- "$ENGINE serve --background" | head -n 1; }
[ -z "$(server_pid)" ] || { echo "bench_warm_engine: a server already runs; stop it first" >&2; exit 1; }

run setup "$nothing" >/dev/null  # the first start of a fresh profile queries every plug-in
echo "$(nproc) CPU(s); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $STEPS steps; $(date -u +%F)"
for i in 1 2; do run "gimp-only" "$nothing"; done
for i in 1 2; do run private "$batch" DSK_NO_SERVER=1; done
run cold "$batch" DSK_ENGINE_IDLE_MINUTES=10
for i in 1 2 3; do run warm "$batch" DSK_ENGINE_IDLE_MINUTES=10; done
pid=$(server_pid)
[ -n "$pid" ] && kill -TERM "$pid"

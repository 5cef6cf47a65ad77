#!/usr/bin/env bash
# `diffsketch doctor` on a good installation (a throw-away GIMP profile with the plug-in, the
# fixture models) and on broken ones: each broken part is named with its fix, exit status 1, and
# the other checks still report. Never a crash.
# Usage: test_doctor.sh DIFFSKETCH PLUGIN_BINARY TESTS_DATA   (CTest: cli_doctor)
set -uo pipefail

bin=${1:?usage: test_doctor.sh DIFFSKETCH PLUGIN TESTS_DATA}
plugin=${2:?usage: test_doctor.sh DIFFSKETCH PLUGIN TESTS_DATA}
data=${3:?usage: test_doctor.sh DIFFSKETCH PLUGIN TESTS_DATA}
export OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
work=$(mktemp -d "${TMPDIR:-/tmp}/dsk-doctor-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/profile/plug-ins/diffsketch" "$work/run" "$work/models" "$work/data"
chmod 700 "$work/run"
cp "$plugin" "$work/profile/plug-ins/diffsketch/diffsketch"
# A copy of the engine outside the build tree, so that the source tree's models/ is not found.
mkdir -p "$work/bin" && cp "$bin" "$work/bin/diffsketch" && bin="$work/bin/diffsketch"
cp -r "$data/models/tiny-editing" "$work/models/tiny"
"$bin" models manifest "$work/models/tiny" >/dev/null 2>&1
export GIMP3_DIRECTORY="$work/profile" XDG_RUNTIME_DIR="$work/run" XDG_DATA_HOME="$work/data" \
  DSK_MODEL_PATH="$work/models" DSK_ENGINE="$bin" XDG_DATA_DIRS="$work/none"
unset DISPLAY
# shellcheck source=tests/cli/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# doctor_says CODE NAME PATTERN... -- ARGS: runs doctor ARGS (with the environment changes in
# doctor_env); exit CODE and every PATTERN (grep -E, one line each) in its output.
doctor_env=()
doctor_says() {
  local code=$1 name=$2 out rc p missing=""
  shift 2
  local patterns=()
  while [ "$1" != -- ]; do patterns+=("$1"); shift; done
  shift
  out=$(env "${doctor_env[@]}" "$bin" doctor "$@" 2>&1)
  rc=$?
  for p in "${patterns[@]}"; do grep -qE -- "$p" <<<"$out" || missing+=" /$p/"; done
  if [ "$rc" -ne "$code" ]; then fail "$name: exit $rc, expected $code:"$'\n'"$out"
  elif [ -n "$missing" ]; then fail "$name: output lacks$missing:"$'\n'"$out"
  else pass "$name"; fi
}

# ---- all well (GIMP asked in batch mode whether it registered the three procedures) ----
expect 0 "All well: 0 problem\(s\)" "doctor on a good installation" -- doctor
expect 0 "\[ ok \] Procedures registered in GIMP: plug-in-diffsketch-inpaint, -generate and -interpolate" \
  "GIMP lists the three procedures" -- doctor
expect 0 "\[ ok \] Model tiny: editing-unet, 32 px, .*loads; manifest verified" "the model loads and verifies" -- doctor --from-plugin
expect 0 "\[ ok \] Engine the plug-in starts: .* \(DSK_ENGINE\): diffsketch [0-9.]+, protocol [0-9]+" "the engine and its protocol" -- doctor --from-plugin
expect 0 "\[ ok \] BLAS library: .*openblas" "OpenBLAS in use" -- doctor --from-plugin
if out=$("$bin" doctor --json --from-plugin) && python3 -c 'import json, sys; j = json.loads(sys.argv[1]); assert j["ok"] is True and len(j["checks"]) >= 9, j' "$out"; then
  pass "doctor --json: ok, every check"
else
  fail "doctor --json: $out"
fi

# ---- broken parts: each named with its fix; the rest still reported ----
chmod -x "$work/profile/plug-ins/diffsketch/diffsketch"
doctor_says 1 "a plug-in that is not executable" "\[FAIL\] GIMP plug-in installed: .*not an executable file" \
  "fix: make it executable" "\[ ok \] Model tiny" -- --from-plugin
chmod +x "$work/profile/plug-ins/diffsketch/diffsketch"
mv "$work/profile/plug-ins/diffsketch" "$work/profile/plug-ins/elsewhere"
doctor_says 1 "no plug-in" "\[FAIL\] GIMP plug-in installed: no diffsketch/diffsketch in the folders GIMP reads" \
  "fix: install the diffsketch package" -- --from-plugin
mv "$work/profile/plug-ins/elsewhere" "$work/profile/plug-ins/diffsketch"
mkdir -p "$work/nogimp" && ln -s "$(command -v ldd)" "$work/nogimp/ldd"
doctor_env=(PATH="$work/nogimp")
doctor_says 1 "no GIMP on PATH (the models are still checked)" "\[FAIL\] GIMP 3: no gimp-console-3.0" \
  "fix: install GIMP 3" "\[FAIL\] Procedures registered in GIMP: not asked: no GIMP 3" "\[ ok \] Model tiny" --
doctor_env=(DSK_PRECISION=fp32)
doctor_says 0 "DSK_PRECISION=fp32 is reported" "\[ ok \] Inference precision: fp32 \(DSK_PRECISION=fp32\)" -- --from-plugin
doctor_env=(DSK_PRECISION=half)
doctor_says 1 "a bad DSK_PRECISION" "\[FAIL\] Inference precision: DSK_PRECISION must be auto, fp32 or bf16; got 'half'" \
  "fix: unset DSK_PRECISION" "\[ ok \] Model tiny" -- --from-plugin
doctor_env=(DSK_ENGINE="$work/no-engine")
doctor_says 1 "an engine that does not run" \
  "\[FAIL\] Engine the plug-in starts: $work/no-engine \(DSK_ENGINE\) does not run" -- --from-plugin
doctor_env=()
echo "not a socket" >"$work/run/diffsketch.sock"
doctor_says 1 "a file where the socket should be" "\[FAIL\] Warm engine .*diffsketch.sock" "fix: .* is not a socket" -- --from-plugin
rm "$work/run/diffsketch.sock"
# A running server answers hello.
"$bin" serve --socket "$work/run/diffsketch.sock" --exit-when-idle 60 >/dev/null 2>&1 &
server=$!
for _ in $(seq 100); do [ -S "$work/run/diffsketch.sock" ] && break; sleep 0.1; done
doctor_says 0 "a running server answers hello" "\[ ok \] Warm engine .*mode 0[0-7]+; diffsketch [0-9.]+ \(pid $server" -- --from-plugin
kill "$server" 2>/dev/null
wait "$server" 2>/dev/null
printf 'x' | dd of="$work/models/tiny/weights.safetensors" bs=1 seek=3000 conv=notrunc status=none
doctor_says 1 "a damaged model" "\[FAIL\] Model tiny: .*weights.safetensors: contents changed" \
  "fix: model 'tiny' .* fails its manifest" -- --from-plugin
mkdir -p "$work/models/broken" && echo '{"format_version": 1, "kind": "adm-vae"}' >"$work/models/broken/model.json"
doctor_says 1 "a broken model folder" "\[FAIL\] A model folder: .*broken/model.json: kind 'adm-vae'" -- --from-plugin
rm -rf "$work/models/broken" "$work/models/tiny"
doctor_says 1 "no models at all" "\[FAIL\] Models: none found" "fix: install the diffsketch package" -- --from-plugin

echo "cli_doctor: $failures failure(s)"
[ "$failures" -eq 0 ]

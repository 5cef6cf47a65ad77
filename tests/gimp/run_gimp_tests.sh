#!/usr/bin/env bash
# The DiffSketch GIMP plug-in with the real GIMP 3, headless (ctest label "gimp").
#
#   run_gimp_tests.sh PLUGIN_BINARY ENGINE_BINARY TEST_DATA_DIR WORK_DIR
#
# Installs the plug-in into a throw-away GIMP profile (GIMP3_DIRECTORY=WORK_DIR/profile) and drives
# gimp-console in batch mode (--quit, under `timeout`) with Script-Fu calls using named arguments,
# as batch users do (tests/gimp/cases.scm). Checks exit statuses, the log and exported PNGs
# (tests/gimp/pngcheck.py). The models are the 32 px fixtures tests/data/models/adm-small (a plain
# ADM model, random weights) and tests/data/models/tiny-editing (a sketch-conditioned editing model).
#
# How exactly pixels are compared (docs/testing.md):
# - Exact by design: pixels outside the selection, the target layer, transparency outside the
#   selection. The plug-in never writes them, whatever the kernels compute.
# - Exact by determinism: the same seed twice, interpolation's end frames against generate, a
#   selection sent as a crop against the whole layer sent. Both sides come from the same engine
#   binary on the same machine, with the same thread count and CPU kernels and the same network
#   inputs; LibTorch's and oneDNN's CPU kernels are deterministic then, so the floats and the 8-bit
#   pixels are identical. The one step after the engine that is not is babl's conversion into a
#   16-bit layer: +-1 level (below).
# Nothing here compares with stored pixels, so no comparison crosses CPU kernel levels; those are
# the portability matrix's (tests/portability).
set -uo pipefail

PLUGIN=$(realpath "$1") ENGINE=$(realpath "$2") DATA=$(realpath "$3") WORK=$(realpath -m "$4")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MODEL="$DATA/models/adm-small"
EDITING="$DATA/models/tiny-editing"
GIMP_TIMEOUT=${DSK_GIMP_TIMEOUT:-300}

rm -rf "$WORK"
mkdir -p "$WORK/out" "$WORK/run" "$WORK/profile/plug-ins/diffsketch" "$WORK/cache"
chmod 700 "$WORK/run"
cp "$PLUGIN" "$WORK/profile/plug-ins/diffsketch/diffsketch"
export GIMP3_DIRECTORY="$WORK/profile"
export XDG_RUNTIME_DIR="$WORK/run" XDG_CACHE_HOME="$WORK/cache"
export DSK_ENGINE="$ENGINE" DSK_NO_SERVER=1 DSK_DEVICE=cpu
unset DISPLAY

failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# gimp_batch NAME EXPECTED_STATUS SCHEME: one gimp-console run; its log is WORK/NAME.log.
gimp_batch() {
  local name=$1 expected=$2 code=$3 status
  local prelude="(define model \"$MODEL\") (define editing-model \"$EDITING\") (define out \"$WORK/out\")
                 (load \"$HERE/cases.scm\")"
  timeout "$GIMP_TIMEOUT" gimp-console -i -d -f --quit --batch-interpreter=plug-in-script-fu-eval \
    -b "$prelude $code" >"$WORK/$name.log" 2>&1
  status=$?
  if [ "$status" -ne "$expected" ]; then
    fail "$name: gimp-console exit status $status, expected $expected; log $WORK/$name.log:"
    grep -E "CHECK FAILED|Error|error" "$WORK/$name.log" | grep -v resource_arg | tail -n 15 | sed 's/^/    /'
    return 1
  fi
  return 0
}

# log_has NAME TEXT: the log of run NAME contains TEXT.
log_has() {
  if grep -qF -- "$2" "$WORK/$1.log"; then pass "$1: log says '$2'"; else fail "$1: log lacks '$2'"; fi
}

png() { python3 "$HERE/pngcheck.py" "$@"; }
png_check() {  # png_check WHAT ARGS...: a pngcheck.py check as one test result
  local what=$1 msg
  shift
  if msg=$(png "$@" 2>&1); then pass "$what ($msg)"; else fail "$what: $msg"; fi
}

# Selection of the inpaint cases (cases.scm: sel-x sel-y sel-w sel-h), in canvas coordinates.
SEL="22 16 16 12"

echo "== profile set-up (the first start of a fresh profile queries every plug-in)"
gimp_batch setup 0 "(say \"registered: \" (car (gimp-pdb-procedure-exists \"plug-in-diffsketch-inpaint\")))" &&
  log_has setup "registered: 1"
# The release in the procedures' documentation (as GIMP stored it when the plug-in registered;
# Script-Fu has no call that reads it back) is the engine's: both from CMake's project version.
version=$("$ENGINE" --version | awk '{print $2}')
n=$(grep -c "DiffSketch $version\." "$WORK/profile/pluginrc" 2>/dev/null)
[ "${n:-0}" -eq 3 ] && pass "setup: the three procedures' help ends with 'DiffSketch $version.'" ||
  fail "setup: 'DiffSketch $version.' in $WORK/profile/pluginrc ${n:-0} times, expected 3"

echo "== inpaint: RGB 8-bit, grayscale 16-bit, RGB 32-bit float linear"
if gimp_batch inpaint 0 "(inpaint-case \"rgb8\" RGB PRECISION-U8-NON-LINEAR #t)
                         (inpaint-case \"gray16\" GRAY PRECISION-U16-NON-LINEAR #f)
                         (inpaint-case \"rgb32lin\" RGB PRECISION-FLOAT-LINEAR #f)"; then
  for tag in rgb8 gray16 rgb32lin; do log_has inpaint "CASE OK $tag"; done
fi
for tag in rgb8 gray16 rgb32lin; do
  if [ -f "$WORK/out/$tag-after.png" ]; then
    png_check "$tag: pixels outside the selection untouched" same "$WORK/out/$tag-before.png" "$WORK/out/$tag-after.png" $SEL
    png_check "$tag: the selection was regenerated" differs "$WORK/out/$tag-before.png" "$WORK/out/$tag-after.png" $SEL
    png_check "$tag: the target layer itself is unchanged" same "$WORK/out/$tag-photo-before.png" "$WORK/out/$tag-photo-after.png"
    png_check "$tag: the new layer is transparent outside the selection" alpha "$WORK/out/$tag-layer.png" $SEL
  else
    fail "$tag: no exported images"
  fi
done
[ -f "$WORK/out/gray16-after.png" ] && png info "$WORK/out/gray16-after.png" | grep -Eq '^64 48 [12] 16$' &&
  pass "gray16: exported as 16-bit grayscale" || fail "gray16: not exported as 16-bit grayscale"
[ -f "$WORK/out/rgb8-rerun.png" ] &&
  png_check "rgb8: the same seed gives the same result" same "$WORK/out/rgb8-layer.png" "$WORK/out/rgb8-rerun.png"
[ -f "$WORK/out/rgb8-noise.png" ] &&
  png_check "rgb8: init-strength 1 (from noise) gives another result than the default" differs \
    "$WORK/out/rgb8-layer.png" "$WORK/out/rgb8-noise.png" $SEL

echo "== generate and interpolate with the editing model"
if gimp_batch generate 0 "(generate-case \"gen\" RGB PRECISION-U8-NON-LINEAR)
                          (generate-case \"gengray\" GRAY PRECISION-U16-NON-LINEAR)
                          (interpolate-case \"interp\")"; then
  for tag in gen gengray interp; do log_has generate "CASE OK $tag"; done
fi
# The engine returns the same 8-bit pixels for the same seed; GIMP converts them to the layer's
# precision with babl, which picks a conversion path by timing the candidates (babl-fish-path.c)
# and turns a much-used 8-bit conversion into a look-up table: either can change the last bit. The
# 16-bit grayscale export differed by one level in one pixel of 3,072 in two of four runs on a busy
# machine, so 16-bit results may differ by one level of 65535.
for tag in gen gengray; do
  if [ -f "$WORK/out/$tag-gen-again.png" ]; then
    png_check "$tag: the same seed gives the same image (with sketch guidance 0)" close \
      "$WORK/out/$tag-gen-21.png" "$WORK/out/$tag-gen-again.png" "$([ $tag = gengray ] && echo 1 || echo 0)"
    png_check "$tag: the two variants differ" differs "$WORK/out/$tag-gen-21.png" "$WORK/out/$tag-gen-22.png" 0 0 64 48
  else
    fail "$tag: no exported generate results"
  fi
done
if [ -f "$WORK/out/interp-frame-3.png" ] && [ -f "$WORK/out/gen-gen-22.png" ]; then
  png_check "interpolate: frame 1 is seed 21's generate result" same "$WORK/out/interp-frame-1.png" "$WORK/out/gen-gen-21.png"
  png_check "interpolate: frame 3 is seed 22's generate result" same "$WORK/out/interp-frame-3.png" "$WORK/out/gen-gen-22.png"
else
  fail "interpolate: no exported frames"
fi

echo "== a selection in a large layer: the plug-in sends a crop, with the same result as the whole layer"
# A tapping engine: records what the plug-in sends (tests/gimp/requests.py reads it), then passes
# it on to the real engine.
printf '#!/usr/bin/env bash\ntee -a "$DSK_TAP" | "$DSK_REAL_ENGINE" "$@"\n' >"$WORK/tap-engine.sh"
chmod +x "$WORK/tap-engine.sh"
tap() { DSK_ENGINE="$WORK/tap-engine.sh" DSK_REAL_ENGINE="$ENGINE" DSK_TAP="$WORK/$1.tap" "${@:2}"; }
# The first run names the model by its id (the plug-in asks the engine for the model's resolution).
DSK_MODEL_PATH="$DATA/models" tap crop gimp_batch crop 0 "(crop-case \"crop\" \"tiny-editing\") (guidance-case \"guidance\")" &&
  for tag in crop guidance; do log_has crop "CASE OK $tag"; done
DSK_SEND_WHOLE_LAYER=1 tap whole gimp_batch crop-whole 0 "(crop-case \"whole\" editing-model)" &&
  log_has crop-whole "CASE OK whole"
for part in edge ellipse; do
  if [ -f "$WORK/out/crop-$part.png" ] && [ -f "$WORK/out/whole-$part.png" ]; then
    png_check "crop: $part: the same pixels as with the whole layer sent" same "$WORK/out/crop-$part.png" "$WORK/out/whole-$part.png"
  else
    fail "crop: $part: no exported results"
  fi
done
[ -f "$WORK/out/crop-edge.png" ] &&
  png_check "crop: the new layer is transparent outside the selection" alpha "$WORK/out/crop-edge.png" 288 120 22 14
python3 "$HERE/requests.py" "$WORK/crop.tap" >"$WORK/crop.requests" 2>&1
python3 "$HERE/requests.py" "$WORK/whole.tap" >"$WORK/whole.requests" 2>&1
sed 's/^/    sent: /' "$WORK/crop.requests"
# The edge selection (layer coordinates 278..300 x 110..124): 16 px of context make a 46 px square,
# shifted left to end at the layer's right edge.
grep -q '"model": "tiny-editing", "image": \[46, 46\], "image_x": 254, "image_y": 94, "sketch": \[300, 220\]' \
  "$WORK/crop.requests" && pass "crop: the edge selection sends a 46x46 crop at 254,94 and the whole sketch layer" ||
  fail "crop: the edge selection's request is not the expected crop (see $WORK/crop.requests)"
head -n 1 "$WORK/crop.requests" | grep -q '"type": "models"' &&
  pass "crop: for a model id, the plug-in first asks the engine for the model list" ||
  fail "crop: no model list request before the edit with a model id"
[ "$(grep -c '"image": \[300, 220\], "image_x": 0, "image_y": 0' "$WORK/whole.requests")" -eq 2 ] &&
  pass "crop: DSK_SEND_WHOLE_LAYER=1 sends the whole layer" || fail "crop: DSK_SEND_WHOLE_LAYER=1 did not send the whole layer"
grep -q '"sketch_guidance": {"features": "", "mode": "exact", "scale": 2.5}' "$WORK/crop.requests" &&
  pass "sketch guidance: the request carries scale 2.5, mode exact" ||
  fail "sketch guidance: the request lacks it (see $WORK/crop.requests)"

echo "== bad inputs: each gives its message and adds no layer"
gimp_batch bad-inputs 0 "(bad-input-cases)" && log_has bad-inputs "CASE OK bad-inputs"
grep "EXPECTED-ERROR" "$WORK/bad-inputs.log" | sed 's/^/    /'

echo "== a broken engine: killed, crashed, exited, another protocol version, not an engine"
cat >"$WORK/fake-engine.sh" <<'EOF'
#!/usr/bin/env bash
# A misbehaving engine: what it does depends on how often it was started.
n=$(cat "$DSK_FAKE_DIR/count" 2>/dev/null || echo 0)
echo $((n + 1)) >"$DSK_FAKE_DIR/count"
case $n in
  0) head -c 12 >/dev/null; echo "loading the model" >&2; kill -KILL $$ ;;
  1) head -c 12 >/dev/null; kill -SEGV $$ ;;
  2) echo "diffsketch: error: something broke" >&2; exit 3 ;;
  3) head -c 12 >/dev/null; printf 'DSKP\001\000\000\000\002\000\000\000{}'; sleep 2 ;;
  *) head -c 12 >/dev/null; echo "Usage: diffsketch [OPTIONS] SUBCOMMAND"; sleep 2 ;;
esac
EOF
chmod +x "$WORK/fake-engine.sh"
mkdir -p "$WORK/fake"
DSK_ENGINE="$WORK/fake-engine.sh" DSK_FAKE_DIR="$WORK/fake" gimp_batch broken-engine 0 \
  "(broken-engine-case \"engine killed\" \"was killed (signal 9\")
   (broken-engine-case \"engine crashed\" \"crashed (signal 11\")
   (broken-engine-case \"engine exited\" \"exited unexpectedly with status 3\")
   (broken-engine-case \"engine of another protocol version\" \"speaks DiffSketch protocol version 1\")
   (broken-engine-case \"not an engine\" \"malformed reply\")
   (say \"CASE OK broken-engine\")" && log_has broken-engine "CASE OK broken-engine"
grep "EXPECTED-ERROR" "$WORK/broken-engine.log" | sed 's/^/    /'
DSK_ENGINE="$WORK/no-such-engine" gimp_batch no-engine 0 \
  "(broken-engine-case \"engine not found\" \"is not an executable file\") (say \"CASE OK no-engine\")" &&
  log_has no-engine "CASE OK no-engine"
grep "EXPECTED-ERROR" "$WORK/no-engine.log" | sed 's/^/    /'

echo "== the socket server: models stay in a running 'diffsketch serve'"
DSK_MODEL_PATH="$DATA/models" "$ENGINE" serve >"$WORK/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do [ -S "$WORK/run/diffsketch.sock" ] && break; sleep 0.2; done
# DSK_ENGINE points nowhere: the edit can only succeed through the socket.
DSK_NO_SERVER= DSK_ENGINE="$WORK/no-such-engine" gimp_batch socket 0 "(one-inpaint \"socket\")" &&
  log_has socket "CASE OK socket"
kill -TERM "$server" 2>/dev/null
wait "$server" 2>/dev/null
[ ! -e "$WORK/run/diffsketch.sock" ] && pass "socket: removed when the server stops" || fail "socket: left behind"

echo "== a remote engine: serve --listen over TLS with a token, reached through DSK_ENGINE_URL"
remote="$WORK/remote"
mkdir -p "$remote"
(umask 077; echo "gimp-remote-test-token-0123456789abcdef" >"$remote/token")
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
  -keyout "$remote/server.key" -out "$remote/server.crt" 2>/dev/null && chmod 600 "$remote/server.key"
DSK_MODEL_PATH="$DATA/models" "$ENGINE" serve --listen 127.0.0.1:0 --token-file "$remote/token" \
  --tls-cert "$remote/server.crt" --tls-key "$remote/server.key" >"$WORK/remote-server.log" 2>&1 &
server=$!
port=
for _ in $(seq 150); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/remote-server.log")
  [ -n "$port" ] && break
  sleep 0.2
done
fingerprint=$(sed -n 's/.*fingerprint \(sha256:[0-9A-F:]*\).*/\1/p' "$WORK/remote-server.log")
# DSK_ENGINE points nowhere and no local server may start: the edit can only run remotely.
remote_env() {
  DSK_NO_SERVER= DSK_ENGINE="$WORK/no-such-engine" DSK_ENGINE_URL="127.0.0.1:$port" \
    DSK_ENGINE_TOKEN_FILE="$remote/token" DSK_ENGINE_CERT="$1" "${@:2}"
}
remote_env "$fingerprint" gimp_batch remote 0 "(one-inpaint \"remote\")" &&
  log_has remote "CASE OK remote"
grep -q "client 1 (127.0.0.1:" "$WORK/remote-server.log" && pass "remote: the server saw the plug-in's connection" ||
  fail "remote: the server's log shows no client"
# A certificate other than the pinned one: refused, no layer added.
[ "${fingerprint:7:1}" = 0 ] && other="sha256:1${fingerprint:8}" || other="sha256:0${fingerprint:8}"
remote_env "$other" gimp_batch remote-pin 0 \
  "(broken-engine-case \"wrong pin\" \"not the pinned\") (say \"CASE OK remote-pin\")" &&
  log_has remote-pin "CASE OK remote-pin"
kill -TERM "$server" 2>/dev/null
wait "$server" 2>/dev/null
# The engine gone: one clear error, no layer.
remote_env "$fingerprint" gimp_batch remote-gone 0 \
  "(broken-engine-case \"engine gone\" \"cannot reach the remote DiffSketch engine\") (say \"CASE OK remote-gone\")" &&
  log_has remote-gone "CASE OK remote-gone"

echo "== the warm engine: the plug-in starts a server, the next edit uses it, a stale one is replaced"
sock="$WORK/run/diffsketch.sock"
server_pid() { pgrep -f -- "engine-copy serve --background" | head -n 1; }
# running PID: the process exists and is not a zombie (a stopped server waits for init to reap it).
running() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null); [ -n "$st" ] && [ "${st#Z}" = "$st" ]; }
# The engine is a copy, so that the test can "upgrade" it (touch) without touching the build.
cp "$ENGINE" "$WORK/engine-copy"
warm() { DSK_NO_SERVER= DSK_ENGINE="$WORK/engine-copy" DSK_ENGINE_IDLE_MINUTES=1 DSK_MODEL_PATH="$DATA/models" "$@"; }
warm gimp_batch warm-first 0 "(one-inpaint \"warm-first\")" && log_has warm-first "CASE OK warm-first"
first=$(server_pid)
if [ -n "$first" ] && [ -S "$sock" ]; then
  pass "warm: the first edit started a server (pid $first) that outlived GIMP"
  [ "$(ps -o sid= -p "$first" | tr -d ' ')" = "$first" ] && pass "warm: the server leads its own session (detached)" ||
    fail "warm: the server is not detached from the plug-in's session"
  grep -q "exits after 60 s without a client" "$WORK/cache/diffsketch/serve.log" &&
    pass "warm: the server's log is in XDG_CACHE_HOME and states its idle exit" || fail "warm: no server log"
else
  fail "warm: no server running after the first edit"
fi
warm gimp_batch warm-second 0 "(one-inpaint \"warm-second\")" && log_has warm-second "CASE OK warm-second"
[ -n "$first" ] && [ "$(server_pid)" = "$first" ] && pass "warm: the second edit used the same server" ||
  fail "warm: the second edit did not use the server (pid $(server_pid), was $first)"
# An upgrade: the executable on disk is newer than the running server's.
touch -d "+1 minute" "$WORK/engine-copy"
warm gimp_batch warm-upgraded 0 "(one-inpaint \"warm-upgraded\")" && log_has warm-upgraded "CASE OK warm-upgraded"
second=$(server_pid)
[ -n "$second" ] && [ "$second" != "$first" ] && ! running "$first" &&
  pass "warm: a server whose executable was replaced was stopped and a new one started" ||
  fail "warm: the replaced server was not restarted (pids $first -> $second)"
log_has warm-upgraded "was replaced since it started"
kill -TERM "$second" 2>/dev/null
for _ in $(seq 50); do [ -e "$sock" ] || break; sleep 0.1; done
# An older release: a server that answers no hello (here a socket that closes every connection).
python3 -c "
import os, socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(4)
while True:
    c, _ = s.accept(); c.close()
" "$sock" &
old=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
warm gimp_batch warm-old 0 "(one-inpaint \"warm-old\")" && log_has warm-old "CASE OK warm-old"
log_has warm-old "it is an older release"
! kill -0 "$old" 2>/dev/null && pass "warm: the older server was stopped" || { fail "warm: the older server still runs"; kill "$old"; }
wait "$old" 2>/dev/null
third=$(server_pid)
[ -n "$third" ] && pass "warm: a server of this release replaced it" || fail "warm: no new server"
kill -TERM "$third" 2>/dev/null
for _ in $(seq 50); do [ -e "$sock" ] || break; sleep 0.1; done
# DSK_ENGINE_IDLE_MINUTES=0: no server is started.
DSK_NO_SERVER= DSK_ENGINE="$WORK/engine-copy" DSK_ENGINE_IDLE_MINUTES=0 DSK_MODEL_PATH="$DATA/models" \
  gimp_batch warm-off 0 "(one-inpaint \"warm-off\")" && log_has warm-off "CASE OK warm-off"
[ -z "$(server_pid)" ] && [ ! -e "$sock" ] && pass "warm: engine-idle-minutes 0 starts no server" ||
  fail "warm: a server was started with engine-idle-minutes 0"
DSK_NO_SERVER= DSK_ENGINE_IDLE_MINUTES=abc gimp_batch warm-bad 0 \
  "(broken-engine-case \"bad idle minutes\" \"is not a number of minutes\") (say \"CASE OK warm-bad\")" &&
  log_has warm-bad "CASE OK warm-bad"

echo "== the Script-Fu batch script, with the command line of docs/gimp-plugin.md"
mkdir -p "$WORK/batch-in" "$WORK/batch-out"
gimp_batch batch-inputs 0 "(make-batch-inputs \"$WORK/batch-in\")"
timeout "$GIMP_TIMEOUT" gimp-console -i -d -f --quit --batch-interpreter=plug-in-script-fu-eval \
  -b "(load \"$HERE/../../plugin/scripts/diffsketch-batch.scm\") (diffsketch-batch \"$WORK/batch-in\" \"$WORK/batch-out\" \"$MODEL\" 3 42 3)" \
  >"$WORK/batch.log" 2>&1
status=$?
[ "$status" -eq 70 ] && pass "batch: exit status 70 (one file failed)" || fail "batch: exit status $status, expected 70"
log_has batch "summary: 1 done, 1 failed, 1 skipped"
log_has batch "FAILED $WORK/batch-in/bad.png"
if [ -f "$WORK/batch-out/pic-result.png" ]; then
  png_check "batch: pic-result.png keeps the pixels outside the mask" same "$WORK/batch-in/pic.png" "$WORK/batch-out/pic-result.png" $SEL
  png_check "batch: pic-result.png regenerated the mask" differs "$WORK/batch-in/pic.png" "$WORK/batch-out/pic-result.png" $SEL
else
  fail "batch: no pic-result.png"
fi
[ ! -e "$WORK/batch-out/bad-result.png" ] && pass "batch: nothing written for the failed file" || fail "batch: bad-result.png written"

echo "== cancel: the plug-in killed mid-job (what GIMP's cancel does) leaves no engine behind"
timeout "$GIMP_TIMEOUT" gimp-console -i -d -f --quit --batch-interpreter=plug-in-script-fu-eval \
  -b "(define model \"$MODEL\") (define out \"$WORK/out\") (load \"$HERE/cases.scm\")
      (let* ((s (make-scene RGB PRECISION-U8-NON-LINEAR)))
        (plug-in-diffsketch-inpaint #:run-mode RUN-NONINTERACTIVE #:image (car s) #:drawables (vector (caddr s))
                                    #:sketch-layer (cadddr s) #:model model #:steps 1000 #:variants 8 #:class 3 #:seed 1))" \
  >"$WORK/cancel.log" 2>&1 &
gimp_pid=$!
plugin_pid="" engine_pid=""
for _ in $(seq 300); do
  plugin_pid=$(pgrep -f -- "$WORK/profile/plug-ins/diffsketch/diffsketch" | head -n 1)
  [ -n "$plugin_pid" ] && engine_pid=$(pgrep -P "$plugin_pid" | head -n 1)
  [ -n "$engine_pid" ] && break
  sleep 0.2
done
if [ -n "$engine_pid" ]; then
  sleep 3  # the job is running
  kill -KILL "$plugin_pid"
  for _ in $(seq 50); do kill -0 "$engine_pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$engine_pid" 2>/dev/null; then
    fail "cancel: the engine (pid $engine_pid) still runs 10 s after the plug-in was killed"
    kill -KILL "$engine_pid"
  else
    pass "cancel: the engine stopped when the plug-in was killed"
  fi
else
  fail "cancel: the plug-in and its engine were not seen running"
fi
wait "$gimp_pid"
status=$?
[ "$status" -ne 0 ] && pass "cancel: the batch call failed (status $status)" || fail "cancel: the batch call succeeded"

echo
if [ "$failures" -eq 0 ]; then echo "all GIMP plug-in tests passed"; else echo "$failures GIMP plug-in test(s) failed"; fi
[ "$failures" -eq 0 ]

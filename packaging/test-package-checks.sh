#!/usr/bin/env bash
# Runs inside the clean root made by packaging/test-package.sh, as root: installs the package
# with apt-get, then checks it as the ordinary user "tester". Usage: test-package-checks.sh DEB
set -uo pipefail
deb=$1
failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
as_tester() { runuser -u tester -- env -i HOME=/home/tester USER=tester LANG=C.UTF-8 PATH=/usr/bin:/bin "$@"; }

echo "== apt-get install $(basename "$deb") (dependencies from the archive)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/tmp/apt.log 2>&1 || { tail -20 /tmp/apt.log; exit 1; }
# Recommends off: the test needs what the package depends on; GIMP's recommends (help, extra data)
# only make the download longer.
if apt-get install -y -q -o APT::Install-Recommends=false "$deb" >>/tmp/apt.log 2>&1; then
  pass "apt-get installed $(dpkg-query -W -f='${Package} ${Version}' diffsketch) and $(grep -c '^Unpacking' /tmp/apt.log) packages"
else
  tail -30 /tmp/apt.log
  fail "apt-get install"
  exit 1
fi
dpkg-query -W -f='Depends: ${Depends}\n' diffsketch
useradd --create-home --shell /bin/bash tester
echo "diffsketch --version: $(as_tester diffsketch --version)"

echo "== 1. GIMP 3 in batch mode lists the three procedures"
out=$(as_tester timeout 600 gimp-console-3.0 -i -d -f --quit --batch-interpreter=plug-in-script-fu-eval -b \
  '(display (list "PROCS" (car (gimp-pdb-procedure-exists "plug-in-diffsketch-inpaint")) (car (gimp-pdb-procedure-exists "plug-in-diffsketch-generate")) (car (gimp-pdb-procedure-exists "plug-in-diffsketch-interpolate")))) (newline)' 2>&1)
if grep -q "PROCS 1 1 1" <<<"$out"; then pass "inpaint, generate and interpolate are registered"; else fail "procedures: $out"; fi

echo "== 2. the packaged batch script inpaints a test picture with the packaged default model"
example=/usr/share/diffsketch/models/default/example
as_tester mkdir -p /home/tester/in /home/tester/out
as_tester cp "$example/image.png" /home/tester/in/photo.png
as_tester cp "$example/sketch.png" /home/tester/in/photo-sketch.png
as_tester cp "$example/mask.png" /home/tester/in/photo-mask.png
out=$(as_tester timeout 900 env DSK_ENGINE_IDLE_MINUTES=0 gimp-console-3.0 -i -d -f --quit \
  --batch-interpreter=plug-in-script-fu-eval -b \
  '(load "/usr/share/diffsketch/scripts/diffsketch-batch.scm") (diffsketch-batch "/home/tester/in" "/home/tester/out" "default" 25 42 -1)' 2>&1)
status=$?
result=/home/tester/out/photo-result.png
if [ "$status" -eq 0 ] && [ -s "$result" ] && [ "$(head -c 8 "$result" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] &&
   ! cmp -s "$result" /home/tester/in/photo.png; then
  pass "photo-result.png written ($(stat -c %s "$result") bytes), not the input"
  cp "$result" /tmp/photo-result.png
else
  fail "batch (exit $status): $(tail -20 <<<"$out")"
fi

echo "== 3. diffsketch doctor"
out=$(as_tester timeout 600 diffsketch doctor 2>&1)
status=$?
echo "$out" | sed 's/^/    /'
[ "$status" -eq 0 ] && pass "doctor: exit 0" || fail "doctor: exit $status"
# Recommends were left out above, so the reference BLAS serves LibTorch: doctor must say so, and
# stop saying so once the recommended OpenBLAS is installed.
if grep -q "\[warn\] BLAS library: .*/blas/libblas.so" <<<"$out"; then
  pass "doctor warns about the reference BLAS"
  apt-get install -y -q libopenblas0-pthread >>/tmp/apt.log 2>&1
  out=$(as_tester timeout 600 diffsketch doctor 2>&1)
  grep "BLAS library" <<<"$out" | sed 's/^/    /'
  grep -q "\[ ok \] BLAS library: .*openblas" <<<"$out" && pass "with libopenblas0-pthread, doctor finds OpenBLAS" ||
    fail "doctor after installing OpenBLAS: $out"
else
  grep -q "\[ ok \] BLAS library: .*openblas" <<<"$out" && pass "doctor finds OpenBLAS" || fail "doctor's BLAS check: $out"
fi

echo "== 4. apt-get remove --purge leaves nothing of the package behind"
dpkg -L diffsketch >/tmp/files.txt
apt-get remove --purge -y -q diffsketch >/tmp/remove.log 2>&1 || { tail -10 /tmp/remove.log; fail "apt-get remove"; }
left=""
while read -r f; do
  [ -e "$f" ] || continue
  [ -d "$f" ] && [ -n "$(dpkg -S "$f" 2>/dev/null)" ] && continue  # a folder other packages own too
  left+=" $f"
done </tmp/files.txt
if [ -z "$left" ]; then pass "no file of the package is left ($(wc -l </tmp/files.txt) paths checked)"; else fail "left behind:$left"; fi

echo "test-package: $failures failure(s)"
[ "$failures" -eq 0 ]

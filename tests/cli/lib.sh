# shellcheck shell=bash
# Helpers of the command-line tests (sourced): pass/fail counting and `expect`. The sourcing
# script sets `bin` (the diffsketch executable) first and ends with `[ "$failures" -eq 0 ]`.

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

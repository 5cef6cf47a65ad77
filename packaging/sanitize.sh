#!/usr/bin/env bash
# packaging/sanitize.sh [CTEST ARGS]: builds everything with AddressSanitizer + UndefinedBehaviorSanitizer
# (GCC, RelWithDebInfo) in build-asan/ and runs the unit, golden and server tests there (label unit
# and golden; not the portability cells, which repeat the same code under other kernels, not the
# GIMP test, not the slow training tests). Runs inside the build environment (./dsk test --sanitize).
# Any sanitizer report fails the test that triggered it. LibTorch and OpenCV themselves are not
# instrumented; leak checking is off (LibTorch keeps static allocations until exit).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build="$repo/build-asan"
san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" \
    "-DCMAKE_CXX_FLAGS=$san" "-DCMAKE_C_FLAGS=$san" \
    "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" \
    "-DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined" >/dev/null
fi
cmake --build "$build" -j "$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec ctest --test-dir "$build" --output-on-failure --timeout 3000 -j 2 -L 'unit|golden' -LE 'slow|portability|gimp' "$@"

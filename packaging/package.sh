#!/usr/bin/env bash
# Builds the Debian package (run by `./dsk package` inside the build environment): a release build
# with the prefix /usr in build-package/ (the tests are not built; the engine's objects come from
# ccache when ./dsk build ran before), then CPack. Prints the .deb's path and copies it to out/.
set -euo pipefail
repo=${DSK_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
build="$repo/build-package"
[ -f "$repo/models/default/model.json" ] || { echo "package: models/default has no model.json: the package would have no model" >&2; exit 1; }
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DDSK_BUILD_TESTS=OFF "${launcher[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)"
rm -rf "$build/packages"
(cd "$build" && cpack -G DEB >"$build/cpack.log" 2>&1) || { tail -30 "$build/cpack.log" >&2; echo "package: cpack failed; see $build/cpack.log" >&2; exit 1; }
deb=$(ls "$build"/packages/diffsketch_*_*.deb)
mkdir -p "$repo/out"
cp "$deb" "$repo/out/"
echo "package: $repo/out/$(basename "$deb")"
dpkg-deb --field "$deb" Package Version Architecture Depends Recommends Installed-Size

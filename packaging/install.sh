#!/usr/bin/env bash
# Installs the GIMP 3 plug-in, the diffsketch engine and the default model (run by `./dsk install
# [PREFIX]` inside the build environment, after the build).
#
#   packaging/install.sh            per user: the plug-in into the user's GIMP 3 profile, the engine,
#                                   model and batch script under $XDG_DATA_HOME/diffsketch
#   packaging/install.sh PREFIX     cmake --install into PREFIX (bin/, lib/gimp/3.0/plug-ins/,
#                                   share/diffsketch/); GIMP finds the plug-in there only when
#                                   PREFIX is GIMP's own prefix (/usr), or with -DDSK_GIMP_PLUGIN_DIR
#
# Prints where everything went.
set -euo pipefail

repo=${DSK_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
build="$repo/build"
engine_bin="$build/bin/diffsketch"
plugin_bin="$build/plug-ins/diffsketch/diffsketch"
die() { echo "install: $*" >&2; exit 1; }

[ -x "$engine_bin" ] || die "$engine_bin is missing: build first (./dsk build)"
[ -x "$plugin_bin" ] || die "$plugin_bin is missing: build first (./dsk build; needs DSK_BUILD_PLUGIN=ON)"

if [ -n "${1:-}" ]; then
  prefix=$(realpath -m "$1")
  cmake --install "$build" --prefix "$prefix"
  plugin_dir=$(sed -n 's/^DSK_GIMP_PLUGIN_DIR:STRING=//p' "$build/CMakeCache.txt")
  case $plugin_dir in /*) ;; *) plugin_dir="$prefix/$plugin_dir" ;; esac
  echo
  echo "DiffSketch installed under $prefix:"
  echo "  engine       $prefix/bin/diffsketch"
  echo "  plug-in      $plugin_dir/diffsketch/diffsketch (engine-path: $prefix/bin/diffsketch)"
  echo "  models       $prefix/share/diffsketch/models"
  echo "  batch script $prefix/share/diffsketch/scripts/diffsketch-batch.scm"
  exit 0
fi

: "${HOME:?HOME is not set}"
data="${XDG_DATA_HOME:-$HOME/.local/share}/diffsketch"
gimp_dir="${GIMP3_DIRECTORY:-${XDG_CONFIG_HOME:-$HOME/.config}/GIMP/3.0}"
plugin_dir="$gimp_dir/plug-ins/diffsketch"

# The plug-in folder and binary share the name (GIMP's rule); engine-path tells it where the engine is.
mkdir -p "$plugin_dir" "$data/bin" "$data/models" "$data/scripts"
install -m 0755 "$plugin_bin" "$plugin_dir/diffsketch"
install -m 0755 "$engine_bin" "$data/bin/diffsketch"
echo "$data/bin/diffsketch" >"$plugin_dir/engine-path"
install -m 0644 "$repo/plugin/scripts/diffsketch-batch.scm" "$data/scripts/diffsketch-batch.scm"

model_note="none yet (models/default/model.json does not exist: train it with packaging/train-default.sh); set the model argument to a model folder, or add folders to \$DSK_MODEL_PATH"
if [ -f "$repo/models/default/model.json" ]; then
  rm -rf "$data/models/default.tmp"
  cp -r "$repo/models/default" "$data/models/default.tmp"
  rm -rf "$data/models/default"
  mv "$data/models/default.tmp" "$data/models/default"
  model_note="$data/models/default (model id \"default\")"
fi

echo
echo "DiffSketch installed for $(id -un):"
echo "  plug-in       $plugin_dir/diffsketch  (Filters > DiffSketch in GIMP 3; restart GIMP)"
echo "  engine        $data/bin/diffsketch  (recorded in $plugin_dir/engine-path)"
echo "  default model $model_note"
echo "  batch script  $data/scripts/diffsketch-batch.scm"
echo "  models are searched in \$DSK_MODEL_PATH, $data/models, \$XDG_DATA_DIRS/diffsketch/models"
if [ -f /.dsk-bootstrapped ]; then
  echo "note: this went into the Debian 13 build root of ./dsk (HOME=$HOME there); run GIMP from it: ./dsk run -- gimp"
fi

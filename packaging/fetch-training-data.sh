#!/usr/bin/env bash
# Downloads and unpacks the Debian packages the default model is trained on (no other data):
# plasma-workspace-wallpapers, mate-backgrounds, tuxpaint-stamps-default.
# Usage (from the repo root): ./dsk run -- bash packaging/fetch-training-data.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.cache/data}
mkdir -p "$dir/debs" "$dir/root"
(cd "$dir/debs" && apt-get download plasma-workspace-wallpapers mate-backgrounds tuxpaint-stamps-default)
for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
echo "training pictures in $dir/root/usr/share (wallpapers, backgrounds, tuxpaint/stamps)"

#!/usr/bin/env bash
# Downloads a development set of photos that the default model never trained on and that are not
# python3-skimage's (those stay for the final report): budgie-backgrounds' photographs and eight
# photos from opencv-doc's sample data. Choices for editing/ (e.g. the detail stage) are made on
# it, beside the training data's validation split (mostly smooth wallpapers, unlike photos).
# Usage (from the repo root): ./dsk run -- bash packaging/fetch-dev-photos.sh [DIR]
# then: diffsketch eval-inpaint --images DIR/photos --split all ...
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.cache/dev-photos}
mkdir -p "$dir/debs" "$dir/root" "$dir/photos"
(cd "$dir/debs" && apt-get download budgie-backgrounds opencv-doc)
for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
# budgie's photographs (its one illustration, abstract-spiral, left out).
for f in "$dir"/root/usr/share/backgrounds/budgie/*.jpg; do
  [ "$(basename "$f")" = abstract-spiral.jpg ] || cp "$f" "$dir/photos/"
done
for name in baboon fruits squirrel_cls home HappyFish aloeL building; do
  cp "$dir/root/usr/share/doc/opencv-doc/examples/data/$name.jpg" "$dir/photos/"
done
echo "$(ls "$dir/photos" | wc -l) development photos in $dir/photos"

#!/usr/bin/env bash
# `diffsketch models add | verify | remove | info | list | manifest` end to end, in a private
# XDG_DATA_HOME: a model folder and an official checkpoint are added with a manifest; a changed,
# truncated or missing file is named by verify and refused by the engine; bad sources (a truncated
# checkpoint, a pickle with unexpected globals, a wrong model.json, an existing name, a read-only
# models folder) get one clear error and leave nothing behind; remove warns when GIMP's saved
# settings use the model and refuses models outside the user's folders.
# Usage: test_models.sh PATH/TO/diffsketch PATH/TO/tests/data PATH/TO/models   (CTest: cli_models)
set -uo pipefail

bin=${1:?usage: test_models.sh DIFFSKETCH TESTS_DATA SHIPPED_MODELS}
data=${2:?usage: test_models.sh DIFFSKETCH TESTS_DATA SHIPPED_MODELS}
shipped=${3:?usage: test_models.sh DIFFSKETCH TESTS_DATA SHIPPED_MODELS}
[ -x "$bin" ] || { echo "FAIL: $bin is not an executable"; exit 1; }
export OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
work=$(mktemp -d "${TMPDIR:-/tmp}/dsk-models-XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
export XDG_DATA_HOME="$work/data" GIMP3_DIRECTORY="$work/gimp" DSK_MODEL_PATH=""
user="$XDG_DATA_HOME/diffsketch/models"
# shellcheck source=tests/cli/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Nothing but the listed ids in the user's models folder: no staging or half-copied folder.
only_models() {
  local got want
  got=$(ls -A "$user" 2>/dev/null | sort | tr '\n' ' ')
  want=$(printf '%s\n' "$@" | sed '/^$/d' | sort | tr '\n' ' ')
  [ "$got" = "$want" ] && pass "models folder holds exactly: ${want:-nothing}" || fail "models folder holds '$got', expected '$want'"
}

# ---- the shipped default model carries a manifest that holds ----
expect 0 "default: verified \([0-9]+ files, SHA-256\)" "the shipped default model verifies" -- models verify "$shipped/default"

# ---- add a model folder ----
expect 0 "added model 'tiny' .*editing-unet, 32 px, [0-9]+ files, manifest.json written" "add a model folder" -- \
  models add "$data/models/tiny-editing" --name tiny
[ -f "$user/tiny/manifest.json" ] && pass "the added folder has a manifest" || fail "no manifest.json in $user/tiny"
expect 0 "^tiny\s+editing-unet\s+32 px" "list shows the added model" -- models list
expect 0 "tiny: verified" "verify the added model" -- models verify tiny
expect 0 '"card": "tiny-editing: a test fixture"' "list --json carries the card's first line" -- models list --json
expect 0 "parameters  201531" "info: parameters" -- models info tiny
expect 0 "card        tiny-editing: a test fixture" "info: the card's first line" -- models info tiny
expect 0 "manifest    verified" "info: manifest verified" -- models info tiny
expect 0 "copied from the model folder tiny-editing" "info: how it was made" -- models info tiny
expect 0 '"parameters": 201531' "info --json" -- models info tiny --json
expect 2 "already installed at .*tiny.*--name.*models remove tiny" "add under an existing name" -- \
  models add "$data/models/tiny-editing" --name tiny
expect 2 "not usable as an id" "add with a bad name" -- models add "$data/models/tiny-editing" --name ../evil
expect 2 "does not exist" "add a missing path" -- models add "$work/nothing-here"
expect 2 "is a file; a checkpoint is converted with --preset" "add a file without a preset" -- \
  models add "$data/conformance/adm-small/classifier.pt"
expect 2 "is a model folder.*--preset and --config are for" "add a folder with --preset" -- \
  models add "$data/models/tiny-editing" --preset adm-64-cond --name t2
only_models tiny

# ---- a damaged model: verify names the file, the engine refuses it with the same words ----
cp -r "$user/tiny" "$work/tiny-backup"
printf 'x' | dd of="$user/tiny/weights.safetensors" bs=1 seek=5000 conv=notrunc status=none
expect 1 "weights.safetensors: contents changed" "verify names a changed file" -- models verify tiny
python3 - "$work" <<'PY'
import sys
d = sys.argv[1]
w, h = 32, 32
open(f"{d}/in.ppm", "wb").write(b"P6 32 32 255\n" + bytes((x * 7 + y) % 256 for y in range(h) for x in range(w) for _ in range(3)))
open(f"{d}/mask.pgm", "wb").write(b"P5 32 32 255\n" + bytes(255 if 8 <= x < 24 and 8 <= y < 24 else 0 for y in range(h) for x in range(w)))
open(f"{d}/sketch.pgm", "wb").write(b"P5 32 32 255\n" + bytes(0 if x == 16 else 255 for y in range(h) for x in range(w)))
PY
expect 2 "model 'tiny' .* fails its manifest: weights.safetensors: contents changed.*Fix: reinstall" \
  "edit refuses a damaged model" -- edit --model tiny --image "$work/in.ppm" --mask "$work/mask.pgm" \
  --sketch "$work/sketch.pgm" --steps 2 --sampler ddim --device cpu --out "$work/never.png"
[ ! -e "$work/never.png" ] && pass "no output from a damaged model" || fail "a damaged model wrote an output"
truncate -s 1000 "$user/tiny/weights.safetensors"
expect 1 "weights.safetensors: 1000 bytes, the manifest says [0-9]+ \(truncated\)" "verify names a truncated file" -- models verify tiny
expect 0 "tiny.*DAMAGED \(diffsketch models verify tiny\)" "list marks a truncated model" -- models list
rm "$user/tiny/model.json"
cp "$work/tiny-backup/model.json" "$user/tiny/model.json"
rm "$user/tiny/README.md"
expect 1 "README.md: missing" "verify names a missing file" -- models verify tiny
rm -rf "$user/tiny" && cp -r "$work/tiny-backup" "$user/tiny"
echo notes >"$user/tiny/notes.txt"
expect 0 "note: notes.txt is not in the manifest" "an extra file is a note, not a failure" -- models verify tiny
rm "$user/tiny/notes.txt"
echo '{"format_version": 1, "files": [{"name": "../../etc/passwd", "size": 1, "sha256": "'"$(printf '0%.0s' $(seq 64))"'"}]}' \
  >"$user/tiny/manifest.json"
expect 1 "leaves the model folder" "a manifest naming a file outside the folder" -- models verify tiny
cp "$work/tiny-backup/manifest.json" "$user/tiny/manifest.json"
expect 0 "tiny: verified" "restored copy verifies again" -- models verify tiny

# ---- bad sources: one clear error, nothing half-written ----
mkdir -p "$work/wrong"
cp "$data/models/tiny-editing/weights.safetensors" "$work/wrong/"
python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); j["flags"]["num_channels"] = 64; json.dump(j, open(sys.argv[2], "w"))' \
  "$data/models/tiny-editing/model.json" "$work/wrong/model.json"
expect 2 "has shape .* the config expects" "add a folder whose model.json does not match its weights" -- models add "$work/wrong"
mkdir -p "$work/nojson" && cp "$data/models/tiny-editing/weights.safetensors" "$work/nojson/"
expect 2 "model.json: missing" "add a folder without model.json" -- models add "$work/nojson"
cp -r "$work/tiny-backup" "$work/damaged" && truncate -s 100 "$work/damaged/weights.safetensors"
expect 2 "fails its manifest: weights.safetensors: 100 bytes.*truncated" "add a folder failing its own manifest" -- models add "$work/damaged"
head -c 100000 "$data/conformance/adm-small/classifier.pt" >"$work/truncated.pt"
cfg="$work/classifier-config.json"
python3 -c 'import json, sys; c = json.load(open(sys.argv[1]))
print(json.dumps({"kind": "adm-classifier", "flags": {k: v for k, v in c.items() if k.startswith("classifier_") and k != "classifier_scale" or k in ("image_size", "num_classes")}}))' \
  "$data/conformance/adm-small/config.json" >"$cfg"
expect 2 "truncated\.pt: .*damaged or truncated" "add a truncated checkpoint" -- models add "$work/truncated.pt" --config "$cfg"
# A torch.save zip whose pickle calls os.system: LibTorch's unpickler must refuse the global.
python3 - "$data/conformance/adm-small/classifier.pt" "$work/evil.pt" "$work/pwned" <<'PY'
import sys, zipfile, pickle
src, dst, marker = sys.argv[1:]
class Evil:
    def __reduce__(self):
        import os
        return (os.system, ("touch " + marker,))
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
    for item in zin.infolist():
        data = zin.read(item.filename)
        if item.filename.endswith("/data.pkl"):
            data = pickle.dumps(Evil(), protocol=2)
        zout.writestr(item, data)
PY
expect 2 "evil\.pt: .*unknown type posix\.system.*refused.*not run" "add a pickle with unexpected globals" -- models add "$work/evil.pt" --preset adm-64-classifier
[ ! -e "$work/pwned" ] && pass "the pickle's global was not run" || fail "the pickle ran os.system"
ro="$work/readonly"
mkdir -p "$ro" && chmod 0555 "$ro"
if [ "$(id -u)" -ne 0 ]; then
  expect 1 "models folder .*readonly.* is not writable.*--dest" "add into a read-only models folder" -- \
    models add "$data/models/tiny-editing" --dest "$ro"
else  # root writes through permission bits; a read-only file system refuses it too
  expect 1 "cannot create the models folder /proc/diffsketch-models|not writable" "add into a read-only file system" -- \
    models add "$data/models/tiny-editing" --dest /proc/diffsketch-models
fi
[ -z "$(ls -A "$ro")" ] && pass "nothing written into the read-only folder" || fail "something was written into $ro"
only_models tiny

# ---- an official checkpoint converted on add ----
expect 0 "added model 'clf' .*adm-classifier, 32 px" "add a checkpoint with --config" -- \
  models add "$data/conformance/adm-small/classifier.pt" --config "$cfg" --name clf
expect 0 "converted from classifier.pt with the configuration" "info: a converted checkpoint says so" -- models info clf
expect 0 "clf: verified" "the converted model verifies" -- models verify clf

# ---- remove ----
mkdir -p "$GIMP3_DIRECTORY/plug-in-settings"
printf '# settings\n(model "tiny")\n(steps 25)\n' >"$GIMP3_DIRECTORY/plug-in-settings/GimpProcedureConfig-plug-in-diffsketch-inpaint.last"
expect 0 "warning: the GIMP plug-in's saved settings use model 'tiny'" "remove warns about GIMP's saved settings" -- models remove tiny
expect 0 "removed model 'clf'" "remove another model" -- models remove clf
only_models
expect 2 "no installed model 'tiny'" "remove a model that is not installed" -- models remove tiny
expect 2 "takes a model id" "remove a path" -- models remove "$user/x"
DSK_MODEL_PATH= expect 2 "system-wide or built-in models folder, not yours to remove" "remove the built-in default model" -- \
  models remove default

echo "cli_models: $failures failure(s)"
[ "$failures" -eq 0 ]

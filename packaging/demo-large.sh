#!/usr/bin/env bash
# packaging/demo-large.sh: a 1024 x 1024 px selection, inpainted with and without the coarse-to-fine
# refinement (docs/editing-model.md, "Regions"), to show that a large selection does not come back
# as a blurry upscale of the 64 px working resolution.
# Usage (from the repo root): ./dsk run -- bash packaging/demo-large.sh [IMAGE] [OUT_DIR]  (MODEL=DIR: another model)
# IMAGE: at least 1024 px on its short side; the default is a picture of mate-backgrounds that the
# default model's validation split holds out (packaging/fetch-training-data.sh fetches it).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
command -v diffsketch >/dev/null || PATH="$repo/build/bin:$PATH"
image=${1:-.cache/data/root/usr/share/backgrounds/mate/abstract/Elephants.jpg}
out=${2:-out/large}
model=${MODEL:-models/default}
[ -f "$image" ] || { echo "demo-large: no picture '$image' (run packaging/fetch-training-data.sh, or pass one)" >&2; exit 1; }
mkdir -p "$out"

# The selection (a 1024 px square, centred) and a sketch inside it: a horizon and a round shape.
# Written as PNG with python3's zlib only (no imaging library needed).
python3 - "$image" "$out" <<'EOF'
import math, struct, sys, zlib, subprocess
image, out = sys.argv[1], sys.argv[2]
# Image size from the file header (PNG or JPEG), so no decoder is needed.
def image_size(path):
    data = open(path, 'rb').read()
    if data[:8] == b'\x89PNG\r\n\x1a\n':
        return struct.unpack('>II', data[16:24])
    i = 2
    while i < len(data):
        if data[i] != 0xFF: i += 1; continue
        marker = data[i + 1]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack('>HH', data[i + 5:i + 9]); return w, h
        i += 2 + struct.unpack('>H', data[i + 2:i + 4])[0]
    raise SystemExit('demo-large: cannot read the size of ' + path)
w, h = image_size(image)
side = 1024
if min(w, h) < side: raise SystemExit(f'demo-large: {image} is {w}x{h}; the selection needs 1024 px')
x0, y0 = (w - side) // 2, (h - side) // 2
def write_png(path, rows):
    raw = b''.join(b'\x00' + bytes(r) for r in rows)
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    open(path, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0))
                           + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))
mask = [bytearray(w) for _ in range(h)]
for y in range(y0, y0 + side):
    mask[y][x0:x0 + side] = b'\xff' * side
write_png(out + '/mask.png', mask)
sketch = [bytearray(b'\xff' * w) for _ in range(h)]
def dot(cx, cy, r=4):
    for y in range(int(cy) - r, int(cy) + r + 1):
        for x in range(int(cx) - r, int(cx) + r + 1):
            if 0 <= x < w and 0 <= y < h and (x - cx) ** 2 + (y - cy) ** 2 <= r * r: sketch[y][x] = 0
for k in range(2000):  # a gently curved horizon across the selection
    t = k / 1999
    dot(x0 + 40 + t * (side - 80), y0 + 0.62 * side + 40 * math.sin(t * math.pi * 2))
for k in range(3000):  # a round shape above it
    a = 2 * math.pi * k / 3000
    dot(x0 + 0.5 * side + 0.18 * side * math.cos(a), y0 + 0.33 * side + 0.18 * side * math.sin(a))
write_png(out + '/sketch.png', sketch)
print(f'demo-large: {w}x{h} picture, selection {side}x{side} at ({x0}, {y0})')
EOF

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
for mode in refine no-refine; do
  flag=(); [ "$mode" = no-refine ] && flag=(--no-refine)
  start=$(now)
  diffsketch edit --model "$model" --image "$image" --mask "$out/mask.png" --sketch "$out/sketch.png" \
    --steps 20 --seed 1 "${flag[@]}" --out "$out/result-$mode.png" >/dev/null 2>"$out/edit-$mode.log" ||
    { tr '\r' '\n' <"$out/edit-$mode.log" | tail -3 >&2; exit 1; }
  echo "demo-large: $mode: $out/result-$mode.png ($(since "$start"))"
done

# A 1:1 detail (256 px square inside the selection) of both results side by side.
python3 - "$out" <<'EOF2'
import struct, sys, zlib
out = sys.argv[1]
def read_png(path):
    data = open(path, 'rb').read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n', path
    i, idat, hdr = 8, b'', None
    while i < len(data):
        n, t = struct.unpack('>I4s', data[i:i + 8])
        if t == b'IHDR': hdr = struct.unpack('>IIBBBBB', data[i + 8:i + 21])
        if t == b'IDAT': idat += data[i + 8:i + 8 + n]
        i += 12 + n
    w, h, depth, ctype = hdr[:4]
    if depth != 8 or ctype not in (0, 2, 6): raise SystemExit(f'demo-large: {path}: only 8-bit gray/RGB/RGBA PNG')
    bpp = {0: 1, 2: 3, 6: 4}[ctype]
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([bytes(line[k * bpp:k * bpp + 3]) if bpp >= 3 else bytes([line[k]] * 3) for k in range(w)])
        prev = line
    return w, h, rows
crops = []
for mode in ('refine', 'no-refine'):
    w, h, rows = read_png(f'{out}/result-{mode}.png')
    side, x0, y0 = 256, (w - 256) // 2 + 120, (h - 256) // 2 + 60
    crops.append([b''.join(r[x0:x0 + side]) for r in rows[y0:y0 + side]])
gap = b'\xff\xff\xff' * 8
rows = [crops[0][y] + gap + crops[1][y] for y in range(256)]
W = 256 * 2 + 8
raw = b''.join(b'\x00' + r for r in rows)
chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
open(f'{out}/detail.png', 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack(">IIBBBBB", W, 256, 8, 2, 0, 0, 0))
                                       + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))
print(f'demo-large: 1:1 detail (left: refined, right: plain upscale): {out}/detail.png')
EOF2

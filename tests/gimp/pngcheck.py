#!/usr/bin/env python3
"""Pixel checks on PNGs exported by GIMP in the plug-in tests (standard library only).

  pngcheck.py info A.png                    -> "W H CHANNELS BITDEPTH"
  pngcheck.py same A.png B.png [X Y W H]    every pixel equal (outside the rectangle, if given)
  pngcheck.py close A.png B.png LEVELS      every sample within LEVELS of the other image's
  pngcheck.py differs A.png B.png X Y W H   some pixel inside the rectangle differs
  pngcheck.py alpha A.png X Y W H           alpha 0 outside the rectangle and not all 0 inside
Exit status 0 when the check holds, 1 with a message otherwise.
"""
import struct
import sys
import zlib


def read_png(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{path}: not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    w, h, depth, ctype, _, _, interlace = ihdr
    if interlace:
        raise SystemExit(f"{path}: interlaced PNGs are not supported here")
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if channels is None or depth not in (8, 16):
        raise SystemExit(f"{path}: colour type {ctype} / depth {depth} not supported here")
    bpp = channels * depth // 8
    stride = w * bpp
    raw = zlib.decompress(idat)
    rows, prev = [], bytearray(stride)
    for y in range(h):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    size = depth // 8
    pixels = []
    for row in rows:
        samples = [int.from_bytes(row[i:i + size], "big") for i in range(0, stride, size)]
        pixels.append([tuple(samples[x * channels:(x + 1) * channels]) for x in range(w)])
    return {"w": w, "h": h, "channels": channels, "depth": depth, "px": pixels}


def inside(x, y, rect):
    rx, ry, rw, rh = rect
    return rx <= x < rx + rw and ry <= y < ry + rh


def same_format(a, b, name_a, name_b):
    if (a["w"], a["h"], a["channels"], a["depth"]) == (b["w"], b["h"], b["channels"], b["depth"]):
        return True
    print(f"{name_a} and {name_b} differ in size or format")
    return False


def main(argv):
    cmd = argv[1]
    if cmd == "info":
        p = read_png(argv[2])
        print(p["w"], p["h"], p["channels"], p["depth"])
        return 0
    if cmd in ("same", "differs"):
        a, b = read_png(argv[2]), read_png(argv[3])
        rect = tuple(int(v) for v in argv[4:8]) if len(argv) >= 8 else None
        if not same_format(a, b, argv[2], argv[3]):
            return 1
        diff_in = diff_out = 0
        for y in range(a["h"]):
            for x in range(a["w"]):
                if a["px"][y][x] != b["px"][y][x]:
                    if rect and inside(x, y, rect):
                        diff_in += 1
                    else:
                        diff_out += 1
        if cmd == "same" and diff_out:
            print(f"{diff_out} pixels differ {'outside the rectangle' if rect else ''} between {argv[2]} and {argv[3]}")
            return 1
        if cmd == "differs" and not diff_in:
            print(f"no pixel inside the rectangle differs between {argv[2]} and {argv[3]}")
            return 1
        print(f"ok: {diff_in} differ inside, {diff_out} outside")
        return 0
    if cmd == "close":
        a, b, levels = read_png(argv[2]), read_png(argv[3]), int(argv[4])
        if not same_format(a, b, argv[2], argv[3]):
            return 1
        worst = max(abs(u - v) for ra, rb in zip(a["px"], b["px"]) for pa, pb in zip(ra, rb) for u, v in zip(pa, pb))
        if worst > levels:
            print(f"samples differ by up to {worst} levels (more than {levels}) between {argv[2]} and {argv[3]}")
            return 1
        print(f"ok: samples differ by at most {worst} level(s)")
        return 0
    if cmd == "alpha":
        p = read_png(argv[2])
        rect = tuple(int(v) for v in argv[3:7])
        if p["channels"] not in (2, 4):
            print(f"{argv[2]} has no alpha")
            return 1
        opaque_out = sum(1 for y in range(p["h"]) for x in range(p["w"]) if not inside(x, y, rect) and p["px"][y][x][-1])
        opaque_in = sum(1 for y in range(p["h"]) for x in range(p["w"]) if inside(x, y, rect) and p["px"][y][x][-1])
        if opaque_out or not opaque_in:
            print(f"{argv[2]}: {opaque_out} non-transparent pixels outside the selection, {opaque_in} inside")
            return 1
        print(f"ok: {opaque_in} pixels inside, none outside")
        return 0
    raise SystemExit(f"unknown check {cmd}")


if __name__ == "__main__":
    sys.exit(main(sys.argv))

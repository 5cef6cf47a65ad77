#!/usr/bin/env python3
"""The requests a tapping engine recorded (run_gimp_tests.sh: the plug-in's input to the engine,
copied by `tee`), one JSON line each (standard library only).

  requests.py TAP_FILE   -> per request: {"type", "model", "image": [w, h] or null, "image_x",
                            "image_y", "sketch": [w, h] or null, "sketch_guidance"}
"""
import json
import struct
import sys

SIZES = {"u8": 1, "u16": 2, "f32": 4}


def frames(data):
    pos = 0
    while pos < len(data):
        if data[pos:pos + 4] != b"DSKP":
            raise SystemExit(f"no frame at byte {pos}")
        _, count, n = struct.unpack("<HHI", data[pos + 4:pos + 12])
        header = json.loads(data[pos + 12:pos + 12 + n])
        pos += 12 + n
        for p in header["payloads"]:
            pos += p["width"] * p["height"] * p["channels"] * SIZES[p["dtype"]]
        yield header


def size(header, msg, key):
    i = msg.get(key)
    return None if i is None else [header["payloads"][i]["width"], header["payloads"][i]["height"]]


for h in frames(open(sys.argv[1], "rb").read()):
    msg = h.get("generate", h)
    print(json.dumps({"type": h["type"], "model": msg.get("model"), "image": size(h, msg, "image"),
                      "image_x": msg.get("image_x"), "image_y": msg.get("image_y"), "sketch": size(h, msg, "sketch"),
                      "sketch_guidance": msg.get("sketch_guidance")}))

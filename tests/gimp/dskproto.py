"""The DiffSketch framed protocol for the Python tests (stdlib only): frames, a reader, requests.

  from dskproto import frame, Reader, edit_request, until_final
"""
import json
import struct

VERSION = 4


def frame(header, payloads=(), version=VERSION):
    text = json.dumps(header).encode()
    return b"DSKP" + struct.pack("<HHI", version, len(payloads), len(text)) + text + b"".join(payloads)


def edit_request(model, steps=3, variants=1, seed=7):
    w = h = 32
    image = struct.pack(f"<{w * h * 4}f", *([0.5, 0.25, 0.75, 1.0] * (w * h)))
    mask = bytes(255 if 8 <= x < 24 and 8 <= y < 24 else 0 for y in range(h) for x in range(w))
    header = {
        "type": "edit", "model": model,
        "sampling": {"steps": steps, "respacing": "", "sampler": "ddim", "eta": 0.0, "seed": seed, "device": "cpu",
                     "classifier": "", "class": 3, "classifier_scale": 1.0},
        "image": 0, "mask": 1, "sketch": None, "sketch_scale": 1.0, "variants": variants, "context_margin": 0.25,
        "feather": 2, "preview": True,
        "init_strength": 1.0,  # every step runs (the default 0.8 starts from a smooth fill, at step 2 of 3)
        "payloads": [{"width": w, "height": h, "channels": 4, "dtype": "f32"},
                     {"width": w, "height": h, "channels": 1, "dtype": "u8"}],
    }
    return frame(header, [image, mask])


class Reader:
    def __init__(self, read):
        self.read = read

    def exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.read(n - len(out))
            if not chunk:
                return None
            out += chunk
        return out

    def message(self):
        head = self.exact(12)
        if head is None:
            return None
        assert head[:4] == b"DSKP", head
        version, count, n = struct.unpack("<HHI", head[4:])
        msg = json.loads(self.exact(n))
        msg["_version"] = version
        sizes = {"u8": 1, "u16": 2, "f32": 4}
        msg["_payloads"] = [self.exact(p["width"] * p["height"] * p["channels"] * sizes[p["dtype"]]) for p in msg["payloads"]]
        return msg


def until_final(reader):
    """Reads up to the final message; returns it (None when the stream ended) and the progress messages."""
    progress = []
    while True:
        m = reader.message()
        if m is None or m["type"] != "progress":
            return m, progress
        progress.append(m)

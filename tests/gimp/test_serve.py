#!/usr/bin/env python3
"""`diffsketch serve`, driven over its framed protocol as the plug-in drives it (stdlib only).

  test_serve.py ENGINE MODELS_DIR WORK_DIR

Checks: model list; an edit with progress and a result; a version mismatch answered with a clear
error; a cancel request stops the job and the engine keeps serving; closing stdin mid-job makes
the engine exit at once; the socket server (mode 0600, one client after another, removed on
SIGTERM) and a client vanishing mid-job there.
"""
import json
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import time

ENGINE, MODELS, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
MODEL = os.path.join(MODELS, "adm-small")
failures = []
os.makedirs(WORK, exist_ok=True)


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def frame(header, payloads=(), version=1):
    text = json.dumps(header).encode()
    return b"DSKP" + struct.pack("<HHI", version, len(payloads), len(text)) + text + b"".join(payloads)


def edit_request(steps=3, variants=1, seed=7):
    w = h = 32
    image = struct.pack(f"<{w * h * 4}f", *([0.5, 0.25, 0.75, 1.0] * (w * h)))
    mask = bytes(255 if 8 <= x < 24 and 8 <= y < 24 else 0 for y in range(h) for x in range(w))
    header = {
        "type": "edit", "model": MODEL,
        "sampling": {"steps": steps, "respacing": "", "sampler": "ddim", "eta": 0.0, "seed": seed, "device": "cpu",
                     "classifier": "", "class": 3, "classifier_scale": 1.0},
        "image": 0, "mask": 1, "sketch": None, "sketch_scale": 1.0, "variants": variants, "context_margin": 0.25,
        "feather": 2, "preview": True,
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


def start_stdio():
    env = dict(os.environ, DSK_MODEL_PATH=MODELS)
    p = subprocess.Popen([ENGINE, "serve", "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=open(os.path.join(WORK, "serve-stderr.log"), "ab"), env=env)
    return p, Reader(p.stdout.read)


def until_final(reader):
    progress = []
    while True:
        m = reader.message()
        if m is None or m["type"] != "progress":
            return m, progress
        progress.append(m)


# 1-2: model list, then an edit on the same engine.
p, r = start_stdio()
p.stdin.write(frame({"type": "models", "payloads": []}))
p.stdin.flush()
m = r.message()
check(m is not None and m["type"] == "model-list" and "adm-small" in [x["id"] for x in m["models"]], "models lists adm-small")
p.stdin.write(edit_request())
p.stdin.flush()
m, progress = until_final(r)
check(m is not None and m["type"] == "result", f"edit answers a result (got {m and m.get('type')}: {m and m.get('message')})")
check(len(progress) == 3 and progress[-1]["step"] == 3 and progress[-1]["total"] == 3, "one progress message per step")
check(all(x["payloads"] and x["payloads"][0]["channels"] == 3 for x in progress), "progress carries an RGB preview")
if m and m["type"] == "result":
    check(m["seeds"] == [7] and m["payloads"][0] == {"width": 32, "height": 32, "channels": 4, "dtype": "f32"},
          "result: one 32x32 RGBA float image, seed 7")
# 3: a model that does not exist is an input error, and the engine keeps serving.
bad = edit_request()
text_len = struct.unpack("<I", bad[8:12])[0]
header = json.loads(bad[12:12 + text_len])
header["model"] = "no-such-model"
p.stdin.write(frame(header, [bad[12 + text_len:12 + text_len + 32 * 32 * 16], bad[12 + text_len + 32 * 32 * 16:]]))
p.stdin.flush()
m, _ = until_final(r)
check(m is not None and m["type"] == "error" and m["kind"] == "input" and "no-such-model" in m["message"],
      "a missing model is an input error naming it")
p.stdin.close()
check(p.wait(timeout=30) == 0, "stdin closed between jobs: the engine exits with status 0")

# 4: version mismatch.
p, r = start_stdio()
p.stdin.write(frame({"type": "models", "payloads": []}, version=2))
p.stdin.flush()
m = r.message()
check(m is not None and m["type"] == "error" and m["kind"] == "protocol" and "version 2" in m["message"]
      and "version 1" in m["message"], "a version-2 client gets a protocol error naming both versions")
p.stdin.close()
p.wait(timeout=30)

# 5: cancel request mid-job; the engine answers "cancelled" and serves the next request.
p, r = start_stdio()
p.stdin.write(edit_request(steps=1000, variants=8))
p.stdin.flush()
first = r.message()
check(first is not None and first["type"] == "progress", "a long job reports progress")
p.stdin.write(frame({"type": "cancel", "payloads": []}))
p.stdin.flush()
t0 = time.time()
m, _ = until_final(r)
check(m is not None and m["type"] == "error" and m["kind"] == "cancelled", "cancel request: the job ends as cancelled")
check(time.time() - t0 < 10, f"cancel took {time.time() - t0:.1f} s")
p.stdin.write(frame({"type": "models", "payloads": []}))
p.stdin.flush()
m = r.message()
check(m is not None and m["type"] == "model-list", "after a cancel the engine serves the next request")

# 6: closing stdin mid-job (what GIMP's cancel does by killing the plug-in): the engine exits.
p.stdin.write(edit_request(steps=1000, variants=8))
p.stdin.flush()
r.message()
t0 = time.time()
p.stdin.close()
try:
    p.wait(timeout=15)
    check(True, f"stdin closed mid-job: the engine exited after {time.time() - t0:.1f} s")
except subprocess.TimeoutExpired:
    p.kill()
    check(False, "stdin closed mid-job: the engine is still running after 15 s")

# 7: the socket server.
sock_path = os.path.join(WORK, "run", "diffsketch.sock")
os.makedirs(os.path.dirname(sock_path), mode=0o700, exist_ok=True)
server = subprocess.Popen([ENGINE, "serve", "--socket", sock_path], env=dict(os.environ, DSK_MODEL_PATH=MODELS),
                          stderr=open(os.path.join(WORK, "serve-socket.log"), "ab"))
for _ in range(200):
    if os.path.exists(sock_path):
        break
    time.sleep(0.1)
check(os.path.exists(sock_path) and stat.S_IMODE(os.stat(sock_path).st_mode) == 0o600, "the socket exists with mode 0600")


def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    return s, Reader(s.recv)


s, r = connect()
s.sendall(edit_request(steps=1000, variants=8))
check(r.message()["type"] == "progress", "socket: a long job starts")
s.close()  # the client vanishes mid-job: the server cancels and serves the next client
t0 = time.time()
s, r = connect()
s.sendall(edit_request())
m, _ = until_final(r)
check(m is not None and m["type"] == "result", f"socket: the next client gets its result ({time.time() - t0:.1f} s)")
s.close()
server.send_signal(signal.SIGTERM)
server.wait(timeout=15)
check(not os.path.exists(sock_path), "SIGTERM: the server removes its socket")

print(f"{len(failures)} failed" if failures else "all passed")
sys.exit(1 if failures else 0)

#!/usr/bin/env python3
"""`diffsketch serve`, driven over its framed protocol as the plug-in drives it (stdlib only).

  test_serve.py ENGINE MODELS_DIR WORK_DIR

Checks: model list; an edit with progress and a result; an edit of a crop of the layer gives the
whole layer's pixels (transparent and paper sketches, and strokes covering the crop); sketch
guidance in generate requests, and its range; a version mismatch answered with a clear error; a request sent while a job runs is refused with a clear message; a cancel request stops the job and the engine keeps serving; closing stdin mid-job makes
the engine exit at once; the socket server (mode 0600, one client after another, removed on
SIGTERM) and a client vanishing mid-job there; hostile frames (a non-string type, a header nested
400000 deep, a bad frame after a job) and a broken model folder never make the server exit; a
client stalled inside a frame holds up nobody and is dropped after --idle-timeout; hello
names the release, executable and pid; --exit-when-idle exits without a client and removes the
socket; --background returns once listening and leaves a detached server.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dskproto  # noqa: E402
from dskproto import Reader, frame, until_final  # noqa: E402

ENGINE, MODELS, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
MODEL = os.path.join(MODELS, "adm-small")
EDITING = os.path.join(MODELS, "tiny-editing")
failures = []
os.makedirs(WORK, exist_ok=True)


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def edit_request(steps=3, variants=1, seed=7):
    return dskproto.edit_request(MODEL, steps, variants, seed)


def start_stdio():
    env = dict(os.environ, DSK_MODEL_PATH=MODELS)
    p = subprocess.Popen([ENGINE, "serve", "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=open(os.path.join(WORK, "serve-stderr.log"), "ab"), env=env)
    return p, Reader(p.stdout.read)


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

# 3b: an edit of a crop of the layer (image_x, image_y; the sketch over the whole layer) gives the
# whole layer's pixels over the crop, whatever the sketch: transparent, paper, or strokes covering
# the whole crop (then the engine edits the whole layer, knowing only the crop's pixels).
LW, LH = 96, 80
BOX = (60, 30, 12, 10)  # the selection, x y w h


def layer_image():
    return struct.pack(f"<{LW * LH * 4}f", *[v for y in range(LH) for x in range(LW)
                                              for v in (x / LW, y / LH, ((x * 7 + y * 3) % 32) / 32, 1.0)])


def layer_mask():
    x0, y0, w, h = BOX
    return bytes(255 if x0 <= x < x0 + w and y0 <= y < y0 + h else 0 for y in range(LH) for x in range(LW))


def sketch_of(kind):
    px = []
    for y in range(LH):
        for x in range(LW):
            stroke = (y == 35 and 50 <= x < 80) or (x == 66 and 20 <= y < 50)
            if kind == "transparent":
                px += [0.0, 0.0, 0.0, 1.0 if stroke else 0.0]
            elif kind == "paper":
                px += [0.0, 0.0, 0.0, 1.0] if stroke else [1.0, 1.0, 1.0, 1.0]
            else:  # opaque ink over the right part, transparent elsewhere: the crop is all strokes
                px += [0.0, 0.0, 0.0, 1.0 if x >= 36 else 0.0]
    return struct.pack(f"<{LW * LH * 4}f", *px)


def crop(data, rect, width, channels, size):
    x0, y0, w, h = rect
    row = width * channels * size
    return b"".join(data[y * row + x0 * channels * size:y * row + (x0 + w) * channels * size] for y in range(y0, y0 + h))


def crop_edit(sketch, rect, image_x=None, image_y=None, feather=3, detail=None):
    x0, y0, w, h = rect
    header = {
        "type": "edit", "model": EDITING,
        "sampling": {"steps": 2, "respacing": "", "sampler": "ddim", "eta": 0.0, "seed": 5, "device": "cpu",
                     "classifier": "", "class": -1, "classifier_scale": 1.0},
        "image": 0, "mask": 1, "sketch": 2, "image_x": x0 if image_x is None else image_x,
        "image_y": y0 if image_y is None else image_y, "sketch_scale": 1.0, "variants": 1, "context_margin": 0.25,
        "feather": feather, "preview": False,
        "payloads": [{"width": w, "height": h, "channels": 4, "dtype": "f32"},
                     {"width": w, "height": h, "channels": 1, "dtype": "u8"},
                     {"width": LW, "height": LH, "channels": 4, "dtype": "f32"}],
    }
    if detail is not None:
        header["detail"] = detail
    return frame(header, [crop(layer_image(), rect, LW, 4, 4), crop(layer_mask(), rect, LW, 1, 1), sketch])


def result_of(request):
    p.stdin.write(request)
    p.stdin.flush()
    m, _ = until_final(r)
    return m


p, r = start_stdio()
WHOLE, CROP = (0, 0, LW, LH), (40, 10, 56, 50)  # CROP contains the region planned for BOX (44,13 44x44)
# (feather 40 reaches past the crop's edges, 16 px from the selection: the feathering must not see them)
for kind, feather in (("transparent", 3), ("paper", 3), ("covering", 3), ("paper", 40)):
    sketch = sketch_of(kind)
    whole = result_of(crop_edit(sketch, WHOLE, feather=feather))
    part = result_of(crop_edit(sketch, CROP, feather=feather))
    what = f"{kind} sketch, feather {feather}:"
    ok = whole and part and whole["type"] == part["type"] == "result"
    check(ok, f"{what} whole layer and crop both answer a result ({whole and whole.get('message')}, "
              f"{part and part.get('message')})")
    if ok:
        check(part["payloads"][0]["width"] == 56 and part["payloads"][0]["height"] == 50, f"{what} the result has the crop's size")
        check(part["_payloads"][0] == crop(whole["_payloads"][0], CROP, LW, 4, 4),
              f"{what} the crop's result equals the whole layer's over the crop")
        check(whole["_payloads"][0] != layer_image(), f"{what} the selection was regenerated")
m = result_of(crop_edit(sketch_of("paper"), (58, 28, 16, 14)))
check(m is not None and m["type"] == "error" and m["kind"] == "input" and "does not contain the region" in m["message"],
      "a crop smaller than the model's region is refused")
m = result_of(crop_edit(sketch_of("paper"), CROP, image_x=50))
check(m is not None and m["type"] == "error" and "does not lie inside the sketch layer" in m["message"],
      "a crop reaching outside the sketch layer is refused")
m = result_of(crop_edit(sketch_of("paper"), WHOLE, image_x=3))
check(m is not None and m["type"] == "error" and "must be 0" in m["message"], "offsets with a sketch of the image's size are refused")
for detail in ("patch", "tiles", "none"):
    m = result_of(crop_edit(sketch_of("paper"), CROP, detail=detail))
    check(m is not None and m["type"] == "result", f"detail '{detail}' is accepted ({m and m.get('message')})")
m = result_of(crop_edit(sketch_of("paper"), CROP, detail="sharp"))
check(m is not None and m["type"] == "error" and m["kind"] == "input" and "patch, tiles or none" in m["message"],
      "detail 'sharp' is refused naming the three modes")

# 3c: generate with the editing model; sketch guidance travels in the request and is range-checked.
def generate_request(guidance):
    w, h = 40, 32
    sketch = bytes(0 if (y == 16 or x == 20) else 255 for y in range(h) for x in range(w))
    header = {
        "type": "generate", "model": EDITING,
        "sampling": {"steps": 2, "respacing": "", "sampler": "ddim", "eta": 0.0, "seed": 3, "device": "cpu",
                     "classifier": "", "class": -1, "classifier_scale": 1.0},
        "sketch": 0, "width": 0, "height": 0, "sketch_scale": 1.0, "variants": 1, "preview": False,
        "payloads": [{"width": w, "height": h, "channels": 1, "dtype": "u8"}],
    }
    if guidance is not None:
        header["sketch_guidance"] = guidance
    return frame(header, [sketch])


plain = result_of(generate_request(None))
check(plain is not None and plain["type"] == "result" and plain["payloads"][0]["width"] == 40
      and plain["payloads"][0]["height"] == 32, f"generate: a 40x32 image ({plain and plain.get('message')})")
off = result_of(generate_request({"scale": 0, "mode": "exact", "features": ""}))
check(off is not None and off["type"] == "result" and plain and off["_payloads"] == plain["_payloads"],
      "generate: sketch guidance 0 gives the image without guidance")
m = result_of(generate_request({"scale": 1500, "mode": "cheap", "features": ""}))
check(m is not None and m["type"] == "error" and m["kind"] == "input" and "must be in 0..1000" in m["message"],
      "generate: sketch guidance 1500 is refused with its range")
m = result_of(generate_request({"scale": 1, "mode": "fast", "features": ""}))
check(m is not None and m["type"] == "error" and m["kind"] == "protocol" and "cheap or exact" in m["message"],
      "generate: sketch guidance mode 'fast' is a protocol error naming the modes")
p.stdin.close()
p.wait(timeout=30)

# 3d: hello: who the engine is (the plug-in replaces a server of another release).
p, r = start_stdio()
p.stdin.write(frame({"type": "hello", "payloads": []}))
p.stdin.flush()
m = r.message()
version = subprocess.run([ENGINE, "--version"], capture_output=True, text=True).stdout.split()[1]  # "diffsketch 0.1.0 (protocol 3)"
check(m is not None and m["type"] == "engine" and m["version"] == version and m["pid"] == p.pid and
      os.path.realpath(m["executable"]) == os.path.realpath(ENGINE) and
      m["executable_mtime"] == int(os.stat(ENGINE).st_mtime) and m["exit_when_idle"] == 0,
      f"hello: release {version}, the executable, its mtime and the pid (got {m})")
p.stdin.close()
p.wait(timeout=30)

# 4: version mismatch: a plug-in of the first release (protocol version 1).
p, r = start_stdio()
p.stdin.write(frame({"type": "models", "payloads": []}, version=1))
p.stdin.flush()
m = r.message()
check(m is not None and m["type"] == "error" and m["kind"] == "protocol" and "version 1" in m["message"]
      and "version 4" in m["message"], "a version-1 client gets a protocol error naming both versions")
p.stdin.close()
p.wait(timeout=30)

# 5: cancel request mid-job; the engine answers "cancelled" and serves the next request.
p, r = start_stdio()
p.stdin.write(edit_request(steps=1000, variants=8))
p.stdin.flush()
first = r.message()
check(first is not None and first["type"] == "progress", "a long job reports progress")
# A second request while the job runs (a live preview sent too early): refused, the job goes on.
p.stdin.write(edit_request(steps=3))
p.stdin.flush()
m, _ = until_final(r)
check(m is not None and m["type"] == "error" and m["kind"] == "input" and "a job is already running" in m["message"]
      and "send cancel" in m["message"], f"a request while a job runs is refused with a clear message (got {m})")
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
# A broken model folder on the search path (its kind is not a string) must hide nothing.
broken = os.path.join(WORK, "broken-models", "bad")
os.makedirs(broken, exist_ok=True)
with open(os.path.join(broken, "model.json"), "w") as f:
    json.dump({"format_version": 1, "kind": 5, "flags": {}}, f)
open(os.path.join(broken, "weights.safetensors"), "wb").close()
server = subprocess.Popen([ENGINE, "serve", "--socket", sock_path, "--idle-timeout", "2"],
                          env=dict(os.environ, DSK_MODEL_PATH=MODELS + ":" + os.path.dirname(broken)),
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


# 7b: hostile frames end their own connection, never the server (each of these killed it once).
def hostile(raw, what):
    s, r = connect()
    s.sendall(raw)
    m = r.message()
    check(m is not None and m["type"] == "error" and m["kind"] == "protocol",
          f"socket: {what}: a protocol error ({m and m.get('message')})")
    s.close()


hostile(frame({"type": 5, "payloads": []}), "a type that is not a string")
deep = b'{"type":"models","payloads":' + b"[" * 400000 + b"]" * 400000 + b"}"
hostile(b"DSKP" + struct.pack("<HHI", 4, 0, len(deep)) + deep, "a header nested 400000 deep")
s, r = connect()
s.sendall(edit_request())
m, _ = until_final(r)
s.sendall(frame({"type": 5, "payloads": []}))
m2 = r.message()
check(m is not None and m["type"] == "result" and m2 is not None and m2["type"] == "error",
      "socket: a bad frame after a finished job on the same connection is an error")
s.close()
# 7c: a client that stalls inside a frame holds up nobody (each client has its own thread) and is
# dropped after --idle-timeout (2 s here; 60 by default).
stalled, stalled_reader = connect()
stalled.sendall(b"DSKP\x04")
t0 = time.time()
s, r = connect()
s.sendall(frame({"type": "models", "payloads": []}))
m = r.message()
waited = time.time() - t0
check(m is not None and m["type"] == "model-list" and waited < 1.5,
      f"socket: a client stalled inside a frame does not hold up the next one ({waited:.1f} s)")
s.close()
stalled.settimeout(15)
try:
    m = stalled_reader.message()
    while m is not None and m["type"] != "error":
        m = stalled_reader.message()
except (OSError, AssertionError):
    m = None
dropped = time.time() - t0
check(m is not None and m["type"] == "error" and "sent nothing for 2 s" in m["message"] and 1.5 < dropped < 10,
      f"socket: the stalled client is dropped after the idle timeout, with a message ({dropped:.1f} s: {m and m.get('message')})")
stalled.close()
s, r = connect()
s.sendall(frame({"type": "models", "payloads": []}))
m = r.message()
check(server.poll() is None and m is not None and m["type"] == "model-list" and
      "adm-small" in [x["id"] for x in m["models"]],
      "socket: the server still serves, and a broken model folder hides no model")
s.close()
server.send_signal(signal.SIGTERM)
server.wait(timeout=15)
check(not os.path.exists(sock_path), "SIGTERM: the server removes its socket")

# 8: --exit-when-idle: the server exits after that long without a client, removing its socket;
# a client resets the clock.
idle_sock = os.path.join(WORK, "run", "idle.sock")
server = subprocess.Popen([ENGINE, "serve", "--socket", idle_sock, "--exit-when-idle", "2"],
                          env=dict(os.environ, DSK_MODEL_PATH=MODELS),
                          stderr=open(os.path.join(WORK, "serve-idle.log"), "ab"))
for _ in range(200):
    if os.path.exists(idle_sock):
        break
    time.sleep(0.1)
time.sleep(1.2)
c = socket.socket(socket.AF_UNIX)
c.connect(idle_sock)
c.sendall(frame({"type": "hello", "payloads": []}))
m = Reader(lambda n: c.recv(n)).message()
check(m is not None and m["exit_when_idle"] == 2, "exit-when-idle: hello states it")
time.sleep(1.2)  # connected: 2.4 s since start, but not idle
check(server.poll() is None, "exit-when-idle: a connected client keeps the server up")
c.close()
t0 = time.time()
try:
    status = server.wait(timeout=15)
except subprocess.TimeoutExpired:
    server.kill()
    status = None
waited = time.time() - t0
check(status == 0 and 1.5 < waited < 10 and not os.path.exists(idle_sock),
      f"exit-when-idle: exits {waited:.1f} s after the last client, status {status}, socket removed")
bad = subprocess.run([ENGINE, "serve", "--socket", idle_sock, "--exit-when-idle", "-5"], capture_output=True, text=True)
check(bad.returncode == 2 and "--exit-when-idle must be in 0..604800" in bad.stderr,
      f"exit-when-idle -5: a clear error ({bad.stderr.strip()})")

# 9: --background: returns once the socket listens; the server runs on in its own session, logs to
# XDG_CACHE_HOME, and a second one at the same socket is refused.
bg_sock = os.path.join(WORK, "run", "bg.sock")
env = dict(os.environ, DSK_MODEL_PATH=MODELS, XDG_CACHE_HOME=os.path.join(WORK, "cache"))
first = subprocess.run([ENGINE, "serve", "--background", "--socket", bg_sock, "--exit-when-idle", "30"],
                       capture_output=True, text=True, env=env, timeout=60)
check(first.returncode == 0 and os.path.exists(bg_sock), f"background: status 0 once listening ({first.stdout.strip()})")
c = socket.socket(socket.AF_UNIX)
c.connect(bg_sock)
c.sendall(frame({"type": "hello", "payloads": []}))
m = Reader(lambda n: c.recv(n)).message()
c.close()
bg_pid = m["pid"] if m else 0
check(bg_pid > 0 and os.getsid(bg_pid) == bg_pid, "background: the server leads its own session")
second = subprocess.run([ENGINE, "serve", "--background", "--socket", bg_sock], capture_output=True, text=True,
                        env=env, timeout=60)
check(second.returncode == 1 and "already listens" in second.stderr,
      f"background: a second server at the same socket is refused ({second.stderr.strip()})")
log = open(os.path.join(WORK, "cache", "diffsketch", "serve.log")).read()
check("exits after 30 s without a client" in log, "background: the log is in XDG_CACHE_HOME")
if bg_pid:
    os.kill(bg_pid, signal.SIGTERM)
    for _ in range(100):
        if not os.path.exists(bg_sock):
            break
        time.sleep(0.1)
check(not os.path.exists(bg_sock), "background: SIGTERM stops it and removes the socket")

print(f"{len(failures)} failed" if failures else "all passed")
sys.exit(1 if failures else 0)

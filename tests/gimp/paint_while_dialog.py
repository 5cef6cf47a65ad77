#!/usr/bin/env python3
"""The user's side of paint_while_dialog.sh: X Test input while the plug-in's dialog is open."""
import sys
import time

from Xlib import X, XK, display
from Xlib.ext import xtest

work = sys.argv[1]
control = len(sys.argv) > 2 and sys.argv[2] == "control"
d = display.Display()
root = d.screen().root


def windows(w=root, depth=0):
    for c in w.query_tree().children:
        yield c, depth
        yield from windows(c, depth + 1)


def find(title_part):
    for w, _ in windows():
        try:
            name = w.get_wm_name()
        except Exception:
            continue
        if name and title_part in name:
            g = w.get_geometry()
            t = w.translate_coords(root, 0, 0)
            return w, (-t.x, -t.y, g.width, g.height), name
    return None


def move(x, y):
    xtest.fake_input(d, X.MotionNotify, x=int(x), y=int(y))
    d.sync()
    time.sleep(0.05)


def key(name):
    code = d.keysym_to_keycode(XK.string_to_keysym(name))
    xtest.fake_input(d, X.KeyPress, code)
    xtest.fake_input(d, X.KeyRelease, code)
    d.sync()
    time.sleep(0.3)


deadline = time.time() + 300
dialog = None
if control:
    time.sleep(40)  # GIMP's start; no dialog comes
else:
    while time.time() < deadline and not dialog:
        time.sleep(1)
        dialog = find("Sketch Inpaint")
    print("dialog:", dialog and dialog[1:], flush=True)
    if not dialog:
        print("RESULT: the dialog was not found")
        sys.exit(1)
time.sleep(3)
# No window manager here: move the dialog off the canvas ourselves (the canvas ends near x = 560).
if dialog:
    dialog[0].configure(x=1280 - dialog[1][2], y=0)
d.sync()
time.sleep(2)
W, H = d.screen().width_in_pixels, d.screen().height_in_pixels


def screenshot(path=None):
    data = root.get_image(0, 0, W, H, X.ZPixmap, 0xFFFFFFFF).data
    if path:
        with open(path, "wb") as f:
            f.write(b"P6 %d %d 255\n" % (W, H))
            f.write(bytes(b for i in range(0, len(data), 4) for b in (data[i + 2], data[i + 1], data[i])))
    return data


# The image on the canvas: red (the photo layer under the empty sketch layer), right of the
# toolbox and left of the docks, below the rulers (GIMP's default single-window layout at 1280 px).
# Red, because a fresh profile's brush may paint white or black: either shows on red.
def red(px, i):
    return px[i + 2] > 200 and px[i + 1] < 60 and px[i] < 60  # ZPixmap: B, G, R, X


data = screenshot(work + "/before.ppm")
xs, ys = [], []
for y in range(100, 700, 2):
    for x in range(200, 560, 2):
        i = 4 * (y * W + x)
        if red(data, i):
            xs.append(x)
            ys.append(y)
if not xs:
    print("RESULT: the image was not found on the screen")
    sys.exit(1)
x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
print("image on screen:", (x0, y0, x1, y1), flush=True)
cy = (y0 + y1) // 2
move((x0 + x1) // 2, cy)
xtest.fake_input(d, X.ButtonPress, 1)  # a click gives the canvas the focus
xtest.fake_input(d, X.ButtonRelease, 1)
d.sync()
time.sleep(0.5)
key("n")  # the pencil
sx, ex = x0 + (x1 - x0) // 5, x1 - (x1 - x0) // 5
move(sx, cy)
xtest.fake_input(d, X.ButtonPress, 1)
d.sync()
for x in range(sx, ex + 1, 5):
    move(x, cy)
xtest.fake_input(d, X.ButtonRelease, 1)
d.sync()
time.sleep(1)
after = screenshot(work + "/after.ppm")
changed = sum(1 for x in range(sx, ex + 1) if not red(after, 4 * (cy * W + x)))
before = sum(1 for x in range(sx, ex + 1) if red(data, 4 * (cy * W + x)))
print(f"stroke from {sx} to {ex} on row {cy}: {before} of {ex - sx + 1} screen pixels red before, {changed} not red after",
      flush=True)
if len(sys.argv) > 2 and sys.argv[2] == "live":
    time.sleep(12)  # the engine starts, loads the model and runs the preview of the new stroke
    screenshot(work + "/live.ppm")
    print("live.ppm saved 12 s after the stroke", flush=True)
if dialog:
    print("dialog still open after the stroke:", find("Sketch Inpaint") is not None, flush=True)
    # Cancel: the button at the dialog's bottom right (no window manager gives it the focus for Escape).
    now = find("Sketch Inpaint") or dialog  # the live preview makes the dialog taller
    w, h = now[1][2], now[1][3]
    move(1280 - 45, h - 40)
    xtest.fake_input(d, X.ButtonPress, 1)
    xtest.fake_input(d, X.ButtonRelease, 1)
    d.sync()
    time.sleep(2)
    print("dialog open after Cancel:", find("Sketch Inpaint") is not None, flush=True)
open(work + "/stroke-done", "w").close()  # ends the control run's wait
print("RESULT: stroke sent", flush=True)

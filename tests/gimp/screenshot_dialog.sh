#!/usr/bin/env bash
# A screenshot of the interactive Sketch Inpaint dialog under Xvfb (test output, not committed).
#
#   screenshot_dialog.sh PLUGIN_BINARY ENGINE_BINARY TEST_DATA_DIR OUT.png [PROCEDURE]
#
# DSK_SHOT_STEPS (default 300: slow enough to catch the preview window too) is the steps argument
# the dialog opens with; 12 shows the "Standard" quality (the README's picture was taken so).
# DSK_SHOT_PREVIEW_WAIT (default 120) is how long to wait for the preview window after OK. Exit
# status 1 when no dialog was drawn, or when the plug-in logged a GIMP widget warning. The GIMP
# tests run it (ctest gimp_dialog) and the README shows its picture (docs/images/dialog.png).
# Starts Xvfb, runs the procedure in RUN-INTERACTIVE mode from gimp-console on a small test scene,
# waits for the dialog, saves the screen (cropped to the windows) and stops GIMP and Xvfb.
set -uo pipefail

PLUGIN=$(realpath "$1") ENGINE=$(realpath "$2") DATA=$(realpath "$3") OUT=$(realpath -m "$4")
PROC=${5:-plug-in-diffsketch-inpaint}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK="$(dirname "$OUT")/dialog-profile"
mkdir -p "$WORK/profile/plug-ins/diffsketch" "$WORK/run"
chmod 700 "$WORK/run"
cp "$PLUGIN" "$WORK/profile/plug-ins/diffsketch/diffsketch"
export GIMP3_DIRECTORY="$WORK/profile" XDG_RUNTIME_DIR="$WORK/run" DSK_ENGINE="$ENGINE" DSK_NO_SERVER=1
export DSK_MODEL_PATH="$DATA/models"

display=:$((70 + RANDOM % 20))
Xvfb "$display" -screen 0 1280x1024x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
xvfb=$!
export DISPLAY=$display
sleep 2

timeout 300 gimp-console -i -d -f --quit --batch-interpreter=plug-in-script-fu-eval \
  -b "(define model \"$DATA/models/adm-small\") (define out \"$WORK\") (load \"$HERE/cases.scm\")
      (let ((s (make-scene RGB PRECISION-U8-NON-LINEAR)))
        ($PROC #:run-mode RUN-INTERACTIVE #:image (car s) #:drawables (vector (caddr s))
               #:steps ${DSK_SHOT_STEPS:-300} #:class 3 #:seed 5))" \
  >"$WORK/gimp.log" 2>&1 &
gimp=$!

python3 - "$OUT" <<'EOF'
import os, sys, time
import gi
gi.require_version("Gdk", "3.0")
from gi.repository import Gdk, GdkPixbuf

out = sys.argv[1]
root = Gdk.get_default_root_window()
# Wait until something is drawn (the dialog), then a moment for it to finish drawing; crop to it.
def content_box(pb):
    w, h, n, stride = pb.get_width(), pb.get_height(), pb.get_n_channels(), pb.get_rowstride()
    px = pb.get_pixels()
    xs, ys = [], []
    for y in range(0, h, 2):
        row = px[y * stride:y * stride + w * n]
        if any(row):
            ys.append(y)
            xs.extend(x for x in range(0, w, 2) if any(row[x * n:x * n + 3]))
    return (min(xs), min(ys), max(xs) + 2, max(ys) + 2) if xs else None

deadline, box = time.time() + 240, None
while time.time() < deadline and box is None:
    time.sleep(2)
    box = content_box(Gdk.pixbuf_get_from_window(root, 0, 0, root.get_width(), root.get_height()))
time.sleep(4)
shot = Gdk.pixbuf_get_from_window(root, 0, 0, root.get_width(), root.get_height())
box = content_box(shot)
if box:
    x0, y0, x1, y1 = box
    shot = shot.new_subpixbuf(x0, y0, min(x1, shot.get_width()) - x0, min(y1, shot.get_height()) - y0)
wins = [box] if box else []
shot.savev(out, "png", [], [])
print(f"saved {out} ({shot.get_width()}x{shot.get_height()}, {len(wins)} window(s))")
if not box or shot.get_width() < 300 or shot.get_height() < 200:
    print("no dialog was drawn (see the gimp.log beside the picture)")
    sys.exit(1)

# Then press OK through XTest and capture the preview window while the engine works.
import ctypes
x11, xtst = ctypes.CDLL("libX11.so.6"), ctypes.CDLL("libXtst.so.6")
x11.XOpenDisplay.restype = ctypes.c_void_p
dpy = ctypes.c_void_p(x11.XOpenDisplay(None))
# No window manager gives the dialog focus: click its OK button (bottom right) instead.
if box:
    xtst.XTestFakeMotionEvent(dpy, -1, box[2] - 45, box[3] - 30, 0)
    xtst.XTestFakeButtonEvent(dpy, 1, True, 0)
    xtst.XTestFakeButtonEvent(dpy, 1, False, 50)
    x11.XFlush(dpy)
dialog_box = box
deadline = time.time() + float(os.environ.get("DSK_SHOT_PREVIEW_WAIT", "120"))
while time.time() < deadline:
    time.sleep(1)
    shot = Gdk.pixbuf_get_from_window(root, 0, 0, root.get_width(), root.get_height())
    b = content_box(shot)
    if b and b != dialog_box:
        time.sleep(2)
        shot = Gdk.pixbuf_get_from_window(root, 0, 0, root.get_width(), root.get_height())
        b = content_box(shot) or b
        x0, y0, x1, y1 = b
        shot = shot.new_subpixbuf(x0, y0, min(x1, shot.get_width()) - x0, min(y1, shot.get_height()) - y0)
        preview_out = out[:-4] + "-running.png"
        shot.savev(preview_out, "png", [], [])
        print(f"saved {preview_out} ({shot.get_width()}x{shot.get_height()})")
        break
EOF
status=$?
kill "$gimp" 2>/dev/null
sleep 1
plugin_pid=$(pgrep -f -- "$WORK/profile/plug-ins/diffsketch/diffsketch" | head -n 1)
[ -n "$plugin_pid" ] && kill "$plugin_pid"
wait "$gimp" 2>/dev/null
kill "$xvfb" 2>/dev/null
wait "$xvfb" 2>/dev/null
# The plug-in's own widgets must build without GIMP's warnings (a number field whose increments do
# not fit its range logs a LibGimpWidgets-CRITICAL; two labels with one mnemonic are reported).
if grep -E "^\(diffsketch:[0-9]+\): LibGimpWidgets-(CRITICAL|WARNING)|^Procedure '$PROC': duplicate mnemonic" "$WORK/gimp.log"; then
  echo "the plug-in's dialog logged the GIMP widget warnings above"
  status=1
fi
exit $status

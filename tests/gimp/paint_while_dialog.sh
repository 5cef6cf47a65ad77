#!/usr/bin/env bash
# Can a user paint on the canvas while the Sketch Inpaint dialog is open? (A check run by hand
# under Xvfb, not a test; docs/gimp-plugin.md reports its result.)
#
#   paint_while_dialog.sh PLUGIN_BINARY ENGINE_BINARY TEST_DATA_DIR WORK_DIR XLIB_PYTHONPATH [control|live]
#
# "control": the same stroke on the same image with no dialog open (the plug-in is not called), to
# show that the stroke itself paints.
#
# RESULT (2026-12-03): yes. With the dialog open, the X Test drag painted the stroke: 119 of the
# 119 screen pixels on the stroke's row changed, the Layers dock showed it on the sketch layer, and
# after Cancel Script-Fu read "PAINTED 830 of 3000 sampled pixels of the sketch layer" (0 before).
# The control run paints the same. The earlier runs showed nothing because GIMP was started with
# --no-data (-d): its only brush was the empty clipboard brush, which paints nothing.
# "live" (2026-12-03): the dialog, opened with its live preview on, showed the preview of the
# stroke drawn on the canvas 0.4 s after it (the test ADM model: noise inside the selection), the
# sketch thumbnail with the stroke, and the seed fixed for OK.
#
# Starts the full GIMP 3 (not gimp-console) on an Xvfb display, makes an image with a red
# "photo" layer and an empty "sketch" layer (the active one), shows it, and opens the plug-in's
# dialog (RUN-INTERACTIVE). While the dialog is open, tests/gimp/paint_while_dialog.py uses the X
# Test extension (python3-xlib) as a user would: it presses N (the pencil) over the canvas and drags
# the mouse across its middle, saves a screenshot, then clicks the dialog's Cancel. When the
# dialog has closed, Script-Fu reads the sketch layer's pixels under the stroke and prints
# "PAINTED n of m" to the log (red: a stroke of any colour shows on it).
set -uo pipefail
PLUGIN=$(realpath "$1") ENGINE=$(realpath "$2") DATA=$(realpath "$3") WORK=$(realpath -m "$4") XLIB=$5
MODE=${6:-dialog}
# live: the dialog opens with its live preview on (DSK_LIVE_PREVIEW=1); after the stroke the driver
# waits for the preview and saves live.ppm.
[ "$MODE" = live ] && export DSK_LIVE_PREVIEW=1
call="(catch #f (plug-in-diffsketch-inpaint #:run-mode RUN-INTERACTIVE #:image img #:drawables (vector photo)
                                          #:sketch-layer sketch #:model \"$DATA/models/adm-small\" #:class 3))"
# control: no plug-in dialog; the script waits (polling for the driver's file) while the stroke is made.
[ "$MODE" = control ] && call="(let wait ((i 0)) (let ((r (car (file-glob \"$WORK/stroke-done\" 0)))) (if (and (< i 200000) (if (vector? r) (= 0 (vector-length r)) (null? r))) (wait (+ i 1)))))"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rm -rf "$WORK"
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

timeout 400 gimp -n -f --no-splash --batch-interpreter=plug-in-script-fu-eval -b "
  (gimp-message-set-handler CONSOLE)
  (let* ((img (car (gimp-image-new 200 150 RGB)))
         (photo (car (gimp-layer-new img \"photo\" 200 150 RGB-IMAGE 100 LAYER-MODE-NORMAL)))
         (sketch (car (gimp-layer-new img \"sketch\" 200 150 RGBA-IMAGE 100 LAYER-MODE-NORMAL))))
    (gimp-image-insert-layer img photo 0 0)
    (gimp-context-set-foreground '(255 0 0))
    (gimp-drawable-fill photo FILL-FOREGROUND)
    (gimp-context-set-foreground '(0 0 0))
    (gimp-image-insert-layer img sketch 0 -1)
    (gimp-drawable-fill sketch FILL-TRANSPARENT)
    (gimp-image-select-rectangle img CHANNEL-OP-REPLACE 20 20 160 110)
    (gimp-image-set-selected-layers img (vector sketch))
    (gimp-display-new img)
    (gimp-displays-flush)
    (gimp-message \"DIALOG OPENING\")
    $call
    (let loop ((i 0) (painted 0))
      (if (< i 3000)
          (let* ((x (* 2 (modulo i 100))) (y (* 5 (quotient i 100)))
                 (c (car (gimp-drawable-get-pixel sketch x y)))
                 (a (if (= (length c) 4) (list-ref c 3) 255)))
            (loop (+ i 1) (if (> a 127) (+ painted 1) painted)))
          (gimp-message (string-append \"PAINTED \" (number->string painted) \" of 3000 sampled pixels of the sketch layer\"))))
    (gimp-quit 0))" >"$WORK/gimp.log" 2>&1 &
gimp=$!

PYTHONPATH="$XLIB" python3 "$HERE/paint_while_dialog.py" "$WORK" "$MODE" >"$WORK/driver.log" 2>&1
wait "$gimp"
kill "$xvfb" 2>/dev/null
cat "$WORK/driver.log"
grep -E "PAINTED|DIALOG|rror" "$WORK/gimp.log"

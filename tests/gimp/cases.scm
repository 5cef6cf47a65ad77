; The DiffSketch plug-in's test cases, run by run_gimp_tests.sh inside gimp-console (Script-Fu,
; default dialect). The caller defines `model` (a model folder) and `out` (a folder for exports)
; before loading this file. A failed check raises an error: the batch then fails (exit status
; 70) with "CHECK FAILED: ..." in the log.

; ---- helpers

(define last-error '())
(define (dsk-error-hook . x) (set! last-error x) (apply throw x))
(set! *error-hook* dsk-error-hook)

(define (check ok what)
  (if (not ok) (error (string-append "CHECK FAILED: " what))))

(define (contains? s sub)
  (let ((n (string-length s)) (m (string-length sub)))
    (let loop ((i 0))
      (cond ((> (+ i m) n) #f)
            ((string=? (substring s i (+ i m)) sub) #t)
            (else (loop (+ i 1)))))))

(define (error-text)
  (if (and (pair? last-error) (string? (car last-error))) (car last-error) ""))

(define (say . parts)
  (for-each display parts)
  (newline))

(define (layers img) (car (gimp-image-get-layers img)))
(define (layer-count img) (vector-length (layers img)))

(define (new-layer img name w h x y type)
  (let ((l (car (gimp-layer-new img name w h type 100 LAYER-MODE-NORMAL))))
    (gimp-image-insert-layer img l 0 -1)
    (gimp-layer-set-offsets l x y)
    l))

(define (fill-rect img drawable x y w h color)
  (gimp-image-select-rectangle img CHANNEL-OP-REPLACE x y w h)
  (gimp-context-set-foreground color)
  (gimp-drawable-edit-fill drawable FILL-FOREGROUND))

; The selection of every inpaint case, in image coordinates (inside the layer "photo").
(define sel-x 22) (define sel-y 16) (define sel-w 16) (define sel-h 12)

; A 64x48 scene: "background" (canvas size), "photo" (40x30 at 12,10, the layer to edit) and a
; transparent "sketch" layer with a few black strokes; converted to `base` (RGB or GRAY) and
; `precision`; the selection is the rectangle above. Returns (img background photo sketch).
(define (make-scene base precision)
  (let* ((img (car (gimp-image-new 64 48 RGB)))
         (bg (new-layer img "background" 64 48 0 0 RGB-IMAGE))
         (photo (new-layer img "photo" 40 30 12 10 RGB-IMAGE))
         (sketch (new-layer img "sketch" 64 48 0 0 RGBA-IMAGE)))
    (fill-rect img bg 0 0 64 48 '(230 140 40))
    (fill-rect img bg 0 0 32 24 '(30 60 200))
    (fill-rect img bg 32 24 32 24 '(40 170 60))
    (fill-rect img photo 12 10 40 30 '(120 90 150))
    (fill-rect img photo 20 14 10 10 '(220 30 30))
    (fill-rect img photo 40 30 12 10 '(250 250 210))
    (gimp-drawable-fill sketch FILL-TRANSPARENT)
    (fill-rect img sketch 24 18 12 2 '(0 0 0))
    (fill-rect img sketch 24 18 2 9 '(0 0 0))
    (fill-rect img sketch 34 18 2 9 '(0 0 0))
    (if (= base GRAY) (gimp-image-convert-grayscale img))
    (if (not (= precision (car (gimp-image-get-precision img)))) (gimp-image-convert-precision img precision))
    (gimp-image-select-rectangle img CHANNEL-OP-REPLACE sel-x sel-y sel-w sel-h)
    (list img bg photo sketch)))

; Exports the visible layers, merged, as a PNG.
(define (export-visible img path)
  (let* ((dup (car (gimp-image-duplicate img)))
         (merged (car (gimp-image-merge-visible-layers dup CLIP-TO-IMAGE))))
    (gimp-file-save RUN-NONINTERACTIVE dup path)
    (gimp-image-delete dup)))

; Exports only the given layers (the others hidden for the export).
(define (export-only img shown path)
  (let ((all (vector->list (layers img))))
    (let ((saved (map (lambda (l) (car (gimp-item-get-visible l))) all)))
      (for-each (lambda (l) (gimp-item-set-visible l (if (memv l shown) TRUE FALSE))) all)
      (export-visible img path)
      (for-each (lambda (l v) (gimp-item-set-visible l v)) all saved))))

(define (inpaint img drawables sketch seed variants)
  (car (plug-in-diffsketch-inpaint #:run-mode RUN-NONINTERACTIVE #:image img #:drawables drawables
                                   #:sketch-layer sketch #:model model #:steps 3 #:sampler "ddim"
                                   #:class 3 #:seed seed #:variants variants #:feather 2)))

; ---- a successful inpaint: layers, names, parasites, exported pixels

(define (check-result-layer l img photo base seed)
  (check (= (car (gimp-drawable-get-width l)) 40) "result layer width 40 (the target's)")
  (check (= (car (gimp-drawable-get-height l)) 30) "result layer height 30 (the target's)")
  (let ((off (gimp-drawable-get-offsets l)))
    (check (and (= (car off) 12) (= (cadr off) 10)) "result layer offset 12,10 (the target's)"))
  (check (= (car (gimp-drawable-type l)) (if (= base GRAY) GRAYA-IMAGE RGBA-IMAGE))
         "result layer type: the image's base type with alpha")
  (check (< (car (gimp-image-get-item-position img l)) (car (gimp-image-get-item-position img photo)))
         "result layer above the target")
  (let ((name (car (gimp-item-get-name l))))
    (say "result layer: " name)
    (check (contains? name (string-append "seed " (number->string seed))) "layer name records the seed")
    (check (contains? name "3 steps") "layer name records the steps")
    (check (contains? name "ddim") "layer name records the sampler")
    (check (contains? name "adm-small") "layer name records the model"))
  (check (member "diffsketch" (car (gimp-item-get-parasite-list l)))
         "result layer carries the diffsketch parasite"))

(define (inpaint-case tag base precision rerun)
  (let* ((scene (make-scene base precision))
         (img (car scene)) (bg (cadr scene)) (photo (caddr scene)) (sketch (cadddr scene))
         (prefix (string-append out "/" tag)))
    (gimp-item-set-visible sketch FALSE)
    (export-visible img (string-append prefix "-before.png"))
    (export-only img (list photo) (string-append prefix "-photo-before.png"))
    (let ((result (inpaint img (vector photo) sketch 42 2)))
      (check (= (vector-length result) 2) "two variants give two layers")
      (check (= (layer-count img) 5) "the image has exactly two more layers")
      (check-result-layer (vector-ref result 0) img photo base 42)
      (check-result-layer (vector-ref result 1) img photo base 43)
      (gimp-item-set-visible (vector-ref result 1) FALSE)
      (export-visible img (string-append prefix "-after.png"))
      (export-only img (list photo) (string-append prefix "-photo-after.png"))
      (export-only img (list (vector-ref result 0)) (string-append prefix "-layer.png"))
      (if rerun
          (let ((again (inpaint img (vector photo) sketch 42 1))
                (from-noise (car (plug-in-diffsketch-inpaint
                                  #:run-mode RUN-NONINTERACTIVE #:image img #:drawables (vector photo)
                                  #:sketch-layer sketch #:model model #:steps 3 #:sampler "ddim" #:class 3
                                  #:seed 42 #:variants 1 #:feather 2 #:init-strength 1.0 #:refine-strength 0.5
                                  #:refine-steps 1 #:harmonize 0.0 #:detail "tiles"))))
            (export-only img (list (vector-ref again 0)) (string-append prefix "-rerun.png"))
            (export-only img (list (vector-ref from-noise 0)) (string-append prefix "-noise.png"))))
      (say "CASE OK " tag))))

; ---- bad inputs: each fails with its message and adds no layer

(define (expect-failure what expected img thunk)
  (let* ((before (layer-count img))
         (failed (catch #t (begin (thunk) #f))))
    (check failed (string-append what ": the call did not fail"))
    (say "EXPECTED-ERROR " what ": " (error-text))
    (check (contains? (error-text) expected)
           (string-append what ": the message does not say '" expected "': " (error-text)))
    (check (= before (layer-count img)) (string-append what ": a layer was added"))))

(define (bad-input-cases)
  (let* ((scene (make-scene RGB PRECISION-U8-NON-LINEAR))
         (img (car scene)) (bg (cadr scene)) (photo (caddr scene)) (sketch (cadddr scene)))
    (gimp-selection-none img)
    (expect-failure "empty selection" "the selection is empty" img
                    (lambda () (inpaint img (vector photo) sketch 1 1)))
    (gimp-image-select-rectangle img CHANNEL-OP-REPLACE 0 0 8 8)
    (expect-failure "selection outside the layer" "lies outside the layer" img
                    (lambda () (inpaint img (vector photo) sketch 1 1)))
    (gimp-image-select-rectangle img CHANNEL-OP-REPLACE sel-x sel-y sel-w sel-h)
    (expect-failure "sketch = target" "the sketch layer is the layer to edit" img
                    (lambda () (inpaint img (vector photo) photo 1 1)))
    (expect-failure "two drawables" "select exactly one layer" img
                    (lambda () (inpaint img (vector photo bg) sketch 1 1)))
    (let ((group (car (gimp-group-layer-new img "group"))))
      (gimp-image-insert-layer img group 0 -1)
      (expect-failure "layer group" "is a layer group" img
                      (lambda () (inpaint img (vector group) sketch 1 1))))
    (let ((mask (car (gimp-layer-create-mask photo ADD-MASK-WHITE))))
      (gimp-layer-add-mask photo mask)
      (expect-failure "layer mask" "is a layer mask" img
                      (lambda () (inpaint img (vector mask) sketch 1 1)))
      (gimp-layer-remove-mask photo MASK-DISCARD))
    (expect-failure "missing model" "not found" img
                    (lambda () (plug-in-diffsketch-inpaint #:run-mode RUN-NONINTERACTIVE #:image img
                                                           #:drawables (vector photo) #:sketch-layer sketch
                                                           #:model "no-such-model" #:steps 2 #:sampler "ddim" #:class 3)))
    (expect-failure "generate with a plain ADM model" "generate" img
                    (lambda () (plug-in-diffsketch-generate #:run-mode RUN-NONINTERACTIVE #:image img
                                                            #:drawables (vector photo) #:sketch-layer sketch
                                                            #:model model #:steps 2 #:class 3)))
    (expect-failure "interpolate with a plain ADM model" "generate" img
                    (lambda () (plug-in-diffsketch-interpolate #:run-mode RUN-NONINTERACTIVE #:image img
                                                               #:drawables (vector photo) #:sketch-layer sketch
                                                               #:model model #:steps 2 #:class 3 #:frames 3)))
    (gimp-drawable-edit-clear sketch)
    (expect-failure "empty sketch" "is empty" img
                    (lambda () (inpaint img (vector photo) sketch 1 1)))
    (gimp-item-set-name sketch "strokes")
    (expect-failure "missing sketch layer" "no sketch layer" img
                    (lambda () (plug-in-diffsketch-inpaint #:run-mode RUN-NONINTERACTIVE #:image img
                                                           #:drawables (vector photo) #:model model #:steps 2
                                                           #:sampler "ddim" #:class 3))))
  (let* ((scene (make-scene RGB PRECISION-U8-NON-LINEAR))
         (img (car scene)) (photo (caddr scene)) (sketch (cadddr scene)))
    (gimp-image-convert-indexed img CONVERT-DITHER-NONE CONVERT-PALETTE-GENERATE 16 FALSE FALSE "")
    (expect-failure "indexed image" "indexed" img
                    (lambda () (inpaint img (vector photo) sketch 1 1))))
  (say "CASE OK bad-inputs"))

; ---- a broken engine (DSK_ENGINE is a script that misbehaves differently on each start)

(define (broken-engine-case what expected)
  (let* ((scene (make-scene RGB PRECISION-U8-NON-LINEAR))
         (img (car scene)) (photo (caddr scene)) (sketch (cadddr scene)))
    (expect-failure what expected img (lambda () (inpaint img (vector photo) sketch 1 1)))))

(define (one-inpaint tag)
  (let* ((scene (make-scene RGB PRECISION-U8-NON-LINEAR))
         (img (car scene)) (photo (caddr scene)) (sketch (cadddr scene)))
    (check (= (vector-length (inpaint img (vector photo) sketch 5 1)) 1) "one layer")
    (say "CASE OK " tag)))

; ---- inputs for the batch script: pic (good), bad (blank sketch), lonely (no sketch, no mask)

(define (save-mask path)
  (let* ((img (car (gimp-image-new 64 48 RGB)))
         (l (new-layer img "mask" 64 48 0 0 RGB-IMAGE)))
    (fill-rect img l 0 0 64 48 '(0 0 0))
    (fill-rect img l sel-x sel-y sel-w sel-h '(255 255 255))
    (gimp-selection-none img)
    (gimp-file-save RUN-NONINTERACTIVE img path)
    (gimp-image-delete img)))

(define (make-batch-inputs dir)
  (let* ((scene (make-scene RGB PRECISION-U8-NON-LINEAR))
         (img (car scene)) (bg (cadr scene)) (photo (caddr scene)) (sketch (cadddr scene)))
    (gimp-selection-none img)
    (for-each (lambda (name)
                (export-only img (list bg photo) (string-append dir "/" name ".png"))
                (save-mask (string-append dir "/" name "-mask.png")))
              '("pic" "bad"))
    (export-only img (list bg photo) (string-append dir "/lonely.png"))
    (export-only img (list sketch) (string-append dir "/pic-sketch.png"))
    (gimp-drawable-edit-clear sketch)
    (export-only img (list sketch) (string-append dir "/bad-sketch.png"))
    (say "CASE OK batch-inputs")))

; ---- the editing model (tests/data/models/tiny-editing; the caller defines `editing-model`)

(define (generate img sketch seed variants)
  (car (plug-in-diffsketch-generate #:run-mode RUN-NONINTERACTIVE #:image img #:drawables (vector sketch)
                                    #:sketch-layer sketch #:model editing-model #:steps 3 #:seed seed
                                    #:variants variants)))

; A new layer of w x h at x,y, the image's base type with alpha, right below the sketch layer
; (below: a larger position), named after what made it, with the parasite.
(define (check-new-layer l img sketch base w h x y what seed)
  (check (= (car (gimp-drawable-get-width l)) w) (string-append what ": layer width " (number->string w)))
  (check (= (car (gimp-drawable-get-height l)) h) (string-append what ": layer height " (number->string h)))
  (let ((off (gimp-drawable-get-offsets l)))
    (check (and (= (car off) x) (= (cadr off) y)) (string-append what ": layer offset")))
  (check (= (car (gimp-drawable-type l)) (if (= base GRAY) GRAYA-IMAGE RGBA-IMAGE))
         (string-append what ": the image's base type with alpha"))
  (check (> (car (gimp-image-get-item-position img l)) (car (gimp-image-get-item-position img sketch)))
         (string-append what ": below the sketch layer"))
  (let ((name (car (gimp-item-get-name l))))
    (say what " layer: " name)
    (check (contains? name (string-append "seed " (number->string seed))) (string-append what ": the name records the seed"))
    (check (contains? name "tiny-editing") (string-append what ": the name records the model")))
  (check (member "diffsketch" (car (gimp-item-get-parasite-list l))) (string-append what ": the parasite")))

; generate: the canvas (two variants, seeds 21 and 22), the selection's bounds, the same seed
; again with sketch guidance 0 (= none); exports TAG-gen-21/22.png and TAG-gen-again.png.
(define (generate-case tag base precision)
  (let* ((scene (make-scene base precision))
         (img (car scene)) (sketch (cadddr scene))
         (prefix (string-append out "/" tag)))
    (gimp-selection-none img)
    (let ((result (generate img sketch 21 2)))
      (check (= (vector-length result) 2) "generate: two variants give two layers")
      (check (= (layer-count img) 5) "generate: the image has exactly two more layers")
      (check-new-layer (vector-ref result 0) img sketch base 64 48 0 0 "generate" 21)
      (check-new-layer (vector-ref result 1) img sketch base 64 48 0 0 "generate" 22)
      (export-only img (list (vector-ref result 0)) (string-append prefix "-gen-21.png"))
      (export-only img (list (vector-ref result 1)) (string-append prefix "-gen-22.png")))
    (gimp-image-select-rectangle img CHANNEL-OP-REPLACE 10 8 40 30)
    (let ((result (generate img sketch 5 1)))
      (check (= (vector-length result) 1) "generate in a selection: one layer")
      (check-new-layer (vector-ref result 0) img sketch base 40 30 10 8 "generate in a selection" 5))
    (gimp-selection-none img)
    (let ((again (car (plug-in-diffsketch-generate #:run-mode RUN-NONINTERACTIVE #:image img #:drawables (vector sketch)
                                                   #:sketch-layer sketch #:model editing-model #:steps 3 #:seed 21
                                                   #:sketch-guidance 0.0 #:sketch-guidance-mode "cheap"))))
      (export-only img (list (vector-ref again 0)) (string-append prefix "-gen-again.png")))
    (say "CASE OK " tag)))

; interpolate: 3 frames between seeds 21 and 22, first frame lowest; exports the end frames as
; TAG-frame-1.png and TAG-frame-3.png (the shell compares them with generate's seeds 21 and 22).
(define (interpolate-case tag)
  (let* ((scene (make-scene RGB PRECISION-U8-NON-LINEAR))
         (img (car scene)) (sketch (cadddr scene))
         (prefix (string-append out "/" tag)))
    (gimp-selection-none img)
    (let ((frames (car (plug-in-diffsketch-interpolate #:run-mode RUN-NONINTERACTIVE #:image img
                                                       #:drawables (vector sketch) #:sketch-layer sketch
                                                       #:model editing-model #:steps 3 #:seed-a 21 #:seed-b 22
                                                       #:frames 3 #:mode "slerp"))))
      (check (= (vector-length frames) 3) "interpolate: 3 frames give 3 layers")
      (check (= (layer-count img) 6) "interpolate: the image has exactly three more layers")
      (check-new-layer (vector-ref frames 0) img sketch RGB 64 48 0 0 "frame 1" 21)
      (check-new-layer (vector-ref frames 1) img sketch RGB 64 48 0 0 "frame 2" 21)
      (check-new-layer (vector-ref frames 2) img sketch RGB 64 48 0 0 "frame 3" 22)
      (check (contains? (car (gimp-item-get-name (vector-ref frames 0))) "frame 1/3") "frame 1: named frame 1/3")
      (check (contains? (car (gimp-item-get-name (vector-ref frames 2))) "frame 3/3 slerp 21-22")
             "frame 3: named frame 3/3 slerp 21-22")
      (let ((pos (lambda (i) (car (gimp-image-get-item-position img (vector-ref frames i))))))
        (check (and (> (pos 0) (pos 1)) (> (pos 1) (pos 2))) "interpolate: the first frame is the lowest"))
      (export-only img (list (vector-ref frames 0)) (string-append prefix "-frame-1.png"))
      (export-only img (list (vector-ref frames 2)) (string-append prefix "-frame-3.png")))
    (say "CASE OK " tag)))

; ---- a selection in a large layer: the plug-in sends a crop (run twice by the shell, once with
; DSK_SEND_WHOLE_LAYER=1; the exported layers must be identical)

; 320x240: "photo" 300x220 at 10,10 (shapes on a gradient-like fill) and a paper sketch (an
; opaque white layer with black strokes: its stroke map depends on the whole layer).
(define (make-large-scene)
  (let* ((img (car (gimp-image-new 320 240 RGB)))
         (photo (new-layer img "photo" 300 220 10 10 RGB-IMAGE))
         (sketch (new-layer img "sketch" 320 240 0 0 RGB-IMAGE)))
    (fill-rect img photo 10 10 300 220 '(90 120 160))
    (fill-rect img photo 10 10 150 110 '(200 180 60))
    (fill-rect img photo 240 90 70 80 '(30 140 90))
    (fill-rect img photo 100 150 60 40 '(230 230 230))
    (fill-rect img sketch 0 0 320 240 '(255 255 255))
    (fill-rect img sketch 250 120 50 3 '(0 0 0))
    (fill-rect img sketch 290 110 3 40 '(0 0 0))
    (fill-rect img sketch 120 60 3 50 '(0 0 0))
    (list img photo sketch)))

; Two edits of the photo: a rectangle at its right edge, and a feathered ellipse inside it. The
; first names the editing model by `edge-model` (an installed id, or the folder).
(define (crop-case tag edge-model)
  (let* ((scene (make-large-scene))
         (img (car scene)) (photo (cadr scene)) (sketch (caddr scene)))
    (gimp-image-select-rectangle img CHANNEL-OP-REPLACE 288 120 22 14)
    (let ((edge (car (plug-in-diffsketch-inpaint #:run-mode RUN-NONINTERACTIVE #:image img #:drawables (vector photo)
                                                 #:sketch-layer sketch #:model edge-model #:steps 3 #:seed 9
                                                 #:feather 4))))
      (check-result-geometry (vector-ref edge 0) 300 220 10 10 "edge selection")
      (export-only img (list (vector-ref edge 0)) (string-append out "/" tag "-edge.png")))
    (gimp-image-select-ellipse img CHANNEL-OP-REPLACE 110 70 30 24)
    (gimp-selection-feather img 6)
    (let ((inside (car (plug-in-diffsketch-inpaint #:run-mode RUN-NONINTERACTIVE #:image img #:drawables (vector photo)
                                                   #:sketch-layer sketch #:model editing-model #:steps 3 #:seed 9
                                                   #:context-margin 0.5 #:feather 4))))
      (check-result-geometry (vector-ref inside 0) 300 220 10 10 "feathered ellipse")
      (export-only img (list (vector-ref inside 0)) (string-append out "/" tag "-ellipse.png")))
    (say "CASE OK " tag)))

(define (check-result-geometry l w h x y what)
  (check (and (= (car (gimp-drawable-get-width l)) w) (= (car (gimp-drawable-get-height l)) h))
         (string-append what ": the result layer has the edited layer's size"))
  (let ((off (gimp-drawable-get-offsets l)))
    (check (and (= (car off) x) (= (cadr off) y)) (string-append what ": the result layer has the edited layer's offset"))))

; Sketch guidance reaches the engine (the shell reads the request a tapping engine recorded).
(define (guidance-case tag)
  (let* ((scene (make-scene RGB PRECISION-U8-NON-LINEAR))
         (img (car scene)) (photo (caddr scene)) (sketch (cadddr scene)))
    (let ((result (car (plug-in-diffsketch-inpaint #:run-mode RUN-NONINTERACTIVE #:image img #:drawables (vector photo)
                                                   #:sketch-layer sketch #:model editing-model #:steps 2 #:sampler "ddim" #:seed 3
                                                   #:sketch-guidance 2.5 #:sketch-guidance-mode "exact"))))
      (check (= (vector-length result) 1) "inpaint with sketch guidance: one layer"))
    (say "CASE OK " tag)))

; DiffSketch batch inpainting with Script-Fu (GIMP 3).
;
; For every NAME.png, NAME.jpg, NAME.jpeg or NAME.xcf in IN-DIR that has NAME-sketch.png and
; NAME-mask.png beside it (mask: white = regenerate, read at a 50% threshold), opens it, runs
; plug-in-diffsketch-inpaint non-interactively with a fixed seed on the image (visible layers
; merged), and exports OUT-DIR/NAME-result.png. A file that fails is reported and skipped; a summary
; (done / failed / skipped) ends the run, and the batch fails (gimp-console exit status 70) when a
; file failed.
;
;   gimp-console -i -d -f --quit --batch-interpreter=plug-in-script-fu-eval \
;     -b '(load "/usr/local/share/diffsketch/scripts/diffsketch-batch.scm")
;         (diffsketch-batch "/photos/in" "/photos/out" "default" 25 42 -1)'
;
; (load and the call in one -b: each -b runs in a fresh Script-Fu interpreter.)
;
; Arguments: in-dir out-dir model steps seed class (-1 = none; class-conditional models need one).

(define (dsk-batch-ends-with? s suffix)
  (let ((n (string-length s)) (m (string-length suffix)))
    (and (>= n m) (string=? (substring s (- n m) n) suffix))))

; "/a/b/NAME.png" -> "/a/b/NAME" (the extension is one of ext).
(define (dsk-batch-stem path exts)
  (let loop ((e exts))
    (cond ((null? e) #f)
          ((dsk-batch-ends-with? path (car e)) (substring path 0 (- (string-length path) (string-length (car e)))))
          (else (loop (cdr e))))))

(define (dsk-batch-basename path)
  (let loop ((i (- (string-length path) 1)))
    (cond ((< i 0) path)
          ((char=? (string-ref path i) #\/) (substring path (+ i 1) (string-length path)))
          (else (loop (- i 1))))))

(define (dsk-batch-exists? path)
  (not (null? (car (file-glob #:pattern path #:filename-encoding FALSE)))))

(define dsk-batch-last-error '())
(define (dsk-batch-error-hook . x) (set! dsk-batch-last-error x) (apply throw x))

; One picture: open, select from the mask, inpaint, export, close.
(define (dsk-batch-one path stem out-dir model steps seed class)
  (let* ((img (car (gimp-file-load RUN-NONINTERACTIVE path)))
         (target (car (gimp-image-merge-visible-layers img CLIP-TO-IMAGE)))
         (sketch (car (gimp-file-load-layer RUN-NONINTERACTIVE img (string-append stem "-sketch.png"))))
         (mask (car (gimp-file-load-layer RUN-NONINTERACTIVE img (string-append stem "-mask.png"))))
         (out (string-append out-dir "/" (dsk-batch-basename stem) "-result.png")))
    (set! dsk-batch-image img)
    (gimp-image-insert-layer img sketch 0 0)
    (gimp-image-insert-layer img mask 0 0)
    (gimp-context-set-sample-threshold 0.5)
    (gimp-image-select-color img CHANNEL-OP-REPLACE mask '(255 255 255))
    (gimp-image-remove-layer img mask)
    (plug-in-diffsketch-inpaint #:run-mode RUN-NONINTERACTIVE #:image img #:drawables (vector target)
                                #:sketch-layer sketch #:model model #:steps steps #:seed seed #:class class
                                #:variants 1)
    (gimp-image-remove-layer img sketch)
    (gimp-image-merge-visible-layers img CLIP-TO-IMAGE)
    (gimp-file-save RUN-NONINTERACTIVE img out)
    (gimp-image-delete img)
    (set! dsk-batch-image #f)
    out))

(define dsk-batch-image #f)

(define (diffsketch-batch in-dir out-dir model steps seed class)
  (let ((exts '(".png" ".jpg" ".jpeg" ".xcf"))
        (done 0) (failed 0) (skipped 0)
        (old-hook *error-hook*))
    (set! *error-hook* dsk-batch-error-hook)
    (for-each
      (lambda (path)
        (let ((stem (dsk-batch-stem path exts)))
          (cond ((or (not stem) (dsk-batch-ends-with? stem "-sketch") (dsk-batch-ends-with? stem "-mask")
                     (dsk-batch-ends-with? stem "-result"))
                 #f)
                ((not (and (dsk-batch-exists? (string-append stem "-sketch.png"))
                           (dsk-batch-exists? (string-append stem "-mask.png"))))
                 (set! skipped (+ skipped 1))
                 (display (string-append "diffsketch-batch: skipped " path " (no NAME-sketch.png and NAME-mask.png beside it)\n")))
                (else
                  (let ((result (catch #f (dsk-batch-one path stem out-dir model steps seed class))))
                    (if result
                        (begin (set! done (+ done 1))
                               (display (string-append "diffsketch-batch: done " path " -> " result "\n")))
                        (begin (set! failed (+ failed 1))
                               (if dsk-batch-image (begin (gimp-image-delete dsk-batch-image) (set! dsk-batch-image #f)))
                               (display "diffsketch-batch: FAILED ")
                               (display path)
                               (display ": ")
                               (display dsk-batch-last-error)
                               (newline))))))))
      (car (file-glob #:pattern (string-append in-dir "/*") #:filename-encoding FALSE)))
    (set! *error-hook* old-hook)
    (display (string-append "diffsketch-batch: summary: " (number->string done) " done, " (number->string failed)
                            " failed, " (number->string skipped) " skipped\n"))
    (if (> failed 0) (error (string-append "diffsketch-batch: " (number->string failed) " file(s) failed")))
    done))

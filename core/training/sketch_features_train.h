// `diffsketch train-sketch-features`: trains the ResNet-50 sketch feature network as a sketch
// classifier on a folder per class (the Sketchy layout), so that its layer1..layer3 features
// describe strokes (docs/sketch-features.md). Cross-entropy, Adam, seeded augmentation (random
// zoom-crop, shift, small rotation, horizontal flip), a held-out validation split, resumable atomic
// checkpoints (core/training/train_state.h), a progress line, and OUT/model (kind sketch-features).
//
// Data: DIR/<class>/<image>, any image OpenCV reads (sketches dark on light, or opaque strokes on
// transparency: read as the engine reads a user's sketch, editing/sketch.h). Files with other
// extensions are ignored; an image file that cannot be read is skipped with a warning on the log.
// Errors (InputError): DIR missing, fewer than 2 class folders, a class folder with no readable image.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "core/base/cancel.h"

namespace dsk {

struct SketchTrainOptions {
  std::string data_dir;
  std::string out_dir;   // OUT/checkpoint, OUT/model, OUT/log.csv
  long steps = 20000;
  int batch = 32;
  double lr = 0;         // 0: 3e-4 from scratch, 1e-4 with `init`
  int size = 128;        // training side, px
  uint64_t seed = 0;
  bool resume = false;
  std::string init;      // a sketch-features model folder (e.g. converted torchvision weights) to start from
  double val_fraction = 0.1;  // of each class, held out (deterministic by file name)
  std::string device = "auto";
  int log_every = 10;
  double checkpoint_minutes = 5;  // also the validation interval; and at the end
};

struct SketchTrainReport {
  long step = 0;
  double first_loss = 0, last_loss = 0;  // means over the first / last logging windows
  double val_accuracy = -1;              // at the end; -1 without validation images
  int val_images = 0, train_images = 0, classes = 0, skipped_files = 0;
};

SketchTrainReport train_sketch_features(const SketchTrainOptions& options, std::ostream& log,
                                        const CancelToken* cancel = nullptr);

}  // namespace dsk

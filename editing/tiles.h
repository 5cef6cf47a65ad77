// Geometry of the coarse-to-fine pass for large selections (see docs/editing.md).
//
// A square much larger than the model's R would come back as a blurry upscale if generated only at
// R. Instead the engine generates it once at R (coarse pass: global layout), upsamples that result
// to a refine size at native or near-native resolution (at most 2x below native), and refines it
// in overlapping R x R tiles (SDEdit-style: noise to an intermediate t, denoise with the known
// pixels blended in), then blends the tiles with smooth weights.
#pragma once

#include <vector>

#include <opencv2/core.hpp>

namespace dsk::edit {

struct Tile {
  cv::Rect rect;  // R x R, inside the area being tiled
  int row = 0, col = 0;
};

// Overlapping R x R tiles covering an area (both sides >= R): per axis n = 1 if the side is R,
// else ceil((side - overlap) / (R - overlap)) tiles spread evenly from edge to edge, so neighbours
// overlap by at least `overlap` pixels. Row-major order. Throws edit::InputError when the area is
// smaller than R (run a single pass instead) or when not 0 <= overlap <= R / 2.
std::vector<Tile> plan_tiles(cv::Size area, int work_res, int overlap);

// Blend weight of one tile: CV_32FC1 R x R, the outer product of a 1-D profile that rises as a
// raised cosine over `overlap` pixels at each edge and is 1 in between; strictly positive, so a
// pixel covered by one tile only keeps that tile's value.
cv::Mat tile_weight(int work_res, int overlap);

// Weighted average of tile results (each R x R, all the same float type, CV_32FC1..4) over the
// area: sum(w_i * tile_i) / sum(w_i). Every pixel of the area must be covered (plan_tiles does).
cv::Mat blend_tiles(const std::vector<Tile>& tiles, const std::vector<cv::Mat>& images, cv::Size area,
                    int overlap);

struct RefinePlan {
  bool needed = false;  // false: the square side is <= R, the coarse pass is the result
  double scale = 1.0;   // refine pixels per image pixel, in [0.5, 1]
  int size = 0;         // refine square side = round(side * scale) (>= R)
  std::vector<Tile> tiles;
};

// Chooses the refine resolution of a square of `side` image pixels: native (scale 1) when that
// takes at most max_tiles tiles, else the largest scale >= 0.5 that does; at 0.5 more tiles are
// used if needed (the 2x cap wins over max_tiles). Feed the engine to_work_image(plan, image,
// size) etc. for the known pixels at refine resolution and work_to_crop for the blended result.
RefinePlan plan_refinement(int side, int work_res, int overlap, int max_tiles = 16);

}  // namespace dsk::edit

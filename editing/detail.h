// Detail at the picture's own resolution: guided exemplar-based synthesis (see docs/editing.md,
// "Detail").
//
// The model draws the hole at its working size (64 px for the default model); upsampled, that is
// the right layout and colour but no texture. `synthesize_detail` repaints the hole at native
// resolution with patches of the picture's own known pixels, chosen so that the result still looks
// like the model's result from afar and keeps the sketch's lines: an image analogy (Hertzmann et
// al. 2001) solved by multi-scale patch-based completion (Wexler et al. 2007) with PatchMatch's
// nearest-neighbour search (Barnes et al. 2009). Each pixel has four groups of features:
//   colour     the picture (known pixels) or the current estimate (hole);
//   guide      a low-pass of the picture with the model's result in the hole: what the model
//              drew, at the scale the model drew it, and the same low-pass of the known pixels;
//   structure  where lines are: the user's stroke map in the hole (or, without a sketch, the
//              edges of the model's result), the edges of the picture outside, both at one width;
//   texture    how much detail there is locally (median gradient magnitude): the picture's outside,
//              the surroundings' continued inward and then re-voted in the hole.
// A patch of the hole is matched to a patch of the known region on all four (weighted), and the
// hole is re-voted from the matched patches, coarse to fine.
#pragma once

#include <cstdint>
#include <functional>

#include <opencv2/core.hpp>

namespace dsk::edit {

struct DetailOptions {
  int patch = 9;              // patch side in pixels (odd, 3..15); 7 and 11 worse (docs/editing.md), 11 1.5x slower
  double colour_weight = 1;   // weights of the feature groups in the patch distance
  double guide_weight = 2;
  // Validation (docs/editing.md, "Detail"): with the texture term, 2 kept edge F1 where 1 lost 0.02.
  double structure_weight = 2;
  // The structure term is a hinge: a line the target asks for must be in the source patch, and the
  // source may have more, since a texture has edges everywhere. Where the target's texture energy
  // (below) says the region is flat, the source's extra lines cost too: this weight (relative to the
  // structure weight) times (1 - energy / flat_texture), so a flat wall or sky beside a sketched edge
  // is not filled with a railing's lines. A source line within 2 px of one of the target's is not
  // extra (a line of the picture is two Canny edges where a stroke is one). 0 = the plain hinge; off
  // with the texture term. Development photos (docs/editing.md, "Detail"): texture distance 0.167 /
  // 0.207 / 0.186 (seeds 1 / 2 / 3) without it, 0.160 / 0.203 / 0.178 with 1.
  double extra_line_weight = 1;
  double flat_texture = 0.01;  // median gradient magnitude (luma in [0, 1], Sobel / 8) of a flat region
  // Local texture energy (after Newson et al. 2014's texture features): the local median of the
  // gradient magnitude over a window of side 4 texture_sigma + 1 px, a fourth feature group. In the
  // hole it starts as the surroundings' energy continued inward and is re-voted with the colours,
  // so a hole in a textured region is not filled from smooth patches because its first estimate
  // (the model's result) is smooth, nor a smooth region from busy ones. A median, so that a line
  // through a flat region does not count as texture (lines are the structure term's). 0 = off.
  // Development photos (docs/editing.md, "Detail"): texture distance 0.292 with the former mean
  // energy and its cap on extra detail, 0.245 with the median.
  double texture_weight = 64;
  double texture_sigma = 6;
  // Image pixels per pixel of the model's result (the upsampling factor of the guide): the guide
  // of the known pixels is low-passed to the same resolution, so that known patches and the hole's
  // are compared at the detail the model drew. <= 1: a light blur (sigma 1 px).
  double guide_scale = 1;
  // A proximity prior (after the proximity cost of Huang et al. 2014): matching a target patch to a
  // source patch |p - q| px away costs its patch distance times 1 + (|p - q| / reach)^2, with reach
  // = proximity times the crop's short side plus the target's distance to the nearest known pixel
  // (the middle of a large hole is far from everything and may copy from all around it). Texture is
  // locally stationary: the nearer source is likelier the same texture (the lake's ripples for a
  // hole in the lake, not the snow of the mountain above it, where the model's colours there are a
  // little off). 0 = off. Development photos (docs/editing.md, "Detail"): texture distance 0.221 /
  // 0.268 (two seeds) without it, 0.184 / 0.220 with 0.15, 0.187 / 0.230 with 0.25.
  double proximity = 0.15;
  int min_level_side = 48;    // the coarsest pyramid level's short side (about)
  int coarse_em = 4;          // EM iterations (match + vote) at the coarsest level, halved per level (at least 1)
  // EM iterations at the finest level (at least; where a 1024 px selection spends most of its time).
  // Development photos (docs/editing.md, "Detail"): texture distance 0.171 / 0.208 / 0.191 (seeds
  // 1 / 2 / 3) with 1, 0.167 / 0.207 / 0.186 with 2, edge F1 higher on all three.
  int fine_em = 2;
  int search_iterations = 3;  // PatchMatch iterations per EM iteration (propagation + random search)
  // A match that continues a neighbour's counts its distance / (1 + coherence) (Ashikhmin's and
  // Hertzmann et al.'s coherence): larger copies larger coherent pieces. Validation (docs/editing.md,
  // "Detail"): 0.5 / 1 / 2 / 4 gave texture distance 0.30 / 0.28 / 0.25 / 0.25, 4 lower edge F1.
  double coherence = 2;
  // The contrast the mean vote loses, given back at the finest level: the hole's detail layer (the
  // image minus a Gaussian of sigma detail_sigma px) amplified by up to max_detail_gain where its
  // local energy is below that of the matched source pixels' detail layer. 1 = off. Validation
  // (docs/editing.md, "Detail"): off / sigma 1 / 1.5 / 2.5 / 4 gave texture distance 0.257 / 0.237 /
  // 0.230 / 0.224 / 0.224 (4 with 0.15 dB less coarse PSNR); a gain of 6 measured as 3.
  double max_detail_gain = 3;
  double detail_sigma = 2.5;
  // The finest level's last colour vote seeks the mode of what the covering patches say, not their
  // mean (Wexler et al. 2007's mean-shift vote): a Gaussian kernel of this bandwidth (RGB in [0, 1])
  // over the weighted candidates, so a few patches that put an edge elsewhere no longer soften it.
  // 0 = the weighted mean. Development photos (docs/editing.md, "Detail"): texture distance 0.181 /
  // 0.219 / 0.207 (seeds 1 / 2 / 3) with the mean, 0.171 / 0.208 / 0.191 with 0.3.
  double vote_bandwidth = 0.3;
  uint64_t seed = 0;
  // Called between the steps (levels, EM iterations); it may throw to stop the synthesis (the
  // engine's cancel).
  std::function<void()> check;
};

// Fills the hole of `image` (CV_32FC3 RGB in [0, 1]) from its known pixels.
//   hole      CV_8UC1, non-zero = to fill; the image's size
//   guide     CV_32FC3 RGB in [0, 1], the image's size: the model's result (upsampled), read in
//             the hole only
//   strokes   CV_32FC1 stroke map (1 = line) of the image's size, or empty for "no sketch": the
//             structure target in the hole is then the edges of the guide
// Returns the image with the hole repainted; known pixels are returned unchanged. Deterministic for
// a seed, whatever the number of threads. Throws edit::InputError on bad arguments and when the
// known region holds no whole patch (nothing to copy from: e.g. the whole image is selected).
cv::Mat synthesize_detail(const cv::Mat& image, const cv::Mat& hole, const cv::Mat& guide, const cv::Mat& strokes,
                          const DetailOptions& options = {});

// Whether `hole` leaves at least one whole known patch of side `patch` in the image (what
// synthesize_detail needs).
bool has_patch_source(const cv::Mat& hole, int patch = DetailOptions{}.patch);

}  // namespace dsk::edit

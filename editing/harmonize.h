// Matching a generated region's colours to its surroundings (Poisson-style harmonisation).
//
// A diffusion model's hole often has the right structure but a slightly wrong overall colour or
// brightness: a cast that a feathered edge hides at the seam yet leaves across the whole region.
// harmonize() removes it the way Poisson image editing does (Pérez et al. 2003, with the generated
// pixels as the guidance field): it adds to the generated pixels the smoothest correction h
// (Laplace(h) = 0 inside the hole) that makes them meet the real pixels along the hole's edge.
// Whatever the model drew (strokes, objects, texture) keeps its contrast: only a smooth field is
// added, and a mismatch at one spot of the edge fades with the distance from it. Pixels outside the
// hole are never changed.
#pragma once

#include <opencv2/core.hpp>

namespace dsk::edit {

// generated, original: CV_32FC3 of one size (the same colour order); hole: CV_8UC1 of that size,
// non-zero = generated pixels to correct. Returns generated + strength * h inside the hole (other
// pixels: generated, unchanged). The edge values of h are, for each real pixel q next to the hole,
// original(q) - generated(p) averaged over its hole neighbours p; hole pixels on the border of the
// image have no real neighbour there (the correction is flat across the border). When no real
// pixel touches the hole (it covers the whole image) there is nothing to match: the result is
// generated. strength in [0, 1]: 0 = off, 1 = the full correction. Throws edit::InputError for
// mismatched inputs or a strength outside [0, 1].
cv::Mat harmonize(const cv::Mat& generated, const cv::Mat& original, const cv::Mat& hole, double strength = 1.0);

}  // namespace dsk::edit

#include "editing/tiles.h"

#include <algorithm>
#include <cmath>
#include <string>

#include <opencv2/core.hpp>

#include "editing/error.h"

namespace dsk::edit {
namespace {

constexpr double kPi = 3.14159265358979323846;

void check_geometry(int work_res, int overlap) {
  if (work_res < 1) throw InputError("tiles: the working resolution must be positive");
  if (overlap < 0 || overlap > work_res / 2) {
    throw InputError("tiles: overlap " + std::to_string(overlap) + " must be in [0, R/2] = [0, " +
                     std::to_string(work_res / 2) + "]; R/8 (e.g. 32 at 256) is a good value");
  }
}

int tiles_along(int len, int work_res, int overlap) {
  if (len <= work_res) return 1;
  return (len - overlap + (work_res - overlap) - 1) / (work_res - overlap);
}

std::vector<int> positions(int len, int work_res, int overlap) {
  const int n = tiles_along(len, work_res, overlap);
  std::vector<int> pos(static_cast<std::size_t>(n), 0);
  // floor() keeps every step <= R - overlap (an integer >= the exact step), so overlaps >= overlap.
  for (int i = 1; i < n; ++i)
    pos[static_cast<std::size_t>(i)] = static_cast<int>(static_cast<long long>(i) * (len - work_res) / (n - 1));
  return pos;
}

}  // namespace

std::vector<Tile> plan_tiles(cv::Size area, int work_res, int overlap) {
  check_geometry(work_res, overlap);
  if (area.width < work_res || area.height < work_res) {
    throw InputError("plan_tiles: the area " + std::to_string(area.width) + "x" + std::to_string(area.height) +
                     " is smaller than one " + std::to_string(work_res) + "x" + std::to_string(work_res) +
                     " tile; run a single pass at R instead of tiling");
  }
  const auto xs = positions(area.width, work_res, overlap);
  const auto ys = positions(area.height, work_res, overlap);
  std::vector<Tile> tiles;
  tiles.reserve(xs.size() * ys.size());
  for (std::size_t r = 0; r < ys.size(); ++r)
    for (std::size_t c = 0; c < xs.size(); ++c)
      tiles.push_back({cv::Rect(xs[c], ys[r], work_res, work_res), static_cast<int>(r), static_cast<int>(c)});
  return tiles;
}

cv::Mat tile_weight(int work_res, int overlap) {
  check_geometry(work_res, overlap);
  cv::Mat p(1, work_res, CV_32FC1, cv::Scalar(1.0));
  for (int x = 0; x < overlap; ++x) {
    const float v = static_cast<float>(0.5 - 0.5 * std::cos(kPi * (x + 0.5) / overlap));
    p.at<float>(0, x) = v;
    p.at<float>(0, work_res - 1 - x) = v;
  }
  return p.t() * p;
}

cv::Mat blend_tiles(const std::vector<Tile>& tiles, const std::vector<cv::Mat>& images, cv::Size area,
                    int overlap) {
  if (tiles.empty() || tiles.size() != images.size()) {
    throw InputError("blend_tiles: got " + std::to_string(tiles.size()) + " tiles and " +
                     std::to_string(images.size()) + " images; pass one result per planned tile");
  }
  const int type = images.front().type();
  const int work_res = tiles.front().rect.width;
  if (CV_MAT_DEPTH(type) != CV_32F) throw InputError("blend_tiles: tile results must be float (CV_32F)");
  const cv::Mat w1 = tile_weight(work_res, overlap);
  const int cn = CV_MAT_CN(type);
  cv::Mat w;
  cv::merge(std::vector<cv::Mat>(static_cast<std::size_t>(cn), w1), w);
  cv::Mat acc = cv::Mat::zeros(area, type), wsum = cv::Mat::zeros(area, CV_32FC1);
  const cv::Rect bounds(cv::Point(0, 0), area);
  for (std::size_t i = 0; i < tiles.size(); ++i) {
    const cv::Rect& r = tiles[i].rect;
    if (images[i].type() != type || images[i].size() != r.size() || r.width != work_res ||
        r.height != work_res || (r & bounds) != r) {
      throw InputError("blend_tiles: tile " + std::to_string(i) +
                       " does not match the plan (size, type or position); pass the plan_tiles tiles "
                       "with their R x R results in order");
    }
    cv::Mat a = acc(r), s = wsum(r);
    a += images[i].mul(w);
    s += w1;
  }
  if (static_cast<std::size_t>(cv::countNonZero(wsum > 0)) != wsum.total()) {
    throw InputError("blend_tiles: the tiles do not cover the area; use plan_tiles for the area");
  }
  std::vector<cv::Mat> ch;
  cv::split(acc, ch);
  for (auto& c : ch) c /= wsum;
  cv::Mat out;
  cv::merge(ch, out);
  return out;
}

RefinePlan plan_refinement(int side, int work_res, int overlap, int max_tiles) {
  check_geometry(work_res, overlap);
  if (side < 1 || max_tiles < 1) {
    throw InputError("plan_refinement: need side >= 1 and max_tiles >= 1 (e.g. 16)");
  }
  RefinePlan rp;
  rp.size = side;
  if (side <= work_res) return rp;
  auto count = [&](int len) {
    const long long n = tiles_along(len, work_res, overlap);
    return n * n;
  };
  int size = side;
  if (count(side) > max_tiles) {
    int lo = std::max(work_res, (side + 1) / 2), hi = side;  // scale in [0.5, 1]
    if (count(lo) > max_tiles) {
      size = lo;
    } else {
      while (lo < hi) {  // largest size with count <= max_tiles
        const int mid = lo + (hi - lo + 1) / 2;
        if (count(mid) <= max_tiles) lo = mid; else hi = mid - 1;
      }
      size = lo;
    }
  }
  rp.needed = true;
  rp.size = size;
  rp.scale = static_cast<double>(size) / side;
  rp.tiles = plan_tiles({size, size}, work_res, overlap);
  return rp;
}

}  // namespace dsk::edit

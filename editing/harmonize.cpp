#include "editing/harmonize.h"

#include <algorithm>
#include <cmath>
#include <string>

#include <opencv2/imgproc.hpp>

#include "editing/error.h"

namespace dsk::edit {
namespace {

enum : uint8_t { kFree = 0, kHole = 1, kFixed = 2 };

// One level of the membrane problem: h is unknown where state == kHole and given where kFixed;
// kFree pixels take no part (a hole pixel's free neighbour is a flat, zero-flux side).
struct Level {
  cv::Mat h;      // CV_32FC3
  cv::Mat state;  // CV_8UC1
};

// Gauss-Seidel with over-relaxation on the hole pixels until the largest change of a sweep is
// below tol or after max_sweeps.
void relax(Level& l, int max_sweeps, float tol) {
  const float omega = 1.7f;
  const int rows = l.h.rows, cols = l.h.cols;
  for (int sweep = 0; sweep < max_sweeps; ++sweep) {
    float largest = 0.f;
    for (int y = 0; y < rows; ++y) {
      const uint8_t* s = l.state.ptr<uint8_t>(y);
      cv::Vec3f* h = l.h.ptr<cv::Vec3f>(y);
      const uint8_t* s_up = y > 0 ? l.state.ptr<uint8_t>(y - 1) : nullptr;
      const uint8_t* s_dn = y + 1 < rows ? l.state.ptr<uint8_t>(y + 1) : nullptr;
      const cv::Vec3f* h_up = y > 0 ? l.h.ptr<cv::Vec3f>(y - 1) : nullptr;
      const cv::Vec3f* h_dn = y + 1 < rows ? l.h.ptr<cv::Vec3f>(y + 1) : nullptr;
      for (int x = 0; x < cols; ++x) {
        if (s[x] != kHole) continue;
        cv::Vec3f sum(0, 0, 0);
        int n = 0;
        if (x > 0 && s[x - 1] != kFree) sum += h[x - 1], ++n;
        if (x + 1 < cols && s[x + 1] != kFree) sum += h[x + 1], ++n;
        if (s_up && s_up[x] != kFree) sum += h_up[x], ++n;
        if (s_dn && s_dn[x] != kFree) sum += h_dn[x], ++n;
        if (n == 0) continue;
        const cv::Vec3f delta = omega * (sum / static_cast<float>(n) - h[x]);
        h[x] += delta;
        largest = std::max({largest, std::abs(delta[0]), std::abs(delta[1]), std::abs(delta[2])});
      }
    }
    if (largest < tol) return;
  }
}

// Half the size: a block with a fixed pixel is fixed (the mean of its fixed values), else a block
// with a hole pixel is a hole. Fixed wins so that a thin ring of edge values is never swallowed by
// the hole at the coarser level (the edge moves inwards by at most one fine pixel).
Level coarsen(const Level& fine) {
  const int rows = (fine.h.rows + 1) / 2, cols = (fine.h.cols + 1) / 2;
  Level c{cv::Mat::zeros(rows, cols, CV_32FC3), cv::Mat::zeros(rows, cols, CV_8UC1)};
  for (int y = 0; y < rows; ++y) {
    for (int x = 0; x < cols; ++x) {
      cv::Vec3f sum(0, 0, 0);
      int fixed = 0, hole = 0;
      for (int dy = 0; dy < 2; ++dy) {
        for (int dx = 0; dx < 2; ++dx) {
          const int fy = 2 * y + dy, fx = 2 * x + dx;
          if (fy >= fine.h.rows || fx >= fine.h.cols) continue;
          const uint8_t s = fine.state.at<uint8_t>(fy, fx);
          if (s == kFixed) sum += fine.h.at<cv::Vec3f>(fy, fx), ++fixed;
          if (s == kHole) ++hole;
        }
      }
      if (fixed > 0) {
        c.state.at<uint8_t>(y, x) = kFixed;
        c.h.at<cv::Vec3f>(y, x) = sum / static_cast<float>(fixed);
      } else if (hole > 0) {
        c.state.at<uint8_t>(y, x) = kHole;
      }
    }
  }
  return c;
}

// Solves the membrane problem coarse to fine: each level starts from the coarser level's solution
// (its low frequencies are right), and a few sweeps settle the detail near the edge.
void solve(Level& l, int depth) {
  const int holes = cv::countNonZero(l.state == kHole);
  if (holes == 0) return;
  if (depth < 16 && std::max(l.h.rows, l.h.cols) > 16 && holes > 64) {
    Level c = coarsen(l);
    solve(c, depth + 1);
    for (int y = 0; y < l.h.rows; ++y) {
      for (int x = 0; x < l.h.cols; ++x) {
        if (l.state.at<uint8_t>(y, x) != kHole) continue;
        if (c.state.at<uint8_t>(y / 2, x / 2) != kFree) l.h.at<cv::Vec3f>(y, x) = c.h.at<cv::Vec3f>(y / 2, x / 2);
      }
    }
    relax(l, 200, 2e-5f);
  } else {
    // The coarsest level: start from the mean edge value and converge.
    const cv::Scalar mean = cv::mean(l.h, l.state == kFixed);
    l.h.setTo(cv::Scalar(mean[0], mean[1], mean[2]), l.state == kHole);
    relax(l, 20000, 1e-6f);
  }
}

}  // namespace

cv::Mat harmonize(const cv::Mat& generated, const cv::Mat& original, const cv::Mat& hole, double strength) {
  if (generated.empty() || generated.type() != CV_32FC3 || original.type() != CV_32FC3 ||
      original.size() != generated.size() || hole.type() != CV_8UC1 || hole.size() != generated.size()) {
    throw InputError("harmonize: generated and original must be CV_32FC3 and the hole CV_8UC1, all of one size");
  }
  if (!(strength >= 0 && strength <= 1)) {
    throw InputError("harmonize strength must be in [0, 1] (0 = off, 1 = full), got " + std::to_string(strength));
  }
  cv::Mat out = generated.clone();
  const cv::Mat in_hole = hole != 0;
  const cv::Rect bounds(cv::Point(0, 0), hole.size());
  cv::Rect box = cv::boundingRect(in_hole);
  if (box.empty() || strength == 0) return out;
  box = cv::Rect(box.x - 1, box.y - 1, box.width + 2, box.height + 2) & bounds;

  // Edge values: at each real pixel next to the hole, the mismatch with its hole neighbours.
  const cv::Mat gen = generated(box), orig = original(box), in = in_hole(box);
  Level l{cv::Mat::zeros(box.size(), CV_32FC3), cv::Mat::zeros(box.size(), CV_8UC1)};
  l.state.setTo(kHole, in);
  const int dy[4] = {-1, 1, 0, 0}, dx[4] = {0, 0, -1, 1};
  for (int y = 0; y < box.height; ++y) {
    for (int x = 0; x < box.width; ++x) {
      if (in.at<uint8_t>(y, x)) continue;
      cv::Vec3f sum(0, 0, 0);
      int n = 0;
      for (int k = 0; k < 4; ++k) {
        const int ny = y + dy[k], nx = x + dx[k];
        if (ny < 0 || nx < 0 || ny >= box.height || nx >= box.width || !in.at<uint8_t>(ny, nx)) continue;
        sum += orig.at<cv::Vec3f>(y, x) - gen.at<cv::Vec3f>(ny, nx);
        ++n;
      }
      if (n == 0) continue;
      l.state.at<uint8_t>(y, x) = kFixed;
      l.h.at<cv::Vec3f>(y, x) = sum / static_cast<float>(n);
    }
  }
  const cv::Mat fixed = l.state == kFixed;
  if (cv::countNonZero(fixed) == 0) return out;  // the hole is everything: nothing to match
  // Pixel noise of the texture on either side is not a colour cast: the edge values are averaged
  // with those within 2 px along the edge.
  cv::Mat fixed_f, sum, count;
  fixed.convertTo(fixed_f, CV_32F, 1.0 / 255);
  cv::boxFilter(l.h, sum, -1, cv::Size(5, 5), cv::Point(-1, -1), false, cv::BORDER_CONSTANT);
  cv::boxFilter(fixed_f, count, -1, cv::Size(5, 5), cv::Point(-1, -1), false, cv::BORDER_CONSTANT);
  for (int y = 0; y < box.height; ++y) {
    for (int x = 0; x < box.width; ++x) {
      if (l.state.at<uint8_t>(y, x) == kFixed) l.h.at<cv::Vec3f>(y, x) = sum.at<cv::Vec3f>(y, x) / count.at<float>(y, x);
    }
  }
  solve(l, 0);

  cv::Mat target = out(box);
  for (int y = 0; y < box.height; ++y) {
    for (int x = 0; x < box.width; ++x) {
      if (l.state.at<uint8_t>(y, x) == kHole)
        target.at<cv::Vec3f>(y, x) += static_cast<float>(strength) * l.h.at<cv::Vec3f>(y, x);
    }
  }
  return out;
}

}  // namespace dsk::edit

#include "editing/detail.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <opencv2/core/utility.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/photo.hpp>

#include "editing/error.h"
#include "editing/image_io.h"
#include "editing/random.h"
#include "editing/sketch.h"
#include "editing/synth_sketch.h"

namespace dsk::edit {

namespace {

// Features per pixel: colour (3), guide (3), structure (1), texture (1): 8 floats, one SIMD-friendly
// block. Each group is scaled by the square root of its weight, so the distance is a plain sum.
constexpr int kCh = 8;
constexpr int kStructure = 6;
constexpr int kTexture = 7;
constexpr int kMaxPatch = 15;  // DetailOptions::patch's limit (check_args)
constexpr int kBands = 8;  // fixed work split: the result does not depend on the thread count

// One pyramid level.
struct Level {
  int w = 0, h = 0;
  std::vector<float> feat;        // w * h * kCh
  std::vector<uint8_t> hole;      // 1 = to fill
  std::vector<uint8_t> source;    // 1 = a whole known patch is centred here
  std::vector<uint8_t> target;    // 1 = a patch centred here overlaps the hole
  std::vector<int> targets;       // indices of the target centres, row-major
  // Lower bounds per channel of (target - source), in feature units: the structure channel is a
  // hinge (a line the target asks for must be in the source; the source may have more); the
  // others are plain.
  alignas(32) float low[kCh] = {-1e30f, -1e30f, -1e30f, -1e30f, -1e30f, -1e30f, 0.f, -1e30f};
  // The hinge's other side: a line the source has and the target lacks costs extra_w times
  // (1 - the target's texture feature * inv_flat) where that is positive (a flat target); 0 = off.
  float extra_w = 0, inv_flat = 0;
  // Per pixel, when extra_w > 0 (contiguous copies, so that the extra-line cost vectorises):
  // the structure feature; the same dilated by 2 px (a source line counts as extra only where the
  // target has no line within 2 px: the picture's lines are Canny edges, two beside a drawn line
  // where a stroke is one); and the flatness gate, max(1 - texture feature * inv_flat, 0).
  std::vector<float> line, near_line, flat;
  // Per pixel, 1 / reach^2 of the proximity prior (match_cost); empty when it is off.
  std::vector<float> inv_reach2;
  int index(int x, int y) const { return y * w + x; }
};

// Patch distance between the patches centred at target p and source q; stops once over `cutoff`
// (checked per patch row). One accumulator per channel: the compiler vectorises across them
// without reordering a float sum.
float patch_distance(const Level& L, int p, int q, int r, float cutoff) {
  const int n = 2 * r + 1;
  float d = 0;
  for (int dy = -r; dy <= r; ++dy) {
    const float* a = &L.feat[static_cast<size_t>(p + dy * L.w - r) * kCh];
    const float* b = &L.feat[static_cast<size_t>(q + dy * L.w - r) * kCh];
    float acc[kCh] = {};
    for (int i = 0; i < n; ++i, a += kCh, b += kCh)
      for (int c = 0; c < kCh; ++c) {
        const float diff = std::max(a[c] - b[c], L.low[c]);
        acc[c] += diff * diff;
      }
    for (int c = 0; c < kCh; ++c) d += acc[c];
    if (L.extra_w > 0) {
      const size_t pt = static_cast<size_t>(p + dy * L.w - r), qs = static_cast<size_t>(q + dy * L.w - r);
      const float *src = &L.line[qs], *near = &L.near_line[pt], *gate = &L.flat[pt];
      float e[kMaxPatch];
      for (int i = 0; i < n; ++i) {
        const float more = std::max(src[i] - near[i], 0.f);
        e[i] = gate[i] * more * more;
      }
      float extra = 0;
      for (int i = 0; i < n; ++i) extra += e[i];
      d += L.extra_w * extra;
    }
    if (d > cutoff) return d;
  }
  return d;
}

// The cost of matching target p to source q: the patch distance, times 1 + (|p - q| / reach(p))^2
// when the proximity prior is on (DetailOptions::proximity). It is what the matches store, so the
// vote's weights (vote_weights) see the prior too: a far source votes with less weight.
float match_cost(const Level& L, int p, int q, int r, float cutoff) {
  if (L.inv_reach2.empty()) return patch_distance(L, p, q, r, cutoff);
  const float dx = static_cast<float>(p % L.w - q % L.w), dy = static_cast<float>(p / L.w - q / L.w);
  const float f = 1.f + L.inv_reach2[static_cast<size_t>(p)] * (dx * dx + dy * dy);
  return patch_distance(L, p, q, r, cutoff / f) * f;
}

void set_texture(Level& L, const cv::Mat& tex, float scale) {
  for (int y = 0; y < L.h; ++y) {
    const auto* t = tex.ptr<float>(y);
    for (int x = 0; x < L.w; ++x) L.feat[static_cast<size_t>(L.index(x, y)) * kCh + kTexture] = t[x] * scale;
  }
  if (L.extra_w > 0) {
    L.flat.resize(static_cast<size_t>(L.w) * L.h);
    for (size_t i = 0; i < L.flat.size(); ++i) L.flat[i] = std::max(1.f - L.feat[i * kCh + kTexture] * L.inv_flat, 0.f);
  }
}

void set_colour(Level& L, const cv::Mat& colour, float scale) {
  for (int y = 0; y < L.h; ++y) {
    const auto* c = colour.ptr<cv::Vec3f>(y);
    for (int x = 0; x < L.w; ++x)
      for (int k = 0; k < 3; ++k) L.feat[static_cast<size_t>(L.index(x, y)) * kCh + k] = c[x][k] * scale;
  }
}

// The level's masks: sources are centres whose whole patch is known and inside the image, targets
// are centres (inside the image) whose patch meets the hole.
void plan_level(Level& L, const cv::Mat& hole, int r) {
  const int k = 2 * r + 1;
  cv::Mat known = hole == 0, src, tgt;
  cv::erode(known, src, cv::getStructuringElement(cv::MORPH_RECT, {k, k}), {-1, -1}, 1, cv::BORDER_CONSTANT, 0);
  cv::dilate(hole, tgt, cv::getStructuringElement(cv::MORPH_RECT, {k, k}));
  L.hole.assign(L.w * L.h, 0), L.source.assign(L.w * L.h, 0), L.target.assign(L.w * L.h, 0);
  L.targets.clear();
  for (int y = 0; y < L.h; ++y)
    for (int x = 0; x < L.w; ++x) {
      const int i = L.index(x, y);
      L.hole[i] = hole.at<uchar>(y, x) != 0;
      const bool inside = x >= r && y >= r && x < L.w - r && y < L.h - r;
      L.source[i] = inside && src.at<uchar>(y, x) != 0;
      L.target[i] = inside && tgt.at<uchar>(y, x) != 0;
      if (L.target[i]) L.targets.push_back(i);
    }
}

struct Field {
  std::vector<int> nnf;     // per pixel: the source centre matched to a target centre (-1: none)
  std::vector<float> dist;  // its patch distance
};

int random_source(const std::vector<int>& sources, std::mt19937_64& rng) {
  return sources[static_cast<size_t>(rnd::uniform_int(rng, 0, static_cast<int>(sources.size()) - 1))];
}

// One PatchMatch pass over the targets in band rows [y0, y1): propagation from the neighbours
// already visited in this band (left/up forward, right/down backward), then a random search around
// the best match with a radius halving from the image size.
void search_band(const Level& L, Field& F, int r, int y0, int y1, bool forward, double coherence,
                 std::mt19937_64& rng) {
  auto lo = std::lower_bound(L.targets.begin(), L.targets.end(), y0 * L.w);
  auto hi = std::lower_bound(L.targets.begin(), L.targets.end(), y1 * L.w);
  const int step = forward ? 1 : -1;
  // Coherence (Ashikhmin 2001; Hertzmann et al. 2001's kappa): a match that continues a
  // neighbour's (the same source offset) counts its distance divided by (1 + coherence), so a
  // patch copied from elsewhere must be that much better to break a coherent run. Without it, a
  // hole whose guide does not single out one source patch matches each pixel somewhere else, and the
  // vote turns the incoherent matches into noise or a blur.
  const float bonus = 1.f + static_cast<float>(coherence);
  auto continues_a_neighbour = [&](int p, int q) {
    const int x = p % L.w, y = p / L.w;
    const int nbs[4] = {x > 0 ? p - 1 : -1, x + 1 < L.w ? p + 1 : -1, y - 1 >= y0 ? p - L.w : -1,
                        y + 1 < y1 ? p + L.w : -1};
    for (int nb : nbs)
      if (nb >= 0 && L.target[nb] && F.nnf[nb] >= 0 && F.nnf[nb] + (p - nb) == q) return true;
    return false;
  };
  auto visit = [&](int p) {
    const int x = p % L.w, y = p / L.w;
    int best = F.nnf[p];
    float bestd = F.dist[p];
    float best_eff = continues_a_neighbour(p, best) ? bestd / bonus : bestd;
    auto consider = [&](int q, bool coherent) {
      if (q == best || !L.source[q]) return;
      const float scale = coherent ? bonus : 1.f;
      const float d = match_cost(L, p, q, r, best_eff * scale);
      if (d / scale < best_eff) best = q, bestd = d, best_eff = d / scale;
    };
    // Propagation: a neighbour's match, shifted by the step back to p.
    const int nx = x - step, ny = y - step;
    if (nx >= 0 && nx < L.w && L.target[p - step] && F.nnf[p - step] >= 0) {
      const int q = F.nnf[p - step] + step;
      if (q % L.w == F.nnf[p - step] % L.w + step) consider(q, true);
    }
    if (ny >= y0 && ny < y1 && L.target[p - step * L.w] && F.nnf[p - step * L.w] >= 0)
      consider(F.nnf[p - step * L.w] + step * L.w, true);
    // Random search.
    for (int radius = std::max(L.w, L.h); radius >= 1; radius /= 2) {
      const int bx = best % L.w, by = best / L.w;
      const int qx = std::clamp(bx + rnd::uniform_int(rng, -radius, radius), r, L.w - 1 - r);
      const int qy = std::clamp(by + rnd::uniform_int(rng, -radius, radius), r, L.h - 1 - r);
      const int q = L.index(qx, qy);
      consider(q, continues_a_neighbour(p, q));
    }
    F.nnf[p] = best, F.dist[p] = bestd;
  };
  if (forward)
    for (auto it = lo; it != hi; ++it) visit(*it);
  else
    for (auto it = hi; it != lo;) visit(*--it);
}

void patchmatch(const Level& L, Field& F, int r, int iterations, double coherence, uint64_t seed) {
  // Distances of the current matches (the hole's colours changed since they were found).
  cv::parallel_for_(cv::Range(0, static_cast<int>(L.targets.size())), [&](const cv::Range& range) {
    for (int i = range.start; i < range.end; ++i) {
      const int p = L.targets[static_cast<size_t>(i)];
      F.dist[p] = match_cost(L, p, F.nnf[p], r, std::numeric_limits<float>::max());
    }
  });
  const int band_rows = (L.h + kBands - 1) / kBands;
  for (int it = 0; it < iterations; ++it) {
    cv::parallel_for_(cv::Range(0, kBands), [&](const cv::Range& range) {
      for (int b = range.start; b < range.end; ++b) {
        std::mt19937_64 rng(seed ^ (0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(it * kBands + b + 1)));
        const int y0 = std::min(L.h, b * band_rows), y1 = std::min(L.h, y0 + band_rows);
        if (y0 < y1) search_band(L, F, r, y0, y1, it % 2 == 0, coherence, rng);
      }
    });
  }
}

// Re-votes the hole: each hole pixel is the mean of what the matched patches covering it say,
// weighted by exp(-d / 2 s^2), s^2 the 75th percentile of the distances (Wexler et al. 2007).
// Where the matches are coherent (neighbours copy neighbouring pixels) the patches agree and the
// texture comes through unblurred; across a seam the mean blends the two sides.
// The votes' weights, per target centre.
std::vector<double> vote_weights(const Level& L, const Field& F) {
  std::vector<float> d;
  d.reserve(L.targets.size());
  for (int p : L.targets) d.push_back(F.dist[p]);
  const size_t k = d.size() * 3 / 4;
  std::nth_element(d.begin(), d.begin() + static_cast<long>(k), d.end());
  const float s2 = std::max(d[k], 1e-6f);
  std::vector<double> weight(static_cast<size_t>(L.w) * L.h, 0.0);
  for (int p : L.targets) weight[static_cast<size_t>(p)] = std::exp(-F.dist[p] / (2.0 * s2)) + 1e-12;
  return weight;
}

// Calls fn(p, source pixel) for each target centre p whose patch covers hole pixel (x, y), with
// the pixel that p's match puts there.
template <typename Fn>
void for_each_vote(const Level& L, const Field& F, int x, int y, int r, Fn&& fn) {
  for (int dy = -r; dy <= r; ++dy)
    for (int dx = -r; dx <= r; ++dx) {
      const int px = x - dx, py = y - dy;
      if (px < 0 || py < 0 || px >= L.w || py >= L.h) continue;
      const int p = L.index(px, py);
      if (!L.target[p]) continue;
      fn(p, F.nnf[p] + dy * L.w + dx);
    }
}

// The vote of an N-channel image (the colours; the texture energy) with those weights.
template <int N>
cv::Mat vote(const Level& L, const Field& F, const std::vector<double>& weight, const cv::Mat& source_colour, int r) {
  using Px = cv::Vec<float, N>;
  using Acc = cv::Vec<double, N>;
  cv::Mat out = source_colour.clone();
  cv::parallel_for_(cv::Range(0, L.h), [&](const cv::Range& rows) {
    for (int y = rows.start; y < rows.end; ++y)
      for (int x = 0; x < L.w; ++x) {
        if (!L.hole[L.index(x, y)]) continue;
        Acc acc = Acc::all(0);
        double wsum = 0;
        for_each_vote(L, F, x, y, r, [&](int p, int q) {
          const Px c = source_colour.at<Px>(q / L.w, q % L.w);
          const double w = weight[static_cast<size_t>(p)];
          for (int ch = 0; ch < N; ++ch) acc[ch] += w * c[ch];
          wsum += w;
        });
        Px v;
        for (int ch = 0; ch < N; ++ch) v[ch] = static_cast<float>(acc[ch] / wsum);
        out.at<Px>(y, x) = v;
      }
  });
  return out;
}

// The colour vote, mode-seeking (the mean-shift vote of Wexler et al. 2007): from the weighted
// mean of what the covering patches say, kModeSteps mean-shift steps over the same weighted
// candidates with a Gaussian kernel of `bandwidth` (RGB in [0, 1]). Where the patches agree it is
// the mean; where a few of them disagree (they put an edge a pixel or two elsewhere, or bring
// another texture across a seam), the majority's colour wins instead of a blend of both, so the
// fill keeps its steps and the detail gain has less blur to make up for.
constexpr int kModeSteps = 4;
cv::Mat vote_mode(const Level& L, const Field& F, const std::vector<double>& weight, const cv::Mat& source_colour,
                  int r, double bandwidth) {
  const auto inv_2h2 = static_cast<float>(1.0 / (2 * bandwidth * bandwidth));
  cv::Mat out = source_colour.clone();
  cv::parallel_for_(cv::Range(0, L.h), [&](const cv::Range& rows) {
    std::vector<float> c0, c1, c2, w;  // the candidates, one array per channel
    for (int y = rows.start; y < rows.end; ++y)
      for (int x = 0; x < L.w; ++x) {
        if (!L.hole[L.index(x, y)]) continue;
        c0.clear(), c1.clear(), c2.clear(), w.clear();
        for_each_vote(L, F, x, y, r, [&](int p, int q) {
          const auto& c = source_colour.at<cv::Vec3f>(q / L.w, q % L.w);
          c0.push_back(c[0]), c1.push_back(c[1]), c2.push_back(c[2]);
          w.push_back(static_cast<float>(weight[static_cast<size_t>(p)]));
        });
        const size_t n = w.size();
        double m0 = 0, m1 = 0, m2 = 0, wsum = 0;
        for (size_t i = 0; i < n; ++i) m0 += w[i] * c0[i], m1 += w[i] * c1[i], m2 += w[i] * c2[i], wsum += w[i];
        m0 /= wsum, m1 /= wsum, m2 /= wsum;
        for (int step = 0; step < kModeSteps; ++step) {
          const auto f0 = static_cast<float>(m0), f1 = static_cast<float>(m1), f2 = static_cast<float>(m2);
          float a0 = 0, a1 = 0, a2 = 0, ksum = 0;
          for (size_t i = 0; i < n; ++i) {
            const float d0 = c0[i] - f0, d1 = c1[i] - f1, d2 = c2[i] - f2;
            const float k = w[i] * std::exp(-(d0 * d0 + d1 * d1 + d2 * d2) * inv_2h2);
            a0 += k * c0[i], a1 += k * c1[i], a2 += k * c2[i], ksum += k;
          }
          if (!(ksum > 1e-30f)) break;  // every candidate far from m: keep it
          const double n0 = a0 / ksum, n1 = a1 / ksum, n2 = a2 / ksum;
          const double moved = std::abs(n0 - m0) + std::abs(n1 - m1) + std::abs(n2 - m2);
          m0 = n0, m1 = n1, m2 = n2;
          if (moved < 1e-4) break;  // converged (a hundredth of an 8-bit level)
        }
        out.at<cv::Vec3f>(y, x) = cv::Vec3f(static_cast<float>(m0), static_cast<float>(m1), static_cast<float>(m2));
      }
  });
  return out;
}

// The votes average slightly misaligned patches (the mode-seeking one less), which lowers the
// texture's contrast. The detail layer (the image minus a Gaussian of sigma `o.detail_sigma`) is
// amplified, in the hole, so that its local energy (luma, averaged over a Gaussian of sigma 3 px)
// comes back to that of the matched source pixels' detail layer, by a gain in [1,
// o.max_detail_gain]; the base layer (the layout and colours the model and the matches gave)
// stays. Heeger and Bergen's (1995) subband matching, made local, with the matches as the reference.
cv::Mat restore_detail(const Level& L, const Field& F, const cv::Mat& source_colour, const cv::Mat& voted,
                       const DetailOptions& o) {
  auto detail = [&](const cv::Mat& rgb, cv::Mat& base) {
    cv::GaussianBlur(rgb, base, cv::Size(0, 0), o.detail_sigma);
    return cv::Mat(rgb - base);
  };
  auto energy = [](const cv::Mat& d) {
    cv::Mat grey;
    cv::cvtColor(d, grey, cv::COLOR_RGB2GRAY);
    return cv::Mat(grey.mul(grey));
  };
  cv::Mat src_base, base;
  const cv::Mat src_energy = energy(detail(source_colour, src_base));
  const cv::Mat d = detail(voted, base), own = energy(d);
  cv::Mat want = cv::Mat::zeros(voted.size(), CV_32F), hole = cv::Mat::zeros(voted.size(), CV_32F);
  for (int p : L.targets) {
    if (!L.hole[p]) continue;
    const int q = F.nnf[p];
    want.at<float>(p / L.w, p % L.w) = src_energy.at<float>(q / L.w, q % L.w);
    hole.at<float>(p / L.w, p % L.w) = 1;
  }
  cv::Mat own_h = own.mul(hole), want_s, own_s;
  cv::GaussianBlur(want, want_s, cv::Size(0, 0), 3.0);
  cv::GaussianBlur(own_h, own_s, cv::Size(0, 0), 3.0);
  cv::Mat out = voted.clone();
  for (int p : L.targets) {
    if (!L.hole[p]) continue;
    const int y = p / L.w, x = p % L.w;
    const double g = std::clamp(std::sqrt((want_s.at<float>(y, x) + 1e-8) / (own_s.at<float>(y, x) + 1e-8)), 1.0, o.max_detail_gain);
    out.at<cv::Vec3f>(y, x) = base.at<cv::Vec3f>(y, x) + static_cast<float>(g) * d.at<cv::Vec3f>(y, x);
  }
  return out;
}

// Hole pixels on a sketched line (structure >= 0.3) whose matched source pixel has less than half
// of it within 1 px: the picture had no patch with that line.
cv::Mat unmet_lines(const Level& L, const Field& F, float ws) {
  cv::Mat out = cv::Mat::zeros(L.h, L.w, CV_8UC1);
  auto structure = [&](int i) { return L.feat[static_cast<size_t>(i) * kCh + kStructure] / ws; };
  for (int p : L.targets) {
    if (!L.hole[p]) continue;
    const float want = structure(p);
    float got = 0;
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) got = std::max(got, structure(F.nnf[p] + dy * L.w + dx));
    if (want >= 0.3f && got < 0.5f * want) out.at<uchar>(p / L.w, p % L.w) = 255;
  }
  return out;
}

// The picture at the model's resolution: down by `scale` (area) and back up (cubic); a light blur
// when the model worked at native resolution.
cv::Mat low_pass(const cv::Mat& img, double scale) {
  cv::Mat low;
  if (scale > 1) {
    const cv::Size small(std::max(1, static_cast<int>(std::lround(img.cols / scale))),
                         std::max(1, static_cast<int>(std::lround(img.rows / scale))));
    cv::resize(img, low, small, 0, 0, cv::INTER_AREA);
    cv::resize(low, low, img.size(), 0, 0, cv::INTER_CUBIC);
  } else {
    cv::GaussianBlur(img, low, {0, 0}, 1.0);
  }
  return low;
}

// A map of lines at one width (3 px), softened, so a user's stroke and an edge of the picture at
// the same place look alike whatever their original widths.
cv::Mat line_map(const cv::Mat& strokes) {
  cv::Mat m = normalize_stroke_width(strokes, 3.0);
  cv::GaussianBlur(m, m, {0, 0}, 1.0);
  return m;
}

cv::Mat edges_of(const cv::Mat& rgb) { return canny_sketch(from_float_rgb(rgb, cv::Mat(), CV_8U, 3)); }

void check_args(const cv::Mat& image, const cv::Mat& hole, const cv::Mat& guide, const cv::Mat& strokes,
                const DetailOptions& o) {
  if (image.empty() || image.type() != CV_32FC3) throw InputError("synthesize_detail: the image must be CV_32FC3 RGB");
  if (hole.type() != CV_8UC1 || hole.size() != image.size())
    throw InputError("synthesize_detail: the hole must be CV_8UC1 of the image's size");
  if (guide.type() != CV_32FC3 || guide.size() != image.size())
    throw InputError("synthesize_detail: the guide must be CV_32FC3 of the image's size");
  if (!strokes.empty() && (strokes.type() != CV_32FC1 || strokes.size() != image.size()))
    throw InputError("synthesize_detail: the stroke map must be CV_32FC1 of the image's size (or empty)");
  if (o.patch < 3 || o.patch > kMaxPatch || o.patch % 2 == 0)
    throw InputError("synthesize_detail: the patch side must be odd, 3..15; got " + std::to_string(o.patch));
  if (!(o.colour_weight >= 0) || !(o.guide_weight >= 0) || !(o.structure_weight >= 0) ||
      o.colour_weight + o.guide_weight + o.structure_weight <= 0)
    throw InputError("synthesize_detail: the weights must be >= 0, not all 0");
  if (!(o.texture_weight >= 0) || o.texture_weight > 1e6)
    throw InputError("synthesize_detail: the texture weight must be in [0, 1e6] (0 = off)");
  if (!(o.texture_sigma > 0) || o.texture_sigma > 64) throw InputError("synthesize_detail: the texture sigma must be in (0, 64]");
  if (!(o.coherence >= 0) || o.coherence > 100) throw InputError("synthesize_detail: the coherence must be in [0, 100]");
  if (!(o.guide_scale > 0) || o.guide_scale > 1e4) throw InputError("synthesize_detail: the guide scale must be in (0, 10000]");
  if (!(o.max_detail_gain >= 1) || o.max_detail_gain > 100)
    throw InputError("synthesize_detail: the detail gain must be in [1, 100] (1 = off)");
  if (!(o.detail_sigma > 0) || o.detail_sigma > 64) throw InputError("synthesize_detail: the detail sigma must be in (0, 64]");
  if (!(o.proximity >= 0) || o.proximity > 100)
    throw InputError("synthesize_detail: the proximity must be in [0, 100] (0 = off)");
  if (!(o.vote_bandwidth >= 0) || o.vote_bandwidth > 100)
    throw InputError("synthesize_detail: the vote bandwidth must be in [0, 100] (0 = the mean vote)");
  if (!(o.extra_line_weight >= 0) || o.extra_line_weight > 100)
    throw InputError("synthesize_detail: the extra-line weight must be in [0, 100] (0 = off)");
  if (!(o.flat_texture > 0) || o.flat_texture > 1)
    throw InputError("synthesize_detail: the flat texture energy must be in (0, 1]");
  if (o.coarse_em < 1 || o.fine_em < 1 || o.search_iterations < 1 || o.min_level_side < 8)
    throw InputError("synthesize_detail: EM and search iterations must be >= 1, the coarsest side >= 8");
  if (o.coarse_em > 64 || o.fine_em > 64 || o.search_iterations > 64)
    throw InputError("synthesize_detail: EM and search iterations must be <= 64");
}

struct Weights {
  float colour, guide, structure, texture;  // square roots of the weights
};

// Every level's colour (the picture with the model's result in the hole), guide (its low-pass at
// the model's resolution), structure (lines), hole and texture energy (of the finest level's known
// pixels, scaled down: coarse levels see how much fine detail there is), finest first.
struct Pyramid {
  std::vector<cv::Mat> colours, guides, structures, holes, textures;
};

// Local texture energy (after Newson et al. 2014's texture features): the local median of the
// Sobel gradient magnitude of the luma over a square window of side 4 sigma + 1, from the known
// pixels only, smoothed over sigma / 3. A median, not a mean: one line through a flat region is a
// few pixels of the window and leaves it flat (the line is the structure term's business), while
// a texture, with gradients everywhere, raises it. The hole's values are left to the caller.
cv::Mat texture_energy(const cv::Mat& rgb, const cv::Mat& hole, double sigma) {
  cv::Mat grey, gx, gy, mag;
  cv::cvtColor(rgb, grey, cv::COLOR_RGB2GRAY);
  cv::Sobel(grey, gx, CV_32F, 1, 0, 3, 1.0 / 8);
  cv::Sobel(grey, gy, CV_32F, 0, 1, 3, 1.0 / 8);
  cv::magnitude(gx, gy, mag);
  // OpenCV's large-window median is for 8 bits: the magnitude is quantised on a square-root scale
  // (fine steps where the magnitudes are small; a median commutes with a monotone map) ...
  cv::Mat q;
  cv::sqrt(cv::min(mag, 0.5f) * 2.f, q);
  q.convertTo(q, CV_8U, 255);
  // ... and the hole's pixels alternate between the two extremes: as many below every known value
  // as above it, which leaves the median of the known pixels in a window unchanged (up to one
  // pixel of imbalance).
  for (int y = 0; y < q.rows; ++y) {
    const auto* h = hole.ptr<uchar>(y);
    auto* v = q.ptr<uchar>(y);
    for (int x = 0; x < q.cols; ++x)
      if (h[x]) v[x] = ((x + y) & 1) ? 255 : 0;
  }
  const int side = std::min(255, 2 * static_cast<int>(std::lround(2 * sigma)) + 1);
  cv::Mat med, known, num, den;
  cv::medianBlur(q, med, std::max(3, side));
  med.convertTo(med, CV_32F, 1.0 / 255);
  med = med.mul(med) * 0.5f;
  cv::Mat(hole == 0).convertTo(known, CV_32F, 1.0 / 255);
  cv::GaussianBlur(med.mul(known), num, {0, 0}, sigma / 3);
  cv::GaussianBlur(known, den, {0, 0}, sigma / 3);
  return num / cv::max(den, 1e-6);
}

Pyramid build_pyramid(const cv::Mat& image, const cv::Mat& hole, const cv::Mat& guide, const cv::Mat& strokes,
                      const DetailOptions& o) {
  cv::Mat start = image.clone();
  guide.copyTo(start, hole);
  cv::Mat structure = line_map(edges_of(start));
  if (!strokes.empty()) {
    cv::Mat user = line_map(cv::min(cv::max(strokes, 0.f), 1.f));
    user.copyTo(structure, hole);
  }
  Pyramid p{{start}, {low_pass(start, o.guide_scale)}, {structure}, {hole}, {texture_energy(start, hole, o.texture_sigma)}};
  // Halve until the short side reaches about min_level_side (and a level still has a source).
  for (;;) {
    const cv::Mat& last = p.colours.back();
    const int half_short = std::min(last.cols, last.rows) / 2;
    if (half_short < o.min_level_side || half_short < o.patch * 2) break;
    const cv::Size half((last.cols + 1) / 2, (last.rows + 1) / 2);
    cv::Mat c, g, s, hf, t;
    cv::resize(last, c, half, 0, 0, cv::INTER_AREA);
    cv::resize(p.textures.back(), t, half, 0, 0, cv::INTER_AREA);
    cv::resize(p.guides.back(), g, half, 0, 0, cv::INTER_AREA);
    cv::resize(p.structures.back(), s, half, 0, 0, cv::INTER_AREA);
    p.holes.back().convertTo(hf, CV_32F);
    cv::resize(hf, hf, half, 0, 0, cv::INTER_AREA);
    const cv::Mat h = hf > 0;
    if (!has_patch_source(h, o.patch)) break;
    p.colours.push_back(c), p.guides.push_back(g), p.structures.push_back(s), p.holes.push_back(h);
    p.textures.push_back(t);
  }
  return p;
}

// The proximity prior's reach per pixel of a level: proximity times the level's short side, plus
// the pixel's distance to the nearest known pixel (a large hole's middle is far from everything).
std::vector<float> inverse_reach2(const cv::Mat& hole, double proximity) {
  cv::Mat dist;
  cv::distanceTransform(hole, dist, cv::DIST_L2, cv::DIST_MASK_PRECISE);
  const double base = proximity * std::min(hole.cols, hole.rows);
  std::vector<float> out(static_cast<size_t>(hole.cols) * hole.rows);
  for (int y = 0; y < hole.rows; ++y)
    for (int x = 0; x < hole.cols; ++x) {
      const double reach = std::max(1.0, base + dist.at<float>(y, x));
      out[static_cast<size_t>(y) * hole.cols + x] = static_cast<float>(1.0 / (reach * reach));
    }
  return out;
}

// A level's masks and its fixed features (guide, structure); the colour and
// the texture energy are set by the caller.
Level make_level(const Pyramid& pyr, int lev, int r, const Weights& wt, const DetailOptions& o) {
  Level L;
  // The extra lines' gate needs the texture feature (its flat regions); without it, it is off.
  if (wt.texture > 0 && o.extra_line_weight > 0) {
    L.extra_w = static_cast<float>(o.extra_line_weight);
    L.inv_flat = static_cast<float>(1.0 / (o.flat_texture * wt.texture));
  }
  L.w = pyr.colours[lev].cols, L.h = pyr.colours[lev].rows;
  plan_level(L, pyr.holes[lev], r);
  L.feat.assign(static_cast<size_t>(L.w) * L.h * kCh, 0.f);
  for (int y = 0; y < L.h; ++y)
    for (int x = 0; x < L.w; ++x) {
      float* f = &L.feat[static_cast<size_t>(L.index(x, y)) * kCh];
      const auto g = pyr.guides[lev].at<cv::Vec3f>(y, x);
      for (int k = 0; k < 3; ++k) f[3 + k] = g[k] * wt.guide;
      f[kStructure] = pyr.structures[lev].at<float>(y, x) * wt.structure;
    }
  if (L.extra_w > 0) {
    cv::Mat near;
    cv::dilate(pyr.structures[lev], near, cv::getStructuringElement(cv::MORPH_ELLIPSE, {5, 5}));
    near *= wt.structure;
    L.near_line.assign(near.begin<float>(), near.end<float>());
    L.line.resize(static_cast<size_t>(L.w) * L.h);
    for (size_t i = 0; i < L.line.size(); ++i) L.line[i] = L.feat[i * kCh + kStructure];
  }
  if (o.proximity > 0) L.inv_reach2 = inverse_reach2(pyr.holes[lev], o.proximity);
  return L;
}

// The first matches of a level: the coarser level's (field `coarser`, `coarser_w` wide) scaled up
// where they land on a source, random sources elsewhere (and at the coarsest level).
void init_matches(const Level& L, Field& F, const Field& coarser, int coarser_w, int r, uint64_t seed) {
  std::vector<int> sources;
  for (int i = 0; i < L.w * L.h; ++i)
    if (L.source[i]) sources.push_back(i);
  std::mt19937_64 rng(seed);
  F.nnf.assign(static_cast<size_t>(L.w) * L.h, -1), F.dist.assign(static_cast<size_t>(L.w) * L.h, 0.f);
  const int coarser_h = coarser_w > 0 ? static_cast<int>(coarser.nnf.size()) / coarser_w : 0;
  for (int p : L.targets) {
    int q = -1;
    if (coarser_w > 0) {
      const int x = p % L.w, y = p / L.w;
      const int c = coarser.nnf[static_cast<size_t>(std::min(y / 2, coarser_h - 1) * coarser_w + std::min(x / 2, coarser_w - 1))];
      if (c >= 0) {
        const int qx = std::clamp(2 * (c % coarser_w) + x % 2, r, L.w - 1 - r);
        const int qy = std::clamp(2 * (c / coarser_w) + y % 2, r, L.h - 1 - r);
        if (L.source[L.index(qx, qy)]) q = L.index(qx, qy);
      }
    }
    F.nnf[p] = q >= 0 ? q : random_source(sources, rng);
  }
}

// A level's texture energy with the hole's estimated: the surroundings' continued into it
// (Navier-Stokes) at the coarsest level, the coarser level's vote (`coarser`) scaled up above.
cv::Mat hole_texture(const Pyramid& pyr, int lev, const cv::Mat& coarser) {
  cv::Mat tex = pyr.textures[lev].clone();
  if (coarser.empty()) {
    cv::inpaint(pyr.textures[lev], pyr.holes[lev], tex, 3, cv::INPAINT_NS);
  } else {
    cv::Mat up;
    cv::resize(coarser, up, tex.size(), 0, 0, cv::INTER_LINEAR);
    up.copyTo(tex, pyr.holes[lev]);
  }
  return tex;
}

// Sketched lines the picture has no patch for (a line through a flat region): there the model's
// own result is kept, feathered over a patch radius.
cv::Mat keep_the_models_lines(const cv::Mat& estimate, const cv::Mat& guide, const cv::Mat& unmet, int r) {
  cv::Mat w;
  cv::dilate(unmet, w, cv::getStructuringElement(cv::MORPH_ELLIPSE, {2 * r + 1, 2 * r + 1}));
  w.convertTo(w, CV_32F, 1.0 / 255);
  cv::GaussianBlur(w, w, {0, 0}, std::max(1.0, r / 2.0));
  cv::Mat w3;
  cv::cvtColor(w, w3, cv::COLOR_GRAY2RGB);
  return estimate.mul(cv::Scalar::all(1) - w3) + guide.mul(w3);
}

}  // namespace

bool has_patch_source(const cv::Mat& hole, int patch) {
  if (hole.empty() || hole.cols < patch || hole.rows < patch) return false;
  cv::Mat known = hole == 0, src;
  cv::erode(known, src, cv::getStructuringElement(cv::MORPH_RECT, {patch, patch}), {-1, -1}, 1, cv::BORDER_CONSTANT, 0);
  return cv::countNonZero(src) > 0;
}

cv::Mat synthesize_detail(const cv::Mat& image, const cv::Mat& hole_in, const cv::Mat& guide, const cv::Mat& strokes,
                          const DetailOptions& o) {
  check_args(image, hole_in, guide, strokes, o);
  const cv::Mat hole = hole_in != 0;
  if (cv::countNonZero(hole) == 0) return image.clone();
  const int r = o.patch / 2;
  if (!has_patch_source(hole, o.patch))
    throw InputError("detail synthesis needs known pixels to copy from: no " + std::to_string(o.patch) + "x" +
                     std::to_string(o.patch) + " patch outside the selection (use --detail tiles or none)");
  const Pyramid pyr = build_pyramid(image, hole, guide, strokes, o);
  const int levels = static_cast<int>(pyr.colours.size());
  const Weights wt{static_cast<float>(std::sqrt(o.colour_weight)), static_cast<float>(std::sqrt(o.guide_weight)),
                   static_cast<float>(std::sqrt(3 * o.structure_weight)),  // one structure channel against three
                   static_cast<float>(std::sqrt(3 * o.texture_weight))};

  Field F, coarser;
  cv::Mat estimate;  // the hole's colour so far (the coarser level's result)
  cv::Mat estimate_tex;  // the hole's texture energy so far (the texture term's; empty when off)
  cv::Mat unmet;     // CV_8UC1: hole pixels whose sketched line their match lacks (finest level)
  int coarser_w = 0;
  for (int lev = levels - 1; lev >= 0; --lev) {
    if (o.check) o.check();
    Level L = make_level(pyr, lev, r, wt, o);
    // The hole's colour: the model's result at the coarsest level, the coarser level's result above.
    cv::Mat colour = pyr.colours[lev].clone();
    if (!estimate.empty()) {
      cv::Mat up;
      cv::resize(estimate, up, colour.size(), 0, 0, cv::INTER_LINEAR);
      up.copyTo(colour, pyr.holes[lev]);
    }
    set_colour(L, colour, wt.colour);
    const bool use_tex = wt.texture > 0;
    cv::Mat tex = use_tex ? hole_texture(pyr, lev, estimate_tex) : cv::Mat();
    if (use_tex) set_texture(L, tex, wt.texture);
    init_matches(L, F, coarser, coarser_w, r, o.seed * 1000003 + static_cast<uint64_t>(lev));
    const int em = std::max(lev == 0 ? o.fine_em : 1, o.coarse_em >> (levels - 1 - lev));
    for (int e = 0; e < em; ++e) {
      if (o.check) o.check();
      patchmatch(L, F, r, o.search_iterations, o.coherence, o.seed * 7919 + static_cast<uint64_t>(lev * 64 + e));
      const std::vector<double> weight = vote_weights(L, F);
      // The finest level's last vote seeks the mode (vote_mode); the others, where the matches are
      // still settling, take the mean.
      const bool last = lev == 0 && e == em - 1;
      colour = last && o.vote_bandwidth > 0 ? vote_mode(L, F, weight, pyr.colours[lev], r, o.vote_bandwidth)
                                            : vote<3>(L, F, weight, pyr.colours[lev], r);
      set_colour(L, colour, wt.colour);
      if (use_tex) {
        tex = vote<1>(L, F, weight, pyr.textures[lev], r);
        set_texture(L, tex, wt.texture);
      }
    }
    if (lev == 0 && o.max_detail_gain > 1) colour = restore_detail(L, F, pyr.colours[lev], colour, o);
    estimate = colour;
    estimate_tex = tex;
    coarser = F;
    coarser_w = L.w;
    if (lev == 0 && !strokes.empty() && wt.structure > 0) unmet = unmet_lines(L, F, wt.structure);
  }
  if (!unmet.empty() && cv::countNonZero(unmet) > 0) estimate = keep_the_models_lines(estimate, guide, unmet, r);
  cv::Mat out = image.clone();
  estimate.copyTo(out, hole);
  return out;
}

}  // namespace dsk::edit

// editing/detail: guided exemplar synthesis fills a hole with the picture's own texture, keeps the
// guide's layout and the sketch's lines, and never touches a known pixel.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include <opencv2/core/utility.hpp>
#include <opencv2/imgproc.hpp>

#include "editing/detail.h"
#include "editing/error.h"
#include "editing/metrics.h"
#include "editing/synth_sketch.h"

using namespace dsk::edit;

namespace {

// A stationary texture (CV_32FC3 RGB in [0, 1]) around `base`.
cv::Mat texture(cv::Size s, uint64_t seed, cv::Scalar base, double amp = 0.25, double grain = 1.0) {
  cv::Mat n(s, CV_32FC3);
  cv::RNG(seed).fill(n, cv::RNG::UNIFORM, -amp, amp);
  cv::GaussianBlur(n, n, {0, 0}, grain);
  cv::Mat m = n + base;
  return cv::min(cv::max(m, 0.f), 1.f);
}

cv::Mat hole_of(cv::Size s, cv::Rect r) {
  cv::Mat h = cv::Mat::zeros(s, CV_8UC1);
  h(r).setTo(255);
  return h;
}

// What the model gives: the picture's low frequencies (a strong blur) in the hole.
cv::Mat blurred(const cv::Mat& img, double sigma = 6) {
  cv::Mat g;
  cv::GaussianBlur(img, g, {0, 0}, sigma);
  return g;
}

cv::Mat composite(const cv::Mat& img, const cv::Mat& fill, const cv::Mat& hole) {
  cv::Mat out = img.clone();
  fill.copyTo(out, hole);
  return out;
}

const cv::Size kSize(192, 160);
const cv::Rect kHole(60, 40, 72, 80);

}  // namespace

TEST(Detail, CopiesTheTextureAndKeepsKnownPixels) {
  // Grain of 2 px (blurred white noise, amplitude as a photo's fine texture).
  const cv::Mat img = texture(kSize, 1, cv::Scalar(0.5, 0.4, 0.3), 0.5, 2.0), hole = hole_of(kSize, kHole);
  const cv::Mat guide = blurred(img);
  const cv::Mat out = synthesize_detail(img, hole, guide, cv::Mat());
  ASSERT_EQ(out.type(), CV_32FC3);
  cv::Mat diff;
  cv::absdiff(out, img, diff);
  std::vector<cv::Mat> ch;
  cv::split(diff, ch);
  const cv::Mat changed = cv::max(cv::max(ch[0], ch[1]), ch[2]) != 0;
  EXPECT_EQ(cv::countNonZero(changed & (hole == 0)), 0) << "a known pixel changed";
  // The plain upscale is a smear; the synthesis has the picture's texture statistics.
  const cv::Mat smear = composite(img, guide, hole);
  EXPECT_GT(texture_distance(smear, img, hole), 0.6);
  EXPECT_LT(texture_distance(out, img, hole), 0.25) << texture_distance(smear, img, hole);
  const double sharp = sharpness_ratio(out, img, hole);
  EXPECT_GT(sharp, 0.5);
  EXPECT_LT(sharp, 1.5);
}

// The mean vote blurs slightly misaligned patches; the detail restoration gives the texture its
// contrast back (the detail layer's energy towards the matched sources') and changes nothing else.
TEST(Detail, TheDetailGainGivesTheVotesLostContrastBack) {
  const cv::Mat img = texture(kSize, 11, cv::Scalar(0.5, 0.5, 0.5), 0.6, 1.2), hole = hole_of(kSize, kHole);
  const cv::Mat guide = blurred(img);
  DetailOptions plain;
  plain.max_detail_gain = 1;
  const cv::Mat voted = synthesize_detail(img, hole, guide, cv::Mat(), plain);
  const cv::Mat restored = synthesize_detail(img, hole, guide, cv::Mat());  // the default gain
  EXPECT_LT(sharpness_ratio(voted, img, hole), sharpness_ratio(restored, img, hole));
  EXPECT_LT(texture_distance(restored, img, hole), texture_distance(voted, img, hole));
  EXPECT_LT(sharpness_ratio(restored, img, hole), 1.5) << "no more contrast than the picture's";
  // The base layer (what the model and the matches laid out) stays: the two agree once blurred.
  cv::Mat a, b;
  cv::GaussianBlur(voted, a, {0, 0}, 4);
  cv::GaussianBlur(restored, b, {0, 0}, 4);
  EXPECT_LT(cv::norm(a(kHole), b(kHole), cv::NORM_INF), 0.08);
  cv::Mat diff;
  cv::absdiff(restored, img, diff);
  cv::Mat changed;
  cv::cvtColor(diff, changed, cv::COLOR_RGB2GRAY);
  EXPECT_EQ(cv::countNonZero((changed != 0) & (hole == 0)), 0) << "a known pixel changed";
}

namespace {

// Two colours in random cells of 3 to 7 px (a picture of hard steps everywhere), CV_32FC3.
cv::Mat cells(cv::Size s, uint64_t seed) {
  cv::Mat img(s, CV_32FC3, cv::Scalar::all(0.2));
  cv::RNG rng(seed);
  for (int i = 0; i < s.area() / 12; ++i) {
    const int w = rng.uniform(3, 8), h = rng.uniform(3, 8);
    const cv::Rect r(rng.uniform(0, s.width), rng.uniform(0, s.height), w, h);
    img(r & cv::Rect({}, s)).setTo(cv::Scalar::all(rng.uniform(0, 2) ? 0.8 : 0.2));
  }
  return img;
}

// The share of the hole's pixels within 0.1 of one of the picture's two colours.
double on_a_level(const cv::Mat& img, const cv::Mat& hole) {
  int n = 0, on = 0;
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) {
      if (!hole.at<uchar>(y, x)) continue;
      const float v = img.at<cv::Vec3f>(y, x)[0];
      ++n, on += std::abs(v - 0.2f) < 0.1f || std::abs(v - 0.8f) < 0.1f;
    }
  return static_cast<double>(on) / n;
}

}  // namespace

// Where the matched patches disagree (they put a step a pixel or two apart), their mean is a
// blend; the mode-seeking vote keeps the majority's colour, so the steps stay steps.
TEST(Detail, TheModeSeekingVoteKeepsStepsTheMeanBlends) {
  const cv::Mat img = cells(kSize, 21), hole = hole_of(kSize, kHole);
  const cv::Mat guide = blurred(img, 3);
  DetailOptions mean, mode;
  mean.vote_bandwidth = 0, mean.max_detail_gain = mode.max_detail_gain = 1;  // the vote alone
  const cv::Mat a = synthesize_detail(img, hole, guide, cv::Mat(), mean);
  const cv::Mat b = synthesize_detail(img, hole, guide, cv::Mat(), mode);
  const double on_mean = on_a_level(a, hole), on_mode = on_a_level(b, hole);
  EXPECT_GT(on_mode, on_mean + 0.1) << on_mean << " " << on_mode;
  EXPECT_LT(texture_distance(b, img, hole), texture_distance(a, img, hole));
  EXPECT_EQ(cv::norm(b, img, cv::NORM_INF, hole == 0), 0.0) << "a known pixel changed";
}

// The smooth bias of patch-based completion: the hole's first estimate (the model's result) is
// smooth, so in colour alone a flat patch of the same mean matches it better than any textured one,
// and a hole in a textured region is filled from a smooth region elsewhere. The texture term (the
// surroundings' local detail energy, continued into the hole) asks for the texture around it.
TEST(Detail, AHoleInATexturedRegionIsNotFilledFromASmoothOne) {
  const cv::Mat textured = texture(kSize, 5, cv::Scalar(0.5, 0.5, 0.5), 0.5, 1.0);
  cv::Mat img(kSize, CV_32FC3, cv::Scalar(0.5, 0.5, 0.5));
  textured(cv::Rect(96, 0, 96, kSize.height)).copyTo(img(cv::Rect(96, 0, 96, kSize.height)));
  const cv::Rect in_texture(116, 40, 56, 80);
  const cv::Mat hole = hole_of(kSize, in_texture);
  const cv::Mat guide = blurred(img);
  DetailOptions colour_only;
  colour_only.texture_weight = 0;
  const cv::Mat smooth = synthesize_detail(img, hole, guide, cv::Mat(), colour_only);
  const cv::Mat out = synthesize_detail(img, hole, guide, cv::Mat());
  const double sharp_off = sharpness_ratio(smooth, img, hole), sharp_on = sharpness_ratio(out, img, hole);
  EXPECT_LT(sharp_off, 0.4) << "without the texture term the fill should come from the flat half";
  EXPECT_GT(sharp_on, 0.6);
  EXPECT_LT(sharp_on, 1.5);
  EXPECT_LT(texture_distance(out, img, hole), 0.5 * texture_distance(smooth, img, hole));
  cv::Mat diff;
  cv::absdiff(out, img, diff);
  cv::Mat changed;
  cv::cvtColor(diff, changed, cv::COLOR_RGB2GRAY);
  EXPECT_EQ(cv::countNonZero((changed != 0) & (hole == 0)), 0) << "a known pixel changed";
}

TEST(Detail, FollowsTheGuidesLayout) {
  // Left half reddish, right half bluish texture; the guide asks for blue in the hole's left part.
  cv::Mat img = texture(kSize, 2, cv::Scalar(0.8, 0.2, 0.2));
  texture(kSize, 3, cv::Scalar(0.2, 0.2, 0.8)).colRange(96, 192).copyTo(img.colRange(96, 192));
  const cv::Mat hole = hole_of(kSize, kHole);
  cv::Mat guide(kSize, CV_32FC3, cv::Scalar(0.2, 0.2, 0.8));
  const cv::Mat out = synthesize_detail(img, hole, guide, cv::Mat());
  const cv::Scalar mean = cv::mean(out(cv::Rect(kHole.x + 4, kHole.y + 4, 28, kHole.height - 8)));
  EXPECT_GT(mean[2], 0.6) << "blue where the guide says blue";
  EXPECT_LT(mean[0], 0.4);
  // And reddish where it says red.
  guide.setTo(cv::Scalar(0.8, 0.2, 0.2));
  const cv::Scalar red = cv::mean(synthesize_detail(img, hole, guide, cv::Mat())(cv::Rect(100, 44, 28, 72)));
  EXPECT_GT(red[0], 0.6);
}

namespace {

// Stripes of period 8 px around `base` with a light grain: vertical (varying along x) or horizontal.
cv::Mat stripes(cv::Size s, double base, bool vertical, uint64_t seed) {
  cv::Mat img = texture(s, seed, cv::Scalar::all(0), 0.03, 1.0);
  for (int y = 0; y < s.height; ++y)
    for (int x = 0; x < s.width; ++x) {
      const double v = base + 0.2 * std::sin(2 * CV_PI * (vertical ? x : y) / 8.0);
      img.at<cv::Vec3f>(y, x) += cv::Vec3f::all(static_cast<float>(v));
    }
  return img;
}

// The share of the fill's gradient energy across vertical stripes (along x).
double vertical_share(const cv::Mat& img, const cv::Rect& r) {
  cv::Mat grey, gx, gy;
  cv::cvtColor(img(r), grey, cv::COLOR_RGB2GRAY);
  cv::Sobel(grey, gx, CV_32F, 1, 0);
  cv::Sobel(grey, gy, CV_32F, 0, 1);
  const double ex = cv::norm(gx, cv::NORM_L2SQR), ey = cv::norm(gy, cv::NORM_L2SQR);
  return ex / (ex + ey + 1e-12);
}

}  // namespace

// The model's colour in the hole is a little off (0.55 where the texture around it is 0.45 on
// average), and far away the picture has a different texture of exactly that colour. The proximity
// prior keeps the texture around the hole; without it the fill comes from the far region.
TEST(Detail, TheTextureAroundTheHoleBeatsAFarOneOfTheModelsColour) {
  const cv::Size size(288, 128);
  cv::Mat img = stripes(size, 0.45, true, 12);
  stripes(size, 0.55, false, 13).colRange(160, 288).copyTo(img.colRange(160, 288));
  const cv::Rect in_near(28, 32, 56, 64);
  const cv::Mat hole = hole_of(size, in_near);
  const cv::Mat guide(size, CV_32FC3, cv::Scalar::all(0.55));
  const cv::Rect inner(in_near.x + 8, in_near.y + 8, in_near.width - 16, in_near.height - 16);
  const cv::Mat out = synthesize_detail(img, hole, guide, cv::Mat());
  EXPECT_GT(vertical_share(out, inner), 0.8) << "the vertical stripes around the hole";
  EXPECT_LT(std::abs(cv::mean(out(inner))[0] - 0.45), 0.03);
  DetailOptions anywhere;
  anywhere.proximity = 0;
  const cv::Mat far = synthesize_detail(img, hole, guide, cv::Mat(), anywhere);
  EXPECT_LT(vertical_share(far, inner), 0.5) << "without the prior the model's colour decides";
  cv::Mat diff;
  cv::absdiff(out, img, diff);
  cv::Mat changed;
  cv::cvtColor(diff, changed, cv::COLOR_RGB2GRAY);
  EXPECT_EQ(cv::countNonZero((changed != 0) & (hole == 0)), 0) << "a known pixel changed";
}

namespace {

// The sketched line: a horizontal stroke across the hole at y = 80.
cv::Mat stroke_across_the_hole() {
  cv::Mat strokes = cv::Mat::zeros(kSize, CV_32FC1);
  cv::line(strokes, {kHole.x, 80}, {kHole.x + kHole.width, 80}, 1.0, 2);
  return strokes;
}

// What the model drew for it: the line (grey `line`) on a flat `ground`, at a quarter of the
// resolution and upscaled, a soft streak.
cv::Mat streak_across_the_hole(double ground, double line) {
  cv::Mat drawn(kSize, CV_32FC3, cv::Scalar::all(ground)), guide;
  cv::line(drawn, {kHole.x, 80}, {kHole.x + kHole.width, 80}, cv::Scalar::all(line), 2);
  cv::resize(drawn, guide, {kSize.width / 4, kSize.height / 4}, 0, 0, cv::INTER_AREA);
  cv::resize(guide, guide, kSize, 0, 0, cv::INTER_CUBIC);
  return guide;
}

}  // namespace

TEST(Detail, ASketchedLineBecomesALine) {
  // Flat-ish texture with a few dark horizontal lines in the known part. The model drew the
  // sketched line across the hole as a soft streak (its result at a quarter of the resolution);
  // the synthesis makes a crisp line of it, copied from the picture's lines.
  cv::Mat img = texture(kSize, 4, cv::Scalar(0.7, 0.7, 0.7), 0.05);
  for (int y : {12, 140}) cv::line(img, {0, y}, {191, y}, cv::Scalar(0.1, 0.1, 0.1), 2);
  const cv::Mat hole = hole_of(kSize, kHole);
  const cv::Mat guide = streak_across_the_hole(0.7, 0.1), strokes = stroke_across_the_hole();
  DetailOptions o;
  o.guide_scale = 4;
  const cv::Mat with = synthesize_detail(img, hole, guide, strokes, o);
  auto bgr8 = [](const cv::Mat& m) {
    cv::Mat b;
    m.convertTo(b, CV_8UC3, 255);
    return b;
  };
  const auto upscale = edge_f1(bgr8(composite(img, guide, hole)), strokes, hole);
  const auto synth = edge_f1(bgr8(with), strokes, hole);
  EXPECT_GT(synth.f1, 0.8);
  EXPECT_GT(synth.recall, upscale.recall);
  // Crisp: the line's darkest pixel is as dark as the picture's lines, not the streak's grey.
  double lo;
  cv::Mat luma;
  cv::cvtColor(with(cv::Rect(kHole.x + 8, 72, kHole.width - 16, 16)), luma, cv::COLOR_RGB2GRAY);
  cv::minMaxLoc(luma, &lo);
  EXPECT_LT(lo, 0.2);
}

TEST(Detail, AFlatRegionBesideASketchedLineGetsNoExtraLines) {
  // A flat picture with two sources for the sketched line: above the hole, the line with a fainter
  // one 4 px beside it (a railing's edge) on the hole's own grey; below it, the line alone on a
  // slightly darker grey. The plain hinge lets the second line in (the source may have more lines,
  // and its grey is the better match); where the target is flat, extra lines cost too, so the line
  // comes alone.
  cv::Mat img = texture(kSize, 11, cv::Scalar(0.6, 0.6, 0.6), 0.02);
  img(cv::Rect(0, 128, kSize.width, kSize.height - 128)) -= cv::Scalar(0.08, 0.08, 0.08);
  cv::line(img, {0, 18}, {191, 18}, cv::Scalar(0.2, 0.2, 0.2), 2);
  cv::line(img, {0, 23}, {191, 23}, cv::Scalar(0.4, 0.4, 0.4), 1);
  cv::line(img, {0, 144}, {191, 144}, cv::Scalar(0.2, 0.2, 0.2), 2);
  const cv::Mat hole = hole_of(kSize, kHole);
  const cv::Mat guide = streak_across_the_hole(0.6, 0.2), strokes = stroke_across_the_hole();
  DetailOptions o;
  o.guide_scale = 4;
  // The darkest grey within 2..7 px of the line (either side), along the hole's middle.
  auto beside = [&](const cv::Mat& out) {
    double lo = 1;
    for (int y : {70, 71, 72, 73, 74, 75, 76, 77, 83, 84, 85, 86, 87, 88, 89}) {
      cv::Mat luma;
      cv::cvtColor(out(cv::Rect(kHole.x + 8, y, kHole.width - 16, 1)), luma, cv::COLOR_RGB2GRAY);
      lo = std::min(lo, cv::mean(luma)[0]);
    }
    return lo;
  };
  auto line = [&](const cv::Mat& out) {
    cv::Mat luma;
    cv::cvtColor(out(cv::Rect(kHole.x + 8, 78, kHole.width - 16, 4)), luma, cv::COLOR_RGB2GRAY);
    double lo;
    cv::minMaxLoc(luma, &lo);
    return lo;
  };
  const cv::Mat with = synthesize_detail(img, hole, guide, strokes, o);
  EXPECT_LT(line(with), 0.3) << "the sketched line is there";
  EXPECT_GT(beside(with), 0.5) << "and alone";
  o.extra_line_weight = 0;
  const cv::Mat hinge = synthesize_detail(img, hole, guide, strokes, o);
  EXPECT_LT(line(hinge), 0.3);
  EXPECT_LT(beside(hinge), 0.5) << "the plain hinge copies the railing's second line";
}

TEST(Detail, ALineThePictureHasNoPatchForKeepsTheModelsDrawing) {
  // No line anywhere in the picture: no patch can supply the sketched line, so along it the
  // model's result (the guide) is kept instead of a copied flat patch; away from it, texture.
  const cv::Mat img = texture(kSize, 8, cv::Scalar(0.7, 0.7, 0.7), 0.05), hole = hole_of(kSize, kHole);
  cv::Mat guide(kSize, CV_32FC3, cv::Scalar(0.7, 0.7, 0.7));
  cv::line(guide, {kHole.x, 80}, {kHole.x + kHole.width, 80}, cv::Scalar(0.3, 0.3, 0.3), 3);
  const cv::Mat strokes = stroke_across_the_hole();
  const cv::Mat with = synthesize_detail(img, hole, guide, strokes);
  const cv::Rect on_line(kHole.x + 12, 79, kHole.width - 24, 3);
  EXPECT_LT(cv::norm(with(on_line), guide(on_line), cv::NORM_INF), 0.1) << "the model's line is kept";
  const cv::Mat without = synthesize_detail(img, hole, guide, cv::Mat::zeros(kSize, CV_32FC1));
  EXPECT_GT(cv::norm(without(on_line), guide(on_line), cv::NORM_INF), 0.2)
      << "a blank sketch asks for no line: patches of the picture replace the model's";
}

TEST(Detail, DeterministicForASeedWhateverTheThreads) {
  const cv::Mat img = texture(kSize, 5, cv::Scalar(0.4, 0.5, 0.6)), hole = hole_of(kSize, kHole);
  const cv::Mat guide = blurred(img);
  DetailOptions o;
  o.seed = 3;
  const int threads = cv::getNumThreads();
  cv::setNumThreads(1);
  const cv::Mat one = synthesize_detail(img, hole, guide, cv::Mat(), o);
  cv::setNumThreads(std::max(2, threads));
  const cv::Mat two = synthesize_detail(img, hole, guide, cv::Mat(), o);
  cv::setNumThreads(threads);
  EXPECT_EQ(cv::norm(one, two, cv::NORM_INF), 0.0);
  o.seed = 4;
  EXPECT_GT(cv::norm(one, synthesize_detail(img, hole, guide, cv::Mat(), o), cv::NORM_INF), 0.0);
}

TEST(Detail, StopsWhenItsCheckThrows) {
  // The engine's cancel: the check runs between levels and EM iterations, and may throw.
  const cv::Mat img = texture(kSize, 9, cv::Scalar(0.4, 0.5, 0.6)), hole = hole_of(kSize, kHole);
  DetailOptions o;
  int calls = 0;
  o.check = [&calls] {
    if (++calls == 3) throw std::runtime_error("stop");
  };
  EXPECT_THROW(synthesize_detail(img, hole, blurred(img), cv::Mat(), o), std::runtime_error);
  EXPECT_EQ(calls, 3);
}

TEST(Detail, RefusesBadInputWithAReason) {
  const cv::Mat img = texture(kSize, 6, cv::Scalar(0.5, 0.5, 0.5)), hole = hole_of(kSize, kHole);
  const cv::Mat guide = blurred(img);
  // Nothing known to copy from.
  const cv::Mat all(kSize, CV_8UC1, 255);
  EXPECT_FALSE(has_patch_source(all));
  EXPECT_TRUE(has_patch_source(hole));
  EXPECT_THROW(synthesize_detail(img, all, guide, cv::Mat()), InputError);
  cv::Mat img8;
  img.convertTo(img8, CV_8UC3, 255);
  EXPECT_THROW(synthesize_detail(img8, hole, guide, cv::Mat()), InputError);
  EXPECT_THROW(synthesize_detail(img, hole(cv::Rect(0, 0, 50, 50)), guide, cv::Mat()), InputError);
  EXPECT_THROW(synthesize_detail(img, hole, guide, cv::Mat::zeros(10, 10, CV_32FC1)), InputError);
  // Each value of the option refused with a reason.
  auto refuses = [&](auto field, auto... bad) {
    for (auto v : {bad...}) {
      DetailOptions b;
      b.*field = v;
      EXPECT_THROW(synthesize_detail(img, hole, guide, cv::Mat(), b), InputError) << v;
    }
  };
  refuses(&DetailOptions::patch, 6);
  refuses(&DetailOptions::guide_weight, std::nan(""));
  refuses(&DetailOptions::max_detail_gain, 0.5, std::nan(""), 1e9);
  refuses(&DetailOptions::detail_sigma, 0.0);
  refuses(&DetailOptions::texture_weight, -1.0, std::nan(""), 1e9);
  refuses(&DetailOptions::texture_sigma, 0.0, std::nan(""), 100.0);
  refuses(&DetailOptions::proximity, -0.1, std::nan(""), 1e3);
  refuses(&DetailOptions::extra_line_weight, -0.1, std::nan(""), 1e3);
  refuses(&DetailOptions::flat_texture, 0.0, std::nan(""), 2.0);
  refuses(&DetailOptions::fine_em, 0, 65);
  refuses(&DetailOptions::vote_bandwidth, -0.1, std::nan(""), 1e3);
  // An empty hole changes nothing.
  EXPECT_EQ(cv::norm(synthesize_detail(img, cv::Mat::zeros(kSize, CV_8UC1), guide, cv::Mat()), img, cv::NORM_INF), 0.0);
}

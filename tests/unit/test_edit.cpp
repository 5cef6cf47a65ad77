// Editing pipeline: edit / generate / interpolate through the engine API, with the ADM fixture
// model (known-region blending) and a tiny randomly initialised editing model.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <iostream>
#include <map>

#include <filesystem>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "core/base/error.h"
#include "core/diffusion/guidance.h"
#include "core/diffusion/sampler.h"
#include "core/engine/model_cache.h"
#include "core/protocol/protocol.h"
#include "core/engine/engine.h"
#include "core/formats/model_folder.h"
#include "core/formats/tensor_io.h"
#include "editing/image_io.h"
#include "editing/metrics.h"
#include "numerics.h"
#include "temp_dir.h"

namespace fs = std::filesystem;

namespace {

// One engine for the file's tests: the models stay loaded from test to test, as in a server.
dsk::Engine& engine() {
  static dsk::Engine e;
  return e;
}

const std::string kAdm = DSK_TEST_DATA "/models/adm-small";

fs::path temp_dir(const std::string& name) { return dsk::test::temp_dir("edit", name); }

// A tiny editing-unet with random weights (fixed seed): enough to exercise the pipeline.
// sketch_null: the model's "no sketch" value (0: the same as a blank sketch).
std::string tiny_editing_model(double sketch_null = 0) {
  static std::map<double, std::string> dirs;
  if (dirs.count(sketch_null)) return dirs[sketch_null];
  const std::string dir = [sketch_null] {
    const auto d = temp_dir(sketch_null == 0 ? "tiny-model" : "tiny-model-null");
    dsk::ModelInfo info;
    info.dir = d.string();
    info.kind = dsk::ModelKind::EditingUnet;
    info.name = "tiny editing test model";
    info.flags = {{"image_size", 32},        {"in_channels", 7},          {"num_channels", 32},
                  {"channel_mult", "1,2"},   {"num_res_blocks", 1},       {"attention_resolutions", "16"},
                  {"num_head_channels", 32}, {"sketch_channels", 32},     {"learn_sigma", false},
                  {"diffusion_steps", 100},  {"noise_schedule", "cosine"}};
    if (sketch_null != 0) info.flags["sketch_null"] = sketch_null;
    torch::manual_seed(7);
    dsk::UNetModel net(dsk::unet_config_from_flags(info.flags, "tiny"));
    {
      // Give the zero-initialised sketch paths some weight so the sketch changes the output.
      torch::NoGradGuard no_grad;
      for (auto& p : net->named_parameters())
        if (p.key().find("sketch_inject") != std::string::npos) p.value().normal_(0, 0.2);
    }
    dsk::write_tensors(info.weights_path(), dsk::state_dict(*net));
    dsk::write_model_info(info);
    return info.dir;
  }();
  return dirs[sketch_null] = dir;
}

cv::Mat gradient_image(int w, int h, int depth, int channels) {
  cv::Mat img(h, w, CV_MAKETYPE(depth, channels));
  const double max = depth == CV_16U ? 65535 : 255;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) {
        const double v = max * ((x * (c + 1) + y * 3) % w) / w;
        if (depth == CV_16U) img.ptr<uint16_t>(y)[x * channels + c] = static_cast<uint16_t>(v);
        else img.ptr<uint8_t>(y)[x * channels + c] = static_cast<uint8_t>(v);
      }
  return img;
}

cv::Mat box_mask(int w, int h, cv::Rect r) {
  cv::Mat m = cv::Mat::zeros(h, w, CV_8U);
  m(r).setTo(255);
  return m;
}

dsk::EditRequest adm_request(const cv::Mat& image, const cv::Mat& mask) {
  dsk::EditRequest req;
  req.model = kAdm;
  req.image = image;
  req.mask = mask;
  req.sampling.steps = 4;
  req.sampling.class_label = 3;
  req.sampling.device = "cpu";
  req.sampling.seed = 5;
  return req;
}

// Pixels where mask == 0 must be bit-identical.
void expect_outside_identical(const cv::Mat& a, const cv::Mat& b, const cv::Mat& mask) {
  ASSERT_EQ(a.type(), b.type());
  ASSERT_EQ(a.size(), b.size());
  cv::Mat diff;
  cv::absdiff(a, b, diff);
  diff = diff.reshape(1, a.rows);  // channels interleaved along x
  for (int y = 0; y < a.rows; ++y)
    for (int x = 0; x < a.cols; ++x)
      if (mask.at<uint8_t>(y, x) == 0)
        for (int c = 0; c < a.channels(); ++c) {
          const double d = a.depth() == CV_16U ? diff.at<uint16_t>(y, x * a.channels() + c)
                                               : diff.at<uint8_t>(y, x * a.channels() + c);
          ASSERT_EQ(d, 0) << "pixel (" << x << "," << y << ") channel " << c << " changed outside the mask";
        }
}

TEST(Edit, AdmKnownRegionBlendingKeepsPixelsOutsideTheMask8And16Bit) {
  for (int depth : {CV_8U, CV_16U}) {
    for (int channels : {1, 3, 4}) {
      const cv::Mat image = gradient_image(48, 40, depth, channels);
      const cv::Mat mask = box_mask(48, 40, {10, 8, 20, 16});
      auto req = adm_request(image, mask);
      req.feather = 3;
      auto r = engine().edit(req);
      ASSERT_EQ(r.images.size(), 1u);
      EXPECT_EQ(r.images[0].depth(), depth);
      EXPECT_EQ(r.images[0].channels(), channels);
      expect_outside_identical(r.images[0], image, mask);
      EXPECT_GT(cv::norm(r.images[0], image, cv::NORM_L1), 0) << "nothing was generated inside the mask";
    }
  }
}

TEST(Edit, SameSeedSameResultAndVariantsUseConsecutiveSeeds) {
  const cv::Mat image = gradient_image(40, 40, CV_8U, 3);
  const cv::Mat mask = box_mask(40, 40, {8, 8, 16, 16});
  auto req = adm_request(image, mask);
  req.variants = 2;
  auto a = engine().edit(req);
  req.variants = 1;
  req.sampling.seed = 6;
  auto b = engine().edit(req);
  ASSERT_EQ(a.seeds, (std::vector<uint64_t>{5, 6}));
  EXPECT_EQ(cv::norm(a.images[1], b.images[0], cv::NORM_INF), 0);
  EXPECT_GT(cv::norm(a.images[0], a.images[1], cv::NORM_INF), 0);
}

// ---- the engine's models: kept between requests, in the engine that loaded them

TEST(ModelCache, KeepsALoadedModelAndReadsARewrittenOneAgain) {
  const auto dir = dsk::test::temp_dir("edit", "cache");
  for (const char* name : {"a", "b", "c"}) fs::copy(kAdm, dir / name, fs::copy_options::recursive);
  dsk::ModelCache cache(2);
  // Loaded networks are held here, so that a new one cannot reuse a freed one's address.
  const auto load = [&](const char* name) { return cache.unet((dir / name).string(), torch::kCPU, "test"); };
  const auto same = [](const dsk::LoadedUNet& x, const dsk::LoadedUNet& y) { return x.model.ptr() == y.model.ptr(); };
  const auto a = load("a");
  EXPECT_TRUE(same(load("a"), a));  // the same network, not read again
  EXPECT_EQ(cache.size(), 1);
  // Rewritten in place (a fine-tune's --out over the old folder): read again, the old one dropped.
  const auto weights = dir / "a" / "weights.safetensors";
  fs::last_write_time(weights, fs::last_write_time(weights) + std::chrono::seconds(5));
  const auto a2 = load("a");
  EXPECT_FALSE(same(a2, a));
  EXPECT_EQ(cache.size(), 1);
  // Two kept per kind: the least recently used goes.
  const auto b = load("b"), c = load("c");
  EXPECT_EQ(cache.size(), 2);
  EXPECT_TRUE(same(load("c"), c));
  EXPECT_FALSE(same(load("a"), a2));  // "a" was dropped for "c", read again now
  // A folder that does not load is not kept, and what is kept stays.
  EXPECT_THROW(cache.unet((dir / "missing").string(), torch::kCPU, "test"), std::invalid_argument);
  EXPECT_EQ(cache.size(), 2);
  cache.clear();
  EXPECT_EQ(cache.size(), 0);
}

// The engine's requests, the protocol's and the CLI's (which fills the engine's) start from the
// same defaults: core/engine/defaults.h.
TEST(Engine, ProtocolRequestsHaveTheEngineDefaults) {
  const dsk::EditRequest e;
  const dsk::proto::EditRequest pe;
  EXPECT_EQ(pe.sampling.steps, e.sampling.steps);
  EXPECT_EQ(pe.sampling.sampler, e.sampling.sampler);
  EXPECT_EQ(pe.sampling.classifier_scale, e.sampling.classifier_scale);
  EXPECT_EQ(pe.sketch_scale, e.sketch_scale);
  EXPECT_EQ(pe.context_margin, e.context_margin);
  EXPECT_EQ(pe.feather, e.feather);
  EXPECT_EQ(pe.init_strength, e.init_strength);
  EXPECT_EQ(pe.refine_strength, e.refine_strength);
  EXPECT_EQ(pe.refine_steps, e.refine_steps);
  EXPECT_EQ(pe.harmonize, e.harmonize);
  EXPECT_EQ(pe.variants, e.variants);
  const dsk::GenerateRequest g;
  const dsk::proto::GenerateRequest pg;
  EXPECT_EQ(pg.sketch_scale, g.sketch_scale);
  const dsk::InterpolateRequest i;
  const dsk::proto::InterpolateRequest pi;
  EXPECT_EQ(pi.frames, i.frames);
  EXPECT_EQ(dsk::edit::parse_interp_mode(pi.mode), i.mode);
  // The one default of the CLI, the plug-in and the protocol: an edit's own (UniPC 12), the others'.
  EXPECT_EQ(e.sampling.steps, 12);
  EXPECT_EQ(e.sampling.sampler, "unipc");
  EXPECT_EQ(pg.sampling.steps, 25);
  EXPECT_EQ(pg.sampling.sampler, "ddim");
  EXPECT_EQ(g.sampling.steps, pg.sampling.steps);
  EXPECT_EQ(g.sampling.sampler, pg.sampling.sampler);
}

TEST(Engine, OwnsItsModels) {
  dsk::Engine first, second;
  dsk::SampleRequest req;
  req.model = kAdm;
  req.sampling.steps = 2;
  req.sampling.class_label = 1;
  req.sampling.device = "cpu";
  const auto a = first.sample(req);
  EXPECT_EQ(first.models_loaded(), 1);
  EXPECT_EQ(second.models_loaded(), 0);  // two engines share nothing
  const auto b = first.sample(req);       // the loaded model again: the same result
  EXPECT_EQ(a.at(0).data, b.at(0).data);
  first.unload();
  EXPECT_EQ(first.models_loaded(), 0);
}

TEST(Edit, KnownRegionBlendingLastPasteIsTheCleanImage) {
  auto unet = dsk::load_unet(kAdm, torch::kCPU, "test");
  dsk::DiffusionConfig d = unet.diffusion;
  const auto schedule = dsk::make_schedule(d, "5");
  auto y = torch::full({1}, 2, torch::kInt64);
  auto predict = dsk::make_predictor(schedule, d, [&](const torch::Tensor& x, const torch::Tensor& t) { return unet.model(x, t, y); });
  torch::manual_seed(1);
  auto image = torch::rand({1, 3, 32, 32}) * 2 - 1;
  auto mask = torch::zeros({1, 1, 32, 32});
  mask.narrow(2, 8, 12).narrow(3, 8, 12).fill_(1);
  dsk::LoopOptions opts;
  opts.noise = dsk::seeded_noise(3);
  auto blend = dsk::seeded_noise(4);
  opts.after_step = dsk::known_region_blend(schedule, image, mask, blend);
  torch::NoGradGuard no_grad;
  auto out = dsk::sample_loop(schedule, predict, torch::randn({1, 3, 32, 32}), opts);
  EXPECT_TRUE(torch::equal(out * (1 - mask), image * (1 - mask)));
}

// A 64 px gradient with a 32 px square hole and a sketched line across it, the tiny editing model.
dsk::EditRequest sketched_hole_request(int steps) {
  cv::Mat sketch(64, 64, CV_8UC3, cv::Scalar::all(255));
  cv::line(sketch, {16, 32}, {48, 32}, cv::Scalar::all(0), 2);
  dsk::EditRequest req;
  req.model = tiny_editing_model();
  req.image = gradient_image(64, 64, CV_8U, 3);
  req.mask = box_mask(64, 64, {16, 16, 32, 32});
  req.sketch = sketch;
  req.sampling.steps = steps;
  req.sampling.device = "cpu";
  return req;
}

TEST(Edit, EditingModelFollowsItsInputsAndSketchScaleMatters) {
  dsk::EditRequest req = sketched_hole_request(4);
  const cv::Mat image = req.image, mask = req.mask;
  auto with = engine().edit(req);
  expect_outside_identical(with.images[0], image, mask);
  req.sketch_scale = 0;
  auto without = engine().edit(req);
  EXPECT_GT(cv::norm(with.images[0], without.images[0], cv::NORM_L1), 0) << "the sketch made no difference";
  req.sketch_scale = 3;
  auto harder = engine().edit(req);
  EXPECT_GT(cv::norm(harder.images[0], with.images[0], cv::NORM_L1), 0);
}

TEST(Edit, TheTilesSketchStrengthIsTheirOwn) {
  // refine_sketch_scale sets the sketch's classifier-free guidance in the refinement tiles only:
  // -1 (the default) is the sketch scale itself; another value changes the tiles, not the coarse
  // pass (without tiles it changes nothing).
  dsk::EditRequest req = sketched_hole_request(4);
  const cv::Mat image = req.image, mask = req.mask;
  req.detail = dsk::DetailMode::Tiles;
  req.sketch_scale = 2;
  const auto by_default = engine().edit(req).images.at(0);
  req.refine_sketch_scale = 2;
  EXPECT_EQ(cv::norm(engine().edit(req).images.at(0), by_default, cv::NORM_L1), 0);
  req.refine_sketch_scale = 1;
  const auto coarse_only = engine().edit(req).images.at(0);
  expect_outside_identical(coarse_only, image, mask);
  EXPECT_GT(cv::norm(coarse_only, by_default, cv::NORM_L1), 0) << "the tiles' strength made no difference";
  req.detail = dsk::DetailMode::None;
  const auto no_tiles = engine().edit(req).images.at(0);
  req.refine_sketch_scale = -1;
  EXPECT_EQ(cv::norm(engine().edit(req).images.at(0), no_tiles, cv::NORM_L1), 0) << "no tiles, nothing to change";
}

TEST(Edit, TheSolversRunEveryPartOfAnEdit) {
  // Sketch classifier-free guidance, sketch guidance, known-region blending, the partial run from a
  // smooth fill, RePaint's re-noising: each solver changes the hole only, and not into the DDIM
  // result (nor UniPC into DPM-Solver++'s: its corrector changes every update after the first).
  dsk::EditRequest req = sketched_hole_request(6);
  const cv::Mat image = req.image, mask = req.mask;
  req.sketch_guidance.scale = 1;
  req.sampling.sampler = "ddim";
  std::vector<cv::Mat> results = {engine().edit(req).images[0]};
  for (const char* sampler : {"dpm++2m", "unipc", "unipc-bh1"}) {
    req.sampling.sampler = sampler;
    const auto r = engine().edit(req).images[0];
    expect_outside_identical(r, image, mask);
    for (const auto& other : results) EXPECT_GT(cv::norm(r, other, cv::NORM_L1), 0) << sampler;
    EXPECT_EQ(cv::norm(engine().edit(req).images[0], r, cv::NORM_L1), 0) << sampler << " is deterministic";
    results.push_back(r);
  }
  req.repaint_jumps = 1;
  req.repaint_length = 2;
  req.init_strength = 1;
  const auto repainted = engine().edit(req).images[0];
  expect_outside_identical(repainted, image, mask);
}

// A flat 64 px picture (BGR 40, 160, 90) with a 32 px square hole, the tiny editing model, no feather.
dsk::EditRequest flat_hole_request() {
  dsk::EditRequest req;
  req.model = tiny_editing_model();
  req.image = cv::Mat(64, 64, CV_8UC3, cv::Scalar(40, 160, 90));
  req.mask = box_mask(64, 64, {16, 16, 32, 32});
  req.feather = 0;
  req.sampling.device = "cpu";
  return req;
}

TEST(Edit, StartingFromASmoothFillKeepsTheSurroundingsColours) {
  // A flat picture: the smooth fill of the hole is its colour. From pure noise the random-weight
  // model paints anything; from the fill noised to the first of 20 steps (t near 0: the noise and
  // the model's error are scaled by sqrt(1 - abar) ~ 0.02) the hole keeps the colour.
  dsk::EditRequest req = flat_hole_request();
  const cv::Mat image = req.image, mask = req.mask;
  req.detail = dsk::DetailMode::None;  // the coarse pass alone (the refinement would re-noise the 48 px square)
  req.sampling.steps = 20;
  auto hole_error = [&](double init_strength) {
    req.init_strength = init_strength;
    const auto r = engine().edit(req).images.at(0);
    expect_outside_identical(r, image, mask);
    return cv::norm(r, image, cv::NORM_L1, mask) / (3.0 * cv::countNonZero(mask));
  };
  const double from_noise = hole_error(1.0), from_fill = hole_error(0.05);
  EXPECT_LT(from_fill, 8) << "mean |difference| per channel from the surroundings' colour";
  EXPECT_LT(from_fill, 0.25 * from_noise) << "from noise " << from_noise << ", from the fill " << from_fill;
}

TEST(Edit, EachRefinementTileTakesRefineSteps) {
  // The 32 px hole's 48 px crop is refined in tiles (the model works at 32 px). The U-Net
  // evaluations an edit counts (and reports, one progress step each): the coarse pass's, set by
  // sampling.steps, plus refine_steps per tile, whatever sampling.steps is.
  dsk::EditRequest req = flat_hole_request();
  auto evaluations = [&](int steps, int refine_steps, bool refine = true) {
    req.sampling.steps = steps;
    req.refine_steps = refine_steps;
    req.detail = refine ? dsk::DetailMode::Tiles : dsk::DetailMode::None;
    int total = 0, calls = 0;
    engine().edit(req, [&](const dsk::Progress& p) {
      total = p.total;
      ++calls;
    });
    EXPECT_EQ(calls, total) << "one progress step per U-Net evaluation";
    return total;
  };
  const int one = evaluations(20, 1), two = evaluations(20, 2), three = evaluations(20, 3);
  const int tiles = two - one;
  EXPECT_GT(tiles, 0);
  EXPECT_EQ(three - one, 2 * tiles);
  EXPECT_EQ(one - tiles, evaluations(20, 1, /*refine=*/false)) << "the rest is the coarse pass";
  EXPECT_EQ(evaluations(40, 2) - two, evaluations(40, 2, false) - evaluations(20, 2, false))
      << "sampling.steps changes the coarse pass only";
}

TEST(Edit, HarmonizingMatchesTheHolesColourToTheSurroundings) {
  // From pure noise the random-weight model paints the hole some other colour, with structure of its
  // own; the colour matching (on by default) removes the mismatch along the edge, which brings the
  // hole's mean towards the picture's colour (test_editing_harmonize checks the correction itself).
  dsk::EditRequest req = flat_hole_request();
  const cv::Mat image = req.image, mask = req.mask;
  req.init_strength = 1.0;
  req.sampling.steps = 3;
  req.detail = dsk::DetailMode::Tiles;  // the model's own colours (patches from the picture would bring its colour)
  auto mean_error = [&](double harmonize) {
    req.harmonize = harmonize;
    const auto r = engine().edit(req).images.at(0);
    expect_outside_identical(r, image, mask);
    const cv::Scalar m = cv::mean(r, mask);
    return (std::abs(m[0] - 40) + std::abs(m[1] - 160) + std::abs(m[2] - 90)) / 3;
  };
  const double off = mean_error(0.0), on = mean_error(1.0), half = mean_error(0.5);
  EXPECT_GT(off, 5) << "the random model's hole is expected to be off-colour";
  EXPECT_LT(on, 0.6 * off) << "off " << off;
  EXPECT_LT(half, off);
  EXPECT_GT(half, on);
}

TEST(Edit, PatchDetailBringsThePicturesTextureBack) {
  // A textured picture, a selection larger than the 32 px model: the upscale is a smear, the
  // patch detail (the default) has the picture's texture; no pixel outside the selection moves.
  cv::Mat image(128, 128, CV_8UC3);
  cv::RNG(7).fill(image, cv::RNG::UNIFORM, 40, 200);
  cv::GaussianBlur(image, image, {0, 0}, 1.2);
  const cv::Mat mask = box_mask(128, 128, {36, 40, 56, 48});
  dsk::EditRequest req;
  req.model = tiny_editing_model();
  req.image = image;
  req.mask = mask;
  req.sampling.steps = 3;
  req.sampling.device = "cpu";
  EXPECT_EQ(req.detail, dsk::DetailMode::Patch) << "the default";
  const auto patch = engine().edit(req);
  req.detail = dsk::DetailMode::None;
  const auto none = engine().edit(req);
  expect_outside_identical(patch.images[0], image, mask);
  const double t_patch = dsk::edit::texture_distance(patch.images[0], image, mask);
  const double t_none = dsk::edit::texture_distance(none.images[0], image, mask);
  // (The random-weight model's result is far from a smear: wild colours, so its own distance is
  // large; the patches still come from the picture.)
  EXPECT_LT(t_patch, 0.6) << t_none;
  EXPECT_GT(t_none, 3 * t_patch);
  // Nothing around the selection to copy from: the tiles refinement, with a warning.
  req.detail = dsk::DetailMode::Patch;
  req.mask = cv::Mat(128, 128, CV_8UC1, cv::Scalar(255));
  const auto all = engine().edit(req);
  ASSERT_FALSE(all.warnings.empty());
  EXPECT_NE(all.warnings.back().find("tiles refinement was used"), std::string::npos) << all.warnings.back();
  EXPECT_THROW(dsk::parse_detail_mode("sharp"), std::invalid_argument);
  EXPECT_EQ(dsk::parse_detail_mode(dsk::detail_mode_name(dsk::DetailMode::Tiles)), dsk::DetailMode::Tiles);
}

TEST(Edit, ANullSketchModelTellsABlankRegionFromNoSketch) {
  // The sketch's only stroke lies far from the selection: the square the model sees is blank. A
  // model with sketch_null -1 reads that as "no new edges here" (another input than no sketch at
  // all); for a model whose "no sketch" is the blank map the two requests are the same.
  const cv::Mat image = gradient_image(128, 96, CV_8U, 3);
  const cv::Mat mask = box_mask(128, 96, {20, 30, 24, 24});
  cv::Mat sketch(96, 128, CV_8UC3, cv::Scalar::all(255));
  cv::line(sketch, {118, 10}, {118, 85}, cv::Scalar::all(0), 2);
  for (double null : {0.0, -1.0}) {
    dsk::EditRequest req;
    req.model = tiny_editing_model(null);
    req.image = image;
    req.mask = mask;
    req.sampling.steps = 3;
    req.sampling.device = "cpu";
    const auto without = engine().edit(req).images.at(0);
    req.sketch = sketch;
    const auto with = engine().edit(req).images.at(0);
    expect_outside_identical(with, image, mask);
    if (null == 0)
      EXPECT_EQ(cv::norm(with, without, cv::NORM_L1), 0) << "no stroke reaches the model: nothing may change";
    else
      EXPECT_GT(cv::norm(with, without, cv::NORM_L1), 0) << "a blank region of a given sketch read as no sketch";
  }
}

TEST(Edit, InterpolationEndFramesEqualTheSeedsSamples) {
  cv::Mat sketch(48, 48, CV_8UC3, cv::Scalar::all(255));
  cv::circle(sketch, {24, 24}, 12, cv::Scalar::all(0), 2);
  dsk::InterpolateRequest req;
  req.generate.model = tiny_editing_model();
  req.generate.sketch = sketch;
  req.generate.sampling.steps = 3;
  req.generate.sampling.device = "cpu";
  req.seed_a = 11;
  req.seed_b = 12;
  req.frames = 3;
  auto frames = engine().interpolate(req);
  ASSERT_EQ(frames.images.size(), 3u);
  for (uint64_t seed : {11, 12}) {
    auto g = req.generate;
    g.sampling.seed = seed;
    auto sample = engine().generate(g);
    const auto& frame = seed == 11 ? frames.images.front() : frames.images.back();
    EXPECT_EQ(cv::norm(sample.images[0], frame, cv::NORM_INF), 0) << "seed " << seed;
  }
  EXPECT_GT(cv::norm(frames.images[1], frames.images[0], cv::NORM_INF), 0);
}

TEST(Edit, CancelStopsWithinOneStep) {
  const cv::Mat image = gradient_image(40, 40, CV_8U, 3);
  auto req = adm_request(image, box_mask(40, 40, {8, 8, 16, 16}));
  req.sampling.steps = 50;
  dsk::CancelToken cancel;
  int last = 0;
  auto progress = [&](const dsk::Progress& p) {
    last = p.step;
    if (p.step == 3) cancel.cancel();
  };
  EXPECT_THROW(engine().edit(req, progress, &cancel), dsk::Cancelled);
  EXPECT_EQ(last, 3);
}

template <class Fn>
std::string input_error(Fn fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no InputError)";
}

TEST(EditBadInput, ClearErrors) {
  const cv::Mat image = gradient_image(40, 40, CV_8U, 3);
  auto req = adm_request(image, box_mask(30, 40, {4, 4, 8, 8}));
  EXPECT_NE(input_error([&] { engine().edit(req); }).find("must have the same size"), std::string::npos);
  req = adm_request(image, cv::Mat::zeros(40, 40, CV_8U));
  EXPECT_NE(input_error([&] { engine().edit(req); }).find("selects nothing"), std::string::npos);
  req = adm_request(cv::Mat(1, 1, CV_8UC3, cv::Scalar::all(9)), cv::Mat(1, 1, CV_8U, cv::Scalar(255)));
  EXPECT_NE(input_error([&] { engine().edit(req); }).find("at least 8x8"), std::string::npos);
  req = adm_request(image, box_mask(40, 40, {4, 4, 8, 8}));
  req.model = DSK_TEST_DATA "/models/adm-small-classifier";
  EXPECT_NE(input_error([&] { engine().edit(req); }).find("kind adm-classifier"), std::string::npos);
  req.model = "/nonexistent/model";
  EXPECT_NE(input_error([&] { engine().edit(req); }).find("not a model folder"), std::string::npos);
  req = adm_request(image, box_mask(40, 40, {4, 4, 8, 8}));
  for (double bad : {0.0, -0.5, 1.5}) {
    req.init_strength = bad;
    EXPECT_NE(input_error([&] { engine().edit(req); }).find("init strength must be in (0, 1]"), std::string::npos);
  }
  req.init_strength = 0.5;
  req.refine_strength = 0;
  EXPECT_NE(input_error([&] { engine().edit(req); }).find("refine strength must be in (0, 1]"), std::string::npos);
  req.refine_strength = 0.3;
  for (int bad : {0, -2, 101}) {
    req.refine_steps = bad;
    EXPECT_NE(input_error([&] { engine().edit(req); }).find("refine steps must be in 1..100"), std::string::npos);
  }
  req.refine_steps = 2;
  for (double bad : {-0.1, 1.5, std::nan("")}) {
    req.harmonize = bad;
    EXPECT_NE(input_error([&] { engine().edit(req); }).find("harmonize must be in [0, 1]"), std::string::npos);
  }
  req.harmonize = 1;
  // The ranges of core/engine/defaults.h, each named (NaN is in no range).
  using Set = std::function<void(dsk::EditRequest&)>;
  const std::vector<std::pair<Set, std::string>> out_of_range = {
      {[](auto& r) { r.context_margin = 2.5; }, "context margin must be in 0..2"},
      {[](auto& r) { r.feather = 300; }, "feather must be in 0..256"},
      {[](auto& r) { r.sampling.classifier_scale = std::nan(""); }, "classifier scale must be in 0..100"},
      {[](auto& r) { r.sketch_guidance.scale = 1001; }, "sketch guidance must be in 0..1000 (0 = off); got 1001"},
      {[](auto& r) { r.variants = 9; }, "variants must be in 1..8"},
      {[](auto& r) { r.sampling.eta = std::nan(""); }, "eta must be in [0, 1]"},
      {[](auto& r) { r.repaint_jumps = 1000000000; }, "RePaint jumps must be in 0..20"},
      {[](auto& r) { r.repaint_length = 0; }, "RePaint jump length must be in 1..1000"},
      {[](auto& r) { r.refine_sketch_scale = -0.5; }, "refine sketch scale must be in 0..20 (the tiles' sketch strength; -1"},
      {[](auto& r) { r.refine_sketch_scale = std::nan(""); }, "refine sketch scale must be in 0..20"},
  };
  for (const auto& [set, words] : out_of_range) {
    auto bad = req;
    set(bad);
    EXPECT_NE(input_error([&] { engine().edit(bad); }).find(words), std::string::npos) << words;
  }
  req.repaint_jumps = 1;  // RePaint runs from noise: the init strength is named in a warning, not used
  req.repaint_length = 2;
  req.sampling.steps = 3;
  const auto r = engine().edit(req);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("init strength (0.5) does not apply"), std::string::npos) << r.warnings[0];
  dsk::GenerateRequest g;
  g.model = kAdm;
  g.width = g.height = 32;
  EXPECT_NE(input_error([&] { engine().generate(g); }).find("needs editing-unet"), std::string::npos);
  // A huge output is refused from its size, before the canvas is made (it once allocated 24 GB).
  g.model = tiny_editing_model();
  g.width = g.height = 65536;
  EXPECT_NE(input_error([&] { engine().generate(g); }).find("65536x65536 px, over the limit of 64 megapixels"),
            std::string::npos);
  g.width = g.height = 5;
  EXPECT_NE(input_error([&] { engine().generate(g); }).find("at least 8x8"), std::string::npos);
  EXPECT_NE(input_error([&] { dsk::edit::read_image("/nonexistent.png"); }).find("/nonexistent.png"), std::string::npos);
}

TEST(EditBadInput, BlankAndResizedSketchesWarn) {
  const cv::Mat image = gradient_image(40, 40, CV_8U, 3);
  dsk::EditRequest req;
  req.model = tiny_editing_model();
  req.image = image;
  req.mask = box_mask(40, 40, {8, 8, 16, 16});
  req.sampling.steps = 2;
  req.sampling.sampler = "ddim";  // an edit's default, UniPC, needs 3
  req.sampling.device = "cpu";
  req.sketch = cv::Mat(40, 40, CV_8UC3, cv::Scalar::all(255));
  auto r = engine().edit(req);
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings[0].find("blank"), std::string::npos);
  cv::Mat small(20, 20, CV_8UC3, cv::Scalar::all(255));
  cv::line(small, {2, 10}, {18, 10}, cv::Scalar::all(0), 1);
  req.sketch = small;
  r = engine().edit(req);
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings[0].find("resized"), std::string::npos);
}

}  // namespace

namespace {

// Data x0 ~ N(mu, s0^2) per element: E[x0 | x_t] is known in closed form, and so is the
// probability-flow ODE's solution (it keeps (x_t - alpha mu) / sqrt(alpha^2 s0^2 + sigma^2)).
constexpr double kMu = 0.3, kS0 = 0.5;

dsk::Predictor gaussian_denoiser(const dsk::Schedule& s) {
  return [&s](const torch::Tensor& x, int i) {
    const double ab = s.alphas_cumprod.at(i), a = std::sqrt(ab);
    dsk::Prediction p;
    p.pred_xstart = kMu + (a * kS0 * kS0 / (ab * kS0 * kS0 + 1 - ab)) * (x - a * kMu);
    return p;
  };
}

// n steps evenly spaced in log-SNR lambda = log(alpha / sigma), from -4 (index n-1) to 4 (index 0):
// the variable DPM-Solver's order is stated in.
dsk::Schedule lambda_uniform_schedule(int n) {
  dsk::Schedule s;
  for (int i = 0; i < n; ++i) {
    const double lambda = 4 - 8.0 * i / (n - 1), ab = 1 / (1 + std::exp(-2 * lambda));
    s.alphas_cumprod.push_back(ab);
    s.alphas_cumprod_prev.push_back(i == 0 ? 1.0 : s.alphas_cumprod[i - 1]);
    s.sqrt_recip_alphas_cumprod.push_back(1 / std::sqrt(ab));
    s.sqrt_recipm1_alphas_cumprod.push_back(std::sqrt(1 / ab - 1));
    s.betas.push_back(1 - ab / s.alphas_cumprod_prev.back());
  }
  return s;
}

// The sampler's x_0 (at index 0, before the last step's x0 prediction) against the ODE's exact one.
double ode_error(dsk::SamplerKind kind, int n) {
  const auto s = lambda_uniform_schedule(n);
  torch::manual_seed(5);
  const auto x_T = torch::randn({4096}, torch::kFloat64);
  dsk::LoopOptions opts;
  opts.sampler = kind;
  opts.noise = dsk::seeded_noise(1);
  opts.first_index = n - 1;
  std::vector<torch::Tensor> trajectory;
  opts.trajectory = &trajectory;
  dsk::sample_loop(s, gaussian_denoiser(s), x_T, opts);
  auto spread = [&](int i) {
    const double ab = s.alphas_cumprod.at(i);
    return std::sqrt(ab * kS0 * kS0 + 1 - ab);
  };
  const double a_T = std::sqrt(s.alphas_cumprod.at(n - 1)), a_0 = std::sqrt(s.alphas_cumprod.at(0));
  const auto want = a_0 * kMu + spread(0) * (x_T - a_T * kMu) / spread(n - 1);
  return (trajectory.at(n - 2) - want).abs().max().item<double>();
}

}  // namespace

TEST(DpmSolver, AFirstOrderStepIsDdimWithEtaZero) {
  dsk::DiffusionConfig d;
  const auto s = dsk::make_schedule(d, "10");
  torch::manual_seed(3);
  const auto x = torch::randn({2, 3, 8, 8}), x0 = torch::rand({2, 3, 8, 8}) * 2 - 1;
  dsk::Prediction p;
  p.pred_xstart = x0;
  for (int i : {9, 5, 1, 0}) {
    dsk::MultistepHistory none;
    const auto dpm = dsk::dpmpp_2m_step(s, x, i, p, none, false);
    const auto ddim = dsk::ddim_step(s, x, i, p, 0.0, torch::Tensor());
    EXPECT_LT((dpm - ddim).abs().max().item<double>(), 1e-5) << "index " << i;
    if (i > 0) EXPECT_TRUE(none.x0.defined());  // the step is remembered for the next
  }
}

TEST(DpmSolver, ConvergesAtSecondOrderWhereDdimIsFirstOrder) {
  // On steps even in log-SNR, doubling the steps divides the error by about 4 (second order)
  // against DDIM's 2 (first order). Measured: printed below; the bounds leave a wide margin.
  const double dpm20 = ode_error(dsk::SamplerKind::DpmPP2M, 20), dpm40 = ode_error(dsk::SamplerKind::DpmPP2M, 40);
  const double ddim20 = ode_error(dsk::SamplerKind::Ddim, 20), ddim40 = ode_error(dsk::SamplerKind::Ddim, 40);
  std::cout << "ODE error, 20 / 40 steps: dpm++2m " << dpm20 << " / " << dpm40 << ", ddim " << ddim20 << " / " << ddim40
            << "\n";
  EXPECT_LT(dpm20, ddim20 / 3);
  EXPECT_GT(dpm20 / dpm40, 3.2);
  EXPECT_LT(ddim20 / ddim40, 2.6);
}

TEST(UniPc, TheCorrectorRaisesTheOrder) {
  // UniPC's corrector raises its order by one (Zhao et al. 2023, Theorem 3.1): on steps even in
  // log-SNR, doubling the steps divides its error by about 8 (third order) where DPM-Solver++(2M)'s
  // is divided by 4. Measured (printed below): 20 -> 40 divides bh2's by 8.2, bh1's by 9.4; at 20
  // steps bh2 is twice as close as DPM-Solver++(2M). The bounds leave a margin.
  const double dpm20 = ode_error(dsk::SamplerKind::DpmPP2M, 20), ddim20 = ode_error(dsk::SamplerKind::Ddim, 20);
  for (auto kind : {dsk::SamplerKind::UniPcBh2, dsk::SamplerKind::UniPcBh1}) {
    const double uni10 = ode_error(kind, 10), uni20 = ode_error(kind, 20), uni40 = ode_error(kind, 40);
    std::cout << "ODE error, 10 / 20 / 40 steps: unipc" << (kind == dsk::SamplerKind::UniPcBh1 ? "-bh1 " : " ")
              << uni10 << " / " << uni20 << " / " << uni40 << "; dpm++2m at 20 " << dpm20 << ", ddim " << ddim20 << "\n";
    EXPECT_LT(uni20, ddim20 / 3);
    EXPECT_GT(uni20 / uni40, 6);
    if (kind == dsk::SamplerKind::UniPcBh2) EXPECT_LT(uni20, 0.75 * dpm20);
  }
}

// A v-prediction model that outputs the true v recovers x0 exactly (no 1/sqrt(abar) blow-up at
// high t) and gives the samplers the true eps; a respaced schedule uses the kept timesteps' abar.
TEST(VPrediction, PredictorRecoversTheCleanImageAndTheNoise) {
  dsk::DiffusionConfig d;
  d.noise_schedule = "cosine";
  d.predict_v = true;
  const auto schedule = dsk::make_schedule(d, "10");
  torch::manual_seed(2);
  const auto x0 = torch::rand({2, 3, 8, 8}) * 2 - 1, noise = torch::randn({2, 3, 8, 8});
  for (int i : {0, 4, 9}) {
    const double ab = schedule.alphas_cumprod.at(i);
    const auto x = dsk::q_sample(schedule, x0, i, noise);
    const auto v = std::sqrt(ab) * noise - std::sqrt(1 - ab) * x0;
    auto predict = dsk::make_predictor(schedule, d, [&](const torch::Tensor&, const torch::Tensor& t) {
      EXPECT_EQ(t[0].item<int64_t>(), schedule.timestep_map.at(i));
      return v;
    }, /*clip_denoised=*/false);
    const auto p = predict(x, i);
    // x0 = sqrt(abar) x - sqrt(1 - abar) v: a few fp32 roundings of values of order 1 (x0 in
    // [-1, 1]), so the worst entry errs by a few u ~ 1e-7 at any step. Measured: at most 1.8e-7.
    EXPECT_TRUE(dsk::test::within("v-prediction/x0-recovered", dsk::test::max_relative_error(p.pred_xstart, x0), 1e-5))
        << "index " << i;
    // eps = (x / sqrt(abar) - x0) / sqrt(1 / abar - 1) divides by sqrt(1 - abar): at the first
    // step of the cosine schedule (abar ~ 1 - 1e-3) that amplifies x0's rounding by ~30x.
    // Measured: at most 5.5e-6.
    EXPECT_TRUE(dsk::test::within("v-prediction/eps-recovered",
                                  dsk::test::max_relative_error(dsk::predict_eps_from_xstart(schedule, x, i, p.pred_xstart), noise),
                                  1e-4))
        << "index " << i;
  }
  // The flag round-trips through model.json's flags.
  EXPECT_TRUE(dsk::diffusion_config_from_json(dsk::to_json(d), "test").predict_v);
  d.predict_v = false;
  EXPECT_FALSE(dsk::diffusion_config_from_json(dsk::to_json(d), "test").predict_v);
}

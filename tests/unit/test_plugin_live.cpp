// The Sketch Inpaint dialog's live preview without GIMP (plugin/live.h): the preview request made
// from the edit's, and the worker against a real engine (`diffsketch serve --stdio`, started by the
// plug-in's own EngineConnection): a newer change cancels the running preview and only its result
// arrives, the preview starts from the final edit's noise, an engine error is reported and the next
// preview still runs.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "plugin/engine_client.h"
#include "plugin/live.h"

namespace fs = std::filesystem;
namespace proto = dsk::proto;
using dsk::gimp::EngineConnection;
using dsk::gimp::LivePreview;
using dsk::gimp::LivePreviewDone;

namespace {

const std::string kModel = DSK_TEST_DATA "/models/tiny-editing";

// The plug-in's engine: the build's, as a private `serve --stdio` per connection (no server: an
// empty runtime folder, idle minutes 0).
class Environment : public ::testing::Environment {
 public:
  void SetUp() override {
    const fs::path run = fs::temp_directory_path() / ("dsk-live-" + std::to_string(getpid()));
    fs::create_directories(run);
    fs::permissions(run, fs::perms::owner_all);
    setenv("XDG_RUNTIME_DIR", run.c_str(), 1);
    setenv("DSK_ENGINE", DSK_ENGINE_PATH, 1);
    setenv("DSK_ENGINE_IDLE_MINUTES", "0", 1);
    setenv("DSK_THREADS", "1", 1);
    run_ = run;
  }
  void TearDown() override { fs::remove_all(run_); }

 private:
  fs::path run_;
};
const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new Environment);

std::unique_ptr<EngineConnection> open_engine() { return EngineConnection::open(); }

// A 64x64 picture with a square selection and a diagonal stroke, as the plug-in sends them.
proto::EditRequest edit_request(uint64_t seed) {
  const int n = 64;
  proto::EditRequest r;
  r.model = kModel;
  r.sampling.seed = seed;
  r.sampling.device = "cpu";
  r.image = proto::Image::make(n, n, 4, proto::DType::F32);
  r.mask = proto::Image::make(n, n, 1, proto::DType::F32);
  r.sketch = proto::Image::make(n, n, 4, proto::DType::F32);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      float* px = r.image.f32() + 4 * (y * n + x);
      px[0] = 0.2f + 0.6f * x / n, px[1] = 0.5f, px[2] = 0.8f - 0.5f * y / n, px[3] = 1;
      r.mask.f32()[y * n + x] = (x >= 16 && x < 48 && y >= 16 && y < 48) ? 1.0f : 0.0f;
      float* s = r.sketch.f32() + 4 * (y * n + x);
      s[0] = s[1] = s[2] = 0, s[3] = std::abs(x - y) <= 1 ? 1.0f : 0.0f;  // black strokes on a transparent layer
    }
  return r;
}

// take() until a preview arrives (or `seconds` pass).
std::optional<LivePreviewDone> wait_done(LivePreview& live, double seconds = 120) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (auto d = live.take()) return d;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::nullopt;
}

// The engine's result for `req` on a connection of its own.
proto::Result run_directly(const proto::EditRequest& req) {
  auto engine = open_engine();
  proto::Message reply = engine->request(req);
  return std::get<proto::Result>(reply);
}

}  // namespace

TEST(LivePreview, ThePreviewIsTheEditsFastPassFromTheSameNoise) {
  proto::EditRequest full = edit_request(1234);
  full.sampling.steps = 50;
  full.detail = "tiles";
  full.variants = 3;
  full.preview = true;
  full.sketch_guidance.scale = 2;
  const proto::EditRequest p = dsk::gimp::live_preview_request(full);
  // Only the fast pass's settings differ: what the user sees is what OK repaints, from the same
  // picture, selection, sketch, model, sampler, strengths and seed.
  proto::EditRequest ok = full;
  ok.sampling.steps = dsk::kLivePreviewSteps;
  ok.detail = "none";
  ok.variants = 1;
  ok.preview = false;
  ok.sketch_guidance = {};
  EXPECT_EQ(p, ok);
  EXPECT_EQ(p.sampling.seed, 1234u);

  // With the full edit at the preview's settings, OK's result is the preview's, pixel for pixel.
  LivePreview live(open_engine);
  const uint64_t id = live.submit(p);
  const auto done = wait_done(live);
  ASSERT_TRUE(done.has_value());
  ASSERT_TRUE(done->result.has_value()) << done->error;
  EXPECT_EQ(done->id, id);
  const proto::Result final_edit = run_directly(ok);
  ASSERT_EQ(final_edit.images.size(), 1u);
  EXPECT_EQ(done->result->images.at(0), final_edit.images[0]);
  EXPECT_EQ(final_edit.seeds, std::vector<uint64_t>{1234});
}

TEST(LivePreview, ANewerChangeCancelsTheRunningPreviewAndOnlyItsResultArrives) {
  LivePreview live(open_engine);
  // A first preview opens the connection and loads the model, so that the slow one below starts
  // as soon as it is submitted (on a slow machine the engine's start could outlast the wait).
  live.submit(dsk::gimp::live_preview_request(edit_request(0)));
  ASSERT_TRUE(wait_done(live).has_value());
  proto::EditRequest slow = edit_request(1);
  slow.sampling.steps = 1000;  // 8 x 1000 steps: a minute or more; only a cancel ends it soon
  slow.variants = 8;
  slow.detail = "none";
  const auto start = std::chrono::steady_clock::now();
  live.submit(slow);
  std::this_thread::sleep_for(std::chrono::seconds(2));  // the engine is inside the slow job
  EXPECT_TRUE(live.busy());
  EXPECT_FALSE(live.take().has_value());
  const proto::EditRequest newer = dsk::gimp::live_preview_request(edit_request(2));
  const uint64_t id = live.submit(newer);
  const auto done = wait_done(live);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(done.has_value());
  ASSERT_TRUE(done->result.has_value()) << done->error;
  EXPECT_EQ(done->id, id) << "the result of the replaced preview was handed over";
  EXPECT_EQ(live.cancelled(), 1) << "the engine did not report the slow preview cancelled";
  EXPECT_LT(seconds, 40) << "the slow preview ran on instead of being cancelled";
  EXPECT_EQ(done->result->images.at(0), run_directly(newer).images.at(0));
  EXPECT_FALSE(live.take().has_value()) << "a second result arrived";
  EXPECT_FALSE(live.busy());

  // A burst of changes (a stroke drawn while previews run): only the last one's result arrives.
  uint64_t last = 0;
  for (uint64_t seed = 10; seed < 15; ++seed) {
    last = live.submit(dsk::gimp::live_preview_request(edit_request(seed)));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  const auto burst = wait_done(live);
  ASSERT_TRUE(burst.has_value());
  EXPECT_EQ(burst->id, last);
  ASSERT_TRUE(burst->result.has_value()) << burst->error;
  EXPECT_EQ(burst->result->seeds, std::vector<uint64_t>{14});
}

TEST(LivePreview, AnEngineErrorIsReportedAndTheNextPreviewRuns) {
  LivePreview live(open_engine);
  proto::EditRequest bad = dsk::gimp::live_preview_request(edit_request(3));
  bad.model = "/nonexistent/model";
  live.submit(bad);
  const auto failed = wait_done(live);
  ASSERT_TRUE(failed.has_value());
  EXPECT_FALSE(failed->result.has_value());
  EXPECT_NE(failed->error.find("/nonexistent/model"), std::string::npos) << failed->error;
  live.submit(dsk::gimp::live_preview_request(edit_request(4)));
  const auto ok = wait_done(live);
  ASSERT_TRUE(ok.has_value());
  EXPECT_TRUE(ok->result.has_value()) << ok->error;
}

TEST(LivePreview, AnEngineThatCannotStartIsOneMessage) {
  LivePreview live([]() -> std::unique_ptr<EngineConnection> {
    throw dsk::gimp::PluginError("DiffSketch engine not found (test)");
  });
  live.submit(dsk::gimp::live_preview_request(edit_request(5)));
  const auto done = wait_done(live, 10);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->error, "DiffSketch engine not found (test)");
}

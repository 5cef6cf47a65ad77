// The engine's request checks (core/engine/request_checks.h), torch-free: every field refused
// with a message naming it, before any model is loaded; the fuzzer's seed frames pass.
#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <variant>

#include "core/cli/protocol_requests.h"
#include "core/engine/request_checks.h"
#include "core/protocol/protocol.h"

using namespace dsk;
namespace fs = std::filesystem;

namespace {

EditRequest small_edit() {
  EditRequest r;
  r.image = cv::Mat(16, 16, CV_8UC3, cv::Scalar::all(100));
  r.mask = cv::Mat::zeros(16, 16, CV_8UC1);
  r.mask(cv::Rect(4, 4, 8, 8)).setTo(255);
  return r;
}

// The message of the InputError `f` throws ("" when it throws none).
std::string refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& text, const std::string& word) { return text.find(word) != std::string::npos; }

}  // namespace

TEST(RequestChecks, TheFuzzersSeedFramesAreRequestsThatPass) {
  int seen = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(DSK_SOURCE_DIR) / "tests/fuzz/corpus/request")) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), {}};
    const proto::Message m = proto::decode(bytes);
    SCOPED_TRACE(entry.path().filename().string());
    if (const auto* e = std::get_if<proto::EditRequest>(&m)) {
      const EditRequest r = cli::to_engine(*e);
      EXPECT_NO_THROW(check_edit_crop(r, cv::Point(e->image_x, e->image_y)));
      EXPECT_NO_THROW(check_edit_request(r));
    } else if (const auto* g = std::get_if<proto::GenerateRequest>(&m)) {
      EXPECT_NO_THROW(check_generate_request(cli::to_engine(*g)));
    } else if (const auto* i = std::get_if<proto::InterpolateRequest>(&m)) {
      EXPECT_NO_THROW(check_interpolate_request(cli::to_engine(*i)));
    } else {
      ADD_FAILURE() << "not a request";
    }
    ++seen;
  }
  EXPECT_GE(seen, 6);
}

TEST(RequestChecks, NaNIsInNoRangeOfAnyField) {
  const double nan = std::nan("");
  const std::vector<std::pair<std::string, std::function<void(EditRequest&)>>> fields = {
      {"sketch scale", [&](EditRequest& r) { r.sketch_scale = nan; }},
      {"sketch guidance", [&](EditRequest& r) { r.sketch_guidance.scale = nan; }},
      {"eta", [&](EditRequest& r) { r.sampling.eta = nan; }},
      {"classifier scale", [&](EditRequest& r) { r.sampling.classifier_scale = nan; }},
      {"context margin", [&](EditRequest& r) { r.context_margin = nan; }},
      {"init strength", [&](EditRequest& r) { r.init_strength = nan; }},
      {"refine strength", [&](EditRequest& r) { r.refine_strength = nan; }},
      {"harmonize", [&](EditRequest& r) { r.harmonize = nan; }},
  };
  EXPECT_EQ(refusal([] { check_edit_request(small_edit()); }), "");
  for (const auto& [name, set] : fields) {
    EditRequest r = small_edit();
    set(r);
    const std::string msg = refusal([&] { check_edit_request(r); });
    EXPECT_TRUE(has(msg, name + " must be in") && has(msg, "nan")) << name << ": " << msg;
  }
}

TEST(RequestChecks, SamplingNamesAndCountsAreChecked) {
  auto with = [](const std::function<void(SamplingParams&)>& set) {
    SampleRequest r;
    set(r.sampling);
    return refusal([&] { check_sample_request(r); });
  };
  EXPECT_TRUE(has(with([](auto& s) { s.sampler = "euler"; }), "sampler 'euler' is not one of ddim, ddpm"));
  EXPECT_TRUE(has(with([](auto& s) { s.device = "tpu"; }), "device 'tpu' is not one of auto, cpu, cuda"));
  EXPECT_TRUE(has(with([](auto& s) { s.steps = 0; }), "steps must be in 1..1000; got 0"));
  EXPECT_EQ(with([](auto& s) { s.steps = 0, s.respacing = "ddim10"; }), "");  // the respacing rules
  EXPECT_TRUE(has(with([](auto& s) { s.class_label = -2; }), "class -2"));
  EXPECT_TRUE(has(with([](auto& s) { s.sampler = "dpm++2m", s.steps = 2; }), "dpm++2m sampler (DPM-Solver++(2M), "
                                                                               "second order) needs at least 3 steps"));
  EXPECT_EQ(with([](auto& s) { s.sampler = "dpm++2m", s.steps = 3; }), "");
  EXPECT_TRUE(has(with([](auto& s) { s.sampler = "unipc", s.steps = 2; }), "the unipc sampler (UniPC, second order) "
                                                                             "needs at least 3 steps"));
  EXPECT_TRUE(has(with([](auto& s) { s.sampler = "unipc-bh1", s.steps = 1; }), "unipc-bh1 sampler"));
  EXPECT_EQ(with([](auto& s) { s.sampler = "unipc", s.steps = 3; }), "");
  EXPECT_TRUE(has(with([](auto& s) { s.sampler = "unipc2"; }), "sampler"));
  SampleRequest r;
  r.batch = 65;
  EXPECT_TRUE(has(refusal([&] { check_sample_request(r); }), "batch must be in 1..64; got 65"));
}

TEST(RequestChecks, ImagesAreCheckedForDepthChannelsAndFinitePixels) {
  EditRequest r = small_edit();
  r.image = cv::Mat(16, 16, CV_32FC3, cv::Scalar::all(0.5));
  EXPECT_EQ(refusal([&] { check_edit_request(r); }), "");
  r.image.at<cv::Vec3f>(3, 5)[1] = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(has(refusal([&] { check_edit_request(r); }), "the image has NaN or infinite pixels"));
  r.image = cv::Mat(16, 16, CV_64FC3, cv::Scalar::all(0.5));
  EXPECT_TRUE(has(refusal([&] { check_edit_request(r); }), "8-bit, 16-bit or 32-bit float"));
  r = small_edit();
  r.sketch = cv::Mat(16, 16, CV_8UC2, cv::Scalar::all(0));
  EXPECT_TRUE(has(refusal([&] { check_edit_request(r); }), "the sketch has 2 channels"));
  r = small_edit();
  r.mask = cv::Mat(16, 16, CV_32FC1, cv::Scalar(std::nanf("")));
  EXPECT_TRUE(has(refusal([&] { check_edit_request(r); }), "the mask has NaN"));
  r = small_edit();
  r.image = cv::Mat(7, 16, CV_8UC3);
  r.mask = cv::Mat(7, 16, CV_8UC1);
  EXPECT_TRUE(has(refusal([&] { check_edit_request(r); }), "at least 8x8"));
}

TEST(RequestChecks, GenerateSizesAreCheckedBeforeAnythingIsMade) {
  GenerateRequest g;
  g.width = -640;
  g.height = 480;
  EXPECT_TRUE(has(refusal([&] { check_generate_request(g); }), "is negative"));
  g.width = 0;
  EXPECT_TRUE(has(refusal([&] { check_generate_request(g); }), "needs a sketch or an output size"));
  g.width = g.height = 65536;
  EXPECT_TRUE(has(refusal([&] { check_generate_request(g); }), "over the limit of 64 megapixels"));
  g.width = g.height = 512;
  g.variants = 9;
  EXPECT_TRUE(has(refusal([&] { check_generate_request(g); }), "variants must be in 1..8; got 9"));
  InterpolateRequest i;
  i.generate.width = i.generate.height = 64;
  i.frames = 65;
  EXPECT_TRUE(has(refusal([&] { check_interpolate_request(i); }), "frames must be in 2..64"));
  i.frames = 5;
  i.generate.sampling.eta = 0.5;
  EXPECT_TRUE(has(refusal([&] { check_interpolate_request(i); }), "deterministic DDIM"));
}

TEST(RequestChecks, ACropPositionNearTheIntegerLimitIsRefusedNotWrapped) {
  EditRequest r = small_edit();
  r.sketch = cv::Mat(64, 64, CV_8UC4, cv::Scalar::all(0));
  EXPECT_EQ(refusal([&] { check_edit_crop(r, cv::Point(48, 48)); }), "");
  for (const cv::Point at : {cv::Point(INT_MAX - 4, 0), cv::Point(0, INT_MAX), cv::Point(-1, 0), cv::Point(49, 0)})
    EXPECT_TRUE(has(refusal([&] { check_edit_crop(r, at); }), "does not lie inside the sketch layer")) << at;
  r.sketch = cv::Mat(16, 16, CV_8UC4, cv::Scalar::all(0));
  EXPECT_TRUE(has(refusal([&] { check_edit_crop(r, cv::Point(1, 0)); }), "must be 0"));
}

TEST(RequestChecks, MemoryIsBudgetedFromTheSizesAlone) {
  const cv::Size big(8000, 8000);
  EXPECT_GT(request_memory_bytes(big, 8), request_memory_bytes(big, 1));
  const std::string msg = refusal([&] { check_request_memory(big, 8, 4e9); });
  EXPECT_TRUE(has(msg, "GB are free") && has(msg, "megapixels")) << msg;
  EXPECT_EQ(refusal([&] { check_request_memory(big, 8, 0); }), "");  // unknown: not checked
  EXPECT_EQ(refusal([&] { check_request_memory(cv::Size(512, 512), 1, 4e9); }), "");
}

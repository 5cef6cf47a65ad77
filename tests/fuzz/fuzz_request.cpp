// libFuzzer target for the engine's request checks (core/engine/request_checks.h), reached the way
// a client reaches them: a protocol frame decoded (core/protocol), converted to an engine request
// (core/cli/protocol_requests.h) and checked as Engine::edit_crop / generate / interpolate check
// it, memory included (against a fixed 2 GB budget). Any input must be refused with a
// proto::ProtocolError or a std::invalid_argument (an InputError) or pass; a request that passes must
// hold what the engine relies on (checked below, independently of the checks). Anything else
// (another exception, a crash, a sanitizer report, an abort below) is a finding.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <variant>

#include "core/cli/protocol_requests.h"
#include "core/engine/request_checks.h"
#include "core/protocol/protocol.h"
#include "tests/fuzz/frame_mutator.h"

namespace {

using namespace dsk;

constexpr double kBudget = 2e9;

proto::Limits fuzz_limits() {
  proto::Limits l;
  l.max_payload_bytes = 1 << 20;
  l.max_side = 4096;
  return l;
}

void require(bool ok) {
  if (!ok) std::abort();
}

bool finite_in(double v, double lo, double hi) { return std::isfinite(v) && v >= lo && v <= hi; }

void require_sane(const SamplingParams& s) {
  require(finite_in(s.eta, 0, 1) && finite_in(s.classifier_scale, 0, 100) && s.class_label >= -1);
  require(!s.respacing.empty() || (s.steps >= 1 && s.steps <= 1000));
  require(s.sampler == "ddim" || s.sampler == "ddpm");
}

void require_image(const cv::Mat& m, bool needed) {
  if (m.empty()) return require(!needed);
  require(m.dims == 2 && int64_t(m.cols) * m.rows <= 64'000'000);
  require(m.channels() == 1 || m.channels() == 3 || m.channels() == 4);
  if (m.depth() == CV_32F) require(cv::checkRange(m));
}

void require_sane(const GenerateRequest& g) {
  require_sane(g.sampling);
  require_image(g.sketch, false);
  const int64_t w = g.width > 0 ? g.width : g.sketch.cols, h = g.height > 0 ? g.height : g.sketch.rows;
  require(w >= 8 && h >= 8 && w * h <= 64'000'000 && g.variants >= 1 && g.variants <= 8);
  require(finite_in(g.sketch_scale, 0, 20) && finite_in(g.sketch_guidance.scale, 0, 1000));
}

void check_edit(const proto::EditRequest& e) {
  EditRequest r = cli::to_engine(e);
  const cv::Point at(e.image_x, e.image_y);
  check_edit_crop(r, at);
  check_edit_request(r);
  check_request_memory(r.image.size(), r.variants, kBudget);
  require_sane(r.sampling);
  require_image(r.image, true);
  require_image(r.mask, true);
  require_image(r.sketch, false);
  require(r.image.cols >= 8 && r.image.rows >= 8 && r.mask.size() == r.image.size());
  if (!r.sketch.empty() && r.sketch.size() != r.image.size())
    require(at.x >= 0 && at.y >= 0 && int64_t(at.x) + r.image.cols <= r.sketch.cols &&
            int64_t(at.y) + r.image.rows <= r.sketch.rows);
  require(r.variants >= 1 && r.variants <= 8 && r.feather >= 0 && r.feather <= 256);
  require(r.refine_steps >= 1 && r.refine_steps <= 100 && r.repaint_jumps >= 0 && r.repaint_jumps <= 20);
  require(finite_in(r.sketch_scale, 0, 20) && finite_in(r.context_margin, 0, 2) && finite_in(r.harmonize, 0, 1));
  require(finite_in(r.init_strength, 1e-300, 1) && finite_in(r.refine_strength, 1e-300, 1));
  require(request_memory_bytes(r.image.size(), r.variants) <= kBudget);
}

void check_generate(const proto::GenerateRequest& g) {
  const GenerateRequest r = cli::to_engine(g);
  check_generate_request(r);
  const int w = r.width > 0 ? r.width : r.sketch.cols, h = r.height > 0 ? r.height : r.sketch.rows;
  check_request_memory(cv::Size(w, h), r.variants, kBudget);
  require_sane(r);
  require(request_memory_bytes(cv::Size(w, h), r.variants) <= kBudget);
}

void check_interpolate(const proto::InterpolateRequest& i) {
  const InterpolateRequest r = cli::to_engine(i);
  check_interpolate_request(r);
  require_sane(r.generate);
  require(r.frames >= 2 && r.frames <= 64 && r.generate.sampling.sampler == "ddim" && r.generate.sampling.eta == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const proto::Message m = proto::decode({data, size}, fuzz_limits());
    if (const auto* e = std::get_if<proto::EditRequest>(&m)) check_edit(*e);
    if (const auto* g = std::get_if<proto::GenerateRequest>(&m)) check_generate(*g);
    if (const auto* i = std::get_if<proto::InterpolateRequest>(&m)) check_interpolate(*i);
  } catch (const proto::ProtocolError&) {
  } catch (const std::invalid_argument&) {
  }
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned seed) {
  return dsk::fuzz::mutate_frame(data, size, max_size, seed);
}

// `diffsketch serve`'s requests: protocol messages (core/protocol/protocol.h) into engine requests,
// and the engine's results and errors into replies.
#include "core/cli/serve_requests.h"

#include <cstring>
#include <iostream>
#include <opencv2/imgproc.hpp>

#include "core/base/error.h"
#include "core/formats/model_registry.h"
#include "editing/interp.h"

namespace dsk::cli {

namespace {

// ---- images: protocol (RGB order, any of u8/u16/f32) <-> the engine's as-read cv::Mat (BGR order)

int cv_depth(proto::DType d) { return d == proto::DType::U8 ? CV_8U : d == proto::DType::U16 ? CV_16U : CV_32F; }

cv::Mat to_mat(const proto::Image& im) {
  if (im.empty()) return {};
  cv::Mat m(im.height, im.width, CV_MAKETYPE(cv_depth(im.dtype), im.channels), const_cast<uint8_t*>(im.data.data()));
  cv::Mat out;
  switch (im.channels) {
    case 1: out = m.clone(); break;
    case 2: {  // gray + alpha: the engine reads gray, BGR or BGRA
      std::vector<cv::Mat> ga;
      cv::split(m, ga);
      cv::merge(std::vector<cv::Mat>{ga[0], ga[0], ga[0], ga[1]}, out);
      break;
    }
    case 3: cv::cvtColor(m, out, cv::COLOR_RGB2BGR); break;
    default: cv::cvtColor(m, out, cv::COLOR_RGBA2BGRA); break;
  }
  return out;
}

proto::Image from_mat(const cv::Mat& mat) {
  cv::Mat m;
  if (mat.channels() == 3) cv::cvtColor(mat, m, cv::COLOR_BGR2RGB);
  else if (mat.channels() == 4) cv::cvtColor(mat, m, cv::COLOR_BGRA2RGBA);
  else m = mat.isContinuous() ? mat : mat.clone();
  const auto dtype = m.depth() == CV_8U ? proto::DType::U8 : m.depth() == CV_16U ? proto::DType::U16 : proto::DType::F32;
  if (m.depth() != CV_8U && m.depth() != CV_16U && m.depth() != CV_32F) throw Error("engine returned an image of unexpected depth");
  proto::Image im = proto::Image::make(m.cols, m.rows, m.channels(), dtype);
  std::memcpy(im.data.data(), m.data, im.byte_size());
  return im;
}

proto::Image preview_image(const ImageF32& p) {
  proto::Image im = proto::Image::make(p.width, p.height, p.channels, proto::DType::U8);
  for (size_t i = 0; i < im.data.size() && i < p.data.size(); ++i)
    im.data[i] = static_cast<uint8_t>(std::clamp(p.data[i], 0.0f, 1.0f) * 255.0f + 0.5f);
  return im;
}

SamplingParams sampling(const proto::Sampling& s) {
  SamplingParams p;
  p.steps = s.steps;
  p.respacing = s.respacing;
  p.sampler = s.sampler;
  p.eta = s.eta;
  p.seed = s.seed;
  p.device = s.device;
  p.classifier = s.classifier;
  p.class_label = s.class_label;
  p.classifier_scale = s.classifier_scale;
  return p;
}

SketchGuidance sketch_guidance(const proto::SketchGuidance& g) { return {g.scale, g.exact, g.features}; }

GenerateRequest generate_request(const proto::GenerateRequest& g) {
  GenerateRequest r;
  r.model = g.model;
  r.sampling = sampling(g.sampling);
  r.sketch = to_mat(g.sketch);
  r.width = g.width;
  r.height = g.height;
  r.sketch_scale = g.sketch_scale;
  r.sketch_guidance = sketch_guidance(g.sketch_guidance);
  r.variants = g.variants;
  r.preview = g.preview;
  return r;
}

// LibTorch's messages carry a C++ backtrace after their first lines; the user needs the start.
std::string short_message(std::string msg) {
  if (auto at = msg.find("\nException raised from"); at != std::string::npos) msg.resize(at);
  if (msg.size() > 2000) msg = msg.substr(0, 2000) + "...";
  return msg;
}

bool looks_like_oom(const std::string& msg) {
  return msg.find("out of memory") != std::string::npos || msg.find("can't allocate memory") != std::string::npos ||
         msg.find("Tried to allocate") != std::string::npos;
}

EditRequest edit_request(const proto::EditRequest& e) {
  EditRequest req;
  req.model = e.model;
  req.sampling = sampling(e.sampling);
  req.image = to_mat(e.image);
  req.mask = to_mat(e.mask);
  req.sketch = to_mat(e.sketch);
  req.sketch_scale = e.sketch_scale;
  req.sketch_guidance = sketch_guidance(e.sketch_guidance);
  req.variants = e.variants;
  req.context_margin = e.context_margin;
  req.feather = e.feather;
  req.init_strength = e.init_strength;
  req.refine_strength = e.refine_strength;
  req.refine_steps = e.refine_steps;
  req.harmonize = e.harmonize;
  req.detail = parse_detail_mode(e.detail);
  req.preview = e.preview;
  return req;
}

InterpolateRequest interpolate_request(const proto::InterpolateRequest& i) {
  InterpolateRequest req;
  req.generate = generate_request(i.generate);
  req.seed_a = i.seed_a;
  req.seed_b = i.seed_b;
  req.frames = i.frames;
  req.mode = edit::parse_interp_mode(i.mode);
  return req;
}

EditResult run(Engine& engine, const proto::Message& msg, const ProgressFn& progress, const CancelToken* cancel) {
  if (const auto* e = std::get_if<proto::EditRequest>(&msg))
    return engine.edit_crop(edit_request(*e), cv::Point(e->image_x, e->image_y), progress, cancel);
  if (const auto* g = std::get_if<proto::GenerateRequest>(&msg))
    return engine.generate(generate_request(*g), progress, cancel);
  if (const auto* i = std::get_if<proto::InterpolateRequest>(&msg))
    return engine.interpolate(interpolate_request(*i), progress, cancel);
  throw InputError(std::string("'") + proto::message_type(msg) + "' is not a request the engine answers");
}

}  // namespace

proto::ProgressUpdate progress_update(const Progress& p) {
  proto::ProgressUpdate u{p.step, p.total, std::nullopt};
  if (p.preview) u.preview = preview_image(*p.preview);
  return u;
}

proto::ModelList model_list() {
  proto::ModelList list;
  std::vector<std::string> skipped;
  for (const auto& m : list_models(&skipped)) list.models.push_back({m.id, m.kind, m.name, m.path, m.resolution});
  for (const auto& why : skipped) std::cerr << "diffsketch serve: skipped a broken model folder: " << why << "\n";
  list.search_path = model_search_path();
  return list;
}

proto::Message answer_request(Engine& engine, const proto::Message& msg, const ProgressFn& progress,
                              const CancelToken* cancel) {
  try {
    const EditResult r = run(engine, msg, progress, cancel);
    proto::Result res;
    for (const auto& im : r.images) res.images.push_back(from_mat(im));
    res.seeds = r.seeds;
    res.warnings = r.warnings;
    return res;
  } catch (const Cancelled&) {
    return proto::ErrorReply{proto::ErrorKind::Cancelled, "cancelled"};
  } catch (const std::invalid_argument& e) {  // bad input, from any part (core/base/error.h)
    return proto::ErrorReply{proto::ErrorKind::Input, e.what()};
  } catch (const std::bad_alloc&) {
    return proto::ErrorReply{proto::ErrorKind::OutOfMemory,
                             "the engine ran out of memory (try a smaller selection, fewer variants or --device cpu)"};
  } catch (const std::exception& e) {
    const std::string what = short_message(e.what());
    return looks_like_oom(what) ? proto::ErrorReply{proto::ErrorKind::OutOfMemory, "the engine ran out of memory: " + what}
                                : proto::ErrorReply{proto::ErrorKind::Internal, what};
  }
}

}  // namespace dsk::cli

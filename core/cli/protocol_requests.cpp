// The protocol's requests as engine requests, and the engine's images as the protocol's.
#include "core/cli/protocol_requests.h"

#include <algorithm>
#include <cstring>
#include <opencv2/imgproc.hpp>

#include "core/base/error.h"
#include "editing/interp.h"

namespace dsk::cli {

namespace {

// Images: protocol (RGB order, any of u8/u16/f32) <-> the engine's as-read cv::Mat (BGR order).
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

}  // namespace

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

GenerateRequest to_engine(const proto::GenerateRequest& g) {
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

EditRequest to_engine(const proto::EditRequest& e) {
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

InterpolateRequest to_engine(const proto::InterpolateRequest& i) {
  InterpolateRequest req;
  req.generate = to_engine(i.generate);
  req.seed_a = i.seed_a;
  req.seed_b = i.seed_b;
  req.frames = i.frames;
  req.mode = edit::parse_interp_mode(i.mode);
  return req;
}


}  // namespace dsk::cli

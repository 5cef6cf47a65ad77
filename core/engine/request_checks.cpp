// The engine's request checks (request_checks.h): every field before any work.
#include "core/engine/request_checks.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace dsk {

namespace {

// `value` must be one of `names`, else "<what> '<value>' is not one of a, b, c".
template <size_t N>
void require_one_of(const std::string& value, const std::string_view (&names)[N], const std::string& what) {
  if (std::find(std::begin(names), std::end(names), value) != std::end(names)) return;
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + std::string(n);
  throw InputError(what + " '" + value + "' is not one of " + list);
}

constexpr std::string_view kDevices[] = {"auto", "cpu", "cuda"};

// An image as the engine reads it: gray, BGR or BGRA, of 8-bit, 16-bit or float pixels (the
// float ones finite), at most kMaxImagePixels.
void check_pixels(const cv::Mat& m, const std::string& what) {
  if (m.dims != 2) throw InputError(what + " must be a 2-D image");
  const int depth = m.depth(), channels = m.channels();
  if (depth != CV_8U && depth != CV_16U && depth != CV_32F)
    throw InputError(what + " must have 8-bit, 16-bit or 32-bit float pixels");
  if (channels != 1 && channels != 3 && channels != 4)
    throw InputError(what + " has " + std::to_string(channels) + " channels; gray, RGB or RGBA (1, 3 or 4) are read");
  if (static_cast<int64_t>(m.cols) * m.rows > kMaxImagePixels)
    throw InputError(what + " is " + std::to_string(m.cols) + "x" + std::to_string(m.rows) + " px, over the limit of " +
                     std::to_string(kMaxImagePixels / 1000000) + " megapixels");
  if (depth == CV_32F && !cv::checkRange(m))
    throw InputError(what + " has NaN or infinite pixels; float pixels must be finite (0..1)");
}

void check_image(const cv::Mat& image, const std::string& what) {
  if (image.empty()) throw InputError(what + " is empty");
  check_image_size(image.cols, image.rows, what);
  check_pixels(image, what);
}

void check_sketch(const cv::Mat& sketch) {
  if (!sketch.empty()) check_pixels(sketch, "the sketch");
}

void check_guidance(const SketchGuidance& g) {
  require_in(kSketchGuidanceRange, g.scale, "sketch guidance", " (0 = off)");
}

}  // namespace

void check_sampling(const SamplingParams& p) {
  if (p.respacing.empty()) require_in(kStepsRange, p.steps, "steps", "");
  require_one_of(p.sampler, kSamplers, "sampler");
  // The reference implementations refuse fewer updates than the solver's order (2); with the final
  // denoising step that is 3 steps. Fewer would silently be DDIM.
  if (p.respacing.empty() && p.steps < 3) {
    if (p.sampler == "dpm++2m")
      throw InputError("the dpm++2m sampler (DPM-Solver++(2M), second order) needs at least 3 steps (2 updates and the "
                       "final denoising); got " + std::to_string(p.steps) + ". Use 3 or more steps, or --sampler ddim");
    if (p.sampler == "unipc" || p.sampler == "unipc-bh1")
      throw InputError("the " + p.sampler + " sampler (UniPC, second order) needs at least 3 steps (2 updates and the "
                       "final denoising); got " + std::to_string(p.steps) + ". Use 3 or more steps, or --sampler ddim");
  }
  require_in(kEtaRange, p.eta, "eta", " (DDIM: 0 deterministic, 1 as noisy as DDPM)");
  require_one_of(p.device, kDevices, "device");
  if (p.class_label < -1) throw InputError("class " + std::to_string(p.class_label) + " must be a class index, or -1 (none)");
  require_in(kClassifierScaleRange, p.classifier_scale, "classifier scale", "");
}

void check_image_size(int w, int h, const std::string& what) {
  if (w < kMinImageSide || h < kMinImageSide)
    throw InputError(what + " is " + std::to_string(w) + "x" + std::to_string(h) + " px; at least " +
                     std::to_string(kMinImageSide) + "x" + std::to_string(kMinImageSide) + " is needed");
  if (static_cast<int64_t>(w) * h > kMaxImagePixels)
    throw InputError(what + " is " + std::to_string(w) + "x" + std::to_string(h) + " px, over the limit of " +
                     std::to_string(kMaxImagePixels / 1000000) + " megapixels");
}

void check_edit_request(const EditRequest& req) {
  check_image(req.image, "the image");
  if (req.mask.empty()) throw InputError("the mask is empty (no file or no pixels); white = regenerate");
  if (req.mask.size() != req.image.size())
    throw InputError("the mask is " + std::to_string(req.mask.cols) + "x" + std::to_string(req.mask.rows) +
                     " px but the image is " + std::to_string(req.image.cols) + "x" + std::to_string(req.image.rows) +
                     "; they must have the same size");
  check_pixels(req.mask, "the mask");
  check_sketch(req.sketch);
  require_in(kVariantsRange, req.variants, "variants", "");
  require_in(kSketchScaleRange, req.sketch_scale, "sketch scale", " (0 ignores the sketch, 1 plain, above 1 harder)");
  check_guidance(req.sketch_guidance);
  check_sampling(req.sampling);
  require_in(kRepaintJumpsRange, req.repaint_jumps, "RePaint jumps", " (extra passes per jump; 0 = off)");
  require_in(kRepaintLengthRange, req.repaint_length, "RePaint jump length", " (steps)");
  require_in(kContextMarginRange, req.context_margin, "context margin", " (a fraction of the selection's size)");
  require_in(kFeatherRange, req.feather, "feather", " (px inside the selection)");
  require_in(kInitStrengthRange, req.init_strength, "init strength",
             ": 1 starts the hole from noise, e.g. 0.8 from a smooth fill");
  require_in(kRefineStrengthRange, req.refine_strength, "refine strength",
             " (e.g. 0.3: each tile re-noised to 30% of the process)");
  require_in(kRefineStepsRange, req.refine_steps, "refine steps", " (denoising steps per refinement tile, e.g. 2)");
  if (req.refine_sketch_scale != -1)
    require_in(kSketchScaleRange, req.refine_sketch_scale, "refine sketch scale",
               " (the tiles' sketch strength; -1 = the sketch scale, 1 = no guidance in the tiles)");
  require_in(kHarmonizeRange, req.harmonize, "harmonize",
             ": 0 keeps the model's colours, 1 matches them to the surroundings");
  if (static_cast<size_t>(req.detail) >= std::size(kDetailModes)) throw InputError("unknown detail mode");
}

void check_generate_request(const GenerateRequest& req) {
  if (req.width < 0 || req.height < 0)
    throw InputError("the output size " + std::to_string(req.width) + "x" + std::to_string(req.height) +
                     " is negative; give positive sizes, or 0 for the sketch's");
  check_sketch(req.sketch);
  const int w = req.width > 0 ? req.width : req.sketch.cols, h = req.height > 0 ? req.height : req.sketch.rows;
  if (w <= 0 || h <= 0) throw InputError("generate needs a sketch or an output size (--width, --height)");
  check_image_size(w, h, "the output");
  require_in(kVariantsRange, req.variants, "variants", "");
  require_in(kSketchScaleRange, req.sketch_scale, "sketch scale", " (0 ignores the sketch, 1 plain, above 1 harder)");
  check_guidance(req.sketch_guidance);
  check_sampling(req.sampling);
}

void check_interpolate_request(const InterpolateRequest& req) {
  require_in(kFramesRange, req.frames, "frames", " (both end points included)");
  if (req.generate.sampling.sampler != "ddim" || req.generate.sampling.eta != 0)
    throw InputError("interpolate runs deterministic DDIM (--sampler ddim --eta 0) so that the end frames are the seeds' samples");
  check_generate_request(req.generate);
}

void check_sample_request(const SampleRequest& req) {
  require_in(kBatchRange, req.batch, "batch", "");
  check_sampling(req.sampling);
}

void check_edit_crop(const EditRequest& req, cv::Point at) {
  if (req.image.empty() || req.sketch.empty()) return;  // the edit says what is missing
  if (req.sketch.size() == req.image.size()) {
    if (at != cv::Point(0, 0)) throw InputError("edit request: image_x, image_y must be 0 when the sketch has the image's size");
    return;
  }
  // In 64 bits: a position near INT_MAX must be refused, not wrap around.
  const int64_t x0 = at.x, y0 = at.y, x1 = x0 + req.image.cols, y1 = y0 + req.image.rows;
  if (x0 < 0 || y0 < 0 || x1 > req.sketch.cols || y1 > req.sketch.rows)
    throw InputError("edit request: the image (" + std::to_string(req.image.cols) + "x" + std::to_string(req.image.rows) +
                     " at " + std::to_string(x0) + "," + std::to_string(y0) + ") does not lie inside the sketch layer (" +
                     std::to_string(req.sketch.cols) + "x" + std::to_string(req.sketch.rows) +
                     "); send the sketch over the whole layer and the image as a crop of it");
}

double request_memory_bytes(cv::Size size, int variants) {
  const double per_pixel = 4.0 * (3 + 1 + 1 + 2) + 4.0 * 3 * variants + 8 + 128;
  return per_pixel * static_cast<double>(size.width) * size.height + kRequestOverheadBytes;
}

void check_request_memory(cv::Size size, int variants, double available) {
  if (available <= 0) return;
  const double need = request_memory_bytes(size, variants);
  if (need <= available) return;
  const double per_pixel = (request_memory_bytes(cv::Size(1000, 1000), variants) - kRequestOverheadBytes) / 1e6;
  throw InputError("this request needs about " + std::to_string(static_cast<int>(need / 1e9 + 1)) + " GB and " +
                   std::to_string(static_cast<int>(available / 1e9)) + " GB are free; the largest image that fits is about " +
                   std::to_string(static_cast<int>(std::max(0.0, available - kRequestOverheadBytes) / per_pixel / 1e6)) +
                   " megapixels (or use fewer variants)");
}

DetailMode parse_detail_mode(std::string_view name) {
  for (size_t i = 0; i < std::size(kDetailModes); ++i)
    if (name == kDetailModes[i]) return static_cast<DetailMode>(i);
  throw InputError("unknown detail mode '" + std::string(name) + "': use patch, tiles or none");
}

std::string_view detail_mode_name(DetailMode mode) { return kDetailModes[static_cast<size_t>(mode)]; }

}  // namespace dsk

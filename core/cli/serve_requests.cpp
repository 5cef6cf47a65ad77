// `diffsketch serve`'s requests: protocol messages run by the engine (converted by
// protocol_requests.h), and the engine's results and errors as replies.
#include "core/cli/serve_requests.h"

#include <iostream>

#include "core/base/error.h"
#include "core/cli/protocol_requests.h"
#include "core/formats/model_registry.h"

namespace dsk::cli {

namespace {

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

EditResult run(Engine& engine, const proto::Message& msg, const ProgressFn& progress, const CancelToken* cancel) {
  if (const auto* e = std::get_if<proto::EditRequest>(&msg))
    return engine.edit_crop(to_engine(*e), cv::Point(e->image_x, e->image_y), progress, cancel);
  if (const auto* g = std::get_if<proto::GenerateRequest>(&msg))
    return engine.generate(to_engine(*g), progress, cancel);
  if (const auto* i = std::get_if<proto::InterpolateRequest>(&msg))
    return engine.interpolate(to_engine(*i), progress, cancel);
  throw InputError(std::string("'") + proto::message_type(msg) + "' is not a request the engine answers");
}

}  // namespace

proto::ProgressUpdate progress_update(const Progress& p) {
  proto::ProgressUpdate u{p.step, p.total, 0, std::nullopt};
  if (p.preview) u.preview = preview_image(*p.preview);
  return u;
}

proto::ModelList model_list() {
  proto::ModelList list;
  std::vector<std::string> skipped;
  for (const auto& m : list_models(&skipped)) list.models.push_back({m.id, m.kind, m.name, m.path, m.resolution, m.classes, m.card, m.problem});
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

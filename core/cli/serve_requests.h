// What `diffsketch serve` does with a request: the protocol's messages as engine requests, and the
// engine's results and errors as the protocol's replies. Transport (framing, sockets, the worker
// thread, cancelling) is serve_cmd.cpp's.
#pragma once

#include "core/base/cancel.h"
#include "core/engine/engine.h"
#include "core/protocol/protocol.h"

namespace dsk::cli {

// Runs an edit, generate or interpolate request; any error becomes an ErrorReply of its kind
// (input, cancelled, out of memory, internal).
proto::Message answer_request(Engine& engine, const proto::Message& request, const ProgressFn& progress,
                              const CancelToken* cancel);
proto::ProgressUpdate progress_update(const Progress& progress);
proto::ModelList model_list();

}  // namespace dsk::cli

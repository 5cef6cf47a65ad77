// The diffsketch command line. Exceptions stop here and become a message and an exit status.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "core/base/error.h"
#include "core/base/version.h"
#include "core/cli/commands.h"
#include "core/protocol/protocol.h"

namespace {

// glibc gives freed memory at the top of the heap back to the system once it exceeds the trim
// threshold, and serves blocks above the mmap threshold with fresh mappings. A U-Net step frees
// and allocates activations of a few MB over and over (an attention map at 32 px is 8 MB), so
// with the defaults every step faulted in and zeroed its pages again: the kernel and memset took
// about half of an edit's time. Keeping freed memory in the process (up to 1 GB at the top of the
// heap; blocks up to 32 MB, glibc's largest, from the heap) made bench-edit 2.3-3.4x faster
// (docs/benchmarks.md). MALLOC_*_ or GLIBC_TUNABLES in the environment win.
void keep_freed_memory() {
#ifdef __GLIBC__
  for (const char* v : {"MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES"})
    if (std::getenv(v)) return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  // Before any OpenMP region starts: idle threads sleep instead of spinning (shared machines).
  setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
  keep_freed_memory();
  CLI::App app{"DiffSketch: sketch-guided diffusion synthesis and inpainting (ADM engine)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("diffsketch ") + dsk::kVersion + " (protocol " +
                                        std::to_string(dsk::proto::kProtocolVersion) + ")");
  std::vector<std::function<int()>> runners;
  dsk::cli::register_all(app, runners);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& run : runners) {
      if (int rc = run(); rc >= 0) return rc;
    }
    return 0;
  } catch (const dsk::Cancelled&) {
    std::cerr << "diffsketch: cancelled\n";
    return 130;
  } catch (const std::invalid_argument& e) {  // bad input, from any part (core/base/error.h)
    std::cerr << "diffsketch: error: " << e.what() << "\n";
    return 2;
  } catch (const c10::Error& e) {
    std::cerr << "diffsketch: internal error in LibTorch: " << e.what_without_backtrace() << "\n";
    return 3;
  } catch (const std::bad_alloc&) {
    std::cerr << "diffsketch: out of memory (try a smaller image, fewer variants, or --device cpu)\n";
    return 4;
  } catch (const std::runtime_error& e) {  // the environment refused, from any part
    std::cerr << "diffsketch: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "diffsketch: internal error: " << e.what() << "\n";
    return 3;
  }
}

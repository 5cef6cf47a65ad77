// The diffsketch command line. Exceptions stop here and become a message and an exit status.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "core/cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  // Before any OpenMP region starts: idle threads sleep instead of spinning (shared machines).
  setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
  CLI::App app{"DiffSketch: sketch-guided diffusion synthesis and inpainting (ADM engine)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "diffsketch 0.1.0");
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
  } catch (const dsk::InputError& e) {
    std::cerr << "diffsketch: error: " << e.what() << "\n";
    return 2;
  } catch (const dsk::Error& e) {
    std::cerr << "diffsketch: error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "diffsketch: internal error in LibTorch: " << e.what_without_backtrace() << "\n";
    return 3;
  } catch (const std::bad_alloc&) {
    std::cerr << "diffsketch: out of memory (try a smaller image, fewer variants, or --device cpu)\n";
    return 4;
  } catch (const std::exception& e) {
    std::cerr << "diffsketch: internal error: " << e.what() << "\n";
    return 3;
  }
}

// main() of the test binaries that compute with the engine: threads and oneDNN set as the engine
// sets them (DSK_THREADS or OMP_NUM_THREADS; DSK_ONEDNN=0 turns oneDNN off), then one line naming
// the CPU kernels in force, which the portability matrix checks against the level it asked for
// (tests/portability/cell.sh).
#include <gtest/gtest.h>

#include <cstdio>

#include "core/device/cpu_kernels.h"
#include "core/device/device.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  dsk::configure_threads();
  std::printf("[ kernels  ] %s\n", dsk::describe(dsk::cpu_kernels()).c_str());
  std::fflush(stdout);
  return RUN_ALL_TESTS();
}

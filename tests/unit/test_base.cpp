// core/base: writing a file whole or not at all.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/base/error.h"
#include "core/base/files.h"
#include "temp_dir.h"

namespace fs = std::filesystem;

namespace {

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST(WriteFile, WritesAndReplaces) {
  const auto dir = dsk::test::temp_dir("base", "write");
  dsk::write_file(dir / "a.json", "one");
  dsk::write_file(dir / "a.json", "two");
  EXPECT_EQ(read_all(dir / "a.json"), "two");
  EXPECT_FALSE(fs::exists(dir / "a.json.tmp"));
}

// A full disk, simulated by a file size limit (the write fails with EFBIG): the old file stays
// whole and no temporary is left. Before, model.json and a checkpoint's state.json were written
// without checking, and a 0-byte model.json passed for a success.
TEST(WriteFile, AFailedWriteLeavesTheOldFile) {
  const auto dir = dsk::test::temp_dir("base", "full");
  dsk::write_file(dir / "model.json", "the old one");
  ::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ::getrlimit(RLIMIT_FSIZE, &old);
  rlimit small = old;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string error;
  try {
    dsk::write_file(dir / "model.json", std::string(100000, 'x'));
  } catch (const dsk::Error& e) {
    error = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  EXPECT_NE(error.find("model.json: writing failed"), std::string::npos) << error;
  EXPECT_EQ(read_all(dir / "model.json"), "the old one");
  EXPECT_FALSE(fs::exists(dir / "model.json.tmp"));
}

TEST(WriteFile, AFolderThatIsNotThereIsNamed) {
  const auto dir = dsk::test::temp_dir("base", "missing");
  try {
    dsk::write_file(dir / "no" / "such" / "x.json", "x");
    ADD_FAILURE() << "no error";
  } catch (const dsk::Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.json.tmp: cannot create it"), std::string::npos) << e.what();
  }
}

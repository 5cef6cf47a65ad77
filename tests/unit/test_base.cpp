// core/base: writing a file whole or not at all; SHA-256; XDG and GIMP folders from the environment.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/resource.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <vector>
#include <fstream>
#include <sstream>
#include <string>

#include "core/base/env.h"
#include "core/base/error.h"
#include "core/base/files.h"
#include "core/base/remote.h"
#include "core/base/sha256.h"
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

// FIPS 180-4 examples (NIST CSRC "SHA256.pdf", "SHA2_Additional.pdf").
TEST(Sha256, MatchesTheStandardsExamples) {
  const auto hex = [](std::string_view s) {
    dsk::Sha256 h;
    h.update(s);
    return h.hex_digest();
  };
  EXPECT_EQ(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million(1000000, 'a');
  EXPECT_EQ(hex(million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PiecesInAnySizesGiveTheSameDigest) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += char('a' + i % 26);
  dsk::Sha256 whole;
  whole.update(text);
  const std::string expected = whole.hex_digest();
  for (size_t piece : {1u, 7u, 55u, 56u, 63u, 64u, 65u, 200u}) {
    dsk::Sha256 h;
    for (size_t at = 0; at < text.size(); at += piece) h.update(std::string_view(text).substr(at, piece));
    EXPECT_EQ(h.hex_digest(), expected) << "pieces of " << piece;
  }
}

TEST(Sha256, OfAFileAndItsSize) {
  const auto dir = dsk::test::temp_dir("base", "sha");
  std::ofstream(dir / "f") << "abc";
  uint64_t size = 0;
  EXPECT_EQ(dsk::sha256_file((dir / "f").string(), &size), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(size, 3u);
  EXPECT_THROW(dsk::sha256_file((dir / "missing").string()), dsk::Error);
}

TEST(Env, SearchPathsAndFoldersFollowTheXdgRules) {
  EXPECT_EQ(dsk::split_search_path("a:b::c:"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(dsk::split_search_path("").empty());
  const auto keep = [](const char* name) {
    const char* v = std::getenv(name);
    return std::make_pair(std::string(name), v ? std::optional<std::string>(v) : std::nullopt);
  };
  const std::vector saved = {keep("HOME"), keep("XDG_DATA_HOME"), keep("XDG_CONFIG_HOME"), keep("GIMP3_DIRECTORY"),
                             keep("XDG_DATA_DIRS")};
  ::setenv("HOME", "/home/u", 1);
  ::unsetenv("XDG_DATA_HOME");
  ::unsetenv("XDG_CONFIG_HOME");
  ::unsetenv("GIMP3_DIRECTORY");
  ::setenv("XDG_DATA_DIRS", "", 1);  // empty counts as unset
  EXPECT_EQ(dsk::xdg_data_home(), "/home/u/.local/share");
  EXPECT_EQ(dsk::gimp3_profile_dir(), "/home/u/.config/GIMP/3.0");
  EXPECT_EQ(dsk::xdg_data_dirs(), (std::vector<std::string>{"/usr/local/share", "/usr/share"}));
  ::setenv("XDG_DATA_HOME", "/d", 1);
  ::setenv("XDG_CONFIG_HOME", "/c", 1);
  EXPECT_EQ(dsk::xdg_data_home(), "/d");
  EXPECT_EQ(dsk::gimp3_profile_dir(), "/c/GIMP/3.0");
  ::setenv("GIMP3_DIRECTORY", "/g", 1);
  EXPECT_EQ(dsk::gimp3_profile_dir(), "/g");
  for (const auto& [name, value] : saved) value ? ::setenv(name.c_str(), value->c_str(), 1) : ::unsetenv(name.c_str());
}

TEST(Env, EngineCandidatesAreEnginePathThenTheDataFolders) {
  const auto dir = dsk::test::temp_dir("base", "engine");
  std::ofstream(dir / "engine-path") << "/opt/ds/bin/diffsketch  \n";
  const char* old_home = std::getenv("XDG_DATA_HOME");
  const std::string saved_home = old_home ? old_home : "";
  const char* old_dirs = std::getenv("XDG_DATA_DIRS");
  const std::string saved_dirs = old_dirs ? old_dirs : "";
  ::setenv("XDG_DATA_HOME", "/d", 1);
  ::setenv("XDG_DATA_DIRS", "/s1:/s2", 1);
  const auto c = dsk::engine_candidates(dir.string());
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c[0].path, "/opt/ds/bin/diffsketch");  // trailing blanks dropped
  EXPECT_NE(c[0].source.find("engine-path"), std::string::npos);
  EXPECT_EQ(c[1].path, "/d/diffsketch/bin/diffsketch");
  EXPECT_EQ(c[2].path, "/s1/diffsketch/bin/diffsketch");
  EXPECT_EQ(c[3].path, "/s2/diffsketch/bin/diffsketch");
  EXPECT_EQ(dsk::engine_candidates("").size(), 3u);  // no plug-in folder: no engine-path
  old_home ? ::setenv("XDG_DATA_HOME", saved_home.c_str(), 1) : ::unsetenv("XDG_DATA_HOME");
  old_dirs ? ::setenv("XDG_DATA_DIRS", saved_dirs.c_str(), 1) : ::unsetenv("XDG_DATA_DIRS");
}

TEST(Remote, HostPortForms) {
  EXPECT_EQ(dsk::parse_host_port("127.0.0.1:7860", "--listen").text(), "127.0.0.1:7860");
  EXPECT_EQ(dsk::parse_host_port("gpu-box:0", "--listen").port, 0);
  const auto v6 = dsk::parse_host_port("[::1]:7860", "--listen");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.text(), "[::1]:7860");
  for (const char* bad : {"", "host", ":7860", "host:", "host:port", "host:65536", "::1:7860", "[::1]7860", "a b:1", "h:123456"})
    EXPECT_THROW(dsk::parse_host_port(bad, "--listen"), dsk::InputError) << bad;
  try {
    dsk::parse_host_port("host", "DSK_ENGINE_URL");
  } catch (const dsk::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("DSK_ENGINE_URL takes HOST:PORT"), std::string::npos) << e.what();
  }
}

TEST(Remote, TokensCompareWhole) {
  EXPECT_TRUE(dsk::same_token("0123456789abcdef", "0123456789abcdef"));
  EXPECT_FALSE(dsk::same_token("0123456789abcdef", "0123456789abcdeg"));
  EXPECT_FALSE(dsk::same_token("0123456789abcdef", "0123456789abcdef0"));
  EXPECT_FALSE(dsk::same_token("0123456789abcdef", ""));
}

TEST(Remote, TokenFilesMustBePrivateAndHoldOneToken) {
  const auto dir = dsk::test::temp_dir("base", "token");
  const auto write = [&](const std::string& name, const std::string& text, mode_t mode) {
    const auto path = (dir / name).string();
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  };
  EXPECT_EQ(dsk::read_token_file(write("ok", "  0123456789abcdefXYZ \nsecond line\n", 0600)), "0123456789abcdefXYZ");
  const auto expect_refused = [](const std::string& path, const std::string& says) {
    try {
      dsk::read_token_file(path);
      ADD_FAILURE() << path << " was accepted";
    } catch (const dsk::InputError& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  expect_refused(write("group", "0123456789abcdef\n", 0640), "chmod 600");
  expect_refused(write("world", "0123456789abcdef\n", 0604), "mode 0604");
  expect_refused(write("short", "0123456789abcde\n", 0600), "at least 16");
  expect_refused(write("space", "01234567 89abcdef\n", 0600), "white space");
  expect_refused(write("big", std::string(5000, 'a'), 0600), "larger than 4 KiB");
  expect_refused((dir / "none").string(), "does not exist");
  std::filesystem::create_directory(dir / "folder");
  ::chmod((dir / "folder").c_str(), 0700);
  expect_refused((dir / "folder").string(), "not a regular file");
  std::filesystem::create_symlink(dir / "ok", dir / "link");
  expect_refused((dir / "link").string(), "symbolic link");
}

// Whole files (common/file_io.h): atomic writes (temp file, fsync, rename, fsync of the
// directory), devices written in place, and reads with errors that name the file.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "common/file_io.h"

using namespace foundry;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

std::string scratch_dir(const std::string& name) {
  const std::string dir = std::string(FOUNDRY_BINARY_DIR) + "/test_scratch/common/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// The naive twin of read_file: a stream, byte by byte.
std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("write_file_atomic: replaces whole files and leaves the old one on failure", "[file_io]") {
  const std::string dir = scratch_dir("atomic");
  const std::string path = dir + "/out.txt";
  write_file_atomic(path, std::string("first version"));
  REQUIRE(read_bytes(path) == "first version");
  write_file_atomic(path, std::string("second"));
  REQUIRE(read_bytes(path) == "second");
  REQUIRE_FALSE(fs::exists(path + ".tmp"));

  // A writer that fails halfway: the old file survives and no temporary is left behind.
  REQUIRE_THROWS_WITH(write_file_atomic(path,
                                        [](std::ostream& out) {
                                          out << "half of a new fi";
                                          throw std::runtime_error("simulated failure");
                                        }),
                      Contains("simulated failure"));
  REQUIRE(read_bytes(path) == "second");
  REQUIRE_FALSE(fs::exists(path + ".tmp"));

  REQUIRE_THROWS_WITH(write_file_atomic(dir + "/missing/x.txt", std::string("x")),
                      Contains(dir + "/missing/x.txt") && Contains("cannot create"));

  // A path without a directory part is in the current directory (the directory fsync uses ".").
  const fs::path before = fs::current_path();
  fs::current_path(dir);
  write_file_atomic("plain.txt", std::string("here"));
  fs::current_path(before);
  REQUIRE(read_bytes(dir + "/plain.txt") == "here");
}

TEST_CASE("write_file_atomic: a target that is not a regular file is written in place", "[file_io]") {
  // Renaming onto /dev/null would replace the device with a file; it must stay a device.
  write_file_atomic("/dev/null", std::string("discarded"));
  struct stat info;
  REQUIRE(::stat("/dev/null", &info) == 0);
  REQUIRE(S_ISCHR(info.st_mode));
  REQUIRE_FALSE(fs::exists("/dev/null.tmp"));
}

TEST_CASE("read_file: every byte, and errors that name the file", "[file_io]") {
  const std::string dir = scratch_dir("read");
  const std::string bytes("a\0b\r\n\xff end", 10);
  write_file_atomic(dir + "/bytes.bin", bytes);
  REQUIRE(read_file(dir + "/bytes.bin") == bytes);
  write_file_atomic(dir + "/empty", std::string());
  REQUIRE(read_file(dir + "/empty").empty());

  REQUIRE_THROWS_WITH(read_file(dir + "/nope.bin"), Contains(dir + "/nope.bin") && Contains("cannot open"));
  REQUIRE_THROWS_WITH(read_file(dir + "/nope.bin", "llama2.c checkpoint"),
                      Contains("cannot open the llama2.c checkpoint"));
  REQUIRE_THROWS_WITH(read_file(dir), Contains(dir) && Contains("is a directory"));
}

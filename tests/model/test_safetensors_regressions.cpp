// Inputs that once crashed the safetensors reader, kept so they stay fixed.
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "model/safetensors.h"

using namespace foundry;

namespace {

// A safetensors file whose header is `header` (no data section).
std::string write_file(const std::string& name, const std::string& header) {
  const std::filesystem::path dir = std::filesystem::path(FOUNDRY_BINARY_DIR) / "test_scratch";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / ("safetensors_regression_" + name)).string();
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; i++) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header;
  return path;
}

std::string message_of(const std::string& path) {
  try {
    load_safetensors(path);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

std::string nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

}  // namespace

TEST_CASE("regression: a 200 KB nested JSON value in a safetensors header is an error, not a stack overflow",
          "[regression]") {
  const std::string deep = nested(100000);
  SECTION("as a dtype") {
    const std::string msg =
        message_of(write_file("dtype.st", R"({"a": {"dtype": )" + deep + R"(, "shape": [], "data_offsets": [0, 0]}})"));
    CHECK(msg.find("tensor 'a': dtype [[...]] is not supported") != std::string::npos);
  }
  SECTION("as a shape") {
    const std::string msg = message_of(
        write_file("shape.st", R"({"a": {"dtype": "F32", "shape": )" + deep + R"(, "data_offsets": [0, 0]}})"));
    CHECK(msg.find("shape [[...]] must hold non-negative integers") != std::string::npos);
  }
  SECTION("as data_offsets") {
    const std::string msg =
        message_of(write_file("offsets.st", R"({"a": {"dtype": "F32", "shape": [], "data_offsets": )" + deep + "}}"));
    CHECK(msg.find("data_offsets must be two non-negative integers") != std::string::npos);
  }
  SECTION("as a whole entry") {
    const std::string msg = message_of(write_file("entry.st", R"({"a": )" + deep + "}"));
    CHECK(msg.find("header entry must be a JSON object, got [[...]]") != std::string::npos);
  }
  SECTION("as a metadata value") {
    const std::string msg = message_of(write_file("meta.st", R"({"__metadata__": {"k": )" + deep + "}}"));
    CHECK(msg.find("__metadata__ value of 'k' must be a string, got [[...]]") != std::string::npos);
  }
}

TEST_CASE("regression: a long value in a safetensors error message is cut short", "[regression]") {
  const std::string msg = message_of(write_file(
      "long.st", R"({"a": {"dtype": ")" + std::string(50000, 'x') + R"(", "shape": [], "data_offsets": [0, 0]}})"));
  CHECK(msg.find("is not supported") != std::string::npos);
  CHECK(msg.size() < 400);
}

// Helpers shared by every test binary: seeded random tensors, where the bundled corpora are,
// reading a whole file, and a fresh scratch folder under the build tree. One copy here instead of
// one per test file, so that every test draws its random inputs and finds its data the same way.
//
// FOUNDRY_SOURCE_DIR and FOUNDRY_BINARY_DIR are defined for every test binary by tests/CMakeLists.txt.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace foundry::test {

// A tensor of seeded normals, offset + scale · N(0, 1), one draw per element in storage order.
inline Tensor random_tensor(const Shape& shape, Rng& rng, double scale = 1.0, double offset = 0.0) {
  Tensor t(shape);
  for (real& v : t.data) v = static_cast<real>(offset + scale * rng.normal());
  return t;
}

// A bundled corpus (tinystories.txt, tinyshakespeare.txt): data/ in the checkout first, then the
// shared data folder beside the checkout. Empty when neither exists.
inline std::string corpus_path(const std::string& name) {
  const std::filesystem::path source(FOUNDRY_SOURCE_DIR);
  for (const std::filesystem::path& p : {source / "data" / name, source / ".." / "shared" / "data" / name})
    if (std::filesystem::exists(p)) return p.string();
  return "";
}

// The whole file as bytes; empty when it cannot be opened (tests that need it REQUIRE it).
inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The whole file, failing the test when it cannot be opened.
inline std::string read_all(const std::string& path) {
  INFO("reading " << path);
  REQUIRE(std::ifstream(path, std::ios::binary).good());
  return read_bytes(path);
}

// The corpus, or a failure naming where we looked.
inline std::string load_corpus(const std::string& name) {
  const std::string path = corpus_path(name);
  INFO("corpus " << name << " not found under " FOUNDRY_SOURCE_DIR "/data or ../shared/data");
  REQUIRE(!path.empty());
  return read_all(path);
}

// A fresh, empty folder FOUNDRY_BINARY_DIR/<relative> (removed and made again), for files a
// test writes.
inline std::string fresh_dir(const std::string& relative) {
  const std::filesystem::path dir = std::filesystem::path(FOUNDRY_BINARY_DIR) / relative;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace foundry::test

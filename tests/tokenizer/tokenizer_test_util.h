// Helpers shared by the tokenizer tests: where the corpora and fixtures are, reading files.
#pragma once

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace foundry::test {

// A bundled corpus (tinystories.txt, tinyshakespeare.txt): data/ in the checkout first, then the
// shared data folder beside the checkout. Empty when neither exists.
inline std::string corpus_path(const std::string& name) {
  const std::filesystem::path source(FOUNDRY_SOURCE_DIR);
  for (const std::filesystem::path& p : {source / "data" / name, source / ".." / "shared" / "data" / name})
    if (std::filesystem::exists(p)) return p.string();
  return "";
}

inline std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The corpus, or a skip-worthy failure message naming where we looked.
inline std::string load_corpus(const std::string& name) {
  const std::string path = corpus_path(name);
  INFO("corpus " << name << " not found under " FOUNDRY_SOURCE_DIR "/data or ../shared/data");
  REQUIRE(!path.empty());
  return read_all(path);
}

inline std::string fixture(const std::string& relative) {
  return std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/tokenizer/" + relative;
}

}  // namespace foundry::test

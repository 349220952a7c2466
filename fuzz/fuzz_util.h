// Helpers shared by the libFuzzer harnesses (see README.md).
//
// Every harness hands the bytes libFuzzer makes to one of the project's readers and accepts
// exactly two outcomes: the reader returns a value, or it throws a std::exception (its error
// message for bad input). Anything else is a finding: a crash, a sanitizer report, a hang
// (libFuzzer's -timeout), or an allocation larger than -malloc_limit_mb (a size taken from the
// file before it was checked).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace foundry::fuzz {

// Inputs that hold several files keep them back to back, separated by this line. The seed
// corpus is built the same way (make_corpus.sh), and the dictionaries list it, so the fuzzer
// keeps the structure while it mutates the parts.
constexpr std::string_view kSeparator = "\n#--next-file--#\n";

// The first `n` parts of `data` (missing ones are empty; the last part takes the rest).
inline std::vector<std::string> split_parts(const uint8_t* data, size_t size, size_t n) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  while (parts.size() + 1 < n) {
    const size_t at = rest.find(kSeparator);
    if (at == std::string_view::npos) break;
    parts.emplace_back(rest.substr(0, at));
    rest.remove_prefix(at + kSeparator.size());
  }
  parts.emplace_back(rest);
  parts.resize(n);
  return parts;
}

// One scratch directory per process, created on first use and removed at exit: readers take
// paths, so the bytes go through real files, as they would for a user.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "foundry-fuzz-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    static std::string to_remove;
    to_remove = tmpl;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(to_remove, ec);
    });
    return tmpl;
  }();
  return dir;
}

// Writes `bytes` to scratch_dir()/name and returns the path.
inline std::string write_file(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::perror(path.c_str());
    std::abort();
  }
  return path;
}

inline void remove_file(const std::string& name) {
  std::error_code ec;
  std::filesystem::remove(scratch_dir() + "/" + name, ec);
}

// A property the harness checks failed: report and abort, which libFuzzer records as a crash.
[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "fuzz property violated: %s\n", what);
  std::abort();
}

// Where the project's own fixtures are (the harnesses that need a tokenizer load real ones).
inline std::string source_path(const std::string& relative) { return std::string(FOUNDRY_SOURCE_DIR) + "/" + relative; }

}  // namespace foundry::fuzz

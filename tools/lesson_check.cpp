// lesson_check: keeps the lessons and the code they quote from drifting apart.
//
//   lesson_check --root SRC_DIR --bin BUILD_DIR [--fix] [--no-outputs] [--any-digits] [--only FILE.md ...]
//
// The rules live in tools/lesson_check/ (one part per rule: anchors, quotes, outputs, links and
// the house rules of lessons, times, Chinese twins and the glossary), each unit-tested in
// tests/lessons; usage_text() there says what is checked and the formats read. This file reads
// the command line. Only the C++ standard library and POSIX are used, so the lessons can be
// checked even while a library of the project is broken; common/ (the atomic write) needs only
// the same two.
#include <iostream>
#include <string>

#include "lesson_check/checker.h"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  lesson_check::Options opt;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << lesson_check::usage_text();
      return 0;
    } else if (arg == "--fix") {
      opt.fix = true;
    } else if (arg == "--no-outputs") {
      opt.outputs = false;
    } else if (arg == "--any-digits") {
      opt.any_digits = true;
    } else if (arg == "--only" && i + 1 < argc) {
      opt.only.insert(fs::path(argv[++i]).filename().string());
    } else if ((arg == "--root" || arg == "--bin") && i + 1 < argc) {
      (arg == "--root" ? opt.root : opt.bin) = fs::path(argv[++i]);
    } else {
      std::cerr << "lesson_check: unknown or incomplete argument '" << arg << "'\n" << lesson_check::usage_text();
      return 2;
    }
  }
  if (opt.root.empty() || (opt.outputs && opt.bin.empty())) {
    std::cerr << "lesson_check: --root is required, and --bin unless --no-outputs is given\n"
              << lesson_check::usage_text();
    return 2;
  }
  if (opt.fix && opt.any_digits) {
    std::cerr << "lesson_check: --fix rewrites quotes from the reference build; it does not go with --any-digits\n"
              << lesson_check::usage_text();
    return 2;
  }
  if (!fs::is_directory(opt.root)) {
    std::cerr << "lesson_check: --root " << opt.root << " is not a directory\n";
    return 2;
  }
  opt.root = fs::absolute(opt.root).lexically_normal();
  if (!opt.bin.empty()) opt.bin = fs::absolute(opt.bin).lexically_normal();
  return lesson_check::Checker(opt).run();
}

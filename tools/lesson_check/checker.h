// The lesson checker: runs every rule over a source tree and lists every problem it finds.
#pragma once

#include <map>
#include <set>
#include <string>

#include "anchors.h"
#include "outputs.h"
#include "text.h"

namespace lesson_check {

// The switch of the twin rule: when this file exists (relative to the root), every English
// lesson must have its Chinese twin in lessons/zh/ with the same quotes and outputs in the same
// order, and the Chinese lessons follow the house rules (test binary, 练习, 我们跳过了什么).
// Without it, the Chinese lessons that exist are still checked for quotes, outputs, links and
// the glossary.
inline const char* kTwinsRequiredFile = "lessons/zh/.twins-required";

struct Options {
  fs::path root;
  fs::path bin;
  bool fix = false;
  bool outputs = true;
  bool any_digits = false;     // --any-digits: outputs compared with their digits masked
  std::set<std::string> only;  // --only: check just these markdown files (by file name)
};

class Checker {
 public:
  explicit Checker(Options options);

  // Checks everything, prints the problems and a summary; the exit status (0 ok, 1 problems).
  int run();

 private:
  std::string rel(const fs::path& p) const;
  bool selected(const fs::path& md) const;
  void scan_sources();
  const SourceFile& source(const std::string& relpath);
  void check_lesson_programs();
  void check_times();
  void check_markdown(const fs::path& path);
  void check_links();
  void check_twins();
  void check_glossary();
  void check_unquoted();
  bool expected_quote(const std::string& target, Lines& want, std::string& error);
  bool expected_output(const std::string& target, Lines& want, std::string& error);
  const Lines& markdown(const std::string& relpath);  // read once; empty when unreadable

  Options opt_;
  std::map<std::string, SourceFile> sources_;
  std::set<std::string> readable_;
  std::set<std::string> scanned_;            // files scanned for anchors (their anchors must be quoted)
  std::set<std::string> problems_reported_;  // files whose anchor problems are already listed
  std::set<std::string> quoted_;             // every "path#name" some markdown file quotes
  std::map<std::string, RunResult> runs_;
  std::set<std::string> reported_runs_;  // programs whose failure was already reported
  std::map<std::string, Lines> markdown_;
  Lines errors_;
  int lessons_ = 0, zh_lessons_ = 0, quotes_ = 0, outputs_ = 0, links_ = 0, fixed_ = 0;
  int anchor_count_ = 0, anchor_files_ = 0;
};

// The usage text, which also states the formats the checker reads.
const char* usage_text();

}  // namespace lesson_check

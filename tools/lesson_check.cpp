// lesson_check: keeps the lessons and the code they quote from drifting apart.
//
//   lesson_check --root SRC_DIR --bin BUILD_DIR [--fix] [--no-outputs] [--only FILE.md ...]
//
// Three things are checked, and the test suite runs all three (tests/lessons):
//
// 1. Anchors. Source files mark the code a lesson may quote with a comment line
//      // ANCHOR: name        (or `# ANCHOR: name` in CMake, shell and Python files)
//      ...
//      // ANCHOR_END: name
//    Anchors may nest. An ANCHOR without its END, an END without its ANCHOR, a name used twice in
//    one file, a marker without a name and an anchor with nothing inside are errors.
//
// 2. Quotes. In lessons/*.md (and docs/*.md), a line `<!-- quote: path#name -->` starting in the
//    first column and followed by a fenced block: the block must hold exactly the anchor's text,
//    that is the lines between the markers with any nested marker lines removed, the common
//    leading indentation removed and trailing blank lines dropped. The same rule, written once
//    here, is what --fix uses to rewrite the block.
//
// 3. Outputs. A line `<!-- output: lesson_NN -->` (the whole stdout) or
//    `<!-- output: lesson_NN#section -->` (the lines after a printed line `[section]` up to the
//    next `[name]` line) followed by a fenced block must equal what BUILD_DIR/lessons/lesson_NN
//    prints when run with OMP_NUM_THREADS=1. The program must exit with status 0. Each program
//    runs at most once per check.
//
// It also checks that every lessons/NN-slug.md has its program lessons/NN_slug.cpp, names a test
// binary test_<area> of tests/<area>/, and has the sections "## Exercises" and "## What we skipped".
// Exit status: 0 when all is well, 1 when anything is wrong (every problem is listed), 2 for a
// usage error. Only the C++ standard library, POSIX and common/ (itself only those two) are used:
// the build needs nothing else.
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/file_io.h"

namespace fs = std::filesystem;

namespace {

using Lines = std::vector<std::string>;

// ---- small string helpers -----------------------------------------------------------------------

std::string rstrip(const std::string& s) {
  size_t end = s.find_last_not_of(" \t\r");
  return end == std::string::npos ? "" : s.substr(0, end + 1);
}

std::string trim(const std::string& s) {
  size_t begin = s.find_first_not_of(" \t\r");
  return begin == std::string::npos ? "" : rstrip(s.substr(begin));
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

bool is_blank(const std::string& s) { return trim(s).empty(); }

bool read_lines(const fs::path& path, Lines& lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  lines.clear();
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return true;
}

// Writes atomically (common/file_io.h): a crash never leaves a half-written lesson behind.
bool write_lines(const fs::path& path, const Lines& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + '\n';
  try {
    foundry::write_file_atomic(path.string(), text);
  } catch (const std::exception& e) {
    std::cerr << "lesson_check: " << e.what() << "\n";
    return false;
  }
  return true;
}

// ---- anchors ------------------------------------------------------------------------------------

struct Anchor {
  int start = 0;  // 0-based line of the ANCHOR marker
  int end = -1;   // 0-based line of the ANCHOR_END marker; -1 while open
};

struct SourceFile {
  Lines lines;
  std::map<std::string, Anchor> anchors;
  Lines problems;  // structural errors (unclosed, duplicate, ...)
};

// Recognizes a marker line: optional indentation, a comment leader (`//` or `#`), then
// `ANCHOR: name` or `ANCHOR_END: name`. Only whole lines count, so code that merely mentions
// the marker text inside a string is not mistaken for one.
// ANCHOR: parse_marker
enum class Marker { none, start, end };

Marker parse_marker(const std::string& line, std::string& name) {
  std::string s = trim(line);
  if (starts_with(s, "//")) {
    s = trim(s.substr(2));
  } else if (starts_with(s, "#")) {
    s = trim(s.substr(1));
  } else {
    return Marker::none;
  }
  Marker kind = Marker::none;
  if (starts_with(s, "ANCHOR_END:")) {
    kind = Marker::end;
    name = trim(s.substr(11));
  } else if (starts_with(s, "ANCHOR:")) {
    kind = Marker::start;
    name = trim(s.substr(7));
  }
  return kind;
}
// ANCHOR_END: parse_marker

// The text a quote must hold: the lines inside the anchor, nested markers removed, common
// indentation removed, trailing blank lines dropped.
// ANCHOR: anchor_text
Lines anchor_text(const SourceFile& file, const Anchor& anchor) {
  Lines body;
  std::string ignored;
  for (int i = anchor.start + 1; i < anchor.end; i++) {
    if (parse_marker(file.lines[i], ignored) == Marker::none) body.push_back(rstrip(file.lines[i]));
  }
  while (!body.empty() && is_blank(body.back())) body.pop_back();
  size_t indent = std::string::npos;
  for (const std::string& line : body) {
    if (!is_blank(line)) indent = std::min(indent, line.find_first_not_of(" \t"));
  }
  for (std::string& line : body) line = is_blank(line) ? "" : line.substr(indent);
  return body;
}
// ANCHOR_END: anchor_text

SourceFile parse_source(const Lines& lines, const std::string& label) {
  SourceFile file;
  file.lines = lines;
  std::map<std::string, int> open;  // name -> line of its ANCHOR
  for (int i = 0; i < static_cast<int>(lines.size()); i++) {
    std::string name;
    Marker kind = parse_marker(lines[i], name);
    if (kind == Marker::none) continue;
    std::string where = label + ":" + std::to_string(i + 1) + ": ";
    if (name.empty() || name.find_first_of(" \t") != std::string::npos) {
      file.problems.push_back(where + "anchor marker without a valid name (want `ANCHOR: name`, no spaces)");
      continue;
    }
    if (kind == Marker::start) {
      auto seen = file.anchors.find(name);
      if (seen != file.anchors.end()) {
        file.problems.push_back(where + "duplicate anchor '" + name + "' (first ANCHOR at line " +
                                std::to_string(seen->second.start + 1) + ")");
        continue;
      }
      file.anchors[name] = Anchor{i, -1};
      open[name] = i;
    } else {
      auto it = open.find(name);
      if (it == open.end()) {
        file.problems.push_back(where + "ANCHOR_END '" + name + "' has no matching ANCHOR before it");
        continue;
      }
      file.anchors[name].end = i;
      open.erase(it);
    }
  }
  for (const auto& [name, line] : open) {
    file.problems.push_back(label + ":" + std::to_string(line + 1) + ": anchor '" + name + "' has no ANCHOR_END");
    file.anchors.erase(name);  // unusable: a quote of it reports the structural error instead
  }
  for (const auto& [name, anchor] : file.anchors) {
    if (anchor_text(file, anchor).empty()) {
      file.problems.push_back(label + ":" + std::to_string(anchor.start + 1) + ": anchor '" + name + "' is empty");
    }
  }
  return file;
}

// ---- the checker --------------------------------------------------------------------------------

struct Options {
  fs::path root;
  fs::path bin;
  bool fix = false;
  bool outputs = true;
  std::set<std::string> only;  // --only: check just these markdown files (by file name)
};

struct RunResult {
  bool ok = false;
  std::string error;  // why the run failed
  Lines lines;        // stdout, trailing whitespace removed
};

// A fenced block that follows a marker comment in a markdown file.
struct Block {
  int marker = 0;     // line of the `<!-- ... -->` comment
  int first = 0;      // first content line
  int close = 0;      // line of the closing fence; content is [first, close)
};

class Checker {
 public:
  explicit Checker(Options options) : opt_(std::move(options)) {}

  int run() {
    scan_sources();
    check_lesson_programs();
    for (const fs::path& md : markdown_files()) check_markdown(md);

    for (const std::string& e : errors_) std::cerr << "error: " << e << "\n";
    std::cout << "lesson_check: " << lessons_ << " lessons, " << quotes_ << " quotes, " << outputs_
              << " outputs checked" << (opt_.outputs ? "" : " (outputs skipped: --no-outputs)") << "; "
              << anchor_count_ << " anchors in " << anchor_files_ << " source files";
    if (fixed_ > 0) std::cout << "; rewrote " << fixed_ << " blocks";
    std::cout << "\n";
    if (!errors_.empty()) {
      std::cout << "lesson_check: FAILED with " << errors_.size() << " problem(s)"
                << (opt_.fix ? "" : " (quotes and outputs can be rewritten with --fix)") << "\n";
      return 1;
    }
    std::cout << "lesson_check: OK\n";
    return 0;
  }

 private:
  std::string rel(const fs::path& p) const { return p.lexically_relative(opt_.root).generic_string(); }

  // Every source file of the project, scanned for anchor problems whether or not a lesson quotes it.
  void scan_sources() {
    static const char* kDirs[] = {"engine", "model", "tokenizer", "train", "infer", "cli", "lessons",
                                  "tools", "tests", "bench", "examples", "scripts", "configs"};
    static const std::set<std::string> kExtensions = {".h", ".cpp", ".hpp", ".txt", ".sh", ".py", ".json"};
    std::vector<fs::path> paths;
    for (const char* dir : kDirs) {
      fs::path d = opt_.root / dir;
      if (!fs::is_directory(d)) continue;
      for (const auto& entry : fs::recursive_directory_iterator(d)) {
        if (!entry.is_regular_file()) continue;
        std::string name = entry.path().filename().string();
        if (kExtensions.count(entry.path().extension().string()) || name == "CMakeLists.txt") {
          paths.push_back(entry.path());
        }
      }
    }
    std::sort(paths.begin(), paths.end());
    for (const fs::path& p : paths) {
      if (fs::file_size(p) > (8u << 20)) continue;  // large data fixtures hold no anchors
      const SourceFile& file = source(rel(p));
      problems_reported_.insert(rel(p));
      for (const std::string& problem : file.problems) errors_.push_back(problem);
      if (!file.anchors.empty()) {
        anchor_files_++;
        anchor_count_ += static_cast<int>(file.anchors.size());
      }
    }
  }

  // Parsed once, by path relative to the root; nullptr-like empty entry when unreadable.
  const SourceFile& source(const std::string& relpath) {
    auto it = sources_.find(relpath);
    if (it != sources_.end()) return it->second;
    Lines lines;
    SourceFile file;
    if (read_lines(opt_.root / relpath, lines)) {
      file = parse_source(lines, relpath);
      readable_.insert(relpath);
    }
    return sources_.emplace(relpath, std::move(file)).first->second;
  }

  static bool is_lesson_name(const std::string& name) {
    return name.size() > 6 && std::isdigit((unsigned char)name[0]) && std::isdigit((unsigned char)name[1]) &&
           name[2] == '-' && fs::path(name).extension() == ".md";
  }

  void check_lesson_programs() {
    fs::path dir = opt_.root / "lessons";
    if (!fs::is_directory(dir)) {
      errors_.push_back(rel(dir) + ": no lessons folder under " + opt_.root.string());
      return;
    }
    std::set<std::string> programs;  // "NN" of every lessons/NN_*.cpp
    for (const auto& entry : fs::directory_iterator(dir)) {
      std::string name = entry.path().filename().string();
      if (name.size() > 7 && std::isdigit((unsigned char)name[0]) && std::isdigit((unsigned char)name[1]) &&
          name[2] == '_' && entry.path().extension() == ".cpp") {
        programs.insert(name.substr(0, 2));
      }
    }
    for (const auto& entry : fs::directory_iterator(dir)) {
      std::string name = entry.path().filename().string();
      if (!is_lesson_name(name)) continue;
      lessons_++;
      if (!programs.count(name.substr(0, 2))) {
        errors_.push_back("lessons/" + name + ": no lesson program lessons/" + name.substr(0, 2) +
                          "_*.cpp (every lesson has one)");
      }
      check_lesson_shape(entry.path());
    }
  }

  // The house rules every lesson follows: it names a test binary that guards its code (a
  // `test_<area>` whose folder tests/<area>/ exists) and ends with exercises and what it skipped.
  void check_lesson_shape(const fs::path& path) {
    Lines md;
    if (!read_lines(path, md)) return;  // reported by the markdown check
    bool exercises = false, skipped = false, names_test = false;
    for (const std::string& line : md) {
      exercises = exercises || starts_with(line, "## Exercises");
      skipped = skipped || starts_with(line, "## What we skipped");
      for (size_t at = line.find("test_"); at != std::string::npos && !names_test; at = line.find("test_", at + 1)) {
        if (at > 0 && (std::isalnum((unsigned char)line[at - 1]) || line[at - 1] == '_')) continue;
        size_t end = at + 5;
        while (end < line.size() && (std::isalnum((unsigned char)line[end]) || line[end] == '_')) end++;
        std::string area = line.substr(at + 5, end - at - 5);
        names_test = !area.empty() && fs::is_directory(opt_.root / "tests" / area);
      }
    }
    std::string where = rel(path) + ": ";
    if (!names_test) {
      errors_.push_back(where + "names no test binary test_<area> with a folder tests/<area>/ (every lesson "
                                "names the test that guards its code)");
    }
    if (!exercises) errors_.push_back(where + "has no \"## Exercises\" section");
    if (!skipped) errors_.push_back(where + "has no \"## What we skipped\" section");
  }

  std::vector<fs::path> markdown_files() const {
    std::vector<fs::path> files;
    for (const char* dir : {"lessons", "docs"}) {
      fs::path d = opt_.root / dir;
      if (!fs::is_directory(d)) continue;
      for (const auto& entry : fs::directory_iterator(d)) {
        if (!entry.is_regular_file() || entry.path().extension() != ".md") continue;
        if (opt_.only.empty() || opt_.only.count(entry.path().filename().string())) files.push_back(entry.path());
      }
    }
    std::sort(files.begin(), files.end());
    return files;
  }

  // `<!-- kind: target -->` on a line of its own, starting in the first column; returns the
  // target or "". An indented marker is not one, so a lesson can show the syntax in an indented
  // code block.
  static std::string marker_target(const std::string& line, const std::string& kind) {
    std::string s = rstrip(line);
    if (!starts_with(s, "<!--") || s.size() < 7 || s.compare(s.size() - 3, 3, "-->") != 0) return "";
    s = trim(s.substr(4, s.size() - 7));
    if (!starts_with(s, kind + ":")) return "";
    return trim(s.substr(kind.size() + 1));
  }

  // The fenced block right after the marker line, or an error.
  bool find_block(const Lines& md, int marker, Block& block, std::string& error) const {
    int open = marker + 1;
    if (open >= static_cast<int>(md.size()) || !starts_with(trim(md[open]), "```")) {
      error = "is not followed immediately by a fenced block (```)";
      return false;
    }
    std::string t = trim(md[open]);
    std::string fence = t.substr(0, t.find_first_not_of('`'));
    for (int i = open + 1; i < static_cast<int>(md.size()); i++) {
      if (trim(md[i]) == fence) {
        block = Block{marker, open + 1, i};
        return true;
      }
    }
    error = "has a fenced block that is never closed";
    return false;
  }

  // Describes the first difference between what the block should hold and what it holds.
  static std::string first_difference(const Lines& want, const Lines& got, const std::string& want_label) {
    size_t n = std::max(want.size(), got.size());
    for (size_t i = 0; i < n; i++) {
      bool has_want = i < want.size(), has_got = i < got.size();
      if (has_want && has_got && rstrip(want[i]) == rstrip(got[i])) continue;
      std::ostringstream out;
      out << "first difference at line " << i + 1 << " of the block:\n";
      out << "    " << want_label << ": " << (has_want ? "\"" + want[i] + "\"" : "(ends after line " + std::to_string(want.size()) + ")") << "\n";
      out << "    lesson: " << (has_got ? "\"" + got[i] + "\"" : "(ends after line " + std::to_string(got.size()) + ")");
      return out.str();
    }
    return "";
  }

  void check_markdown(const fs::path& path) {
    Lines md;
    if (!read_lines(path, md)) {
      errors_.push_back(rel(path) + ": cannot read");
      return;
    }
    std::vector<std::pair<Block, Lines>> rewrites;  // blocks --fix replaces, in file order
    for (int i = 0; i < static_cast<int>(md.size()); i++) {
      std::string quote = marker_target(md[i], "quote");
      std::string output = marker_target(md[i], "output");
      if (quote.empty() && output.empty()) continue;
      std::string where = rel(path) + ":" + std::to_string(i + 1) + ": ";
      Block block;
      std::string error;
      if (!find_block(md, i, block, error)) {
        errors_.push_back(where + (quote.empty() ? "output " + output : "quote " + quote) + " " + error);
        continue;
      }
      Lines got(md.begin() + block.first, md.begin() + block.close);
      Lines want;
      std::string label;
      if (!quote.empty()) {
        quotes_++;
        if (!expected_quote(quote, want, error)) {
          errors_.push_back(where + "quote " + quote + ": " + error);
          continue;
        }
        label = "source";
      } else {
        if (!opt_.outputs) continue;
        outputs_++;
        if (!expected_output(output, want, error)) {
          if (!error.empty()) errors_.push_back(where + "output " + output + ": " + error);
          continue;
        }
        label = "program";
      }
      std::string diff = first_difference(want, got, label);
      if (diff.empty()) continue;
      if (opt_.fix) {
        rewrites.emplace_back(block, want);
      } else {
        errors_.push_back(where + (quote.empty() ? "output " + output : "quote " + quote) + " differs from the " +
                          (quote.empty() ? "program's output" : "source") + "; " + diff);
      }
    }
    if (rewrites.empty()) return;
    // Replace from the bottom up so earlier line numbers stay valid.
    for (auto it = rewrites.rbegin(); it != rewrites.rend(); ++it) {
      const Block& b = it->first;
      md.erase(md.begin() + b.first, md.begin() + b.close);
      md.insert(md.begin() + b.first, it->second.begin(), it->second.end());
    }
    if (!write_lines(path, md)) {
      errors_.push_back(rel(path) + ": cannot write the fixed lesson");
      return;
    }
    fixed_ += static_cast<int>(rewrites.size());
    std::cout << "fixed " << rewrites.size() << " block(s) in " << rel(path) << "\n";
  }

  bool expected_quote(const std::string& target, Lines& want, std::string& error) {
    size_t hash = target.rfind('#');
    if (hash == std::string::npos || hash == 0 || hash + 1 == target.size()) {
      error = "want the form path#anchor";
      return false;
    }
    std::string file = target.substr(0, hash), name = target.substr(hash + 1);
    const SourceFile& src = source(file);
    if (!readable_.count(file)) {
      error = "missing file " + file + " (paths are relative to the project root)";
      return false;
    }
    // A quoted file outside the scanned folders (the root CMakeLists.txt, say) is held to the
    // same rules, once.
    if (problems_reported_.insert(file).second) {
      for (const std::string& problem : src.problems) errors_.push_back(problem);
    }
    auto it = src.anchors.find(name);
    if (it == src.anchors.end()) {
      error = "missing anchor '" + name + "' in " + file;
      return false;
    }
    want = anchor_text(src, it->second);
    return true;
  }

  bool expected_output(const std::string& target, Lines& want, std::string& error) {
    size_t hash = target.find('#');
    std::string program = target.substr(0, hash);
    std::string section = hash == std::string::npos ? "" : target.substr(hash + 1);
    const RunResult& run = run_program(program);
    if (!run.ok) {
      // Said once per program: one missing program should not bury the other problems.
      error = reported_runs_.insert(program).second ? run.error : "";
      return false;
    }
    if (section.empty()) {
      want = run.lines;
    } else {
      if (!extract_section(run.lines, section, want)) {
        error = program + " printed no line [" + section + "]";
        return false;
      }
    }
    while (!want.empty() && is_blank(want.back())) want.pop_back();
    return true;
  }

  // The lines after `[section]` up to the next `[name]` line or the end. A name is letters,
  // digits, `_` and `-`, so a printed vector such as `[1, 2]` does not end a section.
  // ANCHOR: extract_section
  static bool is_section_header(const std::string& line) {
    if (line.size() < 3 || line.front() != '[' || line.back() != ']') return false;
    return std::all_of(line.begin() + 1, line.end() - 1,
                       [](char c) { return std::isalnum((unsigned char)c) || c == '_' || c == '-'; });
  }

  static bool extract_section(const Lines& out, const std::string& section, Lines& lines) {
    auto header = std::find(out.begin(), out.end(), "[" + section + "]");
    if (header == out.end()) return false;
    auto end = std::find_if(header + 1, out.end(), is_section_header);
    lines.assign(header + 1, end);
    return true;
  }
  // ANCHOR_END: extract_section

  const RunResult& run_program(const std::string& program) {
    auto cached = runs_.find(program);
    if (cached != runs_.end()) return cached->second;
    RunResult& result = runs_[program];
    bool safe_name = !program.empty() && std::all_of(program.begin(), program.end(), [](char c) {
      return std::isalnum((unsigned char)c) || c == '_' || c == '-';
    });
    fs::path exe = opt_.bin / "lessons" / program;
    if (!safe_name) {
      result.error = "'" + program + "' is not a program name (want lesson_NN)";
      return result;
    }
    if (!fs::exists(exe)) {
      result.error = "program " + exe.string() + " not found; build the lesson programs first (cmake --build " +
                     opt_.bin.string() + ")";
      return result;
    }
    // subtle: outputs are compared at one thread; with more, a parallel reduction may round
    // differently and timings of course differ. The variable is inherited by the child.
    setenv("OMP_NUM_THREADS", "1", 1);
    std::string command = "'" + exe.string() + "'";  // exe has no quote: bin paths come from the build
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) {
      result.error = "cannot run " + exe.string();
      return result;
    }
    std::string text;
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) text.append(buffer, n);
    int status = pclose(pipe);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      result.error = program + " failed (exit status " +
                     (status != -1 && WIFEXITED(status) ? std::to_string(WEXITSTATUS(status)) : "abnormal") +
                     "); a lesson program exits non-zero when its own check fails";
      return result;
    }
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) result.lines.push_back(rstrip(line));
    result.ok = true;
    return result;
  }

  Options opt_;
  std::map<std::string, SourceFile> sources_;
  std::set<std::string> readable_;
  std::set<std::string> problems_reported_;  // files whose anchor problems are already listed
  std::map<std::string, RunResult> runs_;
  std::set<std::string> reported_runs_;  // programs whose failure was already reported
  std::vector<std::string> errors_;
  int lessons_ = 0, quotes_ = 0, outputs_ = 0, fixed_ = 0;
  int anchor_count_ = 0, anchor_files_ = 0;
};

void usage(std::ostream& out) {
  out << "usage: lesson_check --root SRC_DIR --bin BUILD_DIR [--fix] [--no-outputs] [--only FILE.md ...]\n"
         "\n"
         "Checks the anchors in the sources, the code quoted by lessons/*.md (and docs/*.md) and the\n"
         "program outputs they quote, and that every lesson has its program.\n"
         "  --root DIR     the project's source directory\n"
         "  --bin DIR      the build directory holding lessons/lesson_NN (not needed with --no-outputs)\n"
         "  --fix          rewrite the quoted blocks that differ instead of failing\n"
         "  --no-outputs   do not run the lesson programs\n"
         "  --only FILE    check (or fix) only this markdown file, e.g. 03-matmul.md; repeatable\n";
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(std::cout);
      return 0;
    } else if (arg == "--fix") {
      opt.fix = true;
    } else if (arg == "--no-outputs") {
      opt.outputs = false;
    } else if (arg == "--only" && i + 1 < argc) {
      opt.only.insert(fs::path(argv[++i]).filename().string());
    } else if ((arg == "--root" || arg == "--bin") && i + 1 < argc) {
      (arg == "--root" ? opt.root : opt.bin) = fs::path(argv[++i]);
    } else {
      std::cerr << "lesson_check: unknown or incomplete argument '" << arg << "'\n";
      usage(std::cerr);
      return 2;
    }
  }
  if (opt.root.empty() || (opt.outputs && opt.bin.empty())) {
    std::cerr << "lesson_check: --root is required, and --bin unless --no-outputs is given\n";
    usage(std::cerr);
    return 2;
  }
  if (!fs::is_directory(opt.root)) {
    std::cerr << "lesson_check: --root " << opt.root << " is not a directory\n";
    return 2;
  }
  opt.root = fs::absolute(opt.root).lexically_normal();
  if (!opt.bin.empty()) opt.bin = fs::absolute(opt.bin).lexically_normal();
  return Checker(opt).run();
}

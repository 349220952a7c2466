#include "checker.h"

#include <algorithm>
#include <iostream>

#include "links.h"
#include "quotes.h"
#include "rules.h"

namespace lesson_check {

Checker::Checker(Options options) : opt_(std::move(options)) {}

int Checker::run() {
  scan_sources();
  check_lesson_programs();
  check_times();
  std::vector<fs::path> files;  // every markdown file that may quote: lessons, lessons/zh, docs
  for (const char* dir : {"lessons", "lessons/zh", "docs"}) {
    fs::path d = opt_.root / dir;
    if (!fs::is_directory(d)) continue;
    for (const auto& entry : fs::directory_iterator(d)) {
      if (entry.is_regular_file() && entry.path().extension() == ".md") files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& md : files) check_markdown(md);
  check_links();
  check_twins();
  check_glossary();
  check_unquoted();

  for (const std::string& e : errors_) std::cerr << "error: " << e << "\n";
  std::cout << "lesson_check: " << lessons_ << " lessons (" << zh_lessons_ << " in Chinese), " << quotes_ << " quotes, "
            << outputs_ << " outputs checked" << (opt_.outputs ? "" : " (outputs skipped: --no-outputs)")
            << (opt_.outputs && opt_.any_digits ? " (digits not compared: --any-digits)" : "") << "; links of "
            << links_ << " files; " << anchor_count_ << " anchors in " << anchor_files_ << " source files";
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

std::string Checker::rel(const fs::path& p) const { return p.lexically_relative(opt_.root).generic_string(); }

bool Checker::selected(const fs::path& md) const {
  return opt_.only.empty() || opt_.only.count(md.filename().string()) > 0;
}

const Lines& Checker::markdown(const std::string& relpath) {
  auto it = markdown_.find(relpath);
  if (it != markdown_.end()) return it->second;
  Lines lines;
  read_lines(opt_.root / relpath, lines);
  return markdown_.emplace(relpath, std::move(lines)).first->second;
}

// Every source file of the project, scanned for anchor problems whether or not a lesson quotes it.
void Checker::scan_sources() {
  static const char* kDirs[] = {"engine", "model", "tokenizer", "train",    "infer",   "cli",     "lessons",
                                "tools",  "tests", "bench",     "examples", "scripts", "configs", "common"};
  static const std::set<std::string> kExtensions = {".h", ".cpp", ".hpp", ".txt", ".sh", ".py", ".json"};
  std::vector<fs::path> paths;
  for (const char* dir : kDirs) {
    fs::path d = opt_.root / dir;
    if (!fs::is_directory(d)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(d)) {
      if (!entry.is_regular_file()) continue;
      std::string name = entry.path().filename().string();
      if (kExtensions.count(entry.path().extension().string()) || name == "CMakeLists.txt")
        paths.push_back(entry.path());
    }
  }
  std::sort(paths.begin(), paths.end());
  for (const fs::path& p : paths) {
    if (fs::file_size(p) > (8u << 20)) continue;  // large data fixtures hold no anchors
    const SourceFile& file = source(rel(p));
    scanned_.insert(rel(p));
    problems_reported_.insert(rel(p));
    for (const std::string& problem : file.problems) errors_.push_back(problem);
    if (!file.anchors.empty()) {
      anchor_files_++;
      anchor_count_ += static_cast<int>(file.anchors.size());
    }
  }
}

const SourceFile& Checker::source(const std::string& relpath) {
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

void Checker::check_lesson_programs() {
  fs::path dir = opt_.root / "lessons";
  if (!fs::is_directory(dir)) {
    errors_.push_back("lessons: no lessons folder under " + opt_.root.string());
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
  auto has_test_area = [this](const std::string& area) { return fs::is_directory(opt_.root / "tests" / area); };
  bool twins = fs::exists(opt_.root / kTwinsRequiredFile);
  for (const char* sub : {"lessons", "lessons/zh"}) {
    bool zh = std::string(sub) == "lessons/zh";
    if (!fs::is_directory(opt_.root / sub)) continue;
    for (const auto& entry : fs::directory_iterator(opt_.root / sub)) {
      std::string name = entry.path().filename().string();
      if (!is_lesson_name(name)) continue;
      (zh ? zh_lessons_ : lessons_)++;
      if (!zh && !programs.count(name.substr(0, 2))) {
        errors_.push_back("lessons/" + name + ": no lesson program lessons/" + name.substr(0, 2) +
                          "_*.cpp (every lesson has one)");
      }
      if (zh && !twins) continue;  // the Chinese house rules start with the twin rule
      for (const std::string& e :
           check_lesson_shape(rel(entry.path()), markdown(rel(entry.path())), zh, has_test_area)) {
        errors_.push_back(e);
      }
    }
  }
}

void Checker::check_times() {
  std::map<std::string, Lines> lessons;
  for (const auto& entry : fs::directory_iterator(opt_.root / "lessons")) {
    std::string name = entry.path().filename().string();
    if (is_lesson_name(name)) lessons[name] = markdown(rel(entry.path()));
  }
  if (lessons.empty()) return;
  if (!fs::exists(opt_.root / "lessons/README.md")) {
    errors_.push_back("lessons/README.md: missing (the learning path lists every lesson with its time)");
    return;
  }
  for (const std::string& e : lesson_check::check_times(lessons, markdown("lessons/README.md"))) errors_.push_back(e);
}

void Checker::check_markdown(const fs::path& path) {
  std::string relpath = rel(path);
  Lines md = markdown(relpath);
  std::vector<MarkdownMarker> markers = find_markers(md);
  for (const MarkdownMarker& m : markers) {
    if (m.kind == "quote") quoted_.insert(m.target);
  }
  if (!selected(path)) return;
  std::vector<std::pair<Block, Lines>> rewrites;  // blocks --fix replaces, in file order
  for (const MarkdownMarker& m : markers) {
    bool quote = m.kind == "quote";
    std::string what = m.kind + " " + m.target;
    std::string where = relpath + ":" + std::to_string(m.line + 1) + ": ";
    Block block;
    std::string error;
    if (!find_block(md, m.line, block, error)) {
      errors_.push_back(where + what + " " + error);
      continue;
    }
    Lines got(md.begin() + block.first, md.begin() + block.close);
    Lines want;
    if (quote) {
      quotes_++;
      if (!expected_quote(m.target, want, error)) {
        errors_.push_back(where + what + ": " + error);
        continue;
      }
    } else {
      if (!opt_.outputs) continue;
      outputs_++;
      if (!expected_output(m.target, want, error)) {
        if (!error.empty()) errors_.push_back(where + what + ": " + error);
        continue;
      }
    }
    if (!quote && opt_.any_digits) {
      // The program ran and exited 0 (its own checks passed); its text must still match, its
      // numbers may differ (usage_text() says when that is right).
      Lines masked_want, masked_got;
      for (const std::string& line : want) masked_want.push_back(mask_digits(line));
      for (const std::string& line : got) masked_got.push_back(mask_digits(line));
      if (masked_want == masked_got) continue;
    }
    std::string diff = first_difference(want, got, quote ? "source" : "program");
    if (diff.empty()) continue;
    if (opt_.fix) {
      rewrites.emplace_back(block, want);
    } else {
      errors_.push_back(where + what + " differs from the " + (quote ? "source" : "program's output") + "; " + diff);
    }
  }
  if (rewrites.empty()) return;
  replace_blocks(md, rewrites);
  if (!write_lines(path, md)) {
    errors_.push_back(relpath + ": cannot write the fixed lesson");
    return;
  }
  markdown_[relpath] = md;
  fixed_ += static_cast<int>(rewrites.size());
  std::cout << "fixed " << rewrites.size() << " block(s) in " << relpath << "\n";
}

bool Checker::expected_quote(const std::string& target, Lines& want, std::string& error) {
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

bool Checker::expected_output(const std::string& target, Lines& want, std::string& error) {
  size_t hash = target.find('#');
  std::string program = target.substr(0, hash);
  std::string section = hash == std::string::npos ? "" : target.substr(hash + 1);
  bool safe_name = !program.empty() && std::all_of(program.begin(), program.end(), [](char c) {
    return std::isalnum((unsigned char)c) || c == '_' || c == '-';
  });
  if (!safe_name) {
    error = "'" + program + "' is not a program name (want lesson_NN)";
    return false;
  }
  auto cached = runs_.find(program);
  if (cached == runs_.end()) {
    cached = runs_.emplace(program, run_program(opt_.bin / "lessons" / program, program)).first;
    if (!cached->second.ok && !fs::exists(opt_.bin / "lessons" / program)) {
      cached->second.error += " (cmake --build " + opt_.bin.string() + ")";
    }
  }
  const RunResult& run = cached->second;
  if (!run.ok) {
    // Said once per program: one missing program should not bury the other problems.
    error = reported_runs_.insert(program).second ? run.error : "";
    return false;
  }
  if (section.empty()) {
    want = run.lines;
  } else if (!extract_section(run.lines, section, want)) {
    error = program + " printed no line [" + section + "]";
    return false;
  }
  while (!want.empty() && is_blank(want.back())) want.pop_back();
  return true;
}

void Checker::check_links() {
  std::vector<std::string> files;
  for (const char* dir : {"lessons", "lessons/zh", "docs"}) {
    if (!fs::is_directory(opt_.root / dir)) continue;
    for (const auto& entry : fs::directory_iterator(opt_.root / dir)) {
      if (entry.is_regular_file() && entry.path().extension() == ".md") files.push_back(rel(entry.path()));
    }
  }
  for (const char* file : {"README.md", "README.zh.md", "examples/README.md", "configs/README.md"}) {
    if (fs::exists(opt_.root / file)) files.push_back(file);
  }
  std::sort(files.begin(), files.end());
  auto anchors_of = [this](const std::string& relpath) { return heading_anchors(markdown(relpath)); };
  for (const std::string& file : files) {
    if (!selected(file)) continue;
    links_++;
    for (const std::string& e : lesson_check::check_links(opt_.root, file, markdown(file), anchors_of)) {
      errors_.push_back(e);
    }
  }
}

void Checker::check_twins() {
  if (!fs::exists(opt_.root / kTwinsRequiredFile)) return;
  std::set<std::string> english;
  for (const auto& entry : fs::directory_iterator(opt_.root / "lessons")) {
    std::string name = entry.path().filename().string();
    if (!is_lesson_name(name)) continue;
    english.insert(name);
    if (!selected(entry.path())) continue;
    std::string en_rel = "lessons/" + name, zh_rel = "lessons/zh/" + name;
    bool has_twin = fs::exists(opt_.root / zh_rel);
    for (const std::string& e : check_twin(en_rel, markdown(en_rel), zh_rel, has_twin ? &markdown(zh_rel) : nullptr)) {
      errors_.push_back(e);
    }
  }
  if (!fs::is_directory(opt_.root / "lessons/zh")) return;
  for (const auto& entry : fs::directory_iterator(opt_.root / "lessons/zh")) {
    std::string name = entry.path().filename().string();
    if (is_lesson_name(name) && !english.count(name)) {
      errors_.push_back("lessons/zh/" + name + ": is the twin of no English lesson (no lessons/" + name + ")");
    }
  }
}

void Checker::check_glossary() {
  const std::string glossary_rel = "lessons/zh/GLOSSARY.md";
  if (!fs::exists(opt_.root / glossary_rel)) return;
  std::vector<GlossaryEntry> glossary = parse_glossary(glossary_rel, markdown(glossary_rel), errors_);
  std::vector<std::string> files;  // every Chinese text but the glossary itself
  for (const auto& entry : fs::directory_iterator(opt_.root / "lessons/zh")) {
    std::string name = entry.path().filename().string();
    if (entry.path().extension() == ".md" && name != "GLOSSARY.md") files.push_back(rel(entry.path()));
  }
  if (fs::exists(opt_.root / "README.zh.md")) files.push_back("README.zh.md");
  std::sort(files.begin(), files.end());
  for (const std::string& file : files) {
    if (!selected(file)) continue;
    for (const std::string& e : lesson_check::check_glossary(file, markdown(file), glossary)) errors_.push_back(e);
  }
}

// Only on a whole check: with --only, the other markdown files still count as quoting (they are
// all read), but a partial run is for fixing one lesson, so it does not nag about the rest.
void Checker::check_unquoted() {
  if (!opt_.only.empty()) return;
  std::map<std::string, SourceFile> scanned;
  for (const std::string& path : scanned_) scanned.emplace(path, sources_.at(path));
  for (const std::string& e : unquoted_anchors(scanned, quoted_)) errors_.push_back(e);
}

const char* usage_text() {
  return R"(usage: lesson_check --root SRC_DIR --bin BUILD_DIR [--fix] [--no-outputs] [--any-digits]
                    [--only FILE.md ...]

Keeps the lessons and the code they quote from drifting apart. It checks:
  anchors   source files mark quotable code with comment lines `// ANCHOR: name` and
            `// ANCHOR_END: name` (`#` in CMake, shell and Python files); markers are well formed,
            and every anchor is quoted by some lesson or doc (unless --only is given).
  quotes    in lessons/*.md, lessons/zh/*.md and docs/*.md, a line `<!-- quote: path#name -->`
            in the first column followed by a fenced block: the block holds exactly the anchor's
            text (nested markers and common indentation removed).
  outputs   `<!-- output: lesson_NN -->` or `<!-- output: lesson_NN#section -->` then a fenced
            block: it equals what BUILD_DIR/lessons/lesson_NN prints at one thread (whole, or the
            lines after its printed line `[section]` up to the next `[name]` line).
  lessons   every lessons/NN-slug.md has its program lessons/NN_slug.cpp, names a test binary
            test_<area> of tests/<area>/, has "## Exercises" and "## What we skipped", and a
            header line "Time: about N minutes" equal to its row of lessons/README.md ("N min").
  links     in lessons/, lessons/zh/, docs/, README.md, README.zh.md, examples/README.md and
            configs/README.md: every relative markdown link leads to a file, every #anchor to a
            heading (GitHub's rule), and every `code path` whose first part is a folder of the
            project names a real file (build/ and runs/ paths are not checked).
  twins     when the file lessons/zh/.twins-required exists: every English lesson has a Chinese
            twin lessons/zh/NN-slug.md with the same quote and output markers in the same order,
            and each Chinese lesson names its test binary and has "## 练习" and
            "## 我们跳过了什么". Chinese lessons that exist are always checked for quotes,
            outputs and links like the English ones.
  glossary  lessons/zh/GLOSSARY.md lists wrong variants in a table whose header row is
            `| 术语 | English | 不要用 |`, one row per term, the wrong variants separated by "、":
              | 残差流 | residual stream | 残余流、剩余流 |
            No Chinese lesson (nor README.zh.md) may use a wrong variant in its prose (code is not prose; a variant
            inside the preferred term, such as 注意力 in 自注意力, is fine).

Options:
  --root DIR     the project's source directory
  --bin DIR      the build directory holding lessons/lesson_NN (not needed with --no-outputs)
  --fix          rewrite the quoted blocks that differ instead of failing
  --no-outputs   do not run the lesson programs
  --any-digits   run the lesson programs (each must exit 0) but compare their outputs with every
                 run of digits masked: for a build that is not the one the lessons quote (the
                 sanitizer build: another compiler, other optimizations), whose last digits may
                 differ while the text, the sections and the programs' own checks must not.
                 Not with --fix.
  --only FILE    check (or fix) only this markdown file, e.g. 03-matmul.md; repeatable

Exit status: 0 when all is well, 1 when anything is wrong (every problem is listed), 2 for a
usage error.
)";
}

}  // namespace lesson_check

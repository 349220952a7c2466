// Tests of tools/lesson_check, the checker that keeps lessons and code in step.
//
// The first test runs the checker on the real lessons (quotes and program outputs). The unit
// tests call each rule of tools/lesson_check/ directly on small texts. The end-to-end tests build
// a fake source tree, break it on purpose, and assert that the checker fails with the message
// that names the problem: a checker that cannot fail proves nothing.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "lesson_check/anchors.h"
#include "lesson_check/links.h"
#include "lesson_check/outputs.h"
#include "lesson_check/quotes.h"
#include "lesson_check/rules.h"

using namespace lesson_check;  // its parts, and fs = std::filesystem

namespace {

const fs::path kSource = FOUNDRY_SOURCE_DIR;
const fs::path kBinary = FOUNDRY_BINARY_DIR;
const fs::path kChecker = kBinary / "tools" / "lesson_check";

struct Run {
  int status = -1;
  std::string output;  // stdout and stderr together
};

Run run(const std::string& args) {
  Run r;
  std::string command = "'" + kChecker.string() + "' " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) r.output.append(buffer, n);
  int status = pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  REQUIRE(out);
  out << text;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

bool any_contains(const Lines& errors, const std::string& needle) {
  for (const std::string& e : errors) {
    if (contains(e, needle)) return true;
  }
  return false;
}

// A scratch directory removed when the test ends.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("foundry_lesson_check_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScratchDir() { fs::remove_all(path); }
};

// What every lesson ends with (the checker insists), for the lessons these tests make up.
const std::string kLessonEnd =
    "\n## The tests that guard this code\n`test_lessons`\n\n## Exercises\n1. One.\n\n"
    "## What we skipped\n- Nothing.\n";
const std::string kZhLessonEnd = "\n## 测试\n`test_lessons`\n\n## 练习\n1. 一。\n\n## 我们跳过了什么\n- 无。\n";

const std::string kDemoSource =
    "int f() {\n"
    "  // ANCHOR: body\n"
    "  int a = 1;\n"
    "  // ANCHOR: inner\n"
    "    int b = 2;\n"
    "  // ANCHOR_END: inner\n"
    "\n"
    "  // ANCHOR_END: body\n"
    "  return a;\n"
    "}\n";

const std::string kDemoLesson =
    "# Lesson 07: demo\n\nTime: about 30 minutes. Code: `engine/demo.cpp`.\n\n"
    "<!-- quote: engine/demo.cpp#body -->\n```cpp\nint a = 1;\n  int b = 2;\n```\n"
    "<!-- quote: engine/demo.cpp#inner -->\n```cpp\nint b = 2;\n```\n" +
    kLessonEnd;

// A complete, consistent tree: one lesson quoting both anchors of one source file, its program,
// its row in lessons/README.md, and the test folder it names.
void write_demo_tree(const fs::path& root) {
  write_file(root / "engine" / "demo.cpp", kDemoSource);
  write_file(root / "lessons" / "07_demo.cpp", "int main() { return 0; }\n");
  write_file(root / "lessons" / "07-demo.md", kDemoLesson);
  write_file(root / "lessons" / "README.md",
             "# Path\n\n| lesson | what | time |\n|---|---|---|\n| [07 demo](07-demo.md) | demo | 30 min |\n");
  fs::create_directories(root / "tests" / "lessons");
}

std::string check_tree(const fs::path& root, const std::string& extra = "") {
  return "--root '" + root.string() + "' --no-outputs " + extra;
}

}  // namespace

// ---- the real lessons ---------------------------------------------------------------------------

TEST_CASE("the lessons agree with the code and with their programs' output", "[lessons]") {
  REQUIRE(fs::exists(kChecker));  // built by the default target, like the lesson programs
  // The lessons quote what the normal build (g++) prints. The sanitizer build (clang, other
  // optimizations, every memory access instrumented) fuses and orders floating-point operations
  // differently, so some last digits differ there, and a count of differing bits can move by a
  // few hundred (lessons 06, 14, 20, 22 did). There every program must still run clean and pass
  // its own checks, and print the same text with digits masked.
  std::string digits;
#ifdef FOUNDRY_SANITIZE_BUILD
  digits = " --any-digits";
#endif
  Run r = run("--root '" + kSource.string() + "' --bin '" + kBinary.string() + "'" + digits);
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(contains(r.output, "lesson_check: OK"));
  // The summary counts what was checked; a checker that found nothing to check is suspect.
  std::smatch m;
  REQUIRE(
      std::regex_search(r.output, m, std::regex(R"((\d+) lessons \(\d+ in Chinese\), (\d+) quotes, (\d+) outputs)")));
  CHECK(std::stoi(m[1]) >= 19);
  CHECK(std::stoi(m[2]) >= 100);
  CHECK(std::stoi(m[3]) >= 19);
}

// ---- anchors ------------------------------------------------------------------------------------

TEST_CASE("anchors: markers are recognized, nested markers dropped and indentation removed", "[lessons]") {
  std::string name;
  CHECK(parse_marker("  // ANCHOR: a_b", name) == Marker::start);
  CHECK(name == "a_b");
  CHECK(parse_marker("# ANCHOR_END: x", name) == Marker::end);
  CHECK(name == "x");
  CHECK(parse_marker("std::string s = \"// ANCHOR: no\";", name) == Marker::none);

  SourceFile file = parse_source(split_lines(kDemoSource), "engine/demo.cpp");
  CHECK(file.problems.empty());
  REQUIRE(file.anchors.count("body"));
  CHECK(anchor_text(file, file.anchors["body"]) == Lines{"int a = 1;", "  int b = 2;"});
  CHECK(anchor_text(file, file.anchors["inner"]) == Lines{"int b = 2;"});
}

TEST_CASE("anchors: unclosed, unopened, unnamed, duplicate and empty anchors are problems", "[lessons]") {
  SourceFile file = parse_source(split_lines("# ANCHOR: never_closed\necho hi\n# ANCHOR_END: never_opened\n"
                                             "// ANCHOR: nothing_inside\n\n// ANCHOR_END: nothing_inside\n"
                                             "// ANCHOR:\n// ANCHOR: twice\nx\n// ANCHOR_END: twice\n"
                                             "// ANCHOR: twice\n"),
                                 "demo.sh");
  CHECK(any_contains(file.problems, "demo.sh:1: anchor 'never_closed' has no ANCHOR_END"));
  CHECK(any_contains(file.problems, "demo.sh:3: ANCHOR_END 'never_opened' has no matching ANCHOR"));
  CHECK(any_contains(file.problems, "demo.sh:4: anchor 'nothing_inside' is empty"));
  CHECK(any_contains(file.problems, "demo.sh:7: anchor marker without a valid name"));
  CHECK(any_contains(file.problems, "demo.sh:11: duplicate anchor 'twice' (first ANCHOR at line 8)"));
}

TEST_CASE("anchors: an anchor that nothing quotes is reported", "[lessons]") {
  std::map<std::string, SourceFile> sources{
      {"engine/demo.cpp", parse_source(split_lines(kDemoSource), "engine/demo.cpp")}};
  Lines errors = unquoted_anchors(sources, {"engine/demo.cpp#body"});
  REQUIRE(errors.size() == 1);
  CHECK(contains(errors[0], "engine/demo.cpp:4: anchor 'inner' is quoted by no lesson or doc"));
  CHECK(unquoted_anchors(sources, {"engine/demo.cpp#body", "engine/demo.cpp#inner"}).empty());
}

// ---- quotes and outputs -------------------------------------------------------------------------

TEST_CASE("quotes: markers in the first column, their blocks, and the first difference", "[lessons]") {
  Lines md = split_lines(
      "<!-- quote: a.cpp#x -->\n```cpp\none\n```\n    <!-- quote: b.cpp#y -->\n"
      "<!-- output: lesson_01#s -->\nno fence\n<!-- output: lesson_02 -->\n```\nopen\n");
  std::vector<MarkdownMarker> markers = find_markers(md);
  REQUIRE(markers.size() == 3);  // the indented one is an example, not a marker
  CHECK(markers[0].kind == "quote");
  CHECK(markers[0].target == "a.cpp#x");
  CHECK(markers[1].target == "lesson_01#s");
  Block block;
  std::string error;
  REQUIRE(find_block(md, 0, block, error));
  CHECK(block.first == 2);
  CHECK(block.close == 3);
  CHECK(!find_block(md, 5, block, error));
  CHECK(error == "is not followed immediately by a fenced block (```)");
  CHECK(!find_block(md, 7, block, error));
  CHECK(error == "has a fenced block that is never closed");

  CHECK(first_difference({"a", "b"}, {"a  ", "b"}, "source").empty());
  std::string diff = first_difference({"a", "b"}, {"a"}, "source");
  CHECK(contains(diff, "first difference at line 2"));
  CHECK(contains(diff, "lesson: (ends after line 1)"));

  Lines fixed = md;
  replace_blocks(fixed, {{Block{0, 2, 3}, Lines{"new", "lines"}}});
  CHECK(fixed[2] == "new");
  CHECK(fixed[3] == "lines");
  CHECK(fixed[4] == "```");
}

TEST_CASE("outputs: a section runs to the next [name] line, not to a printed vector", "[lessons]") {
  Lines out{"head", "[alpha]", "one", "[1, 2]", "two", "[beta]", "three"};
  Lines got;
  REQUIRE(extract_section(out, "alpha", got));
  CHECK(got == Lines{"one", "[1, 2]", "two"});
  REQUIRE(extract_section(out, "beta", got));
  CHECK(got == Lines{"three"});
  CHECK(!extract_section(out, "gamma", got));
  CHECK(is_section_header("[grad-check_2]"));
  CHECK(!is_section_header("[1, 2]"));
}

TEST_CASE("outputs: --any-digits masks every run of digits, nothing else", "[lessons]") {
  CHECK(mask_digits("   50      3.2209    3.2874") == "   #      #.#    #.#");
  CHECK(mask_digits("numbers whose bits differ: 102542 of 121152") == "numbers whose bits differ: # of #");
  CHECK(mask_digits("-1e-05 [x2]") == "-#e-# [x#]");
  CHECK(mask_digits("check: ok") == "check: ok");
  CHECK(mask_digits("") == "");
}

// ---- links --------------------------------------------------------------------------------------

TEST_CASE("links: heading anchors are made as GitHub makes them", "[lessons]") {
  CHECK(heading_slug("The tests that guard this code") == "the-tests-that-guard-this-code");
  CHECK(heading_slug("Lesson 03: matmul (and `linear`)") == "lesson-03-matmul-and-linear");
  CHECK(heading_slug("Stage 2 — the engine") == "stage-2--the-engine");
  CHECK(heading_slug("第一阶段：入门") == "第一阶段入门");
  std::set<std::string> anchors = heading_anchors(split_lines("# A\n## A\n```\n# not a heading\n```\n### b_c\n"));
  CHECK(anchors == std::set<std::string>{"a", "a-1", "b_c"});
}

TEST_CASE("links: relative links, anchors and code paths must resolve", "[lessons]") {
  ScratchDir dir;
  write_file(dir.path / "engine" / "matmul.cpp", "x\n");
  write_file(dir.path / "docs" / "guide.md", "# Guide\n## The part\n");
  write_file(dir.path / "lessons" / "README.md", "# Path\n");
  Lines md = split_lines(
      "See [the guide](../docs/guide.md#the-part), [home](#top) and [web](https://example.com/x).\n"
      "Read `engine/matmul.cpp`, `engine/matmul.cpp#linear_forward`, `build/lessons/lesson_03`,\n"
      "`runs/tiny/train`, `lessons/NN-slug.md` and `a/b` (no such folder: not a path).\n"
      "[ref]: README.md\n"
      "```\n[not checked](nowhere.md) `engine/nowhere.cpp`\n```\n"
      "# Top\n");
  auto anchors_of = [&](const std::string& rel) {
    Lines lines;
    read_lines(dir.path / rel, lines);
    return rel == "lessons/demo.md" ? heading_anchors(md) : heading_anchors(lines);
  };
  CHECK(check_links(dir.path, "lessons/demo.md", md, anchors_of).empty());

  Lines broken = split_lines(
      "[gone](../docs/gone.md) [bad anchor](../docs/guide.md#no-part) [self](#nowhere)\n"
      "`engine/nowhere.cpp` [out](../../etc/passwd)\n");
  Lines errors = check_links(dir.path, "lessons/demo.md", broken, anchors_of);
  CHECK(errors.size() == 5);
  CHECK(any_contains(errors, "lessons/demo.md:1: link ../docs/gone.md leads nowhere (no docs/gone.md)"));
  CHECK(any_contains(errors, "docs/guide.md has no heading with the anchor #no-part"));
  CHECK(any_contains(errors, "link #nowhere: lessons/demo.md has no heading with the anchor #nowhere"));
  CHECK(any_contains(errors, "lessons/demo.md:2: path `engine/nowhere.cpp` names no file or folder"));
  CHECK(any_contains(errors, "link ../../etc/passwd leaves the project"));
}

// ---- house rules, times, twins, glossary --------------------------------------------------------

TEST_CASE("rules: a lesson names a real test binary and ends with exercises and what it skipped", "[lessons]") {
  auto has_area = [](const std::string& area) { return area == "lessons"; };
  CHECK(check_lesson_shape("lessons/06-demo.md", split_lines(kDemoLesson), false, has_area).empty());
  Lines errors = check_lesson_shape("lessons/06-demo.md", split_lines("Guarded by `test_nowhere`.\n## Exercises\n"),
                                    false, has_area);
  CHECK(errors.size() == 2);
  CHECK(any_contains(errors, "lessons/06-demo.md: names no test binary test_<area>"));
  CHECK(any_contains(errors, "has no \"## What we skipped\" section"));
  // A Chinese lesson has the same sections under Chinese headings.
  CHECK(check_lesson_shape("lessons/zh/06-demo.md", split_lines(kZhLessonEnd), true, has_area).empty());
  CHECK(any_contains(check_lesson_shape("lessons/zh/06-demo.md", split_lines(kLessonEnd), true, has_area),
                     "has no \"## 练习\" section"));
}

TEST_CASE("rules: header times agree with lessons/README.md", "[lessons]") {
  Lines readme = split_lines(
      "| lesson | what | time |\n|---|---|---|\n| [01 a](01-a.md) | x | 45 min |\n| [02 b](02-b.md) | y | 60 min |\n"
      "| [03 c](03-c.md) | z | 30 min |\n");
  CHECK(readme_minutes(readme) == std::map<std::string, int>{{"01-a.md", 45}, {"02-b.md", 60}, {"03-c.md", 30}});
  CHECK(header_minutes(split_lines("# L\n\nTime: about 45 minutes. Program: x\n")) == 45);
  CHECK(header_minutes(split_lines("# L\n\nno time\n")) == -1);
  std::map<std::string, Lines> lessons{{"01-a.md", split_lines("# a\n\nTime: about 45 minutes.\n")},
                                       {"02-b.md", split_lines("# b\n\nTime: about 40 minutes.\n")},
                                       {"04-d.md", split_lines("# d\n")}};
  Lines errors = check_times(lessons, readme);
  CHECK(errors.size() == 4);
  CHECK(any_contains(errors, "lessons/02-b.md: says \"Time: about 40 minutes\" but lessons/README.md says 60 min"));
  CHECK(any_contains(errors, "lessons/04-d.md: has no header line \"Time: about N minutes\""));
  CHECK(any_contains(errors, "lessons/04-d.md: has no row in the tables of lessons/README.md"));
  CHECK(any_contains(errors, "lessons/README.md: lists 03-c.md, which is no lesson"));
}

TEST_CASE("rules: a Chinese twin quotes the same anchors and outputs in the same order", "[lessons]") {
  Lines en = split_lines("<!-- quote: a.cpp#x -->\n```\n```\ntext\n<!-- output: lesson_01#s -->\n```\n```\n");
  Lines same = split_lines("中文\n<!-- quote: a.cpp#x -->\n```\n```\n说明\n<!-- output: lesson_01#s -->\n```\n```\n");
  Lines swapped = split_lines("<!-- output: lesson_01#s -->\n```\n```\n<!-- quote: a.cpp#x -->\n```\n```\n");
  Lines missing = split_lines("<!-- quote: a.cpp#x -->\n```\n```\n");
  Lines other = split_lines("<!-- quote: a.cpp#y -->\n```\n```\n<!-- output: lesson_01#s -->\n```\n```\n");
  CHECK(check_twin("lessons/01-a.md", en, "lessons/zh/01-a.md", &same).empty());
  Lines errors = check_twin("lessons/01-a.md", en, "lessons/zh/01-a.md", nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(contains(errors[0], "lessons/01-a.md: has no Chinese twin lessons/zh/01-a.md"));
  errors = check_twin("lessons/01-a.md", en, "lessons/zh/01-a.md", &swapped);
  REQUIRE(errors.size() == 1);
  CHECK(contains(errors[0],
                 "at marker 1: the English lesson has quote a.cpp#x (line 1), the Chinese one output "
                 "lesson_01#s (line 1)"));
  errors = check_twin("lessons/01-a.md", en, "lessons/zh/01-a.md", &missing);
  REQUIRE(errors.size() == 1);
  CHECK(contains(errors[0],
                 "at marker 2: the English lesson has output lesson_01#s (line 5), the Chinese one "
                 "nothing more"));
  CHECK(!check_twin("lessons/01-a.md", en, "lessons/zh/01-a.md", &other).empty());
}

TEST_CASE("rules: the glossary's wrong variants are rejected in Chinese prose", "[lessons]") {
  Lines glossary_md = split_lines(
      "# 术语表\n\n| 术语 | English | 不要用 |\n|---|---|---|\n| 残差流 | residual stream | 残余流、剩余流 |\n"
      "| 自注意力 | self-attention | 自我注意力 |\n| 注意力 | attention | 注意机制 |\n| 梯度检查 | gradient check | "
      "|\n\n"
      "| other | table |\n|---|---|\n| 残余流 | ignored |\n");
  Lines errors;
  std::vector<GlossaryEntry> glossary = parse_glossary("lessons/zh/GLOSSARY.md", glossary_md, errors);
  CHECK(errors.empty());
  REQUIRE(glossary.size() == 4);
  CHECK(glossary[0].term == "残差流");
  CHECK(glossary[0].english == "residual stream");
  CHECK(glossary[0].wrong == std::vector<std::string>{"残余流", "剩余流"});
  CHECK(glossary[3].wrong.empty());

  Lines good = split_lines("残差流和自注意力。\n```\n残余流 in code is not prose\n```\n`剩余流` neither\n");
  CHECK(check_glossary("lessons/zh/01-a.md", good, glossary).empty());
  Lines bad = split_lines("第一行\n这里的剩余流和自我注意力都不对。\n");
  Lines found = check_glossary("lessons/zh/01-a.md", bad, glossary);
  CHECK(found.size() == 2);
  CHECK(any_contains(found,
                     "lessons/zh/01-a.md:2: uses \"剩余流\"; the glossary's term for residual stream is \"残差流\""));
  CHECK(any_contains(found, "uses \"自我注意力\""));

  Lines bad_table = split_lines(
      "| 术语 | English | 不要用 |\n|---|---|---|\n| 残差流 | residual stream |\n| 词元 | token | 词元 |\n");
  parse_glossary("g.md", bad_table, errors);
  CHECK(any_contains(errors, "g.md:3: a row of the table"));
  CHECK(any_contains(errors, "g.md:4: lists the term 词元 among its own wrong variants"));
}

// ---- end to end, on fake trees ------------------------------------------------------------------

TEST_CASE("end to end: a consistent tree passes; a changed quote fails and --fix rewrites it", "[lessons]") {
  ScratchDir dir;
  write_demo_tree(dir.path);
  Run clean = run(check_tree(dir.path));
  INFO(clean.output);
  REQUIRE(clean.status == 0);
  CHECK(contains(clean.output, "1 lessons (0 in Chinese), 2 quotes"));

  std::string text = kDemoSource;
  text.replace(text.find("int a = 1;"), 10, "int a = 7;");
  write_file(dir.path / "engine" / "demo.cpp", text);
  Run broken = run(check_tree(dir.path));
  INFO(broken.output);
  CHECK(broken.status == 1);
  CHECK(contains(broken.output, "lessons/07-demo.md:5: quote engine/demo.cpp#body differs from the source"));
  CHECK(contains(broken.output, "first difference at line 1 of the block"));
  CHECK(contains(broken.output, "FAILED"));

  Run fixed = run(check_tree(dir.path, "--fix"));
  INFO(fixed.output);
  CHECK(fixed.status == 0);
  CHECK(contains(fixed.output, "fixed 1 block(s) in lessons/07-demo.md"));
  CHECK(run(check_tree(dir.path)).status == 0);
  CHECK(contains(read_file(dir.path / "lessons" / "07-demo.md"), "int a = 7;"));
}

TEST_CASE("end to end: missing anchors, files, programs, times, links and unquoted anchors fail", "[lessons]") {
  ScratchDir dir;
  write_demo_tree(dir.path);
  write_file(dir.path / "engine" / "extra.cpp", "// ANCHOR: lonely\nint x;\n// ANCHOR_END: lonely\n");
  write_file(dir.path / "lessons" / "07-demo.md", kDemoLesson +
                                                      "\n<!-- quote: engine/demo.cpp#no_such_anchor -->\n```cpp\n```\n"
                                                      "\n<!-- quote: engine/no_such_file.cpp#x -->\n```cpp\n```\n"
                                                      "See [lesson 9](09-orphan.md) and `engine/gone.cpp`.\n");
  write_file(dir.path / "lessons" / "09-orphan.md", "# a lesson with no program\n" + kLessonEnd);
  Run r = run(check_tree(dir.path));
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(contains(r.output, "missing anchor 'no_such_anchor' in engine/demo.cpp"));
  CHECK(contains(r.output, "missing file engine/no_such_file.cpp"));
  CHECK(contains(r.output, "lessons/09-orphan.md: no lesson program lessons/09_*.cpp"));
  CHECK(contains(r.output, "lessons/09-orphan.md: has no row in the tables of lessons/README.md"));
  CHECK(contains(r.output, "path `engine/gone.cpp` names no file or folder"));
  CHECK(contains(r.output, "engine/extra.cpp:1: anchor 'lonely' is quoted by no lesson or doc"));
  CHECK(!contains(r.output, "link 09-orphan.md"));  // the link itself resolves
  // With --only, a partial check does not report the unquoted anchors of the whole tree.
  Run only = run(check_tree(dir.path, "--only 07-demo.md"));
  CHECK(!contains(only.output, "'lonely' is quoted by no lesson"));
}

TEST_CASE("end to end: Chinese lessons are checked like the English ones, twins behind a switch", "[lessons]") {
  ScratchDir dir;
  write_demo_tree(dir.path);
  std::string zh =
      "# 第 07 课：演示\n\n<!-- quote: engine/demo.cpp#body -->\n```cpp\nint a = 1;\n  int b = 2;\n```\n"
      "<!-- quote: engine/demo.cpp#inner -->\n```cpp\nint b = 2;\n```\n" +
      kZhLessonEnd;
  fs::path zh_md = dir.path / "lessons" / "zh" / "07-demo.md";

  SECTION("switch off: a missing twin is fine, but a drifted quote in a Chinese lesson fails") {
    CHECK(run(check_tree(dir.path)).status == 0);
    std::string drifted = zh;
    drifted.replace(drifted.find("int b = 2;\n```\n<!--"), 10, "int b = 3;");
    write_file(zh_md, drifted);
    Run r = run(check_tree(dir.path));
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(contains(r.output, "lessons/zh/07-demo.md:3: quote engine/demo.cpp#body differs from the source"));
    CHECK(contains(r.output, "1 lessons (1 in Chinese)"));
  }
  SECTION("switch on: the twin must exist and match") {
    write_file(dir.path / "lessons" / "zh" / ".twins-required", "");
    Run missing = run(check_tree(dir.path));
    INFO(missing.output);
    CHECK(missing.status == 1);
    CHECK(contains(missing.output, "lessons/07-demo.md: has no Chinese twin lessons/zh/07-demo.md"));

    write_file(zh_md, zh);
    Run good = run(check_tree(dir.path));
    INFO(good.output);
    CHECK(good.status == 0);

    std::string one_quote =
        "# 第 07 课\n\n<!-- quote: engine/demo.cpp#inner -->\n```cpp\nint b = 2;\n```\n" + kZhLessonEnd;
    write_file(zh_md, one_quote);
    Run different = run(check_tree(dir.path));
    INFO(different.output);
    CHECK(different.status == 1);
    CHECK(contains(different.output,
                   "lessons/zh/07-demo.md: its quotes and outputs differ from its twin "
                   "lessons/07-demo.md at marker 1"));

    write_file(dir.path / "lessons" / "zh" / "08-extra.md", "# 多余\n" + kZhLessonEnd);
    CHECK(contains(run(check_tree(dir.path)).output, "lessons/zh/08-extra.md: is the twin of no English lesson"));
  }
  SECTION("the glossary's wrong variants fail") {
    write_file(dir.path / "lessons" / "zh" / "GLOSSARY.md",
               "# 术语表\n\n| 术语 | English | 不要用 |\n|---|---|---|\n| 残差流 | residual stream | 剩余流 |\n");
    write_file(zh_md, zh + "\n剩余流。\n");
    write_file(dir.path / "README.zh.md", "# 说明\n\n残差流，不是剩余流。\n");
    Run r = run(check_tree(dir.path));
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(contains(r.output, "lessons/zh/07-demo.md:22: uses \"剩余流\""));
    CHECK(contains(r.output, "README.zh.md:3: uses \"剩余流\""));
  }
}

TEST_CASE("end to end: quoted program output is compared with a real run, whole or by section", "[lessons]") {
  ScratchDir dir;
  write_demo_tree(dir.path);
  fs::path bin = dir.path / "build";
  // A stand-in for a lesson program: prints two sections and the thread count it was given.
  fs::path program = bin / "lessons" / "lesson_07";
  write_file(program,
             "#!/bin/sh\n"
             "echo \"threads $OMP_NUM_THREADS\"\n"
             "echo '[alpha]'\necho 'one   '\necho '[1, 2]'\necho 'two'\necho '[beta]'\necho 'three'\n"
             "exit ${DEMO_STATUS:-0}\n");
  fs::permissions(program, fs::perms::owner_all);
  std::string good = kDemoLesson +
                     "<!-- output: lesson_07#alpha -->\n```text\none\n[1, 2]\ntwo\n```\n"
                     "<!-- output: lesson_07 -->\n```text\nthreads 1\n[alpha]\none\n[1, 2]\ntwo\n[beta]\nthree\n```\n";
  fs::path md = dir.path / "lessons" / "07-demo.md";
  std::string args = "--root '" + dir.path.string() + "' --bin '" + bin.string() + "'";

  SECTION("matching output passes; outputs run at one thread") {
    write_file(md, good);
    Run r = run(args);
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(contains(r.output, "2 quotes, 2 outputs checked"));
  }
  SECTION("a different line fails, and --fix rewrites it") {
    write_file(md, kDemoLesson + "<!-- output: lesson_07#beta -->\n```text\nfour\n```\n");
    Run r = run(args);
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(contains(r.output, "output lesson_07#beta differs from the program's output"));
    CHECK(contains(r.output, "program: \"three\""));
    CHECK(run(args + " --fix").status == 0);
    CHECK(read_file(md) == kDemoLesson + "<!-- output: lesson_07#beta -->\n```text\nthree\n```\n");
  }
  SECTION("a missing section fails") {
    write_file(md, kDemoLesson + "<!-- output: lesson_07#gamma -->\n```text\n```\n");
    Run r = run(args);
    CHECK(r.status == 1);
    CHECK(contains(r.output, "lesson_07 printed no line [gamma]"));
  }
  SECTION("a program that exits non-zero fails") {
    write_file(md, good);
    setenv("DEMO_STATUS", "3", 1);
    Run r = run(args);
    unsetenv("DEMO_STATUS");
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(contains(r.output, "lesson_07 failed (exit status 3)"));
  }
  SECTION("--any-digits lets digits differ, not words, and still runs the program") {
    write_file(md, kDemoLesson +
                       "<!-- output: lesson_07 -->\n```text\nthreads 7\n[alpha]\none\n[12, 345]\ntwo\n"
                       "[beta]\nthree\n```\n");
    CHECK(run(args).status == 1);
    Run r = run(args + " --any-digits");
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(contains(r.output, "(digits not compared: --any-digits)"));
    write_file(md, kDemoLesson + "<!-- output: lesson_07#beta -->\n```text\nthree point 5\n```\n");
    CHECK(run(args + " --any-digits").status == 1);
    setenv("DEMO_STATUS", "3", 1);
    write_file(md, good);
    r = run(args + " --any-digits");
    unsetenv("DEMO_STATUS");
    CHECK(r.status == 1);
    CHECK(contains(r.output, "lesson_07 failed (exit status 3)"));
    CHECK(run(args + " --any-digits --fix").status == 2);
  }
  SECTION("--no-outputs skips them") {
    write_file(md, kDemoLesson + "<!-- output: lesson_07 -->\n```text\nanything\n```\n");
    CHECK(run(args + " --no-outputs").status == 0);
  }
}

TEST_CASE("usage errors exit with status 2; --help states the formats", "[lessons]") {
  CHECK(run("").status == 2);
  CHECK(run("--root").status == 2);
  CHECK(run("--root /nonexistent/foundry --no-outputs").status == 2);
  CHECK(run("--bogus").status == 2);
  Run help = run("--help");
  CHECK(help.status == 0);
  CHECK(contains(help.output, "| 术语 | English | 不要用 |"));
  CHECK(contains(help.output, "lessons/zh/.twins-required"));
}

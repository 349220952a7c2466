// Tests of tools/lesson_check, the checker that keeps lessons and code in step.
//
// The first test runs the checker on the real lessons (quotes and program outputs). The others
// copy a lesson and the files it quotes into a scratch tree, break it on purpose, and assert
// that the checker fails with the message that names the problem: a checker that cannot fail
// proves nothing.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

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

// Copies lessons/<md>, its program and every file it quotes into `root`; returns the quoted
// "path#anchor" targets in order.
std::vector<std::string> copy_lesson(const std::string& md, const std::string& program, const fs::path& root) {
  write_file(root / "lessons" / md, read_file(kSource / "lessons" / md));
  write_file(root / "lessons" / program, read_file(kSource / "lessons" / program));
  // The test folders, empty: a lesson names its test binary test_<area>, and the checker looks
  // for tests/<area>/.
  for (const auto& entry : fs::directory_iterator(kSource / "tests")) {
    if (entry.is_directory()) fs::create_directories(root / "tests" / entry.path().filename());
  }
  std::vector<std::string> quotes;
  std::string text = read_file(kSource / "lessons" / md);
  std::regex marker(R"(<!-- quote: ([^#\s]+)#(\S+) -->)");
  std::set<std::string> copied;
  for (std::sregex_iterator it(text.begin(), text.end(), marker), end; it != end; ++it) {
    std::string file = (*it)[1];
    quotes.push_back(file + "#" + std::string((*it)[2]));
    if (copied.insert(file).second) write_file(root / file, read_file(kSource / file));
  }
  return quotes;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// What every lesson ends with (the checker insists), for the lessons these tests make up.
const std::string kLessonEnd =
    "\n## The tests that guard this code\n`test_lessons`\n\n## Exercises\n1. One.\n\n"
    "## What we skipped\n- Nothing.\n";

std::string check_tree(const fs::path& root, const std::string& extra = "") {
  return "--root '" + root.string() + "' --no-outputs " + extra;
}

}  // namespace

TEST_CASE("the lessons agree with the code and with their programs' output", "[lessons]") {
  REQUIRE(fs::exists(kChecker));  // built by the default target, like the lesson programs
  Run r = run("--root '" + kSource.string() + "' --bin '" + kBinary.string() + "'");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(contains(r.output, "lesson_check: OK"));
  // The summary counts what was checked; a checker that found nothing to check is suspect.
  std::smatch m;
  REQUIRE(std::regex_search(r.output, m, std::regex(R"((\d+) lessons, (\d+) quotes, (\d+) outputs)")));
  CHECK(std::stoi(m[1]) >= 4);
  CHECK(std::stoi(m[2]) >= 10);
  CHECK(std::stoi(m[3]) >= 4);
}

TEST_CASE("changing one character of quoted code fails the check; --fix rewrites the quote", "[lessons]") {
  ScratchDir dir;
  std::vector<std::string> quotes = copy_lesson("02-autograd-tape.md", "02_autograd_tape.cpp", dir.path);
  REQUIRE(!quotes.empty());

  Run clean = run(check_tree(dir.path));
  INFO(clean.output);
  REQUIRE(clean.status == 0);  // the copy on its own is consistent

  // Find an engine file the lesson quotes and change one character on the first line of the anchor.
  std::string target;
  for (const std::string& q : quotes) {
    if (q.rfind("engine/", 0) == 0) {
      target = q;
      break;
    }
  }
  REQUIRE(!target.empty());
  std::string file = target.substr(0, target.find('#'));
  std::string name = target.substr(target.find('#') + 1);
  std::string text = read_file(dir.path / file);
  size_t start = text.find("ANCHOR: " + name + "\n");
  REQUIRE(start != std::string::npos);
  size_t line = text.find('\n', start) + 1;  // first line inside the anchor
  size_t pos = text.find_first_not_of(" \t", line);
  REQUIRE(pos != std::string::npos);
  text[pos] = text[pos] == 'x' ? 'y' : 'x';
  write_file(dir.path / file, text);

  Run broken = run(check_tree(dir.path));
  INFO(broken.output);
  CHECK(broken.status == 1);
  CHECK(contains(broken.output, "lessons/02-autograd-tape.md:"));
  CHECK(contains(broken.output, "quote " + target + " differs from the source"));
  CHECK(contains(broken.output, "first difference at line 1 of the block"));
  CHECK(contains(broken.output, "FAILED"));

  Run fixed = run(check_tree(dir.path, "--fix"));
  INFO(fixed.output);
  CHECK(fixed.status == 0);
  CHECK(contains(fixed.output, "fixed 1 block(s) in lessons/02-autograd-tape.md"));
  Run again = run(check_tree(dir.path));
  CHECK(again.status == 0);
  std::string changed_line = text.substr(pos, text.find('\n', pos) - pos);
  CHECK(contains(read_file(dir.path / "lessons" / "02-autograd-tape.md"), changed_line));
}

TEST_CASE("a duplicate anchor fails the check", "[lessons]") {
  ScratchDir dir;
  copy_lesson("02-autograd-tape.md", "02_autograd_tape.cpp", dir.path);
  fs::path tape = dir.path / "engine" / "tape.cpp";
  std::string text = read_file(tape);
  REQUIRE(contains(text, "ANCHOR: tape_backward"));
  write_file(tape, text + "// ANCHOR: tape_backward\nint again = 0;\n// ANCHOR_END: tape_backward\n");
  Run r = run(check_tree(dir.path));
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(contains(r.output, "engine/tape.cpp:"));
  CHECK(contains(r.output, "duplicate anchor 'tape_backward'"));
}

TEST_CASE("a quote of a missing anchor or file fails the check", "[lessons]") {
  ScratchDir dir;
  copy_lesson("02-autograd-tape.md", "02_autograd_tape.cpp", dir.path);
  fs::path md = dir.path / "lessons" / "02-autograd-tape.md";
  write_file(md, read_file(md) +
                     "\n<!-- quote: engine/tape.cpp#no_such_anchor -->\n```cpp\n```\n"
                     "\n<!-- quote: engine/no_such_file.cpp#x -->\n```cpp\n```\n"
                     "\n<!-- quote: engine/tape.cpp#tape_backward -->\nnot a fence\n");
  Run r = run(check_tree(dir.path));
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(contains(r.output, "missing anchor 'no_such_anchor' in engine/tape.cpp"));
  CHECK(contains(r.output, "missing file engine/no_such_file.cpp"));
  CHECK(contains(r.output, "is not followed immediately by a fenced block"));
}

TEST_CASE("unclosed, unopened, unnamed and empty anchors fail the check", "[lessons]") {
  ScratchDir dir;
  copy_lesson("02-autograd-tape.md", "02_autograd_tape.cpp", dir.path);
  // Shell comments use `#`; C++ uses `//`. Both leaders are recognized.
  write_file(dir.path / "scripts" / "demo.sh", "# ANCHOR: never_closed\necho hi\n# ANCHOR_END: never_opened\n");
  write_file(dir.path / "tools" / "demo.cpp",
             "// ANCHOR: nothing_inside\n\n// ANCHOR_END: nothing_inside\n// ANCHOR:\nint x;\n");
  Run r = run(check_tree(dir.path));
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(contains(r.output, "scripts/demo.sh:1: anchor 'never_closed' has no ANCHOR_END"));
  CHECK(contains(r.output, "scripts/demo.sh:3: ANCHOR_END 'never_opened' has no matching ANCHOR"));
  CHECK(contains(r.output, "tools/demo.cpp:1: anchor 'nothing_inside' is empty"));
  CHECK(contains(r.output, "tools/demo.cpp:4: anchor marker without a valid name"));
}

TEST_CASE("nested anchors: inner markers are dropped and indentation is removed", "[lessons]") {
  ScratchDir dir;
  write_file(dir.path / "engine" / "demo.cpp",
             "void f() {\n"
             "  // ANCHOR: outer\n"
             "  int a = 1;\n"
             "  // ANCHOR: inner\n"
             "    int b = 2;\n"
             "  // ANCHOR_END: inner\n"
             "\n"
             "  // ANCHOR_END: outer\n"
             "}\n");
  write_file(dir.path / "lessons" / "07_demo.cpp", "int main() { return 0; }\n");
  fs::create_directories(dir.path / "tests" / "lessons");
  write_file(dir.path / "lessons" / "07-demo.md",
             "# demo\n<!-- quote: engine/demo.cpp#outer -->\n```cpp\nint a = 1;\n  int b = 2;\n```\n"
             "<!-- quote: engine/demo.cpp#inner -->\n```cpp\nint b = 2;\n```\n" + kLessonEnd);
  Run r = run(check_tree(dir.path));
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(contains(r.output, "1 lessons, 2 quotes"));
}

TEST_CASE("quoted program output is compared with a real run, whole or by section", "[lessons]") {
  ScratchDir dir;
  fs::path bin = dir.path / "build";
  write_file(dir.path / "lessons" / "05_demo.cpp", "int main() { return 0; }\n");
  fs::create_directories(dir.path / "tests" / "lessons");
  // A stand-in for a lesson program: prints two sections and the thread count it was given.
  fs::path program = bin / "lessons" / "lesson_05";
  write_file(program,
             "#!/bin/sh\n"
             "echo \"threads $OMP_NUM_THREADS\"\n"
             "echo '[alpha]'\necho 'one   '\necho '[1, 2]'\necho 'two'\necho '[beta]'\necho 'three'\n"
             "exit ${DEMO_STATUS:-0}\n");
  fs::permissions(program, fs::perms::owner_all);
  std::string good =
      "<!-- output: lesson_05#alpha -->\n```text\none\n[1, 2]\ntwo\n```\n"
      "<!-- output: lesson_05 -->\n```text\nthreads 1\n[alpha]\none\n[1, 2]\ntwo\n[beta]\nthree\n```\n" +
      kLessonEnd;
  fs::path md = dir.path / "lessons" / "05-demo.md";
  std::string args = "--root '" + dir.path.string() + "' --bin '" + bin.string() + "'";

  SECTION("matching output passes; outputs run at one thread") {
    write_file(md, good);
    Run r = run(args);
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(contains(r.output, "1 lessons, 0 quotes, 2 outputs checked"));
  }
  SECTION("a different line fails, and --fix rewrites it") {
    write_file(md, "<!-- output: lesson_05#beta -->\n```text\nfour\n```\n" + kLessonEnd);
    Run r = run(args);
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(contains(r.output, "lessons/05-demo.md:1: output lesson_05#beta differs from the program's output"));
    CHECK(contains(r.output, "program: \"three\""));
    CHECK(run(args + " --fix").status == 0);
    CHECK(read_file(md) == "<!-- output: lesson_05#beta -->\n```text\nthree\n```\n" + kLessonEnd);
  }
  SECTION("a missing section fails") {
    write_file(md, "<!-- output: lesson_05#gamma -->\n```text\n```\n" + kLessonEnd);
    Run r = run(args);
    CHECK(r.status == 1);
    CHECK(contains(r.output, "lesson_05 printed no line [gamma]"));
  }
  SECTION("a program that exits non-zero fails") {
    write_file(md, good);
    setenv("DEMO_STATUS", "3", 1);
    Run r = run(args);
    unsetenv("DEMO_STATUS");
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(contains(r.output, "lesson_05 failed (exit status 3)"));
  }
  SECTION("--no-outputs skips them") {
    write_file(md, "<!-- output: lesson_05 -->\n```text\nanything\n```\n" + kLessonEnd);
    Run r = run(args + " --no-outputs");
    CHECK(r.status == 0);
  }
}

TEST_CASE("a lesson without its program fails the check", "[lessons]") {
  ScratchDir dir;
  write_file(dir.path / "lessons" / "09-orphan.md", "# a lesson with no program\n");
  write_file(dir.path / "lessons" / "README.md", "not a lesson: no program needed\n");
  Run r = run(check_tree(dir.path));
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(contains(r.output, "lessons/09-orphan.md: no lesson program lessons/09_*.cpp"));
  CHECK(contains(r.output, "1 lessons"));
}

TEST_CASE("a lesson must name a real test binary and end with exercises and what it skipped", "[lessons]") {
  ScratchDir dir;
  fs::create_directories(dir.path / "tests" / "lessons");
  write_file(dir.path / "lessons" / "06_demo.cpp", "int main() { return 0; }\n");
  fs::path md = dir.path / "lessons" / "06-demo.md";
  write_file(md, "# demo\n" + kLessonEnd);
  CHECK(run(check_tree(dir.path)).status == 0);

  write_file(md, "# demo\nGuarded by `test_nowhere`.\n## Exercises\n");
  Run r = run(check_tree(dir.path));
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(contains(r.output, "lessons/06-demo.md: names no test binary test_<area>"));
  CHECK(contains(r.output, "lessons/06-demo.md: has no \"## What we skipped\" section"));
  CHECK(!contains(r.output, "has no \"## Exercises\""));
}

TEST_CASE("usage errors exit with status 2", "[lessons]") {
  CHECK(run("").status == 2);
  CHECK(run("--root").status == 2);
  CHECK(run("--root /nonexistent/foundry --no-outputs").status == 2);
  CHECK(run("--bogus").status == 2);
}

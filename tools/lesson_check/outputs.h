// Program outputs: a lesson quotes what its program prints, whole or by section. A section is
// the lines after a printed line `[name]` up to the next `[name]` line; a name is letters,
// digits, `_` and `-`, so a printed vector such as `[1, 2]` does not end a section.
#pragma once

#include <string>

#include "text.h"

namespace lesson_check {

bool is_section_header(const std::string& line);

// `line` with every run of digits replaced by one `#`: "loss 3.2874 at 50" -> "loss #.# at #".
// What --any-digits compares.
std::string mask_digits(const std::string& line);

// The lines of `section` in `out`; false when the program printed no line `[section]`.
bool extract_section(const Lines& out, const std::string& section, Lines& lines);

struct RunResult {
  bool ok = false;
  std::string error;  // why the run failed
  Lines lines;        // stdout, trailing whitespace removed
};

// Runs `exe` at one thread (OMP_NUM_THREADS=1) and collects its stdout; `name` labels errors.
// A non-zero exit status is a failure: a lesson program exits non-zero when its check fails.
RunResult run_program(const fs::path& exe, const std::string& name);

}  // namespace lesson_check

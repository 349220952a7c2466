#include "outputs.h"

#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace lesson_check {

bool is_section_header(const std::string& line) {
  if (line.size() < 3 || line.front() != '[' || line.back() != ']') return false;
  return std::all_of(line.begin() + 1, line.end() - 1,
                     [](char c) { return std::isalnum((unsigned char)c) || c == '_' || c == '-'; });
}

std::string mask_digits(const std::string& line) {
  std::string out;
  for (size_t i = 0; i < line.size(); i++) {
    bool digit = std::isdigit((unsigned char)line[i]);
    if (!digit) {
      out += line[i];
    } else if (i == 0 || !std::isdigit((unsigned char)line[i - 1])) {
      out += '#';
    }
  }
  return out;
}

bool extract_section(const Lines& out, const std::string& section, Lines& lines) {
  auto header = std::find(out.begin(), out.end(), "[" + section + "]");
  if (header == out.end()) return false;
  auto end = std::find_if(header + 1, out.end(), is_section_header);
  lines.assign(header + 1, end);
  return true;
}

RunResult run_program(const fs::path& exe, const std::string& name) {
  RunResult result;
  if (!fs::exists(exe)) {
    result.error = "program " + exe.string() + " not found; build the lesson programs first";
    return result;
  }
  if (exe.string().find('\'') != std::string::npos) {
    result.error = "cannot run " + exe.string() + ": a quote in the path";
    return result;
  }
  // subtle: outputs are compared at one thread; with more, a parallel reduction may round
  // differently and timings of course differ. The variable is inherited by the child.
  setenv("OMP_NUM_THREADS", "1", 1);
  std::string command = "'" + exe.string() + "'";
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
    result.error = name + " failed (exit status " +
                   (status != -1 && WIFEXITED(status) ? std::to_string(WEXITSTATUS(status)) : "abnormal") +
                   "); a lesson program exits non-zero when its own check fails";
    return result;
  }
  for (const std::string& line : split_lines(text)) result.lines.push_back(rstrip(line));
  result.ok = true;
  return result;
}

}  // namespace lesson_check

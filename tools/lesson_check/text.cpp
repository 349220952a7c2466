#include "text.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "common/file_io.h"

namespace lesson_check {

std::string rstrip(const std::string& s) {
  size_t end = s.find_last_not_of(" \t\r");
  return end == std::string::npos ? "" : s.substr(0, end + 1);
}

std::string trim(const std::string& s) {
  size_t begin = s.find_first_not_of(" \t\r");
  return begin == std::string::npos ? "" : rstrip(s.substr(begin));
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_blank(const std::string& s) { return trim(s).empty(); }

Lines split_lines(const std::string& text) {
  Lines lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

bool read_lines(const fs::path& path, Lines& lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  lines = split_lines(text.str());
  return true;
}

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

std::vector<bool> fenced_lines(const Lines& md) {
  std::vector<bool> fenced(md.size(), false);
  std::string fence;  // the open fence ("```", "````", "~~~"), or "" outside a block
  for (size_t i = 0; i < md.size(); i++) {
    std::string t = trim(md[i]);
    if (fence.empty()) {
      if (starts_with(t, "```") || starts_with(t, "~~~")) {
        fence = t.substr(0, t.find_first_not_of(t[0]));
        fenced[i] = true;
      }
    } else {
      fenced[i] = true;
      if (starts_with(t, fence) && t.find_first_not_of(fence[0]) == std::string::npos) fence.clear();
    }
  }
  return fenced;
}

std::string without_code_spans(const std::string& line) {
  std::string out = line;
  size_t at = 0;
  while ((at = out.find('`', at)) != std::string::npos) {
    size_t ticks = out.find_first_not_of('`', at) - at;
    if (out.find_first_not_of('`', at) == std::string::npos) break;
    size_t close = out.find(std::string(ticks, '`'), at + ticks);
    if (close == std::string::npos) break;
    for (size_t i = at; i < close + ticks; i++) out[i] = ' ';
    at = close + ticks;
  }
  return out;
}

}  // namespace lesson_check

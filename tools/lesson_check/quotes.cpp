#include "quotes.h"

#include <algorithm>
#include <sstream>

namespace lesson_check {

std::string marker_target(const std::string& line, const std::string& kind) {
  std::string s = rstrip(line);
  if (!starts_with(s, "<!--") || s.size() < 7 || !ends_with(s, "-->")) return "";
  s = trim(s.substr(4, s.size() - 7));
  if (!starts_with(s, kind + ":")) return "";
  return trim(s.substr(kind.size() + 1));
}

std::vector<MarkdownMarker> find_markers(const Lines& md) {
  std::vector<MarkdownMarker> markers;
  for (int i = 0; i < static_cast<int>(md.size()); i++) {
    for (const char* kind : {"quote", "output"}) {
      std::string target = marker_target(md[i], kind);
      if (!target.empty()) markers.push_back(MarkdownMarker{i, kind, target});
    }
  }
  return markers;
}

bool find_block(const Lines& md, int marker, Block& block, std::string& error) {
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

std::string first_difference(const Lines& want, const Lines& got, const std::string& want_label) {
  size_t n = std::max(want.size(), got.size());
  for (size_t i = 0; i < n; i++) {
    bool has_want = i < want.size(), has_got = i < got.size();
    if (has_want && has_got && rstrip(want[i]) == rstrip(got[i])) continue;
    std::ostringstream out;
    out << "first difference at line " << i + 1 << " of the block:\n";
    out << "    " << want_label << ": "
        << (has_want ? "\"" + want[i] + "\"" : "(ends after line " + std::to_string(want.size()) + ")") << "\n";
    out << "    lesson: " << (has_got ? "\"" + got[i] + "\"" : "(ends after line " + std::to_string(got.size()) + ")");
    return out.str();
  }
  return "";
}

void replace_blocks(Lines& md, const std::vector<std::pair<Block, Lines>>& rewrites) {
  // From the bottom up, so earlier line numbers stay valid.
  for (auto it = rewrites.rbegin(); it != rewrites.rend(); ++it) {
    const Block& b = it->first;
    md.erase(md.begin() + b.first, md.begin() + b.close);
    md.insert(md.begin() + b.first, it->second.begin(), it->second.end());
  }
}

}  // namespace lesson_check

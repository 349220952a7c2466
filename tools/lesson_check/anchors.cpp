#include "anchors.h"

#include <algorithm>

namespace lesson_check {

// Only whole lines count, so code that merely mentions the marker text inside a string is not
// mistaken for one.
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

Lines unquoted_anchors(const std::map<std::string, SourceFile>& sources, const std::set<std::string>& quoted) {
  Lines errors;
  for (const auto& [path, file] : sources) {
    for (const auto& [name, anchor] : file.anchors) {
      if (quoted.count(path + "#" + name)) continue;
      errors.push_back(path + ":" + std::to_string(anchor.start + 1) + ": anchor '" + name +
                       "' is quoted by no lesson or doc (quote it where it is taught, or drop the marker)");
    }
  }
  return errors;
}

}  // namespace lesson_check

#include "rules.h"

#include <algorithm>

namespace lesson_check {

namespace {

// The cells of a markdown table row "| a | b | c |", trimmed; empty when the line is no row.
std::vector<std::string> table_cells(const std::string& line) {
  std::string t = trim(line);
  std::vector<std::string> cells;
  if (!starts_with(t, "|") || !ends_with(t, "|") || t.size() < 2) return cells;
  size_t at = 1;
  while (at < t.size()) {
    size_t bar = t.find('|', at);
    if (bar == std::string::npos) break;
    cells.push_back(trim(t.substr(at, bar - at)));
    at = bar + 1;
  }
  return cells;
}

bool is_separator_row(const std::vector<std::string>& cells) {
  return !cells.empty() && std::all_of(cells.begin(), cells.end(), [](const std::string& c) {
    return !c.empty() && c.find_first_not_of("-: ") == std::string::npos;
  });
}

// "N" in text at `at` followed by `unit`; -1 when the text there is not a number.
int number_before(const std::string& text, size_t at, const std::string& unit) {
  size_t end = at;
  while (end < text.size() && std::isdigit((unsigned char)text[end])) end++;
  if (end == at || text.compare(end, unit.size(), unit) != 0) return -1;
  return std::stoi(text.substr(at, end - at));
}

}  // namespace

bool is_lesson_name(const std::string& name) {
  return name.size() > 6 && std::isdigit((unsigned char)name[0]) && std::isdigit((unsigned char)name[1]) &&
         name[2] == '-' && fs::path(name).extension() == ".md";
}

Lines check_lesson_shape(const std::string& rel, const Lines& md, bool zh,
                         const std::function<bool(const std::string&)>& has_test_area) {
  const std::string exercises_heading = zh ? "## 练习" : "## Exercises";
  const std::string skipped_heading = zh ? "## 我们跳过了什么" : "## What we skipped";
  bool exercises = false, skipped = false, names_test = false;
  for (const std::string& line : md) {
    exercises = exercises || starts_with(line, exercises_heading);
    skipped = skipped || starts_with(line, skipped_heading);
    for (size_t at = line.find("test_"); at != std::string::npos && !names_test; at = line.find("test_", at + 1)) {
      if (at > 0 && (std::isalnum((unsigned char)line[at - 1]) || line[at - 1] == '_')) continue;
      size_t end = at + 5;
      while (end < line.size() && (std::isalnum((unsigned char)line[end]) || line[end] == '_')) end++;
      std::string area = line.substr(at + 5, end - at - 5);
      names_test = !area.empty() && has_test_area(area);
    }
  }
  Lines errors;
  std::string where = rel + ": ";
  if (!names_test) {
    errors.push_back(where +
                     "names no test binary test_<area> with a folder tests/<area>/ (every lesson "
                     "names the test that guards its code)");
  }
  if (!exercises) errors.push_back(where + "has no \"" + exercises_heading + "\" section");
  if (!skipped) errors.push_back(where + "has no \"" + skipped_heading + "\" section");
  return errors;
}

int header_minutes(const Lines& md) {
  const std::string prefix = "Time: about ";
  for (size_t i = 0; i < md.size() && i < 8; i++) {
    if (!starts_with(md[i], prefix)) continue;
    return number_before(md[i], prefix.size(), " minutes");
  }
  return -1;
}

std::map<std::string, int> readme_minutes(const Lines& readme) {
  std::map<std::string, int> times;
  for (const std::string& line : readme) {
    std::vector<std::string> cells = table_cells(line);
    if (cells.size() < 2) continue;
    size_t open = cells[0].find("](");
    if (open == std::string::npos) continue;
    size_t close = cells[0].find(')', open);
    std::string file = fs::path(cells[0].substr(open + 2, close - open - 2)).filename().string();
    if (!is_lesson_name(file)) continue;
    times[file] = number_before(cells.back(), 0, " min");
  }
  return times;
}

Lines check_times(const std::map<std::string, Lines>& lessons, const Lines& readme) {
  Lines errors;
  std::map<std::string, int> table = readme_minutes(readme);
  for (const auto& [name, md] : lessons) {
    std::string where = "lessons/" + name + ": ";
    int header = header_minutes(md);
    auto row = table.find(name);
    if (header < 0) {
      errors.push_back(where + "has no header line \"Time: about N minutes\" among its first lines");
    }
    if (row == table.end()) {
      errors.push_back(where + "has no row in the tables of lessons/README.md");
    } else if (row->second < 0) {
      errors.push_back("lessons/README.md: the row of " + name + " does not end with a time \"N min\"");
    } else if (header >= 0 && header != row->second) {
      errors.push_back(where + "says \"Time: about " + std::to_string(header) +
                       " minutes\" but lessons/README.md says " + std::to_string(row->second) + " min");
    }
  }
  for (const auto& [name, minutes] : table) {
    if (!lessons.count(name)) errors.push_back("lessons/README.md: lists " + name + ", which is no lesson");
  }
  return errors;
}

Lines check_twin(const std::string& en_rel, const Lines& en, const std::string& zh_rel, const Lines* zh) {
  if (!zh) return {en_rel + ": has no Chinese twin " + zh_rel + " (every lesson has one)"};
  std::vector<MarkdownMarker> a = find_markers(en), b = find_markers(*zh);
  size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; i++) {
    if (i < a.size() && i < b.size() && a[i].kind == b[i].kind && a[i].target == b[i].target) continue;
    std::string want =
        i < a.size() ? a[i].kind + " " + a[i].target + " (line " + std::to_string(a[i].line + 1) + ")" : "nothing more";
    std::string got =
        i < b.size() ? b[i].kind + " " + b[i].target + " (line " + std::to_string(b[i].line + 1) + ")" : "nothing more";
    return {zh_rel + ": its quotes and outputs differ from its twin " + en_rel + " at marker " + std::to_string(i + 1) +
            ": the English lesson has " + want + ", the Chinese one " + got +
            " (the twins quote the same anchors and outputs in the same order)"};
  }
  return {};
}

std::vector<GlossaryEntry> parse_glossary(const std::string& rel, const Lines& md, Lines& errors) {
  std::vector<GlossaryEntry> entries;
  bool in_table = false;
  std::vector<bool> fenced = fenced_lines(md);
  for (size_t i = 0; i < md.size(); i++) {
    std::vector<std::string> cells = fenced[i] ? std::vector<std::string>{} : table_cells(md[i]);
    if (cells.empty()) {
      in_table = false;
      continue;
    }
    if (cells.size() == 3 && cells[0] == "术语" && cells[1] == "English" && cells[2] == "不要用") {
      in_table = true;
      continue;
    }
    if (!in_table || is_separator_row(cells)) continue;
    std::string where = rel + ":" + std::to_string(i + 1) + ": ";
    if (cells.size() != 3 || cells[0].empty()) {
      errors.push_back(where + "a row of the table \"术语 | English | 不要用\" needs three cells and a term");
      continue;
    }
    GlossaryEntry entry{cells[0], cells[1], {}};
    const std::string sep = "、";
    std::string rest = cells[2];
    while (!rest.empty()) {
      size_t at = rest.find(sep);
      std::string variant = trim(rest.substr(0, at));
      rest = at == std::string::npos ? "" : rest.substr(at + sep.size());
      if (variant.empty()) continue;
      if (variant == entry.term) {
        errors.push_back(where + "lists the term " + variant + " among its own wrong variants");
        continue;
      }
      entry.wrong.push_back(variant);
    }
    entries.push_back(entry);
  }
  return entries;
}

Lines check_glossary(const std::string& rel, const Lines& md, const std::vector<GlossaryEntry>& glossary) {
  Lines errors;
  std::vector<bool> fenced = fenced_lines(md);
  for (size_t i = 0; i < md.size(); i++) {
    if (fenced[i]) continue;
    std::string prose = without_code_spans(md[i]);
    // Bytes covered by a preferred term: a wrong variant inside one (say 注意力 inside 自注意力)
    // is the right word, not a wrong one.
    std::vector<bool> preferred(prose.size(), false);
    for (const GlossaryEntry& e : glossary) {
      for (size_t at = prose.find(e.term); at != std::string::npos; at = prose.find(e.term, at + 1)) {
        std::fill(preferred.begin() + at, preferred.begin() + at + e.term.size(), true);
      }
    }
    for (const GlossaryEntry& e : glossary) {
      for (const std::string& wrong : e.wrong) {
        for (size_t at = prose.find(wrong); at != std::string::npos; at = prose.find(wrong, at + 1)) {
          if (std::all_of(preferred.begin() + at, preferred.begin() + at + wrong.size(), [](bool b) { return b; })) {
            continue;
          }
          errors.push_back(rel + ":" + std::to_string(i + 1) + ": uses \"" + wrong + "\"; the glossary's term for " +
                           e.english + " is \"" + e.term + "\" (lessons/zh/GLOSSARY.md)");
          break;
        }
      }
    }
  }
  return errors;
}

}  // namespace lesson_check

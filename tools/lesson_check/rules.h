// The house rules of the lessons, each a pure function of the texts it compares.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "quotes.h"
#include "text.h"

namespace lesson_check {

// Whether a file name is a lesson, NN-slug.md.
bool is_lesson_name(const std::string& name);

// Every lesson names a test binary that guards its code (a `test_<area>` whose folder
// tests/<area>/ exists: has_test_area(area)) and ends with its exercises and what it skipped.
// The section headings are "## Exercises" and "## What we skipped" in English and
// "## 练习" and "## 我们跳过了什么" in a Chinese lesson (zh).
Lines check_lesson_shape(const std::string& rel, const Lines& md, bool zh,
                         const std::function<bool(const std::string&)>& has_test_area);

// The header time of a lesson, from its line "Time: about N minutes" among its first lines;
// -1 when it has none.
int header_minutes(const Lines& md);

// The times of lessons/README.md's tables: file name (NN-slug.md, from the row's link) ->
// minutes (the row's last cell, "N min").
std::map<std::string, int> readme_minutes(const Lines& readme);

// Each lesson's header time equals its row of the README; every lesson has both.
// lessons: file name -> the lesson's lines.
Lines check_times(const std::map<std::string, Lines>& lessons, const Lines& readme);

// The Chinese twin lessons/zh/NN-slug.md of an English lesson quotes the same anchors and
// outputs in the same order. zh is null when the twin does not exist.
Lines check_twin(const std::string& en_rel, const Lines& en, const std::string& zh_rel, const Lines* zh);

// The glossary, lessons/zh/GLOSSARY.md. Wrong variants are listed in a markdown table whose
// header row is exactly
//
//   | 术语 | English | 不要用 |
//
// one row per preferred term: the Chinese term used throughout, the English original, and the
// known wrong variants separated by "、" (the cell may be empty):
//
//   | 残差流 | residual stream | 残余流、剩余流 |
//
// A Chinese text (lessons/zh/*.md, README.zh.md) must not use a wrong variant in its prose (fenced code and
// inline code are not prose), except inside an occurrence of a preferred term.
struct GlossaryEntry {
  std::string term;
  std::string english;
  std::vector<std::string> wrong;
};

// Parses the glossary's table(s); problems (a row with the wrong number of cells, a wrong
// variant equal to its own term) go to `errors`, labelled with rel.
std::vector<GlossaryEntry> parse_glossary(const std::string& rel, const Lines& md, Lines& errors);

Lines check_glossary(const std::string& rel, const Lines& md, const std::vector<GlossaryEntry>& glossary);

}  // namespace lesson_check

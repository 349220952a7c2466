// Anchors: the marked regions of source files that lessons may quote.
//
//   // ANCHOR: name        (or `# ANCHOR: name` in CMake, shell and Python files)
//   ...
//   // ANCHOR_END: name
//
// Anchors may nest. An ANCHOR without its END, an END without its ANCHOR, a name used twice in
// one file, a marker without a name and an anchor with nothing inside are errors; so is an
// anchor that no lesson (or doc) quotes, since a marker nobody reads only misleads.
#pragma once

#include <map>
#include <set>
#include <string>

#include "text.h"

namespace lesson_check {

struct Anchor {
  int start = 0;  // 0-based line of the ANCHOR marker
  int end = -1;   // 0-based line of the ANCHOR_END marker; -1 while open
};

struct SourceFile {
  Lines lines;
  std::map<std::string, Anchor> anchors;
  Lines problems;  // structural errors (unclosed, duplicate, ...), each "label:line: message"
};

enum class Marker { none, start, end };

// Recognizes a marker line; sets name to what follows the colon.
Marker parse_marker(const std::string& line, std::string& name);

// The text a quote must hold: the lines inside the anchor, nested markers removed, common
// indentation removed, trailing blank lines dropped.
Lines anchor_text(const SourceFile& file, const Anchor& anchor);

// Parses the markers of one file; label (the path relative to the root) prefixes problems.
SourceFile parse_source(const Lines& lines, const std::string& label);

// One error per anchor of `sources` (path -> parsed file) whose "path#name" is not in `quoted`.
Lines unquoted_anchors(const std::map<std::string, SourceFile>& sources, const std::set<std::string>& quoted);

}  // namespace lesson_check

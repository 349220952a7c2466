// Links: every relative link and every repository path in the prose must lead somewhere.
//
// Checked in lessons/*.md, lessons/zh/*.md, README.md, README.zh.md, docs/*.md,
// examples/README.md and configs/README.md:
// - markdown links [text](target) and reference definitions `[name]: target`: a relative target
//   names a file or folder relative to the markdown file; web addresses (scheme://, mailto:) are
//   not followed. A `#fragment` must be the anchor of a heading of the target markdown file (or
//   of the file itself for a bare `#fragment`), made the way GitHub makes it (see heading_slug).
// - code paths: an inline code span that is a path with a slash and no spaces, whose first part
//   is a folder at the project's root (`model/rmsnorm.cpp`, `tests/engine/`,
//   `engine/matmul.cpp#matmul_forward`), names a file or folder relative to the root. Paths
//   under build/ and runs/ (made by the build and by runs) and spans with placeholders (`NN`,
//   `<...>`, `*`, `...`) are not checked.
// Fenced code blocks are skipped: they show commands and output, not links.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "text.h"

namespace lesson_check {

// The anchor GitHub gives a heading: lower case, spaces to `-`, punctuation (ASCII and the
// common Unicode punctuation blocks, CJK punctuation included) removed; letters of any script,
// digits, `-` and `_` kept.
std::string heading_slug(const std::string& heading);

// The anchors of every heading of a markdown file; a repeated slug gets -1, -2, ... as on GitHub.
std::set<std::string> heading_anchors(const Lines& md);

struct LinkRef {
  int line = 0;        // 0-based
  std::string target;  // as written (fragment included)
  bool code_path = false;
};

// The links and code paths of a markdown file. root_dirs: the folders at the project's root,
// which tell a code path from other code.
std::vector<LinkRef> find_links(const Lines& md, const std::set<std::string>& root_dirs);

// Checks the links of one markdown file (path relative to root). anchors_of(rel) returns the
// heading anchors of the markdown file at rel (relative to root).
Lines check_links(const fs::path& root, const std::string& rel, const Lines& md,
                  const std::function<std::set<std::string>(const std::string&)>& anchors_of);

}  // namespace lesson_check

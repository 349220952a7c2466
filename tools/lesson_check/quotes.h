// Quotes and output markers in markdown.
//
// A line `<!-- quote: path#name -->` or `<!-- output: lesson_NN[#section] -->`, starting in the
// first column and followed at once by a fenced block: the block must hold the anchor's text or
// the program's output. An indented marker is not one, so a lesson can show the syntax in an
// indented code block.
#pragma once

#include <string>
#include <vector>

#include "text.h"

namespace lesson_check {

// `<!-- kind: target -->` on a line of its own; returns the target, or "".
std::string marker_target(const std::string& line, const std::string& kind);

// A quote or output marker of a markdown file.
struct MarkdownMarker {
  int line = 0;        // 0-based line of the comment
  std::string kind;    // "quote" or "output"
  std::string target;  // "path#anchor" or "lesson_NN#section"
};

// Every marker of the file, in order.
std::vector<MarkdownMarker> find_markers(const Lines& md);

// A fenced block that follows a marker comment.
struct Block {
  int marker = 0;  // line of the `<!-- ... -->` comment
  int first = 0;   // first content line
  int close = 0;   // line of the closing fence; content is [first, close)
};

// The fenced block right after line `marker`, or false with the reason in `error`.
bool find_block(const Lines& md, int marker, Block& block, std::string& error);

// Describes the first difference between what the block should hold and what it holds, or ""
// when they agree (trailing whitespace ignored).
std::string first_difference(const Lines& want, const Lines& got, const std::string& want_label);

// Replaces the content of each block (given in file order) with its new lines.
void replace_blocks(Lines& md, const std::vector<std::pair<Block, Lines>>& rewrites);

}  // namespace lesson_check

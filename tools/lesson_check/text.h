// Small text helpers shared by the parts of the lesson checker: lines of a file, trimming, and
// the atomic write that --fix uses.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace lesson_check {

namespace fs = std::filesystem;
using Lines = std::vector<std::string>;

std::string rstrip(const std::string& s);
std::string trim(const std::string& s);
bool starts_with(const std::string& s, const std::string& prefix);
bool ends_with(const std::string& s, const std::string& suffix);
bool is_blank(const std::string& s);

// Splits text into lines (a trailing "\r" is dropped from each, a final newline ends the last).
Lines split_lines(const std::string& text);

// Reads a file as lines; false when it cannot be opened.
bool read_lines(const fs::path& path, Lines& lines);

// Writes the lines, each followed by "\n", atomically (common/file_io.h: temp file, fsync,
// rename): a crash never leaves half a lesson.
bool write_lines(const fs::path& path, const Lines& lines);

// Whether line i of a markdown file lies inside a fenced code block (``` or ~~~), the fence
// lines themselves included. One entry per line.
std::vector<bool> fenced_lines(const Lines& md);

// The line with its inline code spans (`...`) blanked out, so prose rules skip code.
std::string without_code_spans(const std::string& line);

}  // namespace lesson_check
